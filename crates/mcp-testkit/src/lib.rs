//! # mcp-testkit: real infrastructure for the test suites
//!
//! Tests of a service that scales horizontally must run it the way it runs in
//! production: several replica processes sharing one Redis, behind a load
//! balancer that knows nothing about sessions. This crate starts those real
//! components on free loopback ports, each in its own temporary directory, and
//! stops them when dropped:
//!
//! - [`RedisServer`]: one `redis-server`, which a test can stop and restart;
//! - [`RedisCluster`]: three `redis-server` masters joined into a Redis Cluster
//!   (with a replica each, for failovers);
//! - [`TcpProxy`]: one endpoint whose target moves and whose connections
//!   break, as an ElastiCache primary endpoint does in a failover;
//! - [`Nginx`]: round-robin HTTP load balancing with no stickiness, SSE
//!   buffering off, `Host` passed through;
//! - [`Replica`]: one service process (any binary), with its log captured;
//! - [`SseReader`]: a small `text/event-stream` parser for raw HTTP tests;
//! - [`RawSession`]: a Streamable HTTP client that reports every HTTP status;
//! - [`LegacySseSession`]: the same for the legacy HTTP+SSE transport;
//! - [`Scrape`]: a replica's `/metrics`, parsed; [`metric_families`], the
//!   families a scrape declares, and [`promtool_check_metrics`], Prometheus'
//!   own check of it;
//! - [`OtlpReceiver`]: an OTLP/HTTP endpoint that keeps the spans services
//!   export, for trace tests;
//! - [`Fleet`]: Redis, replicas of a binary and nginx together;
//! - [`TestServer`]: a handler served in the test's own process;
//! - [`tool_schemas`]: tool schemas checked against JSON Schema 2020-12 and
//!   as the official TypeScript SDK reads them;
//! - [`auth`]: tokens, API keys and clients that send them, and the checks
//!   of refusals and of logs free of credentials;
//! - [`free_port`], [`wait_for_port`], [`wait_for_http`].
//!
//! Every wait is bounded: a component that does not come up in time fails the
//! test with its log instead of hanging it.

pub mod auth;
mod binaries;
mod channel_listener;
mod fleet;
mod in_process;
mod legacy_sse;
mod metrics;
mod net;
mod nginx;
mod otlp;
mod raw_client;
mod redis;
mod replica;
mod sse;
mod tcp_proxy;
pub mod tool_schemas;

pub use binaries::workspace_binary;
pub use channel_listener::ChannelListener;
pub use fleet::Fleet;
pub use in_process::TestServer;
pub use legacy_sse::LegacySseSession;
pub use metrics::{Sample, Scrape, metric_families, promtool_check_metrics};
pub use net::{free_port, post_json, wait_for_http, wait_for_port};
pub use nginx::Nginx;
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use raw_client::{CallError, RawSession};
pub use redis::{RedisCluster, RedisServer};
pub use replica::{Memory, Replica, ReplicaSet};
pub use sse::{SseEvent, SseReader};
pub use tcp_proxy::TcpProxy;
