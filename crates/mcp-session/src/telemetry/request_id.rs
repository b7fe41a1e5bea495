//! The request id: one name for a request in the logs of every hop.
//!
//! Taken from the request's `X-Request-Id`, else its `X-Amzn-Trace-Id` (set
//! by an AWS ALB), else made here; returned in the response's
//! `X-Request-Id`, recorded in the request's tracing span (every log line of
//! the request carries it as `request_id`), and handed to tools in the
//! request's extensions ([`request_id`]).

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
};
use rmcp::{RoleServer, service::RequestContext};

/// The `X-Request-Id` header.
pub const HEADER_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The header an AWS ALB adds to every request it forwards.
pub const HEADER_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");

/// Longest request id taken from a client; a longer one is replaced.
const MAX_LEN: usize = 200;

/// The id of one HTTP request (cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

/// Whether a client's id can go into logs as it is: 1 to [`MAX_LEN`]
/// visible ASCII characters (no spaces, no control characters).
fn acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// A new id, `<prefix>-<sequence>`: this process's random prefix (12 hex
/// digits) and a sequence number (hex), unique across the fleet without a
/// random draw per request. Written without `fmt`: most requests get one.
fn generate() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    static PREFIX: OnceLock<String> = OnceLock::new();
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    let mut sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = HEX[(sequence & 0xf) as usize];
        sequence >>= 4;
        if sequence == 0 {
            break;
        }
    }
    let mut id = Vec::with_capacity(prefix.len() + 1 + digits.len() - start);
    id.extend_from_slice(prefix.as_bytes());
    id.push(b'-');
    id.extend_from_slice(&digits[start..]);
    HeaderValue::from_maybe_shared(axum::body::Bytes::from(id))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

impl RequestId {
    /// The id of `request`: its `X-Request-Id`, else its `X-Amzn-Trace-Id`,
    /// when acceptable (1 to 200 visible ASCII characters), else a new one.
    pub fn of(request: &Request) -> Self {
        let headers = request.headers();
        [HEADER_REQUEST_ID, HEADER_AMZN_TRACE_ID]
            .into_iter()
            .find_map(|name| headers.get(&name).filter(|value| acceptable(value)))
            .cloned()
            .map_or_else(|| Self(generate()), Self)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only visible ASCII gets in (see `acceptable` and `generate`).
        self.0.to_str().unwrap_or("unknown")
    }

    /// The id as a header value, for the response.
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of the HTTP request a tool call arrived with, if any (messages
/// forwarded from another replica carry none).
pub fn request_id(context: &RequestContext<RoleServer>) -> Option<RequestId> {
    mcp_session_core::session::request_extension(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().uri("/mcp");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn ids_come_from_the_request_or_are_made() {
        assert_eq!(
            RequestId::of(&with(&[("x-request-id", "abc-1")])).as_str(),
            "abc-1"
        );
        let alb = "Root=1-67891233-abcdef012345678912345678";
        assert_eq!(
            RequestId::of(&with(&[("x-amzn-trace-id", alb)])).as_str(),
            alb
        );
        assert_eq!(
            RequestId::of(&with(&[("x-amzn-trace-id", alb), ("x-request-id", "mine")])).as_str(),
            "mine"
        );
        let made = RequestId::of(&with(&[]));
        let again = RequestId::of(&with(&[]));
        assert_ne!(made, again);
        for id in [&made, &again] {
            let (prefix, sequence) = id.as_str().split_once('-').expect("<prefix>-<sequence>");
            assert_eq!(prefix.len(), 12, "{id}");
            assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            assert!(u64::from_str_radix(sequence, 16).is_ok(), "{id}");
            assert!(!sequence.starts_with('0') || sequence == "0", "{id}");
        }
    }

    #[test]
    fn unfit_ids_are_replaced() {
        let long = "a".repeat(201);
        for bad in ["has space", "", long.as_str()] {
            let id = RequestId::of(&with(&[("x-request-id", bad)]));
            assert_ne!(id.as_str(), bad);
            assert!(id.as_str().bytes().all(|b| b.is_ascii_graphic()));
        }
    }
}
