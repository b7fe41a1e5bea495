//! The hub's configuration: its upstream MCP servers, their groups, and how
//! each upstream's sessions are shared.
//!
//! Read from the JSON file `HUB_CONFIG` names, then from environment
//! variables `HUB__<path>` that override single values (`__` separates the
//! levels, names are lowercased: `HUB__SERVERS__CALCULATOR__URL=http://…`).
//! A bad entry stops start-up with a message naming it
//! (`servers.calculator.url: …`). docs/hub.md shows a full file.
//!
//! ```json
//! {
//!   "servers": {
//!     "calculator": { "url": "http://calculator/mcp", "sharing": "shared" },
//!     "github":     { "url": "https://api.example/mcp", "sharing": "user",
//!                     "forward_headers": ["authorization"] },
//!     "search":     { "url": "http://search/mcp",
//!                     "headers": { "x-api-key": "${SEARCH_API_KEY}" } }
//!   },
//!   "groups": { "math": ["calculator"] }
//! }
//! ```

pub mod client_sessions;

use std::{collections::BTreeMap, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Json},
};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;

pub use self::client_sessions::ClientSessionSettings;

/// The separator of aggregated names (`<server>__<tool>`) unless
/// `name_separator` says otherwise.
pub const DEFAULT_SEPARATOR: &str = "__";
/// How long an upstream session id is kept in Redis after its last use,
/// unless `session_ttl_seconds` says otherwise (the users' 3600 s).
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(3600);
/// How long one upstream request may take unless the upstream's
/// `timeout_ms` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a list of tools, prompts or resources is served from memory
/// unless `list_ttl_seconds` says otherwise (an upstream's
/// `notifications/*/list_changed` ends it earlier).
pub const DEFAULT_LIST_TTL: Duration = Duration::from_secs(60);

/// A configuration the hub cannot start with: the entry and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("hub configuration: {entry}: {message}")]
pub struct ConfigError {
    /// The entry, as a path: `servers.calculator.url`, `groups.math`, or the
    /// file's name when it cannot be read.
    pub entry: String,
    /// What to fix.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(entry: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            entry: entry.into(),
            message: message.into(),
        }
    }
}

/// How an upstream is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTransport {
    /// Streamable HTTP with `Mcp-Session-Id` sessions (MCP 2025-03-26 ..
    /// 2025-11-25, Transports §Streamable HTTP).
    #[default]
    StreamableHttp,
    /// Streamable HTTP without sessions (MCP 2026-07-28).
    Stateless,
    /// HTTP+SSE (MCP 2024-11-05).
    Sse,
    /// A command the hub runs, speaking over its stdin and stdout.
    Stdio,
}

impl UpstreamTransport {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StreamableHttp => "streamable-http",
            Self::Stateless => "stateless",
            Self::Sse => "sse",
            Self::Stdio => "stdio",
        }
    }
}

/// Who shares one upstream session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    /// One upstream session for every caller: for upstreams that keep no
    /// per-user state and are reached with the hub's own credentials.
    Shared,
    /// One upstream session per user and per set of credential values sent
    /// upstream (the default: users never share one).
    #[default]
    User,
    /// One upstream session per downstream session.
    Session,
}

impl Sharing {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::User => "user",
            Self::Session => "session",
        }
    }
}

/// One upstream as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamEntry {
    url: Option<String>,
    #[serde(default)]
    transport: UpstreamTransport,
    /// A stdio upstream's program, its arguments and its environment
    /// (values as in `headers`).
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    sharing: Sharing,
    /// Header name → value; `${VAR}` in a value is replaced by the
    /// environment variable `VAR` (secrets stay out of the file).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Names of the caller's request headers sent on upstream (the caller's
    /// own credential, e.g. `authorization`).
    #[serde(default)]
    forward_headers: Vec<String>,
    /// Caller (JWT `sub` or API key name) → headers sent for that caller
    /// only (a credential mapped per user); values as in `headers`.
    #[serde(default)]
    user_headers: BTreeMap<String, BTreeMap<String, String>>,
    timeout_ms: Option<u64>,
    description: Option<String>,
}

