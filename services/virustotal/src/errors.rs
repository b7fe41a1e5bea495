//! Tool errors: why a lookup has no answer, in words a model can act on.
//!
//! Each becomes a tool result flagged `isError` (MCP 2025-06-18, Server
//! Features §Tools, "Error Handling": errors a model can correct are tool
//! results, not protocol errors) whose text says what happened and what to
//! do, and whose `_meta` carries the same for programs:
//!
//! ```json
//! {"virustotal/error": {"code": "RateLimited", "retry_after_seconds": 37}}
//! ```
//!
//! `code` is the API's error code when the API answered
//! (`WrongCredentialsError`, `QuotaExceededError`, `TransientError`, ...),
//! else one of this service's: `InvalidIndicator`, `ApiKeyNotConfigured`,
//! `RateLimited`, `QuotaStoreUnavailable`, `Timeout`, `ConnectionFailed`,
//! `UnexpectedResponse`. `retry_after_seconds` is present when waiting
//! helps. No message carries the API key.

use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock, MetaObject};
use serde_json::{Map, Value, json};

use crate::{
    api::ApiError,
    indicator::InvalidIndicator,
    quota::{Denial, Window},
};

/// The `_meta` key of the machine-readable error.
pub const META_KEY: &str = "virustotal/error";

/// A lookup that has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The input is not an indicator of the tool's kind; no API call was made.
    #[error("{0}")]
    InvalidIndicator(#[from] InvalidIndicator),
    /// `VIRUSTOTAL_API_KEY` is not set.
    #[error(
        "the VirusTotal API key is not configured: the operator must set VIRUSTOTAL_API_KEY \
         (a VirusTotal account's API key) and restart the service; no lookup can be made until then"
    )]
    NotConfigured,
    /// The fleet's own budget is spent; no API call was made.
    #[error("{}", rate_limited_message(.0))]
    RateLimited(Denial),
    /// The shared budget cannot be checked (Redis is away); no API call was
    /// made.
    #[error(
        "the shared VirusTotal quota cannot be checked ({0}); no API call was made, so the API \
         key's quota stays safe. Retry in a few seconds; if it persists, Redis is unreachable \
         from the service"
    )]
    QuotaStore(String),
    /// The API answered with an error (after retries, when they apply).
    #[error("{}", api_message(.error, *.attempts, .retry_after))]
    Api {
        /// The API's answer.
        error: ApiError,
        /// Requests made.
        attempts: u32,
        /// For a `429`: the fleet's back-off.
        retry_after: Option<Duration>,
    },
    /// The answer could not be read as the documented object.
    #[error("VirusTotal's answer could not be read: {0}")]
    UnexpectedResponse(String),
}

fn rate_limited_message(denial: &Denial) -> String {
    let seconds = denial.retry_after_seconds();
    let why = match denial.window {
        Window::Minute => {
            "the per-minute request budget of the VirusTotal API key is spent \
                           (VIRUSTOTAL_RATE_LIMIT_PER_MINUTE, shared by every replica)"
        }
        Window::Day => {
            "the daily request budget of the VirusTotal API key is spent \
                        (VIRUSTOTAL_RATE_LIMIT_PER_DAY, reset at 00:00 UTC)"
        }
        Window::Backoff => {
            "VirusTotal answered 429 (quota exceeded) recently, and every \
                            replica pauses its requests"
        }
    };
    format!(
        "{why}; no API call was made. Retry after {seconds} seconds; cached reports are still \
         answered."
    )
}

fn api_message(error: &ApiError, attempts: u32, retry_after: &Option<Duration>) -> String {
    let tries = if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    };
    match error {
        ApiError::Status {
            status: 401,
            code,
            message,
            ..
        } => format!(
            "VirusTotal rejected the API key: {code}: {message}. This is a configuration \
             problem: the operator must set a valid, activated key in VIRUSTOTAL_API_KEY. \
             Retrying will not help."
        ),
        ApiError::Status {
            status: 429,
            code,
            message,
            ..
        } => format!(
            "VirusTotal says the API key's quota is exceeded: {code}: {message}. Every replica \
             now pauses its requests; retry after {} seconds.",
            retry_after.map_or(60, |wait| wait.as_secs().max(1))
        ),
        ApiError::Status {
            status: 403,
            code,
            message,
            ..
        } => format!(
            "VirusTotal refused the request: {code}: {message}. The API key lacks the privilege \
             (a premium feature?); retrying will not help."
        ),
        ApiError::Status {
            status: 400,
            code,
            message,
            ..
        } if code == "NotAvailableYet" => {
            format!("VirusTotal has no result yet: {code}: {message}. Retry in a minute.")
        }
        ApiError::Status {
            status,
            code,
            message,
            ..
        } if *status < 500 => format!(
            "VirusTotal refused the request with HTTP {status}: {code}: {message}. Change the \
             request; retrying it as is will not help."
        ),
        ApiError::Status {
            status,
            code,
            message,
            ..
        } => format!(
            "VirusTotal failed with HTTP {status}{tries}: {code}: {message}. This is on \
             VirusTotal's side; retry in a minute."
        ),
        ApiError::Timeout(after) => format!(
            "VirusTotal did not answer within {} ms{tries} (VIRUSTOTAL_TIMEOUT_MS). Retry in a \
             minute.",
            after.as_millis()
        ),
        ApiError::Connection(cause) => format!(
            "cannot reach the VirusTotal API{tries}: {cause}. Retry in a minute; if it persists, \
             check the network path to VIRUSTOTAL_BASE_URL."
        ),
        ApiError::Body(cause) => format!("VirusTotal's answer could not be read: {cause}"),
    }
}

