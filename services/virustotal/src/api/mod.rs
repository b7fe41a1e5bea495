//! The HTTP client of the VirusTotal API v3: one request, one attempt.
//!
//! Requests carry the key in the `x-apikey` header (docs.virustotal.com,
//! "Authentication"), marked sensitive so that no HTTP layer logs it. TLS is
//! rustls; connections are pooled by reqwest (on hyper). Retries, the quota
//! and the cache are the caller's ([`crate::lookup`]).

pub mod error;

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

pub use error::ApiError;

use crate::{config::Settings, indicator::Kind};

/// Largest answer body read, in bytes: file reports of large executables
/// run to a few MiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRequest {
    /// `GET /{collection}/{id}`: a file, URL, domain, IP address or analysis.
    Get {
        /// The object's kind.
        kind: Kind,
        /// Its API identifier.
        id: String,
    },
    /// `POST /urls` with the form field `url`: submits a URL for scanning.
    ScanUrl {
        /// The URL to scan.
        url: String,
    },
}

impl ApiRequest {
    /// The endpoint without the identifier (`GET /files/{id}`), for logs:
    /// indicators may be private (a URL with a token in it), so log lines
    /// name only the endpoint.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Get { kind, .. } => match kind {
                Kind::File => "GET /files/{id}",
                Kind::Url => "GET /urls/{id}",
                Kind::Domain => "GET /domains/{domain}",
                Kind::IpAddress => "GET /ip_addresses/{ip}",
                Kind::Analysis => "GET /analyses/{id}",
            },
            Self::ScanUrl { .. } => "POST /urls",
        }
    }
}

/// A client of the API at `VIRUSTOTAL_BASE_URL` with one key.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: url::Url,
    timeout: Duration,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client sending `api_key` with every request, with the timeouts of
    /// `settings`.
    ///
    /// # Errors
    /// The message when the key cannot be a header value or the HTTP client
    /// cannot be built (no TLS roots).
    pub fn new(settings: &Settings, api_key: &str) -> Result<Self, String> {
        let mut key = HeaderValue::from_str(api_key)
            .map_err(|_| "VIRUSTOTAL_API_KEY cannot be sent as an HTTP header".to_owned())?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-apikey", key);
        headers.insert("accept", HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("mcp-virustotal/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(Self {
            http,
            base_url: settings.base_url.clone(),
            timeout: settings.timeout,
        })
    }

    /// The URL of `/{collection}/{id}` (the id percent-encoded as one path
    /// segment).
    fn object_url(&self, collection: &str, id: Option<&str>) -> url::Url {
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(collection);
            if let Some(id) = id {
                segments.push(id);
            }
        }
        url
    }

    /// Sends `request` once and returns the answer's JSON document.
    ///
    /// # Errors
    /// [`ApiError`]: the API's error answer, a timeout, a connection
    /// failure, or a body that is not JSON.
    pub async fn send(&self, request: &ApiRequest) -> Result<Value, ApiError> {
        let builder = match request {
            ApiRequest::Get { kind, id } => {
                self.http.get(self.object_url(kind.collection(), Some(id)))
            }
            ApiRequest::ScanUrl { url } => self
                .http
                .post(self.object_url("urls", None))
                .form(&[("url", url.as_str())]),
        };
        let mut response = builder
            .send()
            .await
            .map_err(|error| self.transport(error))?;
        let status = response.status().as_u16();
        let retry_after = error::parse_retry_after(
            response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.transport(error))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::Body(format!(
                    "the answer is larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&status) {
            return Err(error::from_response(status, &body, retry_after));
        }
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::Body(format!(
                "HTTP {status} with a body that is not JSON: {error}"
            ))
        })
    }

    fn transport(&self, error: reqwest::Error) -> ApiError {
        if error.is_timeout() {
            ApiError::Timeout(self.timeout)
        } else {
            // Without the URL: it holds the indicator, which may be private.
            let error = error.without_url();
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            ApiError::Connection(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_urls_encode_the_id_as_one_segment() {
        let settings = Settings::new(Some("k"), "http://127.0.0.1:9/api/v3").unwrap();
        let client = ApiClient::new(&settings, "k").unwrap();
        assert_eq!(
            client
                .object_url("analyses", Some("NjY0Mj+/RlO=="))
                .as_str(),
            "http://127.0.0.1:9/api/v3/analyses/NjY0Mj+%2FRlO=="
        );
        assert_eq!(
            client
                .object_url("ip_addresses", Some("2001:db8::1"))
                .as_str(),
            "http://127.0.0.1:9/api/v3/ip_addresses/2001:db8::1"
        );
        let root = Settings::new(Some("k"), "http://127.0.0.1:9").unwrap();
        let client = ApiClient::new(&root, "k").unwrap();
        assert_eq!(
            client.object_url("urls", None).as_str(),
            "http://127.0.0.1:9/urls"
        );
    }

    #[test]
    fn a_key_that_is_no_header_value_is_refused_without_echo() {
        let settings = Settings::new(None, "http://127.0.0.1:9/api/v3").unwrap();
        let error = ApiClient::new(&settings, "bad\nkey").unwrap_err();
        assert!(!error.contains("bad"), "{error}");
    }
}