/// The file's shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubFile {
    #[serde(default)]
    servers: BTreeMap<String, UpstreamEntry>,
    #[serde(default)]
    groups: BTreeMap<String, Vec<String>>,
    name_separator: Option<String>,
    session_ttl_seconds: Option<u64>,
    list_ttl_seconds: Option<u64>,
    #[serde(default)]
    client_sessions: client_sessions::ClientSessionsFile,
}

/// The command of a stdio upstream.
#[derive(Debug, Clone)]
pub struct StdioCommand {
    /// The program: a path, or a name looked up in `PATH`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables set for it (beside the hub's own environment), expanded.
    pub env: Vec<(String, String)>,
}

/// One upstream MCP server, checked.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its name: `[A-Za-z0-9_-]+`, the prefix of its tools' names and the
    /// `<serverName>` of its Redis keys.
    pub name: String,
    /// Its MCP endpoint; for a stdio upstream `stdio:<program>` (shown by
    /// the admin API).
    pub url: url::Url,
    /// The command of a stdio upstream.
    pub stdio: Option<StdioCommand>,
    /// How it is reached.
    pub transport: UpstreamTransport,
    /// Who shares one of its sessions.
    pub sharing: Sharing,
    /// Headers sent with every request (values expanded; secrets).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The caller's headers sent on, lowercase.
    pub forward_headers: Vec<HeaderName>,
    /// Headers sent for one caller only, by the caller's subject (JWT `sub`
    /// or API key name); values expanded, secrets.
    pub user_headers: BTreeMap<String, Vec<(HeaderName, HeaderValue)>>,
    /// Most time one request may take, connection included.
    pub timeout: Duration,
    /// What the operator wrote about it, if anything.
    pub description: Option<String>,
    /// Whether it is a URL a user connected (reached through the
    /// [egress](crate::egress) guard), not one of the configured servers.
    pub guarded: bool,
}

/// The hub's whole configuration, checked.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Upstreams by name, in name order.
    pub servers: BTreeMap<String, Upstream>,
    /// Groups: name → names of their upstreams.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Between a server's name and a tool's or prompt's (`__`).
    pub name_separator: String,
    /// How long an upstream session id lives in Redis after its last use.
    pub session_ttl: Duration,
    /// How long a list of tools, prompts or resources is served from memory.
    pub list_ttl: Duration,
    /// The client-session API's settings.
    pub client_sessions: ClientSessionSettings,
}

