//! DNS-rebinding protection for the HTTP+SSE routes (`/sse`, `/messages`),
//! with the same rules and settings that rmcp applies to `/mcp`.
//!
//! A web page on an attacker's domain can make a victim's browser resolve
//! that domain to a server on the victim's network (DNS rebinding) and call
//! it; the request then carries the attacker's `Host`, and the page's
//! `Origin`. "Servers MUST validate the Origin header on all incoming
//! connections to prevent DNS rebinding attacks" (MCP 2024-11-05, Transports
//! §Security Warning; MCP 2025-11-25, Transports §Security Warning). rmcp
//! checks `/mcp`; [`check_host_and_origin`] checks the legacy routes the
//! same way:
//!
//! - `Host` (or the HTTP/2 `:authority`) must be one of `ALLOWED_HOSTS`
//!   (`host` matches any port, `host:port` that port only; empty: any),
//!   else `403`;
//! - when `ALLOWED_ORIGINS` is set, an `Origin` header must be one of them
//!   (`scheme://host[:port]`, `:*` for any port, `null`), else `403`; a
//!   request without `Origin` (not from a browser) passes.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, Uri, header, uri::Authority},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// The allowed hosts and origins (`ALLOWED_HOSTS`, `ALLOWED_ORIGINS`).
#[derive(Debug, Clone)]
pub(crate) struct OriginPolicy {
    hosts: Vec<(String, Option<u16>)>,
    origins: Vec<AllowedOrigin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowedOrigin {
    Null,
    Tuple {
        scheme: String,
        host: String,
        /// `None`: any port (`:*`, or no port written).
        port: Option<u16>,
    },
}

impl OriginPolicy {
    /// The policy of `allowed_hosts` and `allowed_origins`; entries that do
    /// not parse are ignored (the configuration reports them at start-up
    /// through rmcp's own parsing of the same lists).
    pub(crate) fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        Self {
            hosts: allowed_hosts
                .iter()
                .filter_map(|entry| authority(entry.trim()))
                .collect(),
            origins: allowed_origins
                .iter()
                .filter_map(|entry| allowed_origin(entry.trim()))
                .collect(),
        }
    }

    fn host_allowed(&self, host: &(String, Option<u16>)) -> bool {
        self.hosts.is_empty()
            || self.hosts.iter().any(|(allowed, port)| {
                *allowed == host.0 && port.is_none_or(|port| host.1 == Some(port))
            })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if origin.trim().eq_ignore_ascii_case("null") {
            return self.origins.contains(&AllowedOrigin::Null);
        }
        let Some((scheme, host, port)) = origin_tuple(origin.trim()) else {
            return false;
        };
        let port = port.or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        self.origins.iter().any(|allowed| match allowed {
            AllowedOrigin::Null => false,
            AllowedOrigin::Tuple {
                scheme: allowed_scheme,
                host: allowed_host,
                port: allowed_port,
            } => {
                *allowed_scheme == scheme
                    && *allowed_host == host
                    && allowed_port.is_none_or(|allowed| port == Some(allowed))
            }
        })
    }

    /// `Ok` when `headers` and `uri` pass, else the `403` message.
    fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), &'static str> {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .and_then(authority)
            .or_else(|| {
                uri.authority()
                    .map(|authority| (normalize(authority.host()), authority.port_u16()))
            });
        match host {
            Some(host) if self.host_allowed(&host) => {}
            Some(_) => return Err("Forbidden: Host header is not allowed"),
            None if self.hosts.is_empty() => {}
            None => return Err("Forbidden: missing Host header"),
        }
        if self.origins.is_empty() {
            return Ok(());
        }
        match headers.get(header::ORIGIN).map(|value| value.to_str()) {
            None => Ok(()),
            Some(Ok(origin)) if self.origin_allowed(origin) => Ok(()),
            Some(_) => Err("Forbidden: Origin header is not allowed"),
        }
    }
}

fn normalize(host: &str) -> String {
    host.trim_matches(['[', ']']).to_ascii_lowercase()
}

