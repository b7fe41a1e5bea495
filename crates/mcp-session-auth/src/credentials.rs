//! Reading the credentials a request carries, before checking them.
//!
//! | header | credential |
//! |---|---|
//! | `Authorization: Bearer <token>` | a JWT (RFC 6750 §2.1) |
//! | `Authorization: ApiKey <key>` | an API key |
//! | `X-API-Key: <key>` | an API key |
//!
//! Scheme names are case-insensitive (RFC 7235 §2.1). A request with more
//! than one credential, an empty or unknown scheme, or a header value over
//! [`MAX_CREDENTIAL_BYTES`] is refused as `invalid_request` before any
//! decoding (RFC 6750 §3.1).

use http::{HeaderMap, header::AUTHORIZATION};

use super::error::AuthError;

/// The `X-API-Key` header.
pub const HEADER_API_KEY: &str = "x-api-key";

/// Longest accepted credential header value, in bytes. Real tokens are a few
/// KiB (Entra ID tokens with many groups reach about 8 KiB); anything longer
/// is refused unread.
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// The credential a request presents.
#[derive(PartialEq, Eq)]
pub enum Credential {
    /// No credential at all.
    None,
    /// A bearer token.
    Bearer(String),
    /// An API key.
    ApiKey(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Bearer(_) => "Bearer(***)",
            Self::ApiKey(_) => "ApiKey(***)",
        })
    }
}

fn malformed(reason: &'static str) -> AuthError {
    AuthError::InvalidRequest { reason }
}

/// The one value of header `name`, checked for size and charset.
fn single(headers: &HeaderMap, name: &str) -> Result<Option<String>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(malformed("more than one credential header"));
    }
    if value.len() > MAX_CREDENTIAL_BYTES {
        return Err(malformed("credential header too large"));
    }
    let text = value
        .to_str()
        .map_err(|_| malformed("credential header is not visible ASCII"))?
        .trim();
    if text.is_empty() {
        return Err(malformed("empty credential header"));
    }
    Ok(Some(text.to_owned()))
}

/// Reads the request's credential.
///
/// # Errors
/// [`AuthError::InvalidRequest`] for malformed or conflicting credentials.
pub fn extract(headers: &HeaderMap) -> Result<Credential, AuthError> {
    let authorization = single(headers, AUTHORIZATION.as_str())?;
    let api_key = single(headers, HEADER_API_KEY)?;
    match (authorization, api_key) {
        (None, None) => Ok(Credential::None),
        (Some(_), Some(_)) => Err(malformed("more than one credential header")),
        (None, Some(key)) => Ok(Credential::ApiKey(key)),
        (Some(value), None) => {
            let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((&value, ""));
            let rest = rest.trim();
            let credential = if scheme.eq_ignore_ascii_case("bearer") {
                Credential::Bearer(rest.to_owned())
            } else if scheme.eq_ignore_ascii_case("apikey") {
                Credential::ApiKey(rest.to_owned())
            } else {
                return Err(malformed("unsupported authorization scheme"));
            };
            match &credential {
                Credential::Bearer(token) | Credential::ApiKey(token) if token.is_empty() => {
                    Err(malformed("authorization scheme without credentials"))
                }
                Credential::Bearer(token) | Credential::ApiKey(token)
                    if token.contains([' ', '\t']) =>
                {
                    Err(malformed("credentials contain spaces"))
                }
                _ => Ok(credential),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn schemes_are_read_case_insensitively() {
        assert_eq!(extract(&headers(&[])).unwrap(), Credential::None);
        assert_eq!(
            extract(&headers(&[("authorization", "bearer a.b.c")])).unwrap(),
            Credential::Bearer("a.b.c".into())
        );
        assert_eq!(
            extract(&headers(&[("authorization", "ApiKey k1")])).unwrap(),
            Credential::ApiKey("k1".into())
        );
        assert_eq!(
            extract(&headers(&[("x-api-key", " k2 ")])).unwrap(),
            Credential::ApiKey("k2".into())
        );
    }

    #[test]
    fn malformed_credentials_are_invalid_requests() {
        let big = format!("Bearer {}", "a".repeat(100 * 1024));
        for case in [
            headers(&[("authorization", "")]),
            headers(&[("authorization", "Bearer")]),
            headers(&[("authorization", "Bearer  ")]),
            headers(&[("authorization", "Basic dXNlcjpwYXNz")]),
            headers(&[("authorization", "Bearer a b")]),
            headers(&[("authorization", &big)]),
            headers(&[("authorization", "Bearer x"), ("x-api-key", "k")]),
            headers(&[("authorization", "Bearer x"), ("authorization", "Bearer y")]),
            headers(&[("x-api-key", "")]),
        ] {
            let error = extract(&case).unwrap_err();
            assert_eq!(error.code(), Some("invalid_request"), "{error}");
        }
    }

    #[test]
    fn debug_output_hides_the_credential() {
        let debug = format!("{:?}", Credential::Bearer("secret-token".into()));
        assert!(!debug.contains("secret"), "{debug}");
    }
}