/// Headers the hub sets itself, never taken from configuration or from the
/// caller.
pub(crate) const RESERVED_HEADERS: [&str; 9] = [
    "mcp-session-id",
    "mcp-protocol-version",
    "content-type",
    "content-length",
    "accept",
    "host",
    "connection",
    "transfer-encoding",
    "last-event-id",
];

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `text` with every `${VAR}` replaced by `env("VAR")`.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "`${` without a closing `}`".to_owned())?;
        let var = &after[..end];
        let value = env(var).ok_or_else(|| format!("environment variable `{var}` is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl HubConfig {
    /// Reads `HUB_CONFIG` (if set) and the `HUB__*` overrides from the
    /// process environment, and checks them; `several_replicas` is whether
    /// the hub runs as a fleet (`REDIS_URL` set).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad entry.
    pub fn from_env(several_replicas: bool) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Ok(path) = std::env::var("HUB_CONFIG") {
            if !std::path::Path::new(&path).is_file() {
                return Err(ConfigError::new(
                    format!("HUB_CONFIG={path}"),
                    "no such file",
                ));
            }
            figment = figment.merge(Json::file(&path));
        }
        figment = figment.merge(Env::prefixed("HUB__").split("__"));
        let file: HubFile = figment.extract().map_err(|error| {
            let entry = if error.path.is_empty() {
                "file".to_owned()
            } else {
                error.path.join(".")
            };
            ConfigError::new(entry, error.kind.to_string())
        })?;
        Self::check(file, &|var| std::env::var(var).ok(), several_replicas)
    }

    /// Parses `json` (a configuration file's text) and checks it, with
    /// `env` for `${VAR}` expansion.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad entry.
    pub fn from_json(
        json: &str,
        env: &dyn Fn(&str) -> Option<String>,
        several_replicas: bool,
    ) -> Result<Self, ConfigError> {
        let file: HubFile = serde_json::from_str(json)
            .map_err(|error| ConfigError::new("file", error.to_string()))?;
        Self::check(file, env, several_replicas)
    }

    fn check(
        file: HubFile,
        env: &dyn Fn(&str) -> Option<String>,
        several_replicas: bool,
    ) -> Result<Self, ConfigError> {
        let name_separator = file
            .name_separator
            .unwrap_or_else(|| DEFAULT_SEPARATOR.to_owned());
        if name_separator.is_empty() || name_separator.chars().any(char::is_whitespace) {
            return Err(ConfigError::new(
                "name_separator",
                "must be one or more characters, no spaces",
            ));
        }
        let mut servers = BTreeMap::new();
        for (name, entry) in file.servers {
            let upstream = check_upstream(&name, entry, &name_separator, env, several_replicas)?;
            servers.insert(name, upstream);
        }
        for (group, members) in &file.groups {
            let entry = format!("groups.{group}");
            if !valid_name(group) {
                return Err(ConfigError::new(entry, "a group's name is [A-Za-z0-9_-]+"));
            }
            if servers.contains_key(group) {
                return Err(ConfigError::new(
                    entry,
                    "a group cannot have an upstream's name (both would be /mcp/<name>)",
                ));
            }
            if members.is_empty() {
                return Err(ConfigError::new(entry, "a group needs at least one server"));
            }
            if let Some(unknown) = members.iter().find(|m| !servers.contains_key(*m)) {
                return Err(ConfigError::new(
                    entry,
                    format!("no server named `{unknown}` in `servers`"),
                ));
            }
        }
        Ok(Self {
            servers,
            groups: file.groups,
            name_separator,
            session_ttl: file
                .session_ttl_seconds
                .map_or(DEFAULT_SESSION_TTL, Duration::from_secs)
                .max(Duration::from_secs(1)),
            list_ttl: file
                .list_ttl_seconds
                .map_or(DEFAULT_LIST_TTL, Duration::from_secs),
            client_sessions: ClientSessionSettings::check(file.client_sessions, env)?,
        })
    }
}

