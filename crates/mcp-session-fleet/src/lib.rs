//! # mcp-session-fleet: how the replicas of one service cooperate through Redis
//!
//! The layer between `mcp-session-core` (what a session is, the store trait)
//! and `mcp-session` (the HTTP server). Its entry point is [`Fleet`]: one
//! value, built from [`FleetSettings`], for a replica that serves alone or
//! as one of a fleet on Redis; callers never ask which.
//!
//! A session's requests may reach any replica, but some things live in one
//! process: the SSE connection a client holds open, the tool call waiting for
//! the client's answer to a sampling request. The [`FleetBus`] carries what
//! must reach them, over Redis pub/sub:
//!
//! | channel | kind | carries |
//! |---|---|---|
//! | `mcp_fleet:<service>` | `PUBLISH` | session deletions and record changes, client responses and notifications for handlers running elsewhere |
//! | `mcp_standalone:<service>:<stream_id>` | `SPUBLISH` (sharded) | server events of a standalone stream, for the replica holding its `GET` connection ([`shard_subscriptions`]) |
//! | `mcp_change:<service>:<audience>:<topic>` | `SPUBLISH` (sharded) | change notices (a resource updated, a list changed) for the replicas whose listen streams or resource watchers want them |
//! | `mcp_replica:<service>:<replica_id>` | `SPUBLISH` (sharded) | HTTP+SSE messages for the stream this replica holds; acks |
//! | `mcp_stream_flush:<service>:<nonce>` | `SPUBLISH` (sharded) | requests to flush a response stream this replica produced to Redis, for a resumption elsewhere |
//!
//! Sending to a replica channel reports how many subscribers received the
//! message: zero means the replica holding the stream is gone, and the POST
//! gets `404` so that the client reconnects.
//!
//! Every replica keeps the events of the SSE streams it sends
//! ([`FleetEventStore`]): a request's response stream in its memory until
//! another replica asks for it or the client's connection breaks, then in
//! Redis Streams; a standalone stream in Redis Streams. A client that
//! reconnects with `Last-Event-ID` to any replica gets what it missed.
//!
//! The session store of a fleet is a [`FleetStore`]: each replica keeps the
//! records it serves in its [`SessionCache`], and every deletion or rewrite
//! of a record is announced on the fleet channel and acknowledged by every
//! replica before it is answered ([`announce`]), so that a cached record is
//! never served after its session ended.
//!
//! | module | concept |
//! |---|---|
//! | [`topology`] | [`Fleet`]: solo or Redis, built in one place |
//! | [`connection`] | [`RedisConnection`]: the pool and the subscriber of one replica |
//! | [`redis_store`] | [`RedisStore`]: sessions under `mcp_user_session:<user_hash>:<session_id>` |
//! | [`redis_task_store`] | [`RedisTaskStore`]: tasks (SEP-2663) under `mcp_task:<user_hash>:<task_id>`, changed by compare-and-set |
//! | [`cache`], [`fleet_store`], [`announce`] | the per-replica record cache, kept true by acknowledged announcements |
//! | [`bus`], [`envelope`] | the pub/sub bus and the messages on it |
//! | [`shard_subscriptions`] | sharded channels read only while something held here wants them, so that a replica's traffic does not grow with the fleet |
//! | [`listen_streams`] | change notices (resource updated, list changed) published by any replica for the `subscriptions/listen` streams of every replica |
//! | [`held`], [`sse_streams`] | what this replica holds of sessions: workers, HTTP+SSE streams, standalone streams, pending requests |
//! | [`sse_sessions`], [`sse_reaper`] | HTTP+SSE sessions that outlive their stream: event ids, takeover by the replica a client reconnects to, replay; the sessions of gone replicas ended within seconds |
//! | [`session_manager`] | rmcp's `SessionManager` aware of the fleet |
//! | [`events`] (its buffer, writer and resumption), [`response_stream`] | resumable response streams: memory first, Redis Streams on demand |

pub mod announce;
mod bus;
pub mod cache;
pub mod connection;
mod data_loss;
mod envelope;
pub mod events;
mod fleet_store;
mod held;
pub mod key_scan;
mod listen_streams;
mod periodic;
mod redis_store;
mod redis_task_store;
mod response_stream;
mod session_manager;
pub mod shard_subscriptions;
mod shrink;
pub mod sse_reaper;
mod sse_sessions;
mod sse_streams;
pub mod topology;

use mcp_session_core::{identity, metrics, store, trace_context};

pub use announce::Announcer;
pub use bus::{Delivery, FleetBus};
pub use cache::SessionCache;
pub use connection::RedisConnection;
pub use envelope::{AckRequest, Envelope};
pub use events::{EventSettings, FleetEventStore, StreamOwner, with_caller};
pub use fleet_store::{FleetStore, refresh_interval};
use held::HeldSessions;
pub use key_scan::{KeyPage, glob_escape};
pub use listen_streams::{ChangeFollower, ChangeInterest, ChangeNotice};
pub use redis_store::RedisStore;
pub use redis_task_store::RedisTaskStore;
pub use response_stream::WatchedBody;
pub use session_manager::{FleetSessionError, FleetSessionManager, FleetTransport};
pub use sse_streams::{SseStreams, StreamHandle, sse_session_of, sse_stream_id};
pub use topology::{Fleet, FleetError, FleetSettings, HeldCounts};
