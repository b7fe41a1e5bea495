//! # mcp-session-core: what a session is, who owns it, and where it is kept
//!
//! The bottom layer of [`mcp-session`](https://docs.rs/mcp-session): the
//! vocabulary every other crate of the workspace shares, with no HTTP server
//! and no Redis client in it.
//!
//! | module | concept |
//! |---|---|
//! | [`identity`] | the [`Caller`](identity::Caller) of a request and the [`UserHash`](identity::UserHash) that owns its sessions |
//! | [`store`] | the [`SessionRecord`](store::SessionRecord), the [`SessionStore`](store::SessionStore) trait every backend implements, and the in-memory backend |
//! | [`task_store`] | the [`TaskStore`](task_store::TaskStore) of tasks (SEP-2663) every replica reads and changes by compare-and-set, and its in-memory backend |
//! | [`session`] | the [`SessionContext`](session::SessionContext) a tool handler reads and changes a session's shared state through |
//! | [`metrics`] | the Prometheus [`Metrics`](metrics::Metrics) every layer counts into, and [`MeteredStore`](metered_store::MeteredStore), a store that counts its failures |
//! | [`trace_context`] | the W3C [`TraceContext`](trace_context::TraceContext) a fleet message carries, so a trace follows a request across replicas |
//! | [`config`] | the [`ConfigError`](config::ConfigError) that names the variable at fault, and the readers of the environment and `.env` |
//!
//! Layers only point down: `mcp-session-auth` (who is calling) and
//! `mcp-session-fleet` (the Redis backend and the cooperation of replicas)
//! build on this crate, and `mcp-session` (the server a service runs) on all
//! of them. Service authors use `mcp-session`, which re-exports what they need
//! from here.

pub mod config;
pub mod identity;
pub mod metered_store;
pub mod metrics;
pub mod session;
pub mod session_end;
pub mod store;
pub mod task_store;
pub mod trace_context;
