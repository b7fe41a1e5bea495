//! Configuration from environment variables and an optional `.env` file.
//!
//! Every setting has an environment variable whose name our users already know
//! from their Python servers (`MCP_SERVER_HOST`, `MCP_SERVER_PORT`, `REDIS_URL`,
//! `ENVIRONMENT`, ...). A `.env` file in the working directory, if present, is
//! read first; variables already set in the process environment win over it.
//!
//! [`Config::from_env`] reads the settings the library itself needs. Services
//! with settings of their own (a database URL, an API key) declare a struct
//! and read it with [`load`], so one `.env` file and one error style serve
//! every crate.
//!
//! Invalid values stop start-up with one message naming the variable, e.g.
//! `invalid configuration: MCP_SERVER_PORT: invalid digit found in string`.

use std::{fmt, time::Duration};

use mcp_session_auth::AuthConfig;
pub use mcp_session_core::config::{ConfigError, load, text};
use mcp_session_core::config::{redact_url, split_list};
use serde::Deserialize;

use crate::request_state::{RawRequestState, RequestStateConfig};

/// The deployment environment (`ENVIRONMENT`): `development` (default),
/// `staging` or `production`. Production switches the default log format to
/// JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A developer's machine or a test run.
    #[default]
    Development,
    /// A pre-production cluster.
    Staging,
    /// Production.
    Production,
}

/// Log line format (`LOG_FORMAT`): `text` for humans, `json` for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (CloudWatch, Loki, Elasticsearch).
    Json,
}

/// What the environment says, before validation.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", default)]
struct RawConfig {
    mcp_server_host: Option<String>,
    mcp_server_port: Option<u16>,
    environment: Option<Environment>,
    redis_url: Option<String>,
    allowed_hosts: Option<String>,
    allowed_origins: Option<String>,
    session_ttl_seconds: Option<u64>,
    session_cleanup_interval_seconds: Option<u64>,
    log_format: Option<LogFormat>,
    max_request_body_bytes: Option<usize>,
    sse_keepalive_seconds: Option<u64>,
    sse_reconnect_seconds: Option<u64>,
    shutdown_grace_seconds: Option<u64>,
    shutdown_drain_seconds: Option<u64>,
    http_header_read_timeout_seconds: Option<u64>,
    metrics_enabled: Option<bool>,
    replica_id: Option<String>,
    hostname: Option<String>,
    redis_pool_size: Option<usize>,
    redis_command_timeout_ms: Option<u64>,
    session_cache_seconds: Option<u64>,
    session_cache_outage_seconds: Option<u64>,
    session_worker_idle_seconds: Option<u64>,
    event_buffer_bytes: Option<usize>,
    event_retention_seconds: Option<u64>,
    /// A number or text: an empty value (a Kubernetes ConfigMap entry left
    /// blank) means the default, `unlimited` no limit.
    max_sessions_per_user: Option<NumberOrText>,
}

/// A variable figment reads as a number when it looks like one, as text
/// otherwise (an empty value).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(i64),
    Text(String),
}

