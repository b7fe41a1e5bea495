//! The `client_sessions` part of the hub's configuration (the client-session
//! API, `docs/client-sessions.md`), and the upstream a user connects by URL.
//!
//! ```json
//! "client_sessions": {
//!   "ttl_seconds": 1800,
//!   "allowed_urls": ["https://*.mcp.example.com/", "https://tools.example/mcp"],
//!   "allowed_networks": ["10.20.0.0/16"],
//!   "max_per_user": 20,
//!   "max_connections": 16,
//!   "url_timeout_ms": 30000
//! }
//! ```
//!
//! `CLIENT_SESSION_TTL_SECONDS` overrides `ttl_seconds` (the name our users
//! know).

use std::{sync::Arc, time::Duration};

use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::{ConfigError, DEFAULT_TIMEOUT, RESERVED_HEADERS, Sharing, Upstream, UpstreamTransport};
use crate::egress::{EgressPolicy, UrlPattern};

/// How long a client session lives after its last use unless configured:
/// the 30 minutes of the users' in-memory store.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1800);
/// Client sessions one user may have at once unless configured.
pub const DEFAULT_MAX_PER_USER: usize = 20;
/// Servers one client session may connect unless configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// The section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientSessionsFile {
    ttl_seconds: Option<u64>,
    #[serde(default)]
    allowed_urls: Vec<String>,
    #[serde(default)]
    allowed_networks: Vec<String>,
    max_per_user: Option<usize>,
    max_connections: Option<usize>,
    url_timeout_ms: Option<u64>,
}

/// The client-session API's settings, checked.
#[derive(Debug, Clone)]
pub struct ClientSessionSettings {
    /// How long a client session lives after its last use (sliding).
    pub ttl: Duration,
    /// Which URLs users may connect, and which non-public networks those
    /// may be in.
    pub egress: Arc<EgressPolicy>,
    /// Most client sessions of one user at once.
    pub max_per_user: usize,
    /// Most servers connected in one client session.
    pub max_connections: usize,
    /// Most time one request to a user's URL may take.
    pub url_timeout: Duration,
}

