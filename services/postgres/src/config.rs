//! The service's own settings, read from the environment (and `.env`) with
//! [`mcp_session::config::load`], validated into [`Settings`].
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DATABASE_URL` | `postgres://user:password@host:5432/db?sslmode=require` | required |
//! | `PG_POOL_SIZE` | connections per pool | 8 |
//! | `PG_CONNECT_TIMEOUT_MS` | time to open one connection | 5000 |
//! | `PG_STATEMENT_TIMEOUT_MS` | longest statement (`statement_timeout`) | 5000 |
//! | `PG_MAX_ROWS` | row cap of `run_readonly_query` | 1000 |
//! | `PG_MAX_RESULT_BYTES` | JSON size cap of `run_readonly_query` | 1048576 |
//! | `PG_QUERY_LIMIT_CAP` | largest `limit` of `query_employees` | 500 |
//! | `PG_SSLMODE` | `disable`, `prefer`, `require`, `verify-ca`, `verify-full` | the URL's `sslmode`, else `prefer` |
//! | `PG_SSLROOTCERT` | PEM file of extra CA certificates (RDS: `global-bundle.pem`) | the URL's `sslrootcert`, else none |
//! | `PG_READONLY_ROLE` | role of `run_readonly_query` | `mcp_readonly` |
//! | `PG_READONLY_PASSWORD` | that role's password: it then logs in itself | unset: `SET ROLE` |
//!
//! Secrets (the password in `DATABASE_URL`, `PG_READONLY_PASSWORD`) never
//! appear in an error message or in [`Settings`]' `Debug` output.

use std::{fmt, path::PathBuf, time::Duration};

use mcp_session::ConfigError;
use serde::Deserialize;

/// `PG_SSLMODE` (or `sslmode` in `DATABASE_URL`), as libpq spells it.
///
/// Whenever TLS is used the server's certificate is verified against the
/// trusted roots and its name checked: `require` and `verify-ca` are as strict
/// as `verify-full` here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP, never TLS.
    Disable,
    /// TLS when the server offers it, else plain TCP.
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS or no connection (libpq's name for a verified chain).
    VerifyCa,
    /// TLS or no connection (libpq's name for a verified chain and host name).
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "disable" => Some(Self::Disable),
            "prefer" | "allow" => Some(Self::Prefer),
            "require" => Some(Self::Require),
            "verify-ca" => Some(Self::VerifyCa),
            "verify-full" => Some(Self::VerifyFull),
            _ => None,
        }
    }

    /// The mode tokio-postgres knows.
    pub fn to_driver(self) -> tokio_postgres::config::SslMode {
        match self {
            Self::Disable => tokio_postgres::config::SslMode::Disable,
            Self::Prefer => tokio_postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

/// The environment as it is, before validation.
///
/// Free-text variables (URL, password, path, role name) are read verbatim
/// from the process environment rather than through figment, which parses
/// values: a password such as `123456`, `true` or `"x"` would otherwise
/// change type or lose its quotes, and a type error would echo the value.
#[derive(Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", default)]
struct RawConfig {
    #[serde(skip)]
    database_url: Option<String>,
    pg_pool_size: Option<usize>,
    pg_connect_timeout_ms: Option<u64>,
    pg_statement_timeout_ms: Option<u64>,
    pg_max_rows: Option<usize>,
    pg_max_result_bytes: Option<usize>,
    pg_query_limit_cap: Option<u32>,
    pg_sslmode: Option<SslMode>,
    #[serde(skip)]
    pg_sslrootcert: Option<String>,
    #[serde(skip)]
    pg_readonly_role: Option<String>,
    #[serde(skip)]
    pg_readonly_password: Option<String>,
}

/// Limits applied to every tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `statement_timeout` of every statement (`PG_STATEMENT_TIMEOUT_MS`).
    pub statement_timeout: Duration,
    /// Most rows `run_readonly_query` returns (`PG_MAX_ROWS`).
    pub max_rows: usize,
    /// Largest JSON result of `run_readonly_query`, in bytes (`PG_MAX_RESULT_BYTES`).
    pub max_result_bytes: usize,
    /// Largest `limit` of `query_employees` (`PG_QUERY_LIMIT_CAP`).
    pub query_limit_cap: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_millis(5000),
            max_rows: 1000,
            max_result_bytes: 1024 * 1024,
            query_limit_cap: 500,
        }
    }
}

