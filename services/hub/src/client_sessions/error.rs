//! The client-session API's errors: a status and a JSON body
//! `{"error": "<code>", "error_description": "<what to fix>"}`, the shape of
//! the library's own API errors (and of OAuth 2.0's, RFC 6749 §5.2).
//! Nothing secret goes into a description: credentials are never quoted,
//! and a store failure says only that the store is unavailable.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::upstream::{CallError, http::UpstreamError};

/// An error body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `not_found`, `invalid_json`, `invalid_request`,
    /// `unknown_server`, `not_connected`, `unknown_tool`, `unknown_prompt`,
    /// `not_supported`, `unknown_resource`, `server_name_taken`,
    /// `upstream_unauthorized`,
    /// `destination_forbidden`, `too_many_client_sessions`,
    /// `too_many_connections`, `payload_too_large`, `credentials_unavailable`,
    /// `upstream_refused`, `upstream_unreachable`, `store_unavailable`.
    pub error: String,
    /// What went wrong and what to do about it.
    pub error_description: String,
    /// The upstream's own JSON-RPC error object, for `upstream_refused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub upstream_error: Option<Value>,
}

/// An API error: its status and body.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    /// `status` with `code` and `description`.
    pub fn new(status: StatusCode, code: &str, description: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                error_description: description.into(),
                upstream_error: None,
            },
        }
    }

    /// `400 invalid_request`.
    pub fn invalid(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// `413 payload_too_large`: a body over
    /// [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES).
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is larger than {} KiB",
                super::MAX_BODY_BYTES / 1024
            ),
        )
    }

    /// `404` with `code`.
    pub fn not_found(code: &str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, description)
    }

    /// The `404` of a client session id that names none of the caller's
    /// (whether it is another user's, expired, or never was).
    pub fn no_client_session() -> Self {
        Self::not_found(
            "not_found",
            "no client session with this id for you: it expired, was deleted, or is not yours; create one with POST /api/client-sessions",
        )
    }

    /// `503 store_unavailable` (the cause is logged, not returned).
    pub fn store(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "client session store failure");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the client session store is unavailable; retry shortly",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Adds `more` to the description.
    pub fn append_description(&mut self, more: &str) {
        self.body.error_description.push_str(more);
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.body.error
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.body.error_description
    }
}

impl From<CallError> for ApiError {
    /// An upstream's JSON-RPC error: `422 upstream_refused` for invalid
    /// params, `404 not_supported` for a method it does not have, `404
    /// unknown_resource` for a resource it does not have, else `502`; an
    /// unreachable upstream `502`, a redirect `403`
    /// (never followed), the upstream session store `503`.
    fn from(error: CallError) -> Self {
        match error {
            CallError::Rpc { server, error } => {
                let code = error.get("code").and_then(Value::as_i64);
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("an error")
                    .chars()
                    .take(500)
                    .collect::<String>();
                // JSON-RPC 2.0 §5.1, and MCP 2025-11-25, Server Features
                // §Resources (-32002: resource not found).
                let (status, error_code, what) = match code {
                    Some(-32602) => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "upstream_refused",
                        "refused the request",
                    ),
                    Some(-32601) => (
                        StatusCode::NOT_FOUND,
                        "not_supported",
                        "does not offer this (method not found)",
                    ),
                    Some(-32002) => (
                        StatusCode::NOT_FOUND,
                        "unknown_resource",
                        "has no such resource",
                    ),
                    _ => (
                        StatusCode::BAD_GATEWAY,
                        "upstream_refused",
                        "answered with an error",
                    ),
                };
                let mut api =
                    Self::new(status, error_code, format!("`{server}` {what}: {message}"));
                api.body.upstream_error = Some(error);
                api
            }
            CallError::Upstream {
                source: UpstreamError::Http { status, .. },
                ..
            } if (300..400).contains(&status) => Self::new(
                StatusCode::FORBIDDEN,
                "destination_forbidden",
                format!(
                    "the server answered with a redirect (HTTP {status}); the hub does not follow redirects: connect the URL it redirects to, if it is allowed"
                ),
            ),
            CallError::Upstream {
                server,
                source: UpstreamError::Http { status, .. },
            } if status == 401 || status == 403 => Self::new(
                StatusCode::BAD_GATEWAY,
                "upstream_unauthorized",
                format!(
                    "`{server}` refused the credentials (HTTP {status}): connect it again with valid headers"
                ),
            ),
            CallError::Upstream { server, source } => Self::new(
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                format!("`{server}`: {source}"),
            ),
            CallError::Store { source, .. } => Self::store(&source),
            CallError::Cancelled => Self::new(
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                "the request was cancelled",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.body.error == "store_unavailable";
        let mut response = (self.status, Json(self.body)).into_response();
        if retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
