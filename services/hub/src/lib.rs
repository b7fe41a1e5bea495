//! # hub: one MCP endpoint in front of many MCP servers
//!
//! The hub is an MCP server whose tools, prompts and resources are those of
//! its upstream MCP servers. It is served by [`mcp_session`], so any hub
//! replica serves any downstream session (with the same auth, per-user
//! isolation, metrics, probes and graceful shutdown as every service), and
//! it keeps each upstream's `Mcp-Session-Id` in Redis, so that every hub
//! replica uses one upstream session per [context key](context_key), and a
//! new hub process does not start over.
//!
//! Layers, from the downstream client inwards:
//!
//! ```text
//! handler (rmcp ServerHandler) ─▶ hub (scope, names) ─▶ catalog (lists in memory)
//!                │                                        │
//!                └──── relay (upstream → client) ◀────────┴─▶ upstream (sessions: store, http)
//! ```
//!
//! - [`config`]: upstreams, groups and sharing, from `HUB_CONFIG`;
//! - [`context_key`]: whose upstream session a request uses;
//! - [`upstream`]: upstream sessions in Redis ([`upstream::store`]), the
//!   HTTP exchange ([`upstream::http`]), re-establishing on `404`;
//! - [`catalog`]: the upstreams' lists, kept in memory for a while;
//! - [`hub`]: which upstreams an endpoint serves, and names;
//! - [`relay`]: the upstream's notifications and requests during a call,
//!   to the downstream client;
//! - [`handler`]: the MCP server;
//! - [`pending`]: calls of 2026-07-28 clients that wait for their input
//!   (MRTR) on upstreams with sessions;
//! - [`client_sessions`]: MCP client connections kept for web apps
//!   (`/api/client-sessions`), in Redis, on the hub's upstream sessions;
//!   [`egress`] guards the URLs users connect; [`console`] is the web page
//!   on top;
//! - [`admin`]: `/api/admin/upstream-sessions` and `/api/admin/upstreams`;
//! - [`metrics`]: the `mcp_hub_*` metrics.
//!
//! `docs/hub.md` describes the hub for operators.

pub mod admin;
pub mod catalog;
pub mod client_sessions;
pub mod config;
pub mod console;
pub mod context_key;
pub mod egress;
pub mod handler;
pub mod hub;
pub mod metrics;
pub mod pending;
pub mod relay;
pub mod upstream;

pub use config::HubConfig;
pub use handler::HubServer;
pub use hub::Hub;

/// The hub's default port.
pub const DEFAULT_PORT: u16 = 9500;