/// How `run_readonly_query` becomes the read-only role.
#[derive(Clone, PartialEq, Eq)]
pub enum ReadOnlyLogin {
    /// A pool of its own, logged in as the role with this password: the
    /// session user is the read-only role, so nothing in a statement can
    /// reach more privileges (recommended).
    OwnLogin {
        /// The role's password (`PG_READONLY_PASSWORD`).
        password: String,
    },
    /// `SET LOCAL ROLE` on the main pool's connections; refused when the
    /// `DATABASE_URL` user is a superuser, since a statement can undo it with
    /// `set_config('role', ...)`.
    SetRole,
}

impl fmt::Debug for ReadOnlyLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OwnLogin { .. } => f.write_str("OwnLogin { password: *** }"),
            Self::SetRole => f.write_str("SetRole"),
        }
    }
}

/// Validated settings of the postgres service.
#[derive(Clone)]
pub struct Settings {
    /// Connection settings parsed from `DATABASE_URL`, with the TLS mode applied.
    pub database: tokio_postgres::Config,
    /// TLS mode in force.
    pub ssl_mode: SslMode,
    /// Extra trusted CA certificates (PEM), from `PG_SSLROOTCERT` or `sslrootcert`.
    pub ssl_root_cert: Option<PathBuf>,
    /// Connections per pool.
    pub pool_size: usize,
    /// Longest time to open one connection.
    pub connect_timeout: Duration,
    /// Limits of the tools.
    pub limits: Limits,
    /// The read-only role of `run_readonly_query`.
    pub readonly_role: String,
    /// How that role is reached.
    pub readonly_login: ReadOnlyLogin,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database", &describe_target(&self.database))
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("limits", &self.limits)
            .field("readonly_role", &self.readonly_role)
            .field("readonly_login", &self.readonly_login)
            .finish()
    }
}

/// `user@host:port/dbname` of a connection configuration, without the
/// password: safe for logs and error messages.
pub fn describe_target(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let port = config
                .get_ports()
                .get(index)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            format!("{name}:{port}")
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("?"),
        if hosts.is_empty() {
            "localhost:5432".to_owned()
        } else {
            hosts.join(",")
        },
        config.get_dbname().unwrap_or("?")
    )
}

