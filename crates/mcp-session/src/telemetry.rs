//! Logging: the `tracing` subscriber, and one log line per HTTP request.
//!
//! The level filter comes from `RUST_LOG` (default `info`); the format from
//! [`LogFormat`]. Request lines carry the HTTP method, path, MCP session id,
//! status and latency, never a header value that could hold a credential.

use std::time::Instant;

use axum::{extract::Request, middleware::Next, response::Response};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::{config::LogFormat, transport::streamable_http::HEADER_SESSION_ID};

/// Installs the global `tracing` subscriber, once per process; later calls
/// (tests start several servers) are ignored.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry.with(fmt::layer().with_target(false)).try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            )
            .try_init(),
    };
}

/// The session id a request names: `Mcp-Session-Id` on `/mcp`, the
/// `session_id` query parameter on `/messages`, or the one a response assigns.
fn session_id(request_id: Option<&str>, response: &Response) -> String {
    request_id
        .or_else(|| {
            response
                .headers()
                .get(HEADER_SESSION_ID)
                .and_then(|value| value.to_str().ok())
        })
        .unwrap_or("-")
        .to_owned()
}

fn request_session_id(request: &Request) -> Option<String> {
    if let Some(id) = request
        .headers()
        .get(HEADER_SESSION_ID)
        .and_then(|value| value.to_str().ok())
    {
        return Some(id.to_owned());
    }
    request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("session_id="))
            .map(str::to_owned)
    })
}

/// Middleware: logs one line when each response starts (for SSE streams, when
/// the stream opens), with method, path, session id, status and latency in ms.
pub async fn log_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_session = request_session_id(&request);
    let response = next.run(request).await;
    let session_id = session_id(request_session.as_deref(), &response);
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if path == "/healthz" || path == "/readyz" {
        tracing::debug!(%method, %path, status, latency_ms, "request");
    } else {
        tracing::info!(%method, %path, session_id, status, latency_ms, "request");
    }
    response
}