/// `host[:port]` as (lowercase host without brackets, port).
fn authority(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty() {
        return None;
    }
    let authority: Authority = text.parse().ok()?;
    Some((normalize(authority.host()), authority.port_u16()))
}

/// `scheme://host[:port]` as its parts.
fn origin_tuple(text: &str) -> Option<(String, String, Option<u16>)> {
    let uri: Uri = text.parse().ok()?;
    let authority = uri.authority()?;
    Some((
        uri.scheme_str()?.to_ascii_lowercase(),
        normalize(authority.host()),
        authority.port_u16(),
    ))
}

fn allowed_origin(text: &str) -> Option<AllowedOrigin> {
    if text.eq_ignore_ascii_case("null") {
        return Some(AllowedOrigin::Null);
    }
    let (base, any_port) = match text.strip_suffix(":*") {
        Some(base) => (base, true),
        None => (text, false),
    };
    let (scheme, host, port) = origin_tuple(base)?;
    Some(AllowedOrigin::Tuple {
        scheme,
        host,
        port: if any_port { None } else { port },
    })
}

/// Middleware: refuses a request whose `Host` or `Origin` the policy does
/// not allow, with `403` and a message naming the header.
pub(crate) async fn check_host_and_origin(
    State(policy): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    match policy.check(request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(message) => {
            tracing::warn!(
                path = %request.uri().path(),
                "{message} (possible DNS rebinding attempt)"
            );
            (StatusCode::FORBIDDEN, message).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    fn policy(hosts: &[&str], origins: &[&str]) -> OriginPolicy {
        let strings = |list: &[&str]| {
            list.iter()
                .map(|item| (*item).to_owned())
                .collect::<Vec<_>>()
        };
        OriginPolicy::new(&strings(hosts), &strings(origins))
    }

    #[test]
    fn hosts_match_by_name_and_by_port_when_one_is_given() {
        let uri = Uri::from_static("/sse");
        let policy = policy(&["localhost", "mcp.example.com:8443", "[::1]"], &[]);
        for allowed in [
            "localhost",
            "LOCALHOST:9000",
            "mcp.example.com:8443",
            "[::1]:80",
        ] {
            assert_eq!(
                policy.check(&uri, &headers(&[("host", allowed)])),
                Ok(()),
                "{allowed}"
            );
        }
        for refused in [
            "evil.example",
            "mcp.example.com",
            "mcp.example.com:80",
            "localhost.evil",
        ] {
            assert!(
                policy.check(&uri, &headers(&[("host", refused)])).is_err(),
                "{refused}"
            );
        }
        // No Host at all, and none in the URI.
        assert!(policy.check(&uri, &HeaderMap::new()).is_err());
        // An empty list allows any host.
        let open = super::OriginPolicy::new(&[], &[]);
        assert_eq!(
            open.check(&uri, &headers(&[("host", "evil.example")])),
            Ok(())
        );
    }

    #[test]
    fn origins_are_checked_only_when_configured() {
        let uri = Uri::from_static("/messages");
        let open = policy(&[], &[]);
        assert_eq!(
            open.check(
                &uri,
                &headers(&[("host", "x"), ("origin", "https://evil.example")])
            ),
            Ok(())
        );
        let strict = policy(&[], &["https://app.example.com", "http://localhost:*"]);
        for allowed in [
            "https://app.example.com",
            "https://app.example.com:443",
            "http://localhost:5173",
        ] {
            assert_eq!(
                strict.check(&uri, &headers(&[("host", "x"), ("origin", allowed)])),
                Ok(()),
                "{allowed}"
            );
        }
        for refused in [
            "https://evil.example",
            "http://app.example.com",
            "null",
            "not a url",
        ] {
            assert!(
                strict
                    .check(&uri, &headers(&[("host", "x"), ("origin", refused)]))
                    .is_err(),
                "{refused}"
            );
        }
        // Not from a browser: no Origin.
        assert_eq!(strict.check(&uri, &headers(&[("host", "x")])), Ok(()));
    }
}