impl Settings {
    /// Reads and validates the settings from the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut raw = mcp_session::config::load::<RawConfig>()?;
        raw.database_url = mcp_session::config::text("DATABASE_URL")?;
        raw.pg_sslrootcert = mcp_session::config::text("PG_SSLROOTCERT")?;
        raw.pg_readonly_role = mcp_session::config::text("PG_READONLY_ROLE")?;
        raw.pg_readonly_password = mcp_session::config::text("PG_READONLY_PASSWORD")?;
        Self::from_raw(raw)
    }

    /// Settings for `database_url` with every other setting at its default
    /// (tests and embedding).
    ///
    /// # Errors
    /// [`ConfigError`] when the URL does not parse.
    pub fn for_url(database_url: &str) -> Result<Self, ConfigError> {
        Self::from_raw(RawConfig {
            database_url: Some(database_url.to_owned()),
            ..RawConfig::default()
        })
    }

    /// The same settings with the read-only role reached through its own
    /// login with `password`.
    pub fn with_readonly_password(mut self, password: impl Into<String>) -> Self {
        self.readonly_login = ReadOnlyLogin::OwnLogin {
            password: password.into(),
        };
        self
    }

    fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let url = raw
            .database_url
            .filter(|url| !url.trim().is_empty())
            .ok_or_else(|| {
                var_error(
                    "DATABASE_URL",
                    "required, e.g. postgres://user:password@localhost:5432/hr",
                )
            })?;
        let parsed = parse_database_url(url.trim())?;
        let ssl_mode = raw
            .pg_sslmode
            .or(parsed.ssl_mode)
            .unwrap_or(SslMode::Prefer);
        let mut database = parsed.config;
        database.ssl_mode(ssl_mode.to_driver());
        let connect_timeout =
            positive_ms("PG_CONNECT_TIMEOUT_MS", raw.pg_connect_timeout_ms, 5000)?;
        if database.get_connect_timeout().is_none() {
            database.connect_timeout(connect_timeout);
        }
        if database.get_application_name().is_none() {
            database.application_name("mcp-postgres");
        }
        let defaults = Limits::default();
        let limits = Limits {
            statement_timeout: positive_ms(
                "PG_STATEMENT_TIMEOUT_MS",
                raw.pg_statement_timeout_ms,
                5000,
            )?,
            max_rows: at_least("PG_MAX_ROWS", raw.pg_max_rows, defaults.max_rows, 1)?,
            max_result_bytes: at_least(
                "PG_MAX_RESULT_BYTES",
                raw.pg_max_result_bytes,
                defaults.max_result_bytes,
                1024,
            )?,
            query_limit_cap: match raw.pg_query_limit_cap.unwrap_or(defaults.query_limit_cap) {
                0 => return Err(var_error("PG_QUERY_LIMIT_CAP", "must be at least 1")),
                cap => cap,
            },
        };
        let readonly_role = raw
            .pg_readonly_role
            .map(|role| role.trim().to_owned())
            .unwrap_or_else(|| "mcp_readonly".to_owned());
        if readonly_role.is_empty() {
            return Err(var_error("PG_READONLY_ROLE", "must not be empty"));
        }
        let readonly_login = match raw.pg_readonly_password {
            Some(password) if !password.is_empty() => ReadOnlyLogin::OwnLogin { password },
            _ => ReadOnlyLogin::SetRole,
        };
        Ok(Self {
            database,
            ssl_mode,
            ssl_root_cert: raw
                .pg_sslrootcert
                .filter(|path| !path.trim().is_empty())
                .or(parsed.ssl_root_cert)
                .map(PathBuf::from),
            pool_size: at_least("PG_POOL_SIZE", raw.pg_pool_size, 8, 1)?,
            connect_timeout,
            limits,
            readonly_role,
            readonly_login,
        })
    }
}

fn var_error(name: &str, problem: impl fmt::Display) -> ConfigError {
    ConfigError(format!("{name}: {problem}"))
}

fn positive_ms(name: &str, value: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(var_error(name, "must be at least 1 (milliseconds)")),
        ms => Ok(Duration::from_millis(ms)),
    }
}

fn at_least(
    name: &str,
    value: Option<usize>,
    default: usize,
    minimum: usize,
) -> Result<usize, ConfigError> {
    match value.unwrap_or(default) {
        value if value < minimum => Err(var_error(name, format!("must be at least {minimum}"))),
        value => Ok(value),
    }
}

/// `DATABASE_URL`, split into what tokio-postgres parses and the libpq TLS
/// parameters it does not know (`sslmode=verify-full`, `sslrootcert`).
struct ParsedUrl {
    config: tokio_postgres::Config,
    ssl_mode: Option<SslMode>,
    ssl_root_cert: Option<String>,
}

/// Parses a `postgres://` URL or a `key=value` connection string. The libpq
/// TLS parameters are taken out of a URL's query first, so that the URLs our
/// users wrote for psycopg keep working.
fn parse_database_url(url: &str) -> Result<ParsedUrl, ConfigError> {
    let mut ssl_mode = None;
    let mut ssl_root_cert = None;
    let mut kept = url.to_owned();
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if is_url && let Some((base, query)) = url.split_once('?') {
        let mut params = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    let value = percent_decode(value);
                    ssl_mode = Some(SslMode::parse(&value).ok_or_else(|| {
                        var_error(
                            "DATABASE_URL",
                            format!(
                                "sslmode={value} is not one of disable, prefer, require, verify-ca, verify-full"
                            ),
                        )
                    })?);
                }
                "sslrootcert" => ssl_root_cert = Some(percent_decode(value)),
                _ => params.push(pair),
            }
        }
        kept = if params.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", params.join("&"))
        };
    }
    let config = kept
        .parse::<tokio_postgres::Config>()
        .map_err(|error| var_error("DATABASE_URL", error))?;
    Ok(ParsedUrl {
        config,
        ssl_mode,
        ssl_root_cert,
    })
}