/// Settings of the library, read by [`Config::from_env`].
///
/// | variable | field | default |
/// |---|---|---|
/// | `MCP_SERVER_HOST` | [`host`](Self::host) | `0.0.0.0` |
/// | `MCP_SERVER_PORT` | [`port`](Self::port) | the service's own (calculator: 9100) |
/// | `ENVIRONMENT` | [`environment`](Self::environment) | `development` |
/// | `REDIS_URL` | [`redis_url`](Self::redis_url) | unset: in-memory session store |
/// | `ALLOWED_HOSTS` | [`allowed_hosts`](Self::allowed_hosts) | `localhost,127.0.0.1,::1` |
/// | `ALLOWED_ORIGINS` | [`allowed_origins`](Self::allowed_origins) | empty: Origin not checked |
/// | `SESSION_TTL_SECONDS` | [`session_ttl`](Self::session_ttl) | 3600 |
/// | `SESSION_CLEANUP_INTERVAL_SECONDS` | [`session_cleanup_interval`](Self::session_cleanup_interval) | 60 |
/// | `LOG_FORMAT` | [`log_format`](Self::log_format) | `json` in production, else `text` |
/// | `MAX_REQUEST_BODY_BYTES` | [`max_request_body_bytes`](Self::max_request_body_bytes) | 4194304 (4 MiB) |
/// | `SSE_KEEPALIVE_SECONDS` | [`sse_keep_alive`](Self::sse_keep_alive) | 15 |
/// | `SSE_RECONNECT_SECONDS` | [`sse_reconnect_grace`](Self::sse_reconnect_grace) | 30 |
/// | `SHUTDOWN_GRACE_SECONDS` | [`shutdown_grace`](Self::shutdown_grace) | 25 |
/// | `SHUTDOWN_DRAIN_SECONDS` | [`shutdown_drain`](Self::shutdown_drain) | 0 |
/// | `HTTP_HEADER_READ_TIMEOUT_SECONDS` | [`header_read_timeout`](Self::header_read_timeout) | 75 |
/// | `METRICS_ENABLED` | [`metrics_enabled`](Self::metrics_enabled) | `true` |
/// | `REPLICA_ID` | [`replica_id`](Self::replica_id) | `HOSTNAME` (the pod name), else random |
/// | `REDIS_POOL_SIZE` | [`redis_pool_size`](Self::redis_pool_size) | 4 |
/// | `REDIS_COMMAND_TIMEOUT_MS` | [`redis_command_timeout`](Self::redis_command_timeout) | 1500 |
/// | `SESSION_CACHE_SECONDS` | [`session_cache`](Self::session_cache) | 5 |
/// | `SESSION_CACHE_OUTAGE_SECONDS` | [`session_cache_outage`](Self::session_cache_outage) | 60 |
/// | `SESSION_WORKER_IDLE_SECONDS` | [`session_worker_idle`](Self::session_worker_idle) | 60 (at most `SESSION_TTL_SECONDS`) |
/// | `MAX_SESSIONS_PER_USER` | [`max_sessions_per_user`](Self::max_sessions_per_user) | 100 (`unlimited`: no limit) |
/// | `EVENT_BUFFER_BYTES` | [`event_buffer_bytes`](Self::event_buffer_bytes) | 67108864 (64 MiB) |
/// | `EVENT_RETENTION_SECONDS` | [`event_retention`](Self::event_retention) | 300 |
/// | `MCP_REQUEST_STATE_KEY`, `MCP_REQUEST_STATE_PREVIOUS_KEYS`, `MCP_REQUEST_STATE_TTL_SECONDS` | [`request_state`](Self::request_state) | no key: random per process without `REDIS_URL`, refused with it |
/// | `JWT_*`, `API_KEYS`, `ADMIN_API_KEYS`, `ALLOW_ANONYMOUS`, `TRUSTED_PROXY_HOPS`, `OAUTH_*` | [`auth`](Self::auth) | open: no credentials, anonymous callers (see [`AuthConfig`]) |
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on: an IP address or a host name.
    pub host: String,
    /// TCP port to listen on; `0` picks a free port (tests).
    pub port: u16,
    /// Deployment environment.
    pub environment: Environment,
    /// Redis URL (`redis://`, `rediss://`); `None` selects the in-memory store.
    /// May carry a password: never logged (see the `Debug` impl).
    pub redis_url: Option<String>,
    /// Accepted `Host` header values (names or `name:port`), checked against
    /// DNS rebinding as MCP 2025-06-18, Transports §Security Warning asks.
    /// Empty (from `ALLOWED_HOSTS=*`) accepts any Host: only behind a proxy
    /// that checks it.
    pub allowed_hosts: Vec<String>,
    /// Accepted browser `Origin` values (`https://app.example.com:443`);
    /// empty means requests are not checked for their Origin.
    pub allowed_origins: Vec<String>,
    /// Idle time after which a session expires (sliding: each request renews it).
    pub session_ttl: Duration,
    /// How often expired sessions are swept from the in-memory store.
    pub session_cleanup_interval: Duration,
    /// Log line format.
    pub log_format: LogFormat,
    /// Largest accepted POST body, in bytes; larger bodies get `413`.
    pub max_request_body_bytes: usize,
    /// Interval of SSE keep-alive comments on open streams (an AWS ALB closes
    /// connections idle for 60 s by default).
    pub sse_keep_alive: Duration,
    /// With Redis: how long an HTTP+SSE session whose stream's client left
    /// stays, for the client to reconnect `GET /sse` with `Last-Event-ID`
    /// (here or on another replica) and find it again; it then ends. Zero:
    /// it ends with its stream.
    pub sse_reconnect_grace: Duration,
    /// Longest time a shutdown waits for in-flight requests before exiting,
    /// counted from the hand-off (after [`shutdown_drain`](Self::shutdown_drain)).
    pub shutdown_grace: Duration,
    /// How long a replica keeps serving as usual after SIGTERM, `/readyz`
    /// failing, before it stops accepting and closes its streams: time for
    /// the load balancer to stop sending it requests. `0` when Kubernetes'
    /// `preStop` sleep already waits before SIGTERM (see docs/operations.md).
    pub shutdown_drain: Duration,
    /// Longest time a connection may take to send a request head, and may
    /// wait idle for its next request; past it the connection is closed
    /// (against slowloris clients). Keep it above the load balancer's idle
    /// timeout (an AWS ALB's is 60 s by default), or kept-alive connections
    /// the ALB reuses get closed under it and it answers `502`.
    pub header_read_timeout: Duration,
    /// Whether `GET /metrics` serves the Prometheus metrics.
    pub metrics_enabled: bool,
    /// This replica's name, in logs and health output.
    pub replica_id: String,
    /// Redis connections per replica (each multiplexes many requests).
    pub redis_pool_size: usize,
    /// Longest wait for one Redis command; past it the request fails with
    /// `503` instead of hanging while Redis is away.
    pub redis_command_timeout: Duration,
    /// With Redis: how long a replica serves a session's record from its own
    /// cache before reading it (and renewing its TTL) in Redis again; at most
    /// a tenth of [`session_ttl`](Self::session_ttl) is used. Zero: every
    /// request reads the record in Redis. See `fleet::cache`.
    pub session_cache: Duration,
    /// With Redis: while Redis cannot be reached, how long past
    /// [`session_cache`](Self::session_cache) a replica goes on serving the
    /// sessions it read before, from their last known records, instead of
    /// failing their requests with `503`. A session deleted elsewhere during
    /// the outage may be served here that long. Zero: no such grace.
    pub session_cache_outage: Duration,
    /// How long a session's in-memory worker (rmcp's, with the service's
    /// handler) stays on a replica after its last message. Past it the
    /// worker is dropped, and the session's next request, on any replica,
    /// restores one from the store: an idle session costs a replica
    /// (almost) nothing, while one in use keeps its worker. At most the
    /// session TTL; `0` is refused. Without Redis the worker also keeps the
    /// answers a client may resume with `Last-Event-ID`, so keep it at or
    /// above 60 s there.
    pub session_worker_idle: Duration,
    /// Live sessions one user may hold over all replicas; creating one more
    /// fails with `429`. `None` (`MAX_SESSIONS_PER_USER=unlimited`): no
    /// limit, so one client can fill Redis.
    pub max_sessions_per_user: Option<usize>,
    /// With Redis: bytes of request response-stream events a replica keeps
    /// in memory for `Last-Event-ID` resumption (an estimate of their heap)
    /// before it moves running streams to Redis and drops finished ones,
    /// oldest first; `0` writes every event to Redis. See `fleet::events`.
    pub event_buffer_bytes: usize,
    /// With Redis: how long a request's response stream stays resumable
    /// after its last event, in a replica's memory (unless the buffer needs
    /// the room) or in Redis.
    pub event_retention: Duration,
    /// How callers authenticate (JWTs, API keys, anonymous access).
    pub auth: AuthConfig,
    /// The keys that seal MRTR `requestState` for every replica (see
    /// [`request_state`](crate::request_state)).
    pub request_state: RequestStateConfig,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("environment", &self.environment)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allowed_origins", &self.allowed_origins)
            .field("session_ttl", &self.session_ttl)
            .field("session_cleanup_interval", &self.session_cleanup_interval)
            .field("log_format", &self.log_format)
            .field("max_request_body_bytes", &self.max_request_body_bytes)
            .field("sse_keep_alive", &self.sse_keep_alive)
            .field("sse_reconnect_grace", &self.sse_reconnect_grace)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("shutdown_drain", &self.shutdown_drain)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("metrics_enabled", &self.metrics_enabled)
            .field("replica_id", &self.replica_id)
            .field("redis_pool_size", &self.redis_pool_size)
            .field("redis_command_timeout", &self.redis_command_timeout)
            .field("session_cache", &self.session_cache)
            .field("session_cache_outage", &self.session_cache_outage)
            .field("session_worker_idle", &self.session_worker_idle)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("event_buffer_bytes", &self.event_buffer_bytes)
            .field("event_retention", &self.event_retention)
            .field("auth", &self.auth)
            .field("request_state", &self.request_state)
            .finish()
    }
}

