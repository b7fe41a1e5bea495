//! # mcp-session: MCP servers where any replica serves any session
//!
//! MCP servers that keep sessions in process memory break as soon as they run
//! as several replicas behind a load balancer: a request that reaches a replica
//! other than the one that created its session fails with `Could not find
//! session for ID`. This crate serves an MCP server (an rmcp
//! [`ServerHandler`](rmcp::ServerHandler)) with its sessions in a shared [`store`], so that any
//! replica can answer any request of any session.
//!
//! A service author writes tools, and one call serves them
//! ([`tools::ServiceTools`] adds the session tools and strict argument
//! errors; `scripts/new-service.sh` generates a service of this shape):
//!
//! ```rust,no_run
//! use mcp_session::tools::ServiceTools;
//! use rmcp::{ServerHandler, tool, tool_handler, tool_router};
//!
//! #[derive(Clone)]
//! struct Hello { tools: ServiceTools<Self> }
//!
//! #[tool_router]
//! impl Hello {
//!     fn new() -> Self { Self { tools: ServiceTools::new(Self::tool_router()) } }
//!
//!     #[tool(description = "Say hello")]
//!     fn hello(&self) -> String { "hello".into() }
//! }
//!
//! #[tool_handler(router = self.tools, name = "hello")]
//! impl ServerHandler for Hello {}
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     mcp_session::run(9100, Hello::new).await
//! }
//! ```
//!
//! The service then speaks:
//! - **Streamable HTTP** at `/mcp`, sessions for protocol 2025-03-26 ..
//!   2025-11-25 and stateless 2026-07-28;
//! - **HTTP+SSE** at `/sse` and `/messages` (protocol 2024-11-05);
//! - `/healthz` and `/readyz` for Kubernetes probes, and `/metrics` for
//!   Prometheus;
//! - a graceful scale-in on SIGTERM;
//! - the session tools `health_check`, `get_user_sessions` and
//!   `get_session_analytics` beside the service's own tools
//!   ([`tools::ServiceTools`] adds them; a service opts out with
//!   `without_session_tools()`);
//! - an admin API under `/admin`, for admins only;
//! - sealed MRTR `requestState` that every replica can open
//!   ([`request_state`]);
//! - tasks (SEP-2663) whose state every replica shares ([`tasks`]).
//!
//! A service that sets up more than a handler (its own settings, a database
//! pool, readiness checks) uses [`launch`] and builds its [`McpServer`]
//! itself; [`run`] is the shorthand for one that has nothing but a handler.
//!
//! ## What a service author uses
//!
//! | item | for |
//! |---|---|
//! | [`run`], [`launch`], [`McpServer`] | starting the service (the one way: `launch` builds an `McpServer` from the [`Config`]) |
//! | [`config`] | the library's [`Config`], and [`config::load`] / [`config::text`] for the service's own settings |
//! | [`tools::ServiceTools`] | the tool router a service hands `#[tool_handler]` |
//! | [`session`] | the per-session [`SessionContext`](session::SessionContext) and the request's [`Caller`] |
//! | [`request_state`] | sealing and opening MRTR `requestState` |
//! | [`tasks`] | tasks (SEP-2663) that any replica reads, updates and cancels |
//! | [`listen`] | change notifications that reach the `subscriptions/listen` streams of every replica |
//! | [`response_stream`] | closing a request's SSE stream early, for the client to resume it anywhere (SEP-1699) |
//! | [`RedisConnection`] | the service's own state shared through the fleet's Redis (virustotal's quota) |
//!
//! ## Layers
//!
//! The workspace's crates point one way, and each crate's modules too (a
//! test in `crates/module-graph` fails on any module cycle):
//!
//! ```text
//! mcp-session         server, transports, admin, probes, telemetry, tools, launch   (axum, rmcp's HTTP service)
//!   ├── mcp-session-fleet   Fleet (solo | Redis), Redis store, cache, bus, event streams   (fred, quick_cache)
//!   ├── mcp-session-auth    JWT, JWKS, API keys, anonymous callers               (jsonwebtoken, reqwest)
//!   └── mcp-session-core    identity, session records, SessionStore, metrics, config primitives
//! ```
//!
//! A request goes from the socket inwards: the telemetry middleware (request
//! id, log line, metrics) → auth (the [`Caller`], or `401`) → a transport
//! (`/mcp` through rmcp, or HTTP+SSE) → the session store of the [`Fleet`](fleet::Fleet)
//! → the service's handler. `docs/architecture.md` draws it.

mod admin;
mod allocator;
pub mod config;
mod connections;
mod health;
mod launch;
pub mod listen;
pub mod request_state;
pub mod response_stream;
mod server;
mod service_context;
mod service_info;
mod shutdown;
pub mod tasks;
mod telemetry;
pub mod tools;
mod transport;

pub use config::{Config, ConfigError};
pub use launch::{StartError, launch, run};
use mcp_session_auth as auth;
pub use mcp_session_auth::AuthConfig;
pub use mcp_session_core::identity::{Caller, PrincipalKind, UserHash};
use mcp_session_core::{identity, metrics};
use mcp_session_fleet as fleet;
pub use mcp_session_fleet::RedisConnection;
pub use prometheus_client;
pub use rmcp;
pub use server::{BoundServer, McpServer, shutdown_signal};

/// The per-session state every replica sees, and the caller of a request
/// (see [`SessionContext`](session::SessionContext)).
pub mod session {
    pub use mcp_session_core::session::{SessionContext, caller, current};

    pub use crate::telemetry::{RequestId, request_id};
}

/// The fleet's Redis, for a service's own keys (virustotal's quota, the
/// hub's upstream sessions): the connection, paging through keys with `SCAN`
/// on one server or a cluster, and the `op` label its round trips are
/// counted under (`mcp_redis_round_trips_total{op="service"}`).
pub mod redis {
    pub use mcp_session_core::metrics::RedisOp;
    pub use mcp_session_fleet::{KeyPage, RedisConnection, glob_escape};
}

/// Telling a service that sessions ended ([`McpServer::on_session_end`]).
pub mod session_end {
    pub use mcp_session_core::session_end::SessionEndObserver;
}

/// Where sessions live: the [`SessionStore`](store::SessionStore) trait, its
/// record, and the in-memory backend, for a server built over a given store
/// ([`McpServer::with_store`]).
pub mod store {
    pub use mcp_session_core::store::{
        MemoryStore, SessionPage, SessionRecord, SessionStore, StoreError, StoredSession,
        TransportKind, now_ms,
    };
}

/// Reading a request body within a limit, for a service's own routes
/// ([`McpServer::with_routes`], whose bodies are not limited otherwise): a
/// body over the limit is drained, within a bound, before the caller
/// answers `413`, so that the answer reaches a client behind a proxy that
/// streams bodies (nginx, an AWS ALB) instead of a `502`.
pub mod body {
    pub use crate::transport::body::{BodyError, read_body};
}
