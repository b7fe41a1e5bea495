//! What one request to the API v3 can end in besides success, read from the
//! error format of docs.virustotal.com, "Errors":
//!
//! ```json
//! {"error": {"code": "NotFoundError", "message": "File \"…\" not found"}}
//! ```
//!
//! | HTTP | `code` | here |
//! |---|---|---|
//! | 400 | `BadRequestError`, `InvalidArgumentError`, `NotAvailableYet`, `UnselectiveContentQueryError`, `UnsupportedContentQueryError` | [`ApiError::Status`], not retried |
//! | 401 | `AuthenticationRequiredError`, `UserNotActiveError`, `WrongCredentialsError` | [`ApiError::Status`]: the key is wrong ([`ApiError::is_credentials`]) |
//! | 403 | `ForbiddenError` | not retried |
//! | 404 | `NotFoundError` | nothing is known about the object: a normal answer |
//! | 409 | `AlreadyExistsError` | not retried |
//! | 424 | `FailedDependencyError` | not retried |
//! | 429 | `QuotaExceededError`, `TooManyRequestsError` | the key's quota is spent: the fleet backs off |
//! | 503 | `TransientError` | retried with back-off |
//! | 504 | `DeadlineExceededError` | retried with back-off |

use std::time::Duration;

use serde::Deserialize;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The API answered with an error status.
    #[error("HTTP {status} {code}: {message}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The API's error `code` (`NotFoundError`, ...), or `HTTP <status>`
        /// when the body was not the API's error format (a proxy's page).
        code: String,
        /// The API's `message`, or the start of the body.
        message: String,
        /// The `Retry-After` header in seconds, when the answer had one.
        retry_after: Option<Duration>,
    },
    /// No complete answer within the request timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection could not be made or broke.
    #[error("connection failed: {0}")]
    Connection(String),
    /// A `2xx` answer whose body is not the JSON the API documents, or too
    /// large.
    #[error("unexpected answer: {0}")]
    Body(String),
}

impl ApiError {
    /// Whether trying again may succeed: `5xx` answers, timeouts and
    /// connection failures. `4xx` answers are final (the API's docs ask for
    /// no retry of them; a 429 waits for the quota instead).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500,
            Self::Timeout(_) | Self::Connection(_) => true,
            Self::Body(_) => false,
        }
    }

    /// Whether the API refused the key (`401`): a configuration problem.
    pub fn is_credentials(&self) -> bool {
        matches!(self, Self::Status { status: 401, .. })
    }

    /// Whether the API says the object is unknown (`404 NotFoundError`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Status { status: 404, .. })
    }

    /// Whether the key's quota is spent (`429`).
    pub fn is_quota(&self) -> bool {
        matches!(self, Self::Status { status: 429, .. })
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: String,
    #[serde(default)]
    message: String,
}

/// Longest part of a non-API error body kept in a message.
const BODY_EXCERPT: usize = 200;

/// Reads an error answer: the API's `{"error": {code, message}}`, or for any
/// other body (a load balancer's HTML page) `HTTP <status>` and its start.
pub fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> ApiError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => ApiError::Status {
            status,
            code: error.code,
            message: error.message,
            retry_after,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let excerpt: String = text
                .chars()
                .filter(|c| !c.is_control())
                .take(BODY_EXCERPT)
                .collect();
            ApiError::Status {
                status,
                code: format!("HTTP {status}"),
                message: if excerpt.trim().is_empty() {
                    "no error body".to_owned()
                } else {
                    excerpt.trim().to_owned()
                },
                retry_after,
            }
        }
    }
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3); the HTTP-date form is not
/// used by the API and is ignored.
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_error_format_is_read() {
        let error = from_response(
            404,
            br#"{"error": {"code": "NotFoundError", "message": "URL \"thisurlidmakesnosenseatall\" not found"}}"#,
            None,
        );
        assert!(error.is_not_found());
        assert!(!error.is_retryable());
        assert_eq!(
            error.to_string(),
            r#"HTTP 404 NotFoundError: URL "thisurlidmakesnosenseatall" not found"#
        );
    }

    #[test]
    fn other_bodies_keep_the_status() {
        let error = from_response(502, b"<html><body>Bad Gateway</body></html>\n", None);
        assert!(error.is_retryable());
        match error {
            ApiError::Status { code, message, .. } => {
                assert_eq!(code, "HTTP 502");
                assert!(message.contains("Bad Gateway"));
            }
            other => panic!("{other:?}"),
        }
        let long = vec![b'x'; 10_000];
        match from_response(500, &long, None) {
            ApiError::Status { message, .. } => assert_eq!(message.len(), BODY_EXCERPT),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn which_errors_are_retried() {
        let status = |status| ApiError::Status {
            status,
            code: String::new(),
            message: String::new(),
            retry_after: None,
        };
        for retried in [500, 502, 503, 504] {
            assert!(status(retried).is_retryable(), "{retried}");
        }
        for final_ in [400, 401, 403, 404, 409, 424, 429] {
            assert!(!status(final_).is_retryable(), "{final_}");
        }
        assert!(ApiError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(ApiError::Connection("refused".into()).is_retryable());
        assert!(status(401).is_credentials());
        assert!(status(429).is_quota());
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(
            parse_retry_after(Some(" 30 ")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }
}