impl ToolError {
    /// The machine-readable code (see the module docs).
    pub fn code(&self) -> String {
        match self {
            Self::InvalidIndicator(_) => "InvalidIndicator".into(),
            Self::NotConfigured => "ApiKeyNotConfigured".into(),
            Self::RateLimited(_) => "RateLimited".into(),
            Self::QuotaStore(_) => "QuotaStoreUnavailable".into(),
            Self::Api { error, .. } => match error {
                ApiError::Status { code, .. } => code.clone(),
                ApiError::Timeout(_) => "Timeout".into(),
                ApiError::Connection(_) => "ConnectionFailed".into(),
                ApiError::Body(_) => "UnexpectedResponse".into(),
            },
            Self::UnexpectedResponse(_) => "UnexpectedResponse".into(),
        }
    }

    /// Seconds to wait before a retry can succeed, when waiting helps.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Self::RateLimited(denial) => Some(denial.retry_after_seconds()),
            Self::Api {
                error: ApiError::Status { status: 429, .. },
                retry_after,
                ..
            } => Some(retry_after.map_or(60, |wait| wait.as_secs().max(1))),
            _ => None,
        }
    }

    /// The tool result: `isError`, the message as text, the code and wait
    /// in `_meta`.
    pub fn into_result(self) -> CallToolResult {
        let mut error = Map::new();
        error.insert("code".into(), Value::String(self.code()));
        if let Some(seconds) = self.retry_after_seconds() {
            error.insert("retry_after_seconds".into(), json!(seconds));
        }
        let mut meta = Map::new();
        meta.insert(META_KEY.into(), Value::Object(error));
        CallToolResult::error(vec![ContentBlock::text(self.to_string())])
            .with_meta(Some(MetaObject(meta)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: &str) -> ApiError {
        ApiError::Status {
            status,
            code: code.into(),
            message: "the message".into(),
            retry_after: None,
        }
    }

    #[test]
    fn rate_limits_say_when_to_retry() {
        let error = ToolError::RateLimited(Denial {
            window: Window::Minute,
            retry_after: Duration::from_millis(36_200),
        });
        assert_eq!(error.retry_after_seconds(), Some(37));
        assert!(
            error.to_string().contains("Retry after 37 seconds"),
            "{error}"
        );
        let result = error.into_result();
        assert_eq!(result.is_error, Some(true));
        let meta = serde_json::to_value(&result.meta).unwrap();
        assert_eq!(meta[META_KEY]["code"], "RateLimited");
        assert_eq!(meta[META_KEY]["retry_after_seconds"], 37);
    }

    #[test]
    fn api_errors_keep_their_code_and_say_what_to_do() {
        let credentials = ToolError::Api {
            error: status(401, "WrongCredentialsError"),
            attempts: 1,
            retry_after: None,
        };
        assert_eq!(credentials.code(), "WrongCredentialsError");
        assert!(credentials.to_string().contains("VIRUSTOTAL_API_KEY"));
        assert_eq!(credentials.retry_after_seconds(), None);

        let quota = ToolError::Api {
            error: status(429, "QuotaExceededError"),
            attempts: 1,
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(quota.retry_after_seconds(), Some(60));
        assert!(
            quota.to_string().contains("retry after 60 seconds"),
            "{quota}"
        );

        let transient = ToolError::Api {
            error: status(503, "TransientError"),
            attempts: 3,
            retry_after: None,
        };
        assert!(
            transient.to_string().contains("after 3 attempts"),
            "{transient}"
        );
        assert_eq!(transient.code(), "TransientError");

        let timeout = ToolError::Api {
            error: ApiError::Timeout(Duration::from_millis(1500)),
            attempts: 3,
            retry_after: None,
        };
        assert_eq!(timeout.code(), "Timeout");
        assert!(timeout.to_string().contains("1500 ms"), "{timeout}");
    }

    #[test]
    fn a_missing_key_is_named() {
        let error = ToolError::NotConfigured;
        assert_eq!(error.code(), "ApiKeyNotConfigured");
        assert!(error.to_string().contains("VIRUSTOTAL_API_KEY"));
    }
}