fn positive(name: &str, value: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(ConfigError::var(name, "must be greater than 0")),
        seconds => Ok(Duration::from_secs(seconds)),
    }
}

impl Config {
    /// The defaults, listening on `default_port`, with no environment read.
    pub fn new(default_port: u16) -> Self {
        Self::from_raw(
            RawConfig::default(),
            AuthConfig::default(),
            RawRequestState::default(),
            default_port,
        )
        .expect("defaults are valid")
    }

    /// Reads the configuration from the environment (and `.env`); a service
    /// passes its own default port, used when `MCP_SERVER_PORT` is unset.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is invalid.
    pub fn from_env(default_port: u16) -> Result<Self, ConfigError> {
        let raw = load::<RawConfig>()?;
        Self::from_raw(
            raw,
            AuthConfig::from_env()?,
            load::<RawRequestState>()?,
            default_port,
        )
    }

    fn from_raw(
        raw: RawConfig,
        auth: AuthConfig,
        request_state: RawRequestState,
        default_port: u16,
    ) -> Result<Self, ConfigError> {
        let environment = raw.environment.unwrap_or_default();
        let allowed_hosts = match raw.allowed_hosts.as_deref().map(str::trim) {
            None => vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            Some("*") => Vec::new(),
            Some(list) => {
                let hosts = split_list(list);
                if hosts.is_empty() {
                    return Err(ConfigError::var(
                        "ALLOWED_HOSTS",
                        "empty; list host names, or `*` to accept any Host",
                    ));
                }
                hosts
            }
        };
        let allowed_origins = raw
            .allowed_origins
            .as_deref()
            .map(split_list)
            .unwrap_or_default();
        for origin in &allowed_origins {
            if origin != "null" && !origin.contains("://") {
                return Err(ConfigError::var(
                    "ALLOWED_ORIGINS",
                    format!("`{origin}` has no scheme (write https://{origin})"),
                ));
            }
        }
        if let Some(url) = &raw.redis_url
            && !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis-cluster://")
                || url.starts_with("rediss-cluster://"))
        {
            return Err(ConfigError::var(
                "REDIS_URL",
                format!("`{}` is not a redis:// or rediss:// URL", redact_url(url)),
            ));
        }
        let max_request_body_bytes = raw.max_request_body_bytes.unwrap_or(4 * 1024 * 1024);
        if max_request_body_bytes < 1024 {
            return Err(ConfigError::var(
                "MAX_REQUEST_BODY_BYTES",
                "must be at least 1024",
            ));
        }
        let replica_id = raw
            .replica_id
            .or(raw.hostname)
            .filter(|id| !id.trim().is_empty())
            .unwrap_or_else(|| {
                format!(
                    "replica-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                )
            });
        Ok(Self {
            host: raw.mcp_server_host.unwrap_or_else(|| "0.0.0.0".into()),
            port: raw.mcp_server_port.unwrap_or(default_port),
            environment,
            redis_url: raw.redis_url.filter(|url| !url.trim().is_empty()),
            allowed_hosts,
            allowed_origins,
            session_ttl: positive("SESSION_TTL_SECONDS", raw.session_ttl_seconds, 3600)?,
            session_cleanup_interval: positive(
                "SESSION_CLEANUP_INTERVAL_SECONDS",
                raw.session_cleanup_interval_seconds,
                60,
            )?,
            log_format: raw.log_format.unwrap_or(match environment {
                Environment::Production => LogFormat::Json,
                _ => LogFormat::Text,
            }),
            max_request_body_bytes,
            sse_keep_alive: positive("SSE_KEEPALIVE_SECONDS", raw.sse_keepalive_seconds, 15)?,
            sse_reconnect_grace: Duration::from_secs(raw.sse_reconnect_seconds.unwrap_or(30)),
            shutdown_grace: positive("SHUTDOWN_GRACE_SECONDS", raw.shutdown_grace_seconds, 25)?,
            shutdown_drain: Duration::from_secs(raw.shutdown_drain_seconds.unwrap_or(0)),
            header_read_timeout: positive(
                "HTTP_HEADER_READ_TIMEOUT_SECONDS",
                raw.http_header_read_timeout_seconds,
                75,
            )?,
            metrics_enabled: raw.metrics_enabled.unwrap_or(true),
            replica_id,
            redis_pool_size: match raw.redis_pool_size.unwrap_or(4) {
                0 => return Err(ConfigError::var("REDIS_POOL_SIZE", "must be at least 1")),
                size => size,
            },
            redis_command_timeout: Duration::from_millis(
                match raw.redis_command_timeout_ms.unwrap_or(1500) {
                    0 => {
                        return Err(ConfigError::var(
                            "REDIS_COMMAND_TIMEOUT_MS",
                            "must be greater than 0",
                        ));
                    }
                    ms => ms,
                },
            ),
            session_cache: Duration::from_secs(raw.session_cache_seconds.unwrap_or(5)),
            session_cache_outage: Duration::from_secs(
                raw.session_cache_outage_seconds.unwrap_or(60),
            ),
            session_worker_idle: positive(
                "SESSION_WORKER_IDLE_SECONDS",
                raw.session_worker_idle_seconds,
                60,
            )?,
            max_sessions_per_user: sessions_limit(raw.max_sessions_per_user)?,
            event_buffer_bytes: raw.event_buffer_bytes.unwrap_or(DEFAULT_EVENT_BUFFER_BYTES),
            event_retention: positive("EVENT_RETENTION_SECONDS", raw.event_retention_seconds, 300)?,
            auth,
            request_state: RequestStateConfig::from_raw(request_state)?,
        })
    }
}

