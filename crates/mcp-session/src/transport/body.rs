//! Reading a request body ourselves, within `MAX_REQUEST_BODY_BYTES`, where
//! a transport must see it before (or instead of) rmcp: an HTTP+SSE
//! `POST /messages`, a `subscriptions/listen` request. The answers match
//! rmcp's for the same failures.

use axum::{
    body::Body,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// The whole of `body`, at most `limit` bytes.
///
/// # Errors
/// The response to send instead: `413 Payload Too Large` over `limit`,
/// `400 Bad Request` when the body could not be read (the client went away
/// mid-body, a broken chunked encoding).
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, Response> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Payload Too Large: the limit is {limit} bytes"),
        )
            .into_response()),
        Err(error) => {
            Err((StatusCode::BAD_REQUEST, format!("Bad Request: {error}")).into_response())
        }
    }
}
