//! The two MCP transports over HTTP, served side by side by every service.
//!
//! | path | methods | transport | protocol versions |
//! |---|---|---|---|
//! | `/mcp` | POST, GET, DELETE | [Streamable HTTP](streamable_http) | 2025-03-26 .. 2025-11-25 (sessions), 2026-07-28 (stateless) |
//! | `/sse` | GET | [HTTP+SSE](sse) | 2024-11-05 |
//! | `/messages?session_id=` | POST | [HTTP+SSE](sse) | 2024-11-05 |
//!
//! Both drive the same rmcp [`ServerHandler`](rmcp::ServerHandler) of the
//! service, and both keep their sessions in the
//! [`SessionStore`](crate::store::SessionStore).
//!
//! [`routes`] mounts both, with the [`TransportState`] they share. Both
//! refuse a `Host` outside `ALLOWED_HOSTS` and, when it is set, an `Origin`
//! outside `ALLOWED_ORIGINS` (DNS-rebinding protection, [`origin_check`]:
//! on `/mcp` in its handler, on the legacy routes as a middleware).

pub(crate) mod body;
mod errors;
mod handshake;
mod origin_check;
mod sse;
mod sse_lifecycle;
mod sse_reconnect;
pub(crate) mod streamable_http;

use std::{sync::Arc, time::Duration};

use axum::{
    Router, middleware,
    routing::{any, get, post},
};
use origin_check::{OriginPolicy, check_host_and_origin};
use rmcp::ServerHandler;

use crate::{config::Config, fleet::Fleet, shutdown::Lifecycle};

/// The standard request headers of Streamable HTTP, lower-case: the
/// negotiated protocol version (MCP 2025-06-18, Transports §Protocol Version
/// Header), and a `POST`'s JSON-RPC method and name (MCP 2026-07-28,
/// SEP-2243).
pub(crate) const HEADER_MCP_PROTOCOL_VERSION: axum::http::HeaderName =
    axum::http::HeaderName::from_static("mcp-protocol-version");
pub(crate) const HEADER_MCP_METHOD: axum::http::HeaderName =
    axum::http::HeaderName::from_static("mcp-method");
pub(crate) const HEADER_MCP_NAME: axum::http::HeaderName =
    axum::http::HeaderName::from_static("mcp-name");

/// What the transports need of their server: the fleet (store, what this
/// replica holds), the shutdown state, and their settings.
#[derive(Clone)]
pub(crate) struct TransportState {
    pub(crate) fleet: Fleet,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// `MAX_REQUEST_BODY_BYTES`.
    pub(crate) max_request_body_bytes: usize,
    /// `SSE_KEEPALIVE_SECONDS`.
    pub(crate) sse_keep_alive: Duration,
    /// `SSE_RECONNECT_SECONDS`.
    pub(crate) sse_reconnect_grace: Duration,
    /// `ALLOWED_HOSTS` (empty: any).
    pub(crate) allowed_hosts: Vec<String>,
    /// `ALLOWED_ORIGINS` (empty: not checked).
    pub(crate) allowed_origins: Vec<String>,
}

impl TransportState {
    /// The state of `config`'s transports in `fleet`.
    pub(crate) fn new(config: &Config, fleet: Fleet, lifecycle: Arc<Lifecycle>) -> Self {
        Self {
            fleet,
            lifecycle,
            max_request_body_bytes: config.max_request_body_bytes,
            sse_keep_alive: config.sse_keep_alive,
            sse_reconnect_grace: config.sse_reconnect_grace,
            allowed_hosts: config.allowed_hosts.clone(),
            allowed_origins: config.allowed_origins.clone(),
        }
    }
}

/// `/mcp`, `/sse` and `/messages`, serving `factory`'s handlers; with
/// `scoped`, `/mcp/{scope}` too.
pub(crate) fn routes<S: ServerHandler>(
    state: TransportState,
    factory: Arc<dyn Fn() -> S + Send + Sync>,
    scoped: bool,
) -> Router {
    // Host and Origin, checked on every route (`/mcp` in its handler).
    let policy = Arc::new(OriginPolicy::new(
        &state.allowed_hosts,
        &state.allowed_origins,
    ));
    let streamable = Arc::new(streamable_http::StreamableHttp::new(
        factory.clone(),
        &state,
        policy.clone(),
    ));
    let sse = Arc::new(sse::SseTransport { state, factory });
    let legacy = Router::new()
        .route("/sse", get(sse::open_stream::<S>))
        .route("/messages", post(sse::post_message::<S>))
        .route("/messages/", post(sse::post_message::<S>))
        .with_state(sse)
        .layer(middleware::from_fn_with_state(
            policy,
            check_host_and_origin,
        ));
    let mut router = Router::new().route(
        "/mcp",
        any(streamable_http::handle::<S>).with_state(streamable.clone()),
    );
    if scoped {
        router = router.route(
            "/mcp/{scope}",
            any(streamable_http::handle::<S>).with_state(streamable),
        );
    }
    router.merge(legacy)
}