fn check_upstream(
    name: &str,
    entry: UpstreamEntry,
    separator: &str,
    env: &dyn Fn(&str) -> Option<String>,
    several_replicas: bool,
) -> Result<Upstream, ConfigError> {
    let at = |field: &str| format!("servers.{name}.{field}");
    if !valid_name(name) || name.contains(separator) {
        return Err(ConfigError::new(
            format!("servers.{name}"),
            format!(
                "a server's name is [A-Za-z0-9_-]+, at most 64 characters, without the separator `{separator}`"
            ),
        ));
    }
    match entry.transport {
        UpstreamTransport::StreamableHttp | UpstreamTransport::Stateless => {}
        UpstreamTransport::Sse => {
            if several_replicas && entry.sharing == Sharing::Session {
                return Err(ConfigError::new(
                    at("sharing"),
                    "an HTTP+SSE upstream session is a stream held by one hub replica, so its per-session state cannot follow a downstream session to another replica: use `shared` or `user`, or serve it over Streamable HTTP",
                ));
            }
        }
        UpstreamTransport::Stdio => {
            if several_replicas && entry.sharing != Sharing::Shared {
                return Err(ConfigError::new(
                    at("sharing"),
                    "a stdio upstream runs inside each hub replica, so its per-user or per-session state cannot follow a session to another replica: declare it `\"sharing\": \"shared\"` or serve it over HTTP",
                ));
            }
            let program = entry
                .command
                .clone()
                .filter(|command| !command.trim().is_empty())
                .ok_or_else(|| ConfigError::new(at("command"), "missing: the program to run"))?;
            let mut env_vars = Vec::new();
            for (name, value) in &entry.env {
                let value = expand(value, env)
                    .map_err(|message| ConfigError::new(at(&format!("env.{name}")), message))?;
                env_vars.push((name.clone(), value));
            }
            let url = url::Url::parse(&format!("stdio:{name}"))
                .map_err(|e| ConfigError::new(at("command"), e.to_string()))?;
            return Ok(Upstream {
                name: name.to_owned(),
                url,
                stdio: Some(StdioCommand {
                    program,
                    args: entry.args,
                    env: env_vars,
                }),
                transport: entry.transport,
                sharing: entry.sharing,
                headers: Vec::new(),
                forward_headers: Vec::new(),
                user_headers: BTreeMap::new(),
                timeout: entry
                    .timeout_ms
                    .map_or(DEFAULT_TIMEOUT, Duration::from_millis),
                description: entry.description,
                guarded: false,
            });
        }
    }
    let url = entry
        .url
        .as_deref()
        .ok_or_else(|| ConfigError::new(at("url"), "missing: the upstream's MCP endpoint"))?;
    let url = url::Url::parse(url).map_err(|e| ConfigError::new(at("url"), e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(at("url"), "an http:// or https:// URL"));
    }
    let headers = check_headers(entry.headers, &at("headers"), env)?;
    let mut user_headers = BTreeMap::new();
    for (subject, map) in entry.user_headers {
        let prefix = at(&format!("user_headers.{subject}"));
        user_headers.insert(subject, check_headers(map, &prefix, env)?);
    }
    let mut forward_headers = Vec::new();
    for header in entry.forward_headers {
        let entry = at("forward_headers");
        let name = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| ConfigError::new(&entry, format!("`{header}` is not a header name")))?;
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(ConfigError::new(
                &entry,
                format!("`{header}` is set by the hub itself"),
            ));
        }
        forward_headers.push(name);
    }
    let timeout = entry
        .timeout_ms
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    if timeout.is_zero() {
        return Err(ConfigError::new(at("timeout_ms"), "must be above 0"));
    }
    Ok(Upstream {
        name: name.to_owned(),
        url,
        stdio: None,
        transport: entry.transport,
        sharing: entry.sharing,
        headers,
        forward_headers,
        user_headers,
        timeout,
        description: entry.description,
        guarded: false,
    })
}

