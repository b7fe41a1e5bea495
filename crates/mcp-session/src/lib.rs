//! # mcp-session: MCP servers where any replica serves any session
//!
//! MCP servers that keep sessions in process memory break as soon as they run
//! as several replicas behind a load balancer: a request that reaches a replica
//! other than the one that created its session fails with `Could not find
//! session for ID`. This crate serves an MCP server (an rmcp
//! [`ServerHandler`]) with its sessions in a shared [`store`], so that any
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
//! - **Streamable HTTP** at `/mcp` ([`transport::streamable_http`]), sessions
//!   for protocol 2025-03-26 .. 2025-11-25 and stateless 2026-07-28;
//! - **HTTP+SSE** at `/sse` and `/messages` (protocol 2024-11-05);
//! - `/healthz` and `/readyz` for Kubernetes probes ([`health`]), and
//!   `/metrics` for Prometheus ([`metrics`]);
//! - a graceful scale-in on SIGTERM ([`shutdown`]);
//! - the session tools `health_check`, `get_user_sessions` and
//!   `get_session_analytics` beside the service's own tools
//!   ([`tools::session`]; [`tools::ServiceTools`] adds them, and a service
//!   opts out with `without_session_tools()`);
//! - an admin API under `/admin` ([`admin`]);
//! - sealed MRTR `requestState` that every replica can open
//!   ([`request_state`]).
//!
//! A service that sets up more than a handler (its own settings, a database
//! pool, readiness checks) uses [`launch`] instead of [`run`].
//!
//! Layers, from the socket inwards: [`server`] (routes, middleware, shutdown)
//! → [`auth`] (who is calling: JWT, API key or anonymous; `401` otherwise) →
//! [`identity`] (the caller and the user hash owning sessions) →
//! [`transport`] (the MCP transports) → [`store`] (where sessions live).
//! [`config`] reads the environment; docs/security.md explains the threat
//! model and each auth mode.

pub mod admin;
pub mod config;
pub mod fleet;
pub mod health;
pub mod launch;
pub mod metered_store;
pub mod metrics;
pub mod request_state;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod telemetry;
pub mod tools;
pub mod transport;

use std::process::ExitCode;

pub use config::{Config, ConfigError};
pub use launch::{StartError, launch, server_for};
use mcp_session_auth as auth;
pub use mcp_session_auth::AuthConfig;
use mcp_session_core::identity;
pub use mcp_session_core::identity::{Caller, PrincipalKind, UserHash};
pub use mcp_session_core::store;
pub use rmcp;
use rmcp::ServerHandler;
pub use server::{BoundServer, McpServer, shutdown_signal};

/// Serves `factory`'s handlers with `config` until SIGTERM or Ctrl-C.
///
/// The service's name and version in logs and health output are those the
/// handler reports in [`ServerHandler::get_info`].
///
/// # Errors
/// The I/O error of binding or serving.
pub async fn serve<S, F>(factory: F, config: Config) -> std::io::Result<()>
where
    S: ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    server_for(config, factory)
        .bind()
        .await?
        .run(shutdown_signal())
        .await
}

/// A service's whole `main`: reads the [`Config`] from the environment (with
/// `default_port` when `MCP_SERVER_PORT` is unset), sets up logging, and
/// [`serve`]s. Configuration and start-up errors are printed as one line and
/// turn into a failing exit code.
pub async fn run<S, F>(default_port: u16, factory: F) -> ExitCode
where
    S: ServerHandler,
    F: Fn() -> S + Send + Sync + 'static,
{
    launch(default_port, |config| async move {
        Ok(server_for(config, factory))
    })
    .await
}
