//! What the two reference servers (`rmcp-bare`, `mcp-floor`) share: the
//! port from the command line and an axum server as production servers run
//! one (Nagle off), until Ctrl-C.

use axum::{Router, serve::ListenerExt};

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
