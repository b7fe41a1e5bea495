//! What the two reference servers (`rmcp-bare`, `mcp-floor`) share: the
//! calculator's server identity (so that every server compared by
//! `scripts/callgrind.sh` sends the same `initialize` answer), the port from
//! the command line and an axum server as production servers run one (Nagle
//! off), until Ctrl-C.

use axum::{Router, serve::ListenerExt};

/// The `serverInfo.name` of the calculator's `initialize` answer.
pub const SERVER_NAME: &str = "calculator";

/// The `serverInfo.version` of the calculator's `initialize` answer.
pub const SERVER_VERSION: &str = "0.1.0";

/// The calculator's `instructions` (`services/calculator/src/tools.rs`),
/// word for word: 300 bytes that every `initialize` answer carries, so a
/// comparison of session starts compares the servers, not their answers.
pub const INSTRUCTIONS: &str = "Arithmetic on double-precision numbers. Each tool returns the result \
    as structured content {operation, expression, result}. Errors such as \
    division by zero come back as tool errors with an explanation. \
    health_check and get_user_sessions describe the service and your sessions.";

/// Serves `router` on `127.0.0.1` at the port given as the first argument
/// (`default_port` without one) until Ctrl-C.
///
/// # Errors
/// A port that is no number, or one that cannot be bound.
pub async fn serve(router: Router, default_port: u16) -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .map_or(Ok(default_port), |port| port.parse())?;
    // Nagle off, as production servers (and ours) run: otherwise small SSE
    // writes wait for delayed ACKs (~40 ms a call).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
