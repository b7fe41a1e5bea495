//! Kubernetes probes.
//!
//! - `GET /healthz` (liveness): `200` while the process serves HTTP at all,
//!   with the service, version, replica and number of open SSE streams.
//! - `GET /readyz` (readiness): `200` when the session store answers, the
//!   replica has joined its fleet's Redis channels (with Redis) and is not
//!   shutting down, else `503`; the body says which check failed.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::server::Shared;

/// `GET /healthz`: `200 {"status":"ok"}`.
pub(crate) async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({
        "status": "ok",
        "service": shared.service_name,
        "version": shared.service_version,
        "replica": shared.config.replica_id,
        "open_sse_streams": shared.locals.sse.len(),
    }))
    .into_response()
}

/// `GET /readyz`: `200` when ready, `503` with the failing check otherwise.
pub(crate) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "shutting_down" })),
        )
            .into_response();
    }
    let backend = shared.store.backend();
    if let Some(bus) = &shared.bus
        && !bus.is_joined()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "fleet": { "status": "not subscribed to the fleet channels yet" },
            })),
        )
            .into_response();
    }
    match shared.store.ping().await {
        Ok(()) => Json(json!({
            "status": "ready",
            "store": { "backend": backend, "status": "ok" },
        }))
        .into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "store": { "backend": backend, "status": "unavailable", "error": error.to_string() },
            })),
        )
            .into_response(),
    }
}
