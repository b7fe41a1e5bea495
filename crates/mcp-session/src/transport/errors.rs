//! HTTP error responses shared by both transports.
//!
//! Errors that happen before any JSON-RPC message is read are plain HTTP
//! statuses; those about a message carry a JSON-RPC error object (JSON-RPC 2.0
//! §5.1) with `id: null`, so a client library can show the cause.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::store::StoreError;

/// JSON-RPC 2.0 §5.1: invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0 §5.1: the JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// Implementation-defined server error (JSON-RPC 2.0 §5.1: -32000 to -32099):
/// the session store is unavailable.
pub const STORE_UNAVAILABLE: i64 = -32001;
/// Implementation-defined server error: the per-user session limit is reached.
pub const TOO_MANY_SESSIONS: i64 = -32002;

/// A JSON-RPC error object with `id: null`, sent with `status`.
pub fn jsonrpc_error(status: StatusCode, code: i64, message: impl Into<String>) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message.into() },
    });
    (status, Json(body)).into_response()
}

/// `404 Not Found` for an unknown, expired, deleted or foreign session id
/// (MCP 2025-06-18, Transports §Session Management). The same body in every
/// case, so that the answer tells nothing about other users' sessions.
pub fn session_not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}

/// The response for a store failure: `503` while the store is unreachable,
/// `429` when the caller has too many sessions.
pub fn store_failure(error: &StoreError) -> Response {
    match error {
        StoreError::TooManySessions { .. } => jsonrpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            TOO_MANY_SESSIONS,
            error.to_string(),
        ),
        StoreError::Unavailable(_) | StoreError::Corrupt(_) => {
            tracing::error!(%error, "session store failure");
            let mut response = jsonrpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                STORE_UNAVAILABLE,
                "session store unavailable, retry shortly",
            );
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, 1.into());
            response
        }
    }
}
