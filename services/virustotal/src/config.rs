//! The service's own settings, read from the environment (and `.env`) with
//! [`mcp_session::config::load`], validated into [`Settings`].
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `VIRUSTOTAL_API_KEY` | the API key sent as `x-apikey` | unset: every tool says so |
//! | `VIRUSTOTAL_BASE_URL` | the API v3 root | `https://www.virustotal.com/api/v3` |
//! | `VIRUSTOTAL_TIMEOUT_MS` | longest wait for one API request (one attempt) | 30000 |
//! | `VIRUSTOTAL_CONNECT_TIMEOUT_MS` | longest wait to connect to the API | 10000 |
//! | `VIRUSTOTAL_MAX_RETRIES` | retries of a 5xx, timeout or connection failure | 2 |
//! | `VIRUSTOTAL_RETRY_INITIAL_BACKOFF_MS` | first retry delay, doubled per retry (jittered, at most 8 s) | 500 |
//! | `VIRUSTOTAL_RATE_LIMIT_PER_MINUTE` | API requests in any 60 s, for the whole fleet (`0`: no limit) | 4 |
//! | `VIRUSTOTAL_RATE_LIMIT_PER_DAY` | API requests per UTC day, for the whole fleet (`0`: no limit) | 500 |
//! | `VIRUSTOTAL_QUOTA_BACKOFF_SECONDS` | fleet-wide pause after the API answers 429 without `Retry-After` | 60 |
//! | `VIRUSTOTAL_CACHE_TTL_SECONDS` | how long a report is served from the cache (`0`: no cache) | 3600 |
//! | `VIRUSTOTAL_NOT_FOUND_CACHE_TTL_SECONDS` | how long a "not found" answer is cached (`0`: not cached) | 300 |
//!
//! The API key never appears in an error message, in a log line or in
//! [`Settings`]' `Debug` output; logs name it by [`key_id`] only.

use std::{fmt, time::Duration};

use mcp_session::ConfigError;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The public API v3 endpoint.
pub const DEFAULT_BASE_URL: &str = "https://www.virustotal.com/api/v3";

/// The environment as it is, before validation. Free text (the key, the
/// URL) is read verbatim rather than through figment, which would turn a
/// key of digits into a number.
#[derive(Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", default)]
struct RawConfig {
    #[serde(skip)]
    virustotal_api_key: Option<String>,
    #[serde(skip)]
    virustotal_base_url: Option<String>,
    virustotal_timeout_ms: Option<u64>,
    virustotal_connect_timeout_ms: Option<u64>,
    virustotal_max_retries: Option<u32>,
    virustotal_retry_initial_backoff_ms: Option<u64>,
    virustotal_rate_limit_per_minute: Option<u32>,
    virustotal_rate_limit_per_day: Option<u32>,
    virustotal_quota_backoff_seconds: Option<u64>,
    virustotal_cache_ttl_seconds: Option<u64>,
    virustotal_not_found_cache_ttl_seconds: Option<u64>,
}

/// The API key's request budget, shared by every replica.
///
/// VirusTotal's public keys allow 4 requests a minute and 500 a day
/// (docs.virustotal.com, "Public vs Premium API"); premium keys have their
/// own figures. `None` means no limit on that window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests in any 60-second span (a sliding window).
    pub per_minute: Option<u32>,
    /// Requests per UTC day; VirusTotal resets daily quotas at 00:00 UTC.
    pub per_day: Option<u32>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_minute: Some(4),
            per_day: Some(500),
        }
    }
}

/// How long reports stay in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTtl {
    /// A report VirusTotal had; `None`: nothing is cached.
    pub found: Option<Duration>,
    /// A `NotFoundError` answer; `None`: not cached.
    pub not_found: Option<Duration>,
}

impl Default for CacheTtl {
    fn default() -> Self {
        Self {
            found: Some(Duration::from_secs(3600)),
            not_found: Some(Duration::from_secs(300)),
        }
    }
}

/// Retries of failures that may pass: 5xx answers, timeouts, refused or
/// broken connections. 4xx answers are never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` requests).
    pub max_retries: u32,
    /// Delay before the first retry; doubled for each next one, with jitter.
    pub initial_backoff: Duration,
    /// Longest delay between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// Validated settings of the virustotal service.
