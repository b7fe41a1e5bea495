//! DNS-rebinding protection for every transport: `/mcp` and the HTTP+SSE
//! routes (`/sse`, `/messages`), with the rules and settings of rmcp's own
//! check.
//!
//! A web page on an attacker's domain can make a victim's browser resolve
//! that domain to a server on the victim's network (DNS rebinding) and call
//! it; the request then carries the attacker's `Host`, and the page's
//! `Origin`. "Servers MUST validate the Origin header on all incoming
//! connections to prevent DNS rebinding attacks" (MCP 2024-11-05, Transports
//! §Security Warning; MCP 2025-11-25, Transports §Security Warning).
//! [`check_host_and_origin`] checks the legacy routes and
//! [`OriginPolicy::refusal`] `/mcp`, before the session store is asked
//! anything; rmcp's own check is switched off, because it parses the allowed
//! list again for every request (3.6k instructions a request,
//! `scripts/callgrind.sh`), where this policy parses it once at start-up and
//! checks a request without allocating:
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

    /// Whether `host` (without brackets, any case) on `port` is allowed.
    fn host_allowed(&self, host: &str, port: Option<u16>) -> bool {
        self.hosts.is_empty()
            || self.hosts.iter().any(|(allowed, allowed_port)| {
                allowed.eq_ignore_ascii_case(host)
                    && allowed_port.is_none_or(|allowed| port == Some(allowed))
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
        let host = match headers.get(header::HOST) {
            Some(value) => value.to_str().ok().and_then(split_authority),
            // HTTP/2 carries the host in `:authority`.
            None => uri.authority().map(|authority| {
                (
                    authority.host().trim_matches(['[', ']']),
                    authority.port_u16(),
                )
            }),
        };
        match host {
            Some((host, port)) if self.host_allowed(host, port) => {}
            Some(_) => return Err("Forbidden: Host header is not allowed"),
            None if self.hosts.is_empty() => {}
            None => return Err("Forbidden: missing or malformed Host header"),
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

    /// The `403` response for a request whose `Host` or `Origin` this
    /// policy refuses (logged as a possible DNS rebinding attempt); `None`
    /// when the request passes.
    pub(crate) fn refusal(&self, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
        let message = self.check(uri, headers).err()?;
        tracing::warn!(
            path = %uri.path(),
            "{message} (possible DNS rebinding attempt)"
        );
        Some((StatusCode::FORBIDDEN, message).into_response())
    }
}

fn normalize(host: &str) -> String {
    host.trim_matches(['[', ']']).to_ascii_lowercase()
}

/// A `Host` value, `host[:port]` or `[ipv6][:port]`, split without
/// allocating: (host without brackets, port). `None` for a value that is no
/// authority (empty, a bad port, an unbracketed IPv6 address, userinfo).
fn split_authority(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match text.strip_prefix('[') {
        Some(bracketed) => {
            let (host, rest) = bracketed.split_once(']')?;
            match rest {
                "" => (host, None),
                _ => (host, Some(rest.strip_prefix(':')?)),
            }
        }
        None => match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    if host.is_empty() || host.contains(['@', '/', '[', ']', ' ']) {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    Some((host, port))
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
    match policy.refusal(request.uri(), request.headers()) {
        None => next.run(request).await,
        Some(refused) => refused,
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
    fn host_values_split_without_allocating() {
        assert_eq!(split_authority("localhost"), Some(("localhost", None)));
        assert_eq!(
            split_authority("Mcp.Example.com:8443"),
            Some(("Mcp.Example.com", Some(8443)))
        );
        assert_eq!(split_authority("[::1]"), Some(("::1", None)));
        assert_eq!(split_authority("[::1]:3000"), Some(("::1", Some(3000))));
        for malformed in [
            "",
            ":80",
            "::1",
            "localhost:",
            "localhost:http",
            "localhost:70000",
            "[::1",
            "[::1]x",
            "user@localhost",
            "local host",
        ] {
            assert_eq!(split_authority(malformed), None, "{malformed:?}");
        }
        // A malformed Host is refused like a foreign one when hosts are listed.
        let policy = policy(&["localhost"], &[]);
        let uri = Uri::from_static("/mcp");
        assert!(
            policy
                .check(&uri, &headers(&[("host", "localhost:http")]))
                .is_err()
        );
        // HTTP/2: the `:authority` of the URI when there is no Host header.
        let absolute = Uri::from_static("http://[::1]:3000/mcp");
        let ipv6 = super::OriginPolicy::new(&["[::1]".to_owned()], &[]);
        assert_eq!(ipv6.check(&absolute, &HeaderMap::new()), Ok(()));
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