/// Decodes `%XX` escapes (and nothing else) of a URL query value.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[index + 1..index + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(url: &str) -> RawConfig {
        RawConfig {
            database_url: Some(url.into()),
            ..RawConfig::default()
        }
    }

    #[test]
    fn defaults() {
        let settings = Settings::for_url("postgres://app:pw@db.example.com:6543/hr").unwrap();
        assert_eq!(settings.limits, Limits::default());
        assert_eq!(settings.pool_size, 8);
        assert_eq!(settings.ssl_mode, SslMode::Prefer);
        assert_eq!(settings.readonly_role, "mcp_readonly");
        assert_eq!(settings.readonly_login, ReadOnlyLogin::SetRole);
        assert_eq!(settings.database.get_dbname(), Some("hr"));
        assert_eq!(settings.database.get_ports(), [6543]);
        assert_eq!(
            settings.database.get_application_name(),
            Some("mcp-postgres")
        );
    }

    #[test]
    fn libpq_tls_parameters_are_understood() {
        let settings = Settings::from_raw(raw(
            "postgresql://app:pw@db.example.com/hr?sslmode=verify-full&sslrootcert=%2Fetc%2Frds%2Fglobal-bundle.pem&application_name=x",
        ))
        .unwrap();
        assert_eq!(settings.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            settings.database.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(
            settings.ssl_root_cert.as_deref(),
            Some(std::path::Path::new("/etc/rds/global-bundle.pem"))
        );
        assert_eq!(settings.database.get_application_name(), Some("x"));

        let settings =
            Settings::from_raw(raw("postgres://app:pw@db.example.com/hr?sslmode=require")).unwrap();
        assert_eq!(settings.ssl_mode, SslMode::Require);
    }

    #[test]
    fn pg_sslmode_wins_over_the_url() {
        let settings = Settings::from_raw(RawConfig {
            pg_sslmode: Some(SslMode::Disable),
            pg_sslrootcert: Some("/ca.pem".into()),
            ..raw("postgres://app@h/hr?sslmode=require&sslrootcert=/other.pem")
        })
        .unwrap();
        assert_eq!(settings.ssl_mode, SslMode::Disable);
        assert_eq!(
            settings.ssl_root_cert.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
    }

    #[test]
    fn errors_name_the_variable_and_hide_secrets() {
        let cases = [
            (RawConfig::default(), "DATABASE_URL"),
            (
                raw("postgres://u:hunter2@h/db?sslmode=bogus"),
                "DATABASE_URL",
            ),
            (raw("postgres://u:hunter2@h/db?nonsense=1"), "DATABASE_URL"),
            (
                RawConfig {
                    pg_max_rows: Some(0),
                    ..raw("postgres://u:hunter2@h/db")
                },
                "PG_MAX_ROWS",
            ),
            (
                RawConfig {
                    pg_statement_timeout_ms: Some(0),
                    ..raw("postgres://u:hunter2@h/db")
                },
                "PG_STATEMENT_TIMEOUT_MS",
            ),
            (
                RawConfig {
                    pg_query_limit_cap: Some(0),
                    ..raw("postgres://u:hunter2@h/db")
                },
                "PG_QUERY_LIMIT_CAP",
            ),
            (
                RawConfig {
                    pg_max_result_bytes: Some(10),
                    ..raw("postgres://u:hunter2@h/db")
                },
                "PG_MAX_RESULT_BYTES",
            ),
        ];
        for (case, name) in cases {
            let message = match Settings::from_raw(case) {
                Ok(_) => panic!("{name} should be rejected"),
                Err(error) => error.to_string(),
            };
            assert!(message.contains(name), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn debug_output_has_no_password() {
        let settings = Settings::for_url("postgres://app:hunter2@db.example.com/hr")
            .unwrap()
            .with_readonly_password("s3cret");
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("app@db.example.com:5432/hr"), "{debug}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%2Fa%20b%zz%"), "/a b%zz%");
    }
}
