//! A request's own SSE response stream, closed by the server before the
//! request is answered (MCP 2025-11-25, Transports §Resumability and
//! Redelivery; SEP-1699).
//!
//! A server may end a `POST`'s SSE stream early, after its priming event
//! (an event id and a `retry` field), so that a long-running request does
//! not hold a connection (and a load balancer's idle timeout) open; the
//! client then polls the stream back with `GET` and `Last-Event-ID`, and
//! gets whatever the request sent meanwhile, its result included. Behind a
//! round-robin load balancer that `GET` reaches any replica: the stream's
//! later events wait in Redis, as when a client's connection breaks.
//!
//! ```rust,ignore
//! mcp_session::response_stream::close(&context); // the client reconnects
//! tokio::time::sleep(Duration::from_millis(100)).await;
//! Ok(CallToolResult::success(vec![ContentBlock::text("done")])) // delivered on the resumed stream
//! ```

use rmcp::{RoleServer, service::RequestContext};
use tokio_util::sync::CancellationToken;

/// Put in a `POST`'s extensions by the transport; cancelled to close its
/// response stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamCloser(pub(crate) CancellationToken);

/// Closes the SSE response stream of the request `context` as soon as its
/// first event (the priming event) has gone out; the request goes on, and
/// what it sends later is delivered when the client resumes the stream.
/// Returns `false` (and does nothing) when the request has no stream this
/// server can close (not a `POST` over `/mcp`).
pub fn close(context: &RequestContext<RoleServer>) -> bool {
    match mcp_session_core::session::request_extension::<StreamCloser>(context) {
        Some(StreamCloser(token)) => {
            token.cancel();
            true
        }
        None => false,
    }
}