impl Default for ClientSessionSettings {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            egress: Arc::default(),
            max_per_user: DEFAULT_MAX_PER_USER,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            url_timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl ClientSessionSettings {
    /// Checks the section; `env` reads `CLIENT_SESSION_TTL_SECONDS`.
    pub(super) fn check(
        file: ClientSessionsFile,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let at = |field: &str| format!("client_sessions.{field}");
        let (ttl_seconds, ttl_entry) = match env("CLIENT_SESSION_TTL_SECONDS") {
            Some(text) => (
                Some(text.trim().parse::<u64>().map_err(|_| {
                    ConfigError::new("CLIENT_SESSION_TTL_SECONDS", "a number of seconds")
                })?),
                "CLIENT_SESSION_TTL_SECONDS".to_owned(),
            ),
            None => (file.ttl_seconds, at("ttl_seconds")),
        };
        let ttl = ttl_seconds.map_or(DEFAULT_TTL, Duration::from_secs);
        if ttl.is_zero() {
            return Err(ConfigError::new(ttl_entry, "must be above 0"));
        }
        let mut allowed_urls = Vec::new();
        for (i, text) in file.allowed_urls.iter().enumerate() {
            allowed_urls.push(
                UrlPattern::parse(text).map_err(|message| {
                    ConfigError::new(at(&format!("allowed_urls[{i}]")), message)
                })?,
            );
        }
        let mut allowed_networks = Vec::new();
        for (i, text) in file.allowed_networks.iter().enumerate() {
            allowed_networks.push(text.parse().map_err(|_| {
                ConfigError::new(
                    at(&format!("allowed_networks[{i}]")),
                    "a network in CIDR notation (10.20.0.0/16, fd00::/8)",
                )
            })?);
        }
        let positive = |value: Option<usize>, default: usize, field: &str| match value {
            Some(0) => Err(ConfigError::new(at(field), "must be above 0")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        Ok(Self {
            ttl,
            egress: Arc::new(EgressPolicy {
                allowed_urls,
                allowed_networks,
            }),
            max_per_user: positive(file.max_per_user, DEFAULT_MAX_PER_USER, "max_per_user")?,
            max_connections: positive(
                file.max_connections,
                DEFAULT_MAX_CONNECTIONS,
                "max_connections",
            )?,
            url_timeout: match file.url_timeout_ms {
                Some(0) => return Err(ConfigError::new(at("url_timeout_ms"), "must be above 0")),
                Some(ms) => Duration::from_millis(ms),
                None => DEFAULT_TIMEOUT,
            },
        })
    }
}

/// Why headers a user gave for a connection are refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("header `{name}`: {message}")]
pub struct HeaderError {
    /// The header's name as given.
    pub name: String,
    /// What is wrong.
    pub message: &'static str,
}

/// The user's `headers` as HTTP headers, values marked sensitive (never
/// logged); the headers the hub sets itself are refused.
///
/// # Errors
/// The first bad header.
pub fn user_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<(HeaderName, HeaderValue)>, HeaderError> {
    let mut checked = Vec::new();
    for (name, value) in headers {
        let error = |message| HeaderError {
            name: name.chars().take(64).collect(),
            message,
        };
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| error("not a header name"))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(error("set by the hub itself"));
        }
        let mut value =
            HeaderValue::from_str(value).map_err(|_| error("not a valid header value"))?;
        value.set_sensitive(true);
        checked.push((header, value));
    }
    Ok(checked)
}

impl Upstream {
    /// The upstream of a URL a user connected (checked by the
    /// [`EgressPolicy`] first): Streamable HTTP with sessions, or without
    /// (`stateless`: MCP 2026-07-28), one session per user and
    /// credential (`sharing: user`), the user's headers sent with every
    /// request, reached through the guarded HTTP client. `name` is its key
    /// in the hub's upstream session store (`url-<hash of the URL>`), not a
    /// configured server's.
    pub fn user_url(
        name: String,
        url: url::Url,
        stateless: bool,
        headers: Vec<(HeaderName, HeaderValue)>,
        timeout: Duration,
    ) -> Self {
        Self {
            name,
            url,
            stdio: None,
            transport: if stateless {
                UpstreamTransport::Stateless
            } else {
                UpstreamTransport::StreamableHttp
            },
            sharing: Sharing::User,
            headers,
            forward_headers: Vec::new(),
            user_headers: std::collections::BTreeMap::new(),
            timeout,
            description: None,
            guarded: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_checked_and_the_env_overrides_the_ttl() {
        let file: ClientSessionsFile = serde_json::from_str(
            r#"{"ttl_seconds": 60, "allowed_urls": ["https://*.example.com/"],
                "allowed_networks": ["10.0.0.0/8"], "max_per_user": 3}"#,
        )
        .unwrap();
        let settings = ClientSessionSettings::check(file.clone(), &|_| None).unwrap();
        assert_eq!(settings.ttl, Duration::from_secs(60));
        assert_eq!(settings.max_per_user, 3);
        assert_eq!(settings.max_connections, DEFAULT_MAX_CONNECTIONS);
        let overridden = ClientSessionSettings::check(file, &|var| {
            (var == "CLIENT_SESSION_TTL_SECONDS").then(|| "900".to_owned())
        })
        .unwrap();
        assert_eq!(overridden.ttl, Duration::from_secs(900));

        for (bad, entry) in [
            (
                r#"{"allowed_urls": ["ftp://x/"]}"#,
                "client_sessions.allowed_urls[0]",
            ),
            (
                r#"{"allowed_networks": ["10/8x"]}"#,
                "client_sessions.allowed_networks[0]",
            ),
            (
                r#"{"max_connections": 0}"#,
                "client_sessions.max_connections",
            ),
        ] {
            let file: ClientSessionsFile = serde_json::from_str(bad).unwrap();
            let error = ClientSessionSettings::check(file, &|_| None).unwrap_err();
            assert_eq!(error.entry, entry, "{bad}");
        }
        assert!(serde_json::from_str::<ClientSessionsFile>(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn user_headers_refuse_the_hubs_own() {
        let ok = user_headers([("Authorization", "Bearer x")]).unwrap();
        assert_eq!(ok[0].0.as_str(), "authorization");
        assert!(ok[0].1.is_sensitive());
        assert!(user_headers([("mcp-session-id", "x")]).is_err());
        assert!(user_headers([("bad name", "x")]).is_err());
        assert!(user_headers([("x-k", "line\nbreak")]).is_err());
    }
}