#[derive(Clone)]
pub struct Settings {
    /// The API key (`VIRUSTOTAL_API_KEY`); `None` when unset or blank.
    pub api_key: Option<String>,
    /// The API v3 root, without a trailing slash.
    pub base_url: url::Url,
    /// Longest wait for one request attempt, connection included.
    pub timeout: Duration,
    /// Longest wait to open a connection.
    pub connect_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// The fleet's request budget.
    pub rate_limits: RateLimits,
    /// Fleet-wide pause after a 429 that names no `Retry-After`.
    pub quota_backoff: Duration,
    /// Cache lifetimes.
    pub cache_ttl: CacheTtl,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("api_key_id", &self.api_key.as_deref().map(key_id))
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("rate_limits", &self.rate_limits)
            .field("quota_backoff", &self.quota_backoff)
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

/// A short, stable name for an API key: the first 12 hex digits of its
/// SHA-256. It names the key in Redis keys and logs; the key itself is never
/// written anywhere.
pub fn key_id(api_key: &str) -> String {
    let digest = Sha256::digest(api_key.as_bytes());
    hex::encode(&digest[..6])
}

impl Settings {
    /// Reads and validates the settings from the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable at fault (never its value when
    /// that is the key).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut raw = mcp_session::config::load::<RawConfig>()?;
        raw.virustotal_api_key = mcp_session::config::text("VIRUSTOTAL_API_KEY")?;
        raw.virustotal_base_url = mcp_session::config::text("VIRUSTOTAL_BASE_URL")?;
        Self::from_raw(raw)
    }

    /// Settings with `api_key` against `base_url` and every other setting at
    /// its default (tests and embedding).
    ///
    /// # Errors
    /// [`ConfigError`] when the URL is not an `http(s)://` URL.
    pub fn new(api_key: Option<&str>, base_url: &str) -> Result<Self, ConfigError> {
        Self::from_raw(RawConfig {
            virustotal_api_key: api_key.map(str::to_owned),
            virustotal_base_url: Some(base_url.to_owned()),
            ..RawConfig::default()
        })
    }

    /// The API key's [`key_id`], if a key is set.
    pub fn key_id(&self) -> Option<String> {
        self.api_key.as_deref().map(key_id)
    }

    fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let api_key = raw
            .virustotal_api_key
            .map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty());
        if let Some(key) = &api_key
            && !key.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return Err(var_error(
                "VIRUSTOTAL_API_KEY",
                "holds characters other than printable ASCII (a pasted quote or space?)",
            ));
        }
        let base_url = parse_base_url(
            raw.virustotal_base_url
                .as_deref()
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .unwrap_or(DEFAULT_BASE_URL),
        )?;
        let defaults = RetryPolicy::default();
        let ttl = |value: Option<u64>, default: Option<Duration>| match value {
            Some(0) => None,
            Some(seconds) => Some(Duration::from_secs(seconds)),
            None => default,
        };
        let cache_defaults = CacheTtl::default();
        let limit_defaults = RateLimits::default();
        let limit = |value: Option<u32>, default: Option<u32>| match value {
            Some(0) => None,
            Some(limit) => Some(limit),
            None => default,
        };
        Ok(Self {
            api_key,
            base_url,
            timeout: positive_ms("VIRUSTOTAL_TIMEOUT_MS", raw.virustotal_timeout_ms, 30_000)?,
            connect_timeout: positive_ms(
                "VIRUSTOTAL_CONNECT_TIMEOUT_MS",
                raw.virustotal_connect_timeout_ms,
                10_000,
            )?,
            retry: RetryPolicy {
                max_retries: match raw.virustotal_max_retries.unwrap_or(defaults.max_retries) {
                    retries if retries > 10 => {
                        return Err(var_error("VIRUSTOTAL_MAX_RETRIES", "must be at most 10"));
                    }
                    retries => retries,
                },
                initial_backoff: positive_ms(
                    "VIRUSTOTAL_RETRY_INITIAL_BACKOFF_MS",
                    raw.virustotal_retry_initial_backoff_ms,
                    defaults.initial_backoff.as_millis() as u64,
                )?,
                max_backoff: defaults.max_backoff,
            },
            rate_limits: RateLimits {
                per_minute: limit(
                    raw.virustotal_rate_limit_per_minute,
                    limit_defaults.per_minute,
                ),
                per_day: limit(raw.virustotal_rate_limit_per_day, limit_defaults.per_day),
            },
            quota_backoff: match raw.virustotal_quota_backoff_seconds.unwrap_or(60) {
                0 => {
                    return Err(var_error(
                        "VIRUSTOTAL_QUOTA_BACKOFF_SECONDS",
                        "must be at least 1 (seconds)",
                    ));
                }
                seconds => Duration::from_secs(seconds),
            },
            cache_ttl: CacheTtl {
                found: ttl(raw.virustotal_cache_ttl_seconds, cache_defaults.found),
                not_found: ttl(
                    raw.virustotal_not_found_cache_ttl_seconds,
                    cache_defaults.not_found,
                ),
            },
        })
    }
}