/// `EVENT_BUFFER_BYTES` when unset: 64 MiB.
pub const DEFAULT_EVENT_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// `MAX_SESSIONS_PER_USER` when unset or empty: enough for any real client
/// (an MCP client holds one session per server, a busy agent a few dozen),
/// few enough that one user cannot fill Redis.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 100;

/// `MAX_SESSIONS_PER_USER`: unset or empty is
/// [`DEFAULT_MAX_SESSIONS_PER_USER`], `unlimited` no limit; else a whole
/// number of at least 1.
fn sessions_limit(value: Option<NumberOrText>) -> Result<Option<usize>, ConfigError> {
    let invalid = |problem: String| Err(ConfigError::var("MAX_SESSIONS_PER_USER", problem));
    let number = match value {
        None => return Ok(Some(DEFAULT_MAX_SESSIONS_PER_USER)),
        Some(NumberOrText::Text(text)) if text.trim().is_empty() => {
            return Ok(Some(DEFAULT_MAX_SESSIONS_PER_USER));
        }
        Some(NumberOrText::Text(text)) if text.trim().eq_ignore_ascii_case("unlimited") => {
            return Ok(None);
        }
        Some(NumberOrText::Text(text)) => match text.trim().parse::<i64>() {
            Ok(number) => number,
            Err(_) => return invalid(format!("`{text}` is not a whole number")),
        },
        Some(NumberOrText::Number(number)) => number,
    };
    match usize::try_from(number) {
        Ok(0) | Err(_) => invalid(format!(
            "{number}: must be at least 1 (`unlimited` for no limit)"
        )),
        Ok(limit) => Ok(Some(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_limited_unless_unlimited_is_asked_for() {
        use NumberOrText::{Number, Text};
        assert_eq!(sessions_limit(None).unwrap(), Some(100));
        assert_eq!(sessions_limit(Some(Text(" ".into()))).unwrap(), Some(100));
        assert_eq!(
            sessions_limit(Some(Text(" Unlimited ".into()))).unwrap(),
            None
        );
        assert_eq!(sessions_limit(Some(Number(20))).unwrap(), Some(20));
        assert_eq!(sessions_limit(Some(Text("20".into()))).unwrap(), Some(20));
        for bad in [Number(0), Number(-1), Text("many".into())] {
            let message = sessions_limit(Some(bad)).unwrap_err().to_string();
            assert!(message.contains("MAX_SESSIONS_PER_USER"), "{message}");
        }
    }

    fn raw() -> RawConfig {
        RawConfig::default()
    }

    #[test]
    fn defaults_listen_on_the_service_port() {
        let config = Config::new(9100);
        assert_eq!(config.host, "0.0.0.0");
        assert_eq!(config.port, 9100);
        assert_eq!(config.session_cache, Duration::from_secs(5));
        assert_eq!(config.session_ttl, Duration::from_secs(3600));
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.allowed_hosts, ["localhost", "127.0.0.1", "::1"]);
        assert!(config.redis_url.is_none());
        assert_eq!(config.shutdown_drain, Duration::ZERO);
        assert_eq!(config.shutdown_grace, Duration::from_secs(25));
        assert!(config.metrics_enabled);
        assert_eq!(config.event_buffer_bytes, 64 * 1024 * 1024);
        assert_eq!(config.event_retention, Duration::from_secs(300));
        assert_eq!(config.session_worker_idle, Duration::from_secs(60));
    }

    #[test]
    fn star_accepts_any_host_and_lists_are_trimmed() {
        let config = Config::from_raw(
            RawConfig {
                allowed_hosts: Some("*".into()),
                allowed_origins: Some(" https://a.example.com , null ".into()),
                ..raw()
            },
            AuthConfig::default(),
            RawRequestState::default(),
            1,
        )
        .unwrap();
        assert!(config.allowed_hosts.is_empty());
        assert_eq!(config.allowed_origins, ["https://a.example.com", "null"]);
    }

    #[test]
    fn invalid_values_name_their_variable() {
        let cases = [
            RawConfig {
                session_ttl_seconds: Some(0),
                ..raw()
            },
            RawConfig {
                redis_url: Some("http://user:secret@host".into()),
                ..raw()
            },
            RawConfig {
                allowed_origins: Some("app.example.com".into()),
                ..raw()
            },
            RawConfig {
                allowed_hosts: Some(" , ".into()),
                ..raw()
            },
            RawConfig {
                event_retention_seconds: Some(0),
                ..raw()
            },
            RawConfig {
                session_worker_idle_seconds: Some(0),
                ..raw()
            },
        ];
        let names = [
            "SESSION_TTL_SECONDS",
            "REDIS_URL",
            "ALLOWED_ORIGINS",
            "ALLOWED_HOSTS",
            "EVENT_RETENTION_SECONDS",
            "SESSION_WORKER_IDLE_SECONDS",
        ];
        for (case, name) in cases.into_iter().zip(names) {
            let message =
                Config::from_raw(case, AuthConfig::default(), RawRequestState::default(), 1)
                    .unwrap_err()
                    .to_string();
            assert!(message.contains(name), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
    }

    #[test]
    fn production_logs_json_and_redis_passwords_are_redacted() {
        let config = Config::from_raw(
            RawConfig {
                environment: Some(Environment::Production),
                redis_url: Some("rediss://:hunter2@cache.example.com:6379".into()),
                ..raw()
            },
            AuthConfig::default(),
            RawRequestState::default(),
            1,
        )
        .unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("rediss://***@cache.example.com:6379"),
            "{debug}"
        );
    }
}
