//! The answer to an unauthenticated request: `401 Unauthorized` with one
//! `WWW-Authenticate` challenge per accepted scheme (RFC 7235 §4.1), the
//! failing one carrying `error` and `error_description` (RFC 6750 §3), and
//! the Bearer one naming the protected resource metadata (RFC 9728 §5.1, as
//! the MCP authorization spec requires of servers that have it).
//!
//! ```text
//! HTTP/1.1 401 Unauthorized
//! WWW-Authenticate: Bearer realm="calculator", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="token expired"
//! WWW-Authenticate: ApiKey realm="calculator"
//! Content-Type: application/json
//!
//! {"error":"invalid_token","error_description":"token expired"}
//! ```

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header::WWW_AUTHENTICATE},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::error::{AuthError, Scheme};

/// Which schemes a service accepts, for its challenges.
#[derive(Debug, Clone)]
pub struct Challenges {
    /// `realm` of every challenge: the service name.
    pub realm: String,
    /// Whether bearer JWTs are accepted.
    pub bearer: bool,
    /// Whether API keys are accepted.
    pub api_key: bool,
}

/// A `quoted-string` (RFC 9110 §5.6.4) of `value`: quotes and backslashes
/// escaped, control characters dropped.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl Challenges {
    /// The challenge header values for `error`, which concerns `scheme` (the
    /// scheme the request used; `None` when it presented no credentials).
    pub fn headers(
        &self,
        error: &AuthError,
        scheme: Option<Scheme>,
        resource_metadata: Option<&str>,
    ) -> Vec<String> {
        let mut offered = Vec::new();
        if self.bearer {
            offered.push(Scheme::Bearer);
        }
        if self.api_key {
            offered.push(Scheme::ApiKey);
        }
        // The challenge that carries the error: the scheme used, else the first.
        let carrier = scheme
            .filter(|scheme| offered.contains(scheme))
            .or(offered.first().copied());
        offered
            .into_iter()
            .map(|offer| {
                let mut value = match offer {
                    Scheme::Bearer => format!("Bearer realm={}", quoted(&self.realm)),
                    Scheme::ApiKey => format!("ApiKey realm={}", quoted(&self.realm)),
                };
                if offer == Scheme::Bearer
                    && let Some(url) = resource_metadata
                {
                    value.push_str(&format!(", resource_metadata={}", quoted(url)));
                }
                if Some(offer) == carrier {
                    if let Some(code) = error.code() {
                        value.push_str(&format!(", error={}", quoted(code)));
                    }
                    value.push_str(&format!(
                        ", error_description={}",
                        quoted(&error.to_string())
                    ));
                }
                value
            })
            .collect()
    }

    /// The whole response for `error`: `401` with challenges, or `503` with
    /// `Retry-After` when the signing keys are unavailable.
    pub fn response(
        &self,
        error: &AuthError,
        scheme: Option<Scheme>,
        resource_metadata: Option<&str>,
    ) -> Response {
        let body = Json(json!({
            "error": error.code().unwrap_or(match error {
                AuthError::KeysUnavailable => "temporarily_unavailable",
                _ => "unauthorized",
            }),
            "error_description": error.to_string(),
        }));
        if *error == AuthError::KeysUnavailable {
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("5"),
            );
            return response;
        }
        let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
        for value in self.headers(error, scheme, resource_metadata) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TokenProblem;

    fn both() -> Challenges {
        Challenges {
            realm: "calculator".into(),
            bearer: true,
            api_key: true,
        }
    }

    #[test]
    fn the_failing_scheme_carries_the_reason() {
        let headers = both().headers(
            &AuthError::InvalidToken(TokenProblem::Expired),
            Some(Scheme::Bearer),
            Some("https://h/.well-known/oauth-protected-resource/mcp"),
        );
        assert_eq!(
            headers,
            [
                r#"Bearer realm="calculator", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="token expired""#,
                r#"ApiKey realm="calculator""#,
            ]
        );
        let headers = both().headers(&AuthError::UnknownApiKey, Some(Scheme::ApiKey), None);
        assert_eq!(headers[0], r#"Bearer realm="calculator""#);
        assert_eq!(
            headers[1],
            r#"ApiKey realm="calculator", error="invalid_token", error_description="unknown API key""#
        );
    }

    #[test]
    fn missing_credentials_have_no_error_code() {
        let headers = both().headers(&AuthError::Missing, None, None);
        assert_eq!(
            headers[0],
            r#"Bearer realm="calculator", error_description="missing credentials""#
        );
    }

    #[test]
    fn quoted_strings_are_escaped() {
        assert_eq!(quoted("a\"b\\c\nd"), r#""a\"b\\cd""#);
    }
}