fn parse_base_url(text: &str) -> Result<url::Url, ConfigError> {
    let name = "VIRUSTOTAL_BASE_URL";
    let mut url = url::Url::parse(text.trim_end_matches('/'))
        .map_err(|error| var_error(name, format!("`{text}` is not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(var_error(
            name,
            format!("`{text}` must be an http:// or https:// URL such as {DEFAULT_BASE_URL}"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(var_error(
            name,
            "must not carry credentials: the key goes in VIRUSTOTAL_API_KEY",
        ));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_public_api() {
        let settings = Settings::new(Some("k"), DEFAULT_BASE_URL).unwrap();
        assert_eq!(settings.rate_limits, RateLimits::default());
        assert_eq!(settings.rate_limits.per_minute, Some(4));
        assert_eq!(settings.rate_limits.per_day, Some(500));
        assert_eq!(settings.cache_ttl, CacheTtl::default());
        assert_eq!(settings.retry, RetryPolicy::default());
        assert_eq!(settings.base_url.as_str(), DEFAULT_BASE_URL);
        assert_eq!(settings.timeout, Duration::from_secs(30));
    }

    #[test]
    fn zero_switches_limits_and_caching_off() {
        let settings = Settings::from_raw(RawConfig {
            virustotal_rate_limit_per_minute: Some(0),
            virustotal_rate_limit_per_day: Some(30_000),
            virustotal_cache_ttl_seconds: Some(0),
            virustotal_not_found_cache_ttl_seconds: Some(0),
            ..RawConfig::default()
        })
        .unwrap();
        assert_eq!(settings.rate_limits.per_minute, None);
        assert_eq!(settings.rate_limits.per_day, Some(30_000));
        assert_eq!(settings.cache_ttl.found, None);
        assert_eq!(settings.cache_ttl.not_found, None);
    }

    #[test]
    fn a_blank_key_is_no_key() {
        let settings = Settings::new(Some("  "), DEFAULT_BASE_URL).unwrap();
        assert_eq!(settings.api_key, None);
        assert_eq!(settings.key_id(), None);
    }

    #[test]
    fn errors_name_the_variable_and_never_the_key() {
        let secret = "s3cr3t-key-with a space";
        let cases = [
            (
                RawConfig {
                    virustotal_api_key: Some(secret.into()),
                    ..RawConfig::default()
                },
                "VIRUSTOTAL_API_KEY",
            ),
            (
                RawConfig {
                    virustotal_base_url: Some("ftp://example.com/api".into()),
                    ..RawConfig::default()
                },
                "VIRUSTOTAL_BASE_URL",
            ),
            (
                RawConfig {
                    virustotal_base_url: Some("https://user:pw@example.com/api".into()),
                    ..RawConfig::default()
                },
                "VIRUSTOTAL_BASE_URL",
            ),
            (
                RawConfig {
                    virustotal_timeout_ms: Some(0),
                    ..RawConfig::default()
                },
                "VIRUSTOTAL_TIMEOUT_MS",
            ),
            (
                RawConfig {
                    virustotal_max_retries: Some(11),
                    ..RawConfig::default()
                },
                "VIRUSTOTAL_MAX_RETRIES",
            ),
            (
                RawConfig {
                    virustotal_quota_backoff_seconds: Some(0),
                    ..RawConfig::default()
                },
                "VIRUSTOTAL_QUOTA_BACKOFF_SECONDS",
            ),
        ];
        for (raw, name) in cases {
            let message = match Settings::from_raw(raw) {
                Ok(_) => panic!("{name} should be rejected"),
                Err(error) => error.to_string(),
            };
            assert!(message.contains(name), "{message}");
            assert!(!message.contains(secret), "{message}");
        }
    }

    #[test]
    fn debug_output_names_the_key_by_its_id_only() {
        let settings = Settings::new(
            Some("0123456789abcdef-secret"),
            "http://127.0.0.1:1/api/v3/",
        )
        .unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("0123456789abcdef-secret"), "{debug}");
        assert!(
            debug.contains(&key_id("0123456789abcdef-secret")),
            "{debug}"
        );
        assert_eq!(settings.base_url.as_str(), "http://127.0.0.1:1/api/v3");
        assert_eq!(key_id("x").len(), 12);
        assert_ne!(key_id("x"), key_id("y"));
    }
}