/// Checks the headers of `map` (entries named `<prefix>.<header>`), with
/// `${VAR}` expanded by `env`; values marked sensitive (never logged).
fn check_headers(
    map: BTreeMap<String, String>,
    prefix: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    let mut headers = Vec::new();
    for (header, value) in map {
        let entry = format!("{prefix}.{header}");
        let name = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| ConfigError::new(&entry, "not a header name"))?;
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(ConfigError::new(&entry, "set by the hub itself"));
        }
        let value = expand(&value, env).map_err(|message| ConfigError::new(&entry, message))?;
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| ConfigError::new(&entry, "not a valid header value"))?;
        value.set_sensitive(true);
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        (var == "SECRET").then(|| "s3cret".to_owned())
    }

    fn parse(json: &str) -> Result<HubConfig, ConfigError> {
        HubConfig::from_json(json, &env, true)
    }

    #[test]
    fn a_full_file_is_read() {
        let config = parse(
            r#"{"servers": {
                "calc": {"url": "http://calc:9100/mcp", "sharing": "shared", "timeout_ms": 500},
                "gh": {"url": "https://gh.example/mcp", "forward_headers": ["Authorization"],
                       "headers": {"X-Api-Key": "k-${SECRET}"},
                       "user_headers": {"alice": {"X-Token": "alice-${SECRET}"}}}
              },
              "groups": {"math": ["calc"]},
              "session_ttl_seconds": 60}"#,
        )
        .unwrap();
        let calc = &config.servers["calc"];
        assert_eq!(calc.sharing, Sharing::Shared);
        assert_eq!(calc.timeout, Duration::from_millis(500));
        let gh = &config.servers["gh"];
        assert_eq!(gh.sharing, Sharing::User, "users never share by default");
        assert_eq!(gh.headers[0].1, "k-s3cret");
        assert_eq!(gh.forward_headers[0].as_str(), "authorization");
        assert_eq!(gh.user_headers["alice"][0].1, "alice-s3cret");
        assert_eq!(config.groups["math"], ["calc"]);
        assert_eq!(config.session_ttl, Duration::from_secs(60));
        assert_eq!(config.name_separator, "__");
    }

    #[test]
    fn bad_entries_are_named() {
        let cases = [
            (r#"{"servers": {"a": {}}}"#, "servers.a.url"),
            (r#"{"servers": {"a": {"url": "ftp://x"}}}"#, "servers.a.url"),
            (
                r#"{"servers": {"a__b": {"url": "http://x"}}}"#,
                "servers.a__b",
            ),
            (
                r#"{"servers": {"a": {"url": "http://x", "headers": {"k": "${NOPE}"}}}}"#,
                "servers.a.headers.k",
            ),
            (
                r#"{"servers": {"a": {"url": "http://x", "headers": {"Mcp-Session-Id": "1"}}}}"#,
                "servers.a.headers.Mcp-Session-Id",
            ),
            (
                r#"{"servers": {"a": {"url": "http://x", "user_headers": {"bob": {"k": "${NOPE}"}}}}}"#,
                "servers.a.user_headers.bob.k",
            ),
            (
                r#"{"servers": {"a": {"url": "http://x"}}, "groups": {"g": ["b"]}}"#,
                "groups.g",
            ),
            (
                r#"{"servers": {"a": {"url": "http://x"}}, "groups": {"a": ["a"]}}"#,
                "groups.a",
            ),
            (
                r#"{"servers": {"a": {"transport": "stdio", "command": "x"}}}"#,
                "servers.a.sharing",
            ),
            (
                r#"{"servers": {"a": {"transport": "stdio", "sharing": "shared"}}}"#,
                "servers.a.command",
            ),
            (
                r#"{"servers": {"a": {"url": "http://x", "colour": 1}}}"#,
                "file",
            ),
        ];
        for (json, entry) in cases {
            let error = parse(json).expect_err(json);
            assert_eq!(error.entry, entry, "{json}: {error}");
        }
    }

    #[test]
    fn an_sse_upstream_with_per_session_state_is_refused_behind_several_replicas() {
        let json = r#"{"servers": {"a": {"url": "http://x/sse", "transport": "sse", "sharing": "session"}}}"#;
        assert_eq!(parse(json).unwrap_err().entry, "servers.a.sharing");
        assert!(
            HubConfig::from_json(json, &env, false).is_ok(),
            "alone, it can"
        );
        let shared = r#"{"servers": {"a": {"url": "http://x/sse", "transport": "sse", "sharing": "shared"}}}"#;
        assert_eq!(
            parse(shared).unwrap().servers["a"].transport,
            UpstreamTransport::Sse
        );
    }

    #[test]
    fn a_stdio_upstream_with_per_user_state_is_refused_behind_several_replicas() {
        let error =
            parse(r#"{"servers": {"a": {"transport": "stdio", "command": "x"}}}"#).unwrap_err();
        assert!(error.message.contains("inside each hub replica"), "{error}");
    }

    #[test]
    fn secrets_are_expanded_and_marked_sensitive() {
        assert_eq!(expand("a${SECRET}b", &env).unwrap(), "as3cretb");
        assert!(expand("${SECRET", &env).is_err());
        let config =
            parse(r#"{"servers": {"a": {"url": "http://x", "headers": {"k": "${SECRET}"}}}}"#)
                .unwrap();
        assert!(config.servers["a"].headers[0].1.is_sensitive());
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
