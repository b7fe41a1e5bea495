//! Authentication settings, read from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `JWT_SECRET_KEY` | shared secret of HS256/384/512 tokens, at least 32 bytes (RFC 7518 §3.2) | unset |
//! | `JWT_ALGORITHM` | accepted `alg` values, comma-separated (`HS256`, `RS256`, `ES256`, ...) | `HS256` with a secret, `RS256,ES256` with a JWKS, both with both |
//! | `JWT_JWKS_URL` | HTTPS URL of the identity provider's JWKS (RFC 7517 §5), fetched and cached | unset |
//! | `JWT_JWKS_FILE` | path of a JWKS file | unset |
//! | `JWT_JWKS_CACHE_SECONDS` | how long a fetched JWKS is used before it is fetched again | 600 |
//! | `JWT_ISSUER` | required `iss` (RFC 7519 §4.1.1); also the authorization server advertised in RFC 9728 metadata | unset: not checked |
//! | `JWT_AUDIENCE` | accepted `aud` values, comma-separated (RFC 7519 §4.1.3); a token without `aud` may match by `client_id` (Cognito access tokens) | unset: not checked |
//! | `JWT_LEEWAY_SECONDS` | clock skew allowed on `exp` and `nbf` | 30 |
//! | `JWT_ROLES_CLAIM` | claims holding the caller's roles, comma-separated; `a.b` reaches into objects (`realm_access.roles`) | `roles` |
//! | `JWT_ADMIN_ROLES` | roles that make a JWT caller an admin, comma-separated | unset: no JWT admin |
//! | `API_KEYS` | `name:sha256hex,...`: the hex SHA-256 of each key, never the key | unset |
//! | `ADMIN_API_KEYS` | names (from `API_KEYS`) of admin keys, comma-separated | unset |
//! | `ALLOW_ANONYMOUS` | accept callers without credentials | `true` when no JWT or API key is configured, else `false` |
//! | `TRUSTED_PROXY_HOPS` | proxies in front of the service that append to `X-Forwarded-For` (an ALB: 1) | 0: the TCP peer is the client |
//! | `OAUTH_RESOURCE_URL` | this server's public MCP URL, the `resource` of RFC 9728 metadata | derived from each request's `Host` |
//! | `OAUTH_AUTHORIZATION_SERVERS` | authorization servers to advertise (RFC 9728 §2), comma-separated | `JWT_ISSUER` |
//!
//! Secrets are read straight from the environment (not parsed as numbers or
//! lists), and no error message or `Debug` output ever contains one.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use jsonwebtoken::Algorithm;

use super::api_keys::{ApiKeyEntry, parse_api_keys};
use mcp_session_core::config::ConfigError;

/// A secret that never shows in logs, errors or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the code that needs it (signature checks).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(*** {} bytes)", self.0.len())
    }
}

/// How callers authenticate; a part of `mcp_session::Config`.
///
/// [`AuthConfig::default`] is the open service: no credential mechanism,
/// anonymous callers allowed (what a service without any auth variable gets).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Shared secret of HMAC-signed tokens (`JWT_SECRET_KEY`).
    pub jwt_secret: Option<Secret>,
    /// Accepted JWT algorithms (`JWT_ALGORITHM`); empty when JWTs are off.
    pub jwt_algorithms: Vec<Algorithm>,
    /// JWKS URL (`JWT_JWKS_URL`).
    pub jwks_url: Option<String>,
    /// JWKS file (`JWT_JWKS_FILE`).
    pub jwks_file: Option<PathBuf>,
    /// How long a fetched JWKS is used before being fetched again.
    pub jwks_cache: Duration,
    /// Required issuer (`JWT_ISSUER`).
    pub issuer: Option<String>,
    /// Accepted audiences (`JWT_AUDIENCE`); empty: not checked.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Claims holding roles (`JWT_ROLES_CLAIM`).
    pub roles_claims: Vec<String>,
    /// Roles that make a JWT caller an admin (`JWT_ADMIN_ROLES`).
    pub admin_roles: Vec<String>,
    /// API keys by name, as SHA-256 hashes (`API_KEYS`, `ADMIN_API_KEYS`).
    pub api_keys: Vec<ApiKeyEntry>,
    /// Whether callers without credentials are served (`ALLOW_ANONYMOUS`).
    pub allow_anonymous: bool,
    /// Proxies whose `X-Forwarded-For` entries are trusted (`TRUSTED_PROXY_HOPS`).
    pub trusted_proxy_hops: usize,
    /// Public URL of the MCP endpoint (`OAUTH_RESOURCE_URL`).
    pub resource_url: Option<String>,
    /// Authorization servers advertised in RFC 9728 metadata.
    pub authorization_servers: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_algorithms: Vec::new(),
            jwks_url: None,
            jwks_file: None,
            jwks_cache: Duration::from_secs(600),
            issuer: None,
            audiences: Vec::new(),
            leeway: Duration::from_secs(30),
            roles_claims: vec!["roles".into()],
            admin_roles: Vec::new(),
            api_keys: Vec::new(),
            allow_anonymous: true,
            trusted_proxy_hops: 0,
            resource_url: None,
            authorization_servers: Vec::new(),
        }
    }
}

/// The auth variables as text, before validation.
#[derive(Default, Clone)]
pub(crate) struct RawAuth {
    pub(crate) jwt_secret_key: Option<String>,
    pub(crate) jwt_algorithm: Option<String>,
    pub(crate) jwt_jwks_url: Option<String>,
    pub(crate) jwt_jwks_file: Option<String>,
    pub(crate) jwt_jwks_cache_seconds: Option<String>,
    pub(crate) jwt_issuer: Option<String>,
    pub(crate) jwt_audience: Option<String>,
    pub(crate) jwt_leeway_seconds: Option<String>,
    pub(crate) jwt_roles_claim: Option<String>,
    pub(crate) jwt_admin_roles: Option<String>,
    pub(crate) api_keys: Option<String>,
    pub(crate) admin_api_keys: Option<String>,
    pub(crate) allow_anonymous: Option<String>,
    pub(crate) trusted_proxy_hops: Option<String>,
    pub(crate) oauth_resource_url: Option<String>,
    pub(crate) oauth_authorization_servers: Option<String>,
}

impl RawAuth {
    /// Reads the variables from the process environment (after `.env`),
    /// verbatim: a secret made of digits stays text.
    pub(crate) fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        Self {
            jwt_secret_key: var("JWT_SECRET_KEY"),
            jwt_algorithm: var("JWT_ALGORITHM"),
            jwt_jwks_url: var("JWT_JWKS_URL"),
            jwt_jwks_file: var("JWT_JWKS_FILE"),
            jwt_jwks_cache_seconds: var("JWT_JWKS_CACHE_SECONDS"),
            jwt_issuer: var("JWT_ISSUER"),
            jwt_audience: var("JWT_AUDIENCE"),
            jwt_leeway_seconds: var("JWT_LEEWAY_SECONDS"),
            jwt_roles_claim: var("JWT_ROLES_CLAIM"),
            jwt_admin_roles: var("JWT_ADMIN_ROLES"),
            api_keys: var("API_KEYS"),
            admin_api_keys: var("ADMIN_API_KEYS"),
            allow_anonymous: var("ALLOW_ANONYMOUS"),
            trusted_proxy_hops: var("TRUSTED_PROXY_HOPS"),
            oauth_resource_url: var("OAUTH_RESOURCE_URL"),
            oauth_authorization_servers: var("OAUTH_AUTHORIZATION_SERVERS"),
        }
    }
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn number(name: &str, value: Option<&str>, default: u64) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| ConfigError(format!("{name}: `{text}` is not a whole number"))),
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), any case.
fn boolean(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError(format!(
            "{name}: `{value}` is not true or false"
        ))),
    }
}

/// Whether `url` is `https://`, or `http://` to this machine (tests, sidecars).
fn secure_or_local(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let name = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|name| &name[1..])
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

const HMAC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// Shortest HMAC secret: RFC 7518 §3.2 asks for a key at least as long as
/// the hash (256 bits for HS256).
pub const MIN_SECRET_BYTES: usize = 32;

impl AuthConfig {
    /// Whether any credential mechanism (JWT or API keys) is configured.
    /// Without one the service is open: every caller is anonymous.
    pub fn has_credentials(&self) -> bool {
        self.jwt_enabled() || !self.api_keys.is_empty()
    }

    /// Whether bearer JWTs are accepted.
    pub fn jwt_enabled(&self) -> bool {
        !self.jwt_algorithms.is_empty()
    }

    /// Reads the `JWT_*`, `API_KEYS`, `ADMIN_API_KEYS`, `ALLOW_ANONYMOUS`,
    /// `TRUSTED_PROXY_HOPS` and `OAUTH_*` variables from the process
    /// environment (after `.env`), verbatim: a secret made of digits stays
    /// text.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        mcp_session_core::config::load_dotenv()?;
        Self::from_raw(RawAuth::from_env())
    }

    pub(crate) fn from_raw(raw: RawAuth) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let jwt_secret = raw.jwt_secret_key.map(Secret::new);
        if let Some(secret) = &jwt_secret
            && secret.expose().len() < MIN_SECRET_BYTES
        {
            return Err(ConfigError(format!(
                "JWT_SECRET_KEY: {} bytes is too short to resist guessing; use at least {MIN_SECRET_BYTES} random bytes (RFC 7518 §3.2), e.g. `openssl rand -hex 32`",
                secret.expose().len()
            )));
        }
        if raw.jwt_jwks_url.is_some() && raw.jwt_jwks_file.is_some() {
            return Err(ConfigError(
                "JWT_JWKS_URL, JWT_JWKS_FILE: set one or the other".into(),
            ));
        }
        if let Some(url) = &raw.jwt_jwks_url
            && !secure_or_local(url)
        {
            return Err(ConfigError(format!(
                "JWT_JWKS_URL: `{url}` must be an https:// URL (http:// only to localhost)"
            )));
        }
        let has_jwks = raw.jwt_jwks_url.is_some() || raw.jwt_jwks_file.is_some();
        let jwt_algorithms = match raw.jwt_algorithm.as_deref() {
            Some(names) => {
                let mut algorithms = Vec::new();
                for name in list(Some(names)) {
                    let algorithm = Algorithm::from_str(&name.to_ascii_uppercase())
                        .ok()
                        .filter(|algorithm| *algorithm != Algorithm::EdDSA)
                        .ok_or_else(|| {
                            ConfigError(format!(
                                "JWT_ALGORITHM: `{name}` is not one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384"
                            ))
                        })?;
                    if !algorithms.contains(&algorithm) {
                        algorithms.push(algorithm);
                    }
                }
                algorithms
            }
            None => {
                let mut algorithms = Vec::new();
                if jwt_secret.is_some() {
                    algorithms.push(Algorithm::HS256);
                }
                if has_jwks {
                    algorithms.extend([Algorithm::RS256, Algorithm::ES256]);
                }
                algorithms
            }
        };
        let wants_hmac = jwt_algorithms.iter().any(|alg| HMAC.contains(alg));
        let wants_public = jwt_algorithms.iter().any(|alg| !HMAC.contains(alg));
        if wants_hmac && jwt_secret.is_none() {
            return Err(ConfigError(
                "JWT_ALGORITHM: HS256/HS384/HS512 need JWT_SECRET_KEY".into(),
            ));
        }
        if wants_public && !has_jwks {
            return Err(ConfigError(
                "JWT_ALGORITHM: RS*/PS*/ES* need JWT_JWKS_URL or JWT_JWKS_FILE".into(),
            ));
        }
        if jwt_secret.is_some() && !wants_hmac {
            return Err(ConfigError(
                "JWT_SECRET_KEY: set, but JWT_ALGORITHM accepts no HS256/HS384/HS512".into(),
            ));
        }
        if has_jwks && !wants_public {
            return Err(ConfigError(
                "JWT_ALGORITHM: a JWKS is configured, but no RS*/PS*/ES* algorithm is accepted"
                    .into(),
            ));
        }
        let admin_names = list(raw.admin_api_keys.as_deref());
        let api_keys = parse_api_keys(raw.api_keys.as_deref().unwrap_or_default(), &admin_names)?;
        let jwt_enabled = !jwt_algorithms.is_empty();
        let has_credentials = jwt_enabled || !api_keys.is_empty();
        let allow_anonymous = match raw.allow_anonymous.as_deref() {
            Some(value) => boolean("ALLOW_ANONYMOUS", value)?,
            None => !has_credentials,
        };
        if !allow_anonymous && !has_credentials {
            return Err(ConfigError(
                "ALLOW_ANONYMOUS: false, but no JWT_SECRET_KEY, JWT_JWKS_URL, JWT_JWKS_FILE or API_KEYS is set: nobody could connect".into(),
            ));
        }
        let issuer = raw.jwt_issuer;
        let authorization_servers = match raw.oauth_authorization_servers.as_deref() {
            Some(servers) => list(Some(servers)),
            None => issuer.iter().cloned().collect(),
        };
        if let Some(url) = &raw.oauth_resource_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError(format!(
                "OAUTH_RESOURCE_URL: `{url}` is not an http(s) URL"
            )));
        }
        Ok(Self {
            jwt_secret,
            jwt_algorithms,
            jwks_url: raw.jwt_jwks_url,
            jwks_file: raw.jwt_jwks_file.map(PathBuf::from),
            jwks_cache: Duration::from_secs(
                number(
                    "JWT_JWKS_CACHE_SECONDS",
                    raw.jwt_jwks_cache_seconds.as_deref(),
                    defaults.jwks_cache.as_secs(),
                )?
                .max(1),
            ),
            issuer,
            audiences: list(raw.jwt_audience.as_deref()),
            leeway: Duration::from_secs(number(
                "JWT_LEEWAY_SECONDS",
                raw.jwt_leeway_seconds.as_deref(),
                defaults.leeway.as_secs(),
            )?),
            roles_claims: match raw.jwt_roles_claim.as_deref() {
                Some(claims) => list(Some(claims)),
                None => defaults.roles_claims,
            },
            admin_roles: list(raw.jwt_admin_roles.as_deref()),
            api_keys,
            allow_anonymous,
            trusted_proxy_hops: number("TRUSTED_PROXY_HOPS", raw.trusted_proxy_hops.as_deref(), 0)?
                .min(16) as usize,
            resource_url: raw.oauth_resource_url,
            authorization_servers,
        })
    }

    /// Accepts HMAC-signed tokens (HS256) with `secret`, as if
    /// `JWT_SECRET_KEY` were set (for tests and embedding).
    ///
    /// # Errors
    /// [`ConfigError`] when `secret` is shorter than [`MIN_SECRET_BYTES`].
    pub fn with_jwt_secret(mut self, secret: &str) -> Result<Self, ConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError(format!(
                "JWT_SECRET_KEY: shorter than {MIN_SECRET_BYTES} bytes"
            )));
        }
        self.jwt_secret = Some(Secret::new(secret));
        if !self.jwt_algorithms.contains(&Algorithm::HS256) {
            self.jwt_algorithms.push(Algorithm::HS256);
        }
        self.allow_anonymous = false;
        Ok(self)
    }

    /// Accepts the API key whose SHA-256 hex is `sha256_hex` under `name`
    /// (an admin key when `admin`), as if listed in `API_KEYS`.
    ///
    /// # Errors
    /// [`ConfigError`] when the name or hash is malformed.
    pub fn with_api_key(
        mut self,
        name: &str,
        sha256_hex: &str,
        admin: bool,
    ) -> Result<Self, ConfigError> {
        let admins = if admin {
            vec![name.to_owned()]
        } else {
            Vec::new()
        };
        self.api_keys
            .extend(parse_api_keys(&format!("{name}:{sha256_hex}"), &admins)?);
        self.allow_anonymous = false;
        Ok(self)
    }

    /// Serves callers without credentials or not.
    pub fn with_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn raw() -> RawAuth {
        RawAuth::default()
    }

    #[test]
    fn nothing_configured_is_open() {
        let config = AuthConfig::from_raw(raw()).unwrap();
        assert!(!config.has_credentials());
        assert!(config.allow_anonymous);
    }

    #[test]
    fn a_credential_mechanism_turns_anonymous_off_unless_asked() {
        let config = AuthConfig::from_raw(RawAuth {
            jwt_secret_key: Some(SECRET.into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(config.jwt_algorithms, [Algorithm::HS256]);
        assert!(!config.allow_anonymous);
        let config = AuthConfig::from_raw(RawAuth {
            jwt_secret_key: Some(SECRET.into()),
            allow_anonymous: Some("TRUE".into()),
            ..raw()
        })
        .unwrap();
        assert!(config.allow_anonymous);
    }

    #[test]
    fn a_jwks_defaults_to_rs256_and_es256() {
        let config = AuthConfig::from_raw(RawAuth {
            jwt_jwks_url: Some("https://idp.example.com/.well-known/jwks.json".into()),
            jwt_issuer: Some("https://idp.example.com".into()),
            ..raw()
        })
        .unwrap();
        assert_eq!(config.jwt_algorithms, [Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(config.authorization_servers, ["https://idp.example.com"]);
    }

    #[test]
    fn errors_name_the_variable_and_never_the_secret() {
        let short = "hunter2hunter2";
        let cases = [
            (
                RawAuth {
                    jwt_secret_key: Some(short.into()),
                    ..raw()
                },
                "JWT_SECRET_KEY",
            ),
            (
                RawAuth {
                    jwt_algorithm: Some("none".into()),
                    jwt_secret_key: Some(SECRET.into()),
                    ..raw()
                },
                "JWT_ALGORITHM",
            ),
            (
                RawAuth {
                    jwt_algorithm: Some("RS256".into()),
                    ..raw()
                },
                "JWT_ALGORITHM",
            ),
            (
                RawAuth {
                    jwt_algorithm: Some("RS256".into()),
                    jwt_jwks_url: Some("https://idp/jwks".into()),
                    jwt_secret_key: Some(SECRET.into()),
                    ..raw()
                },
                "JWT_SECRET_KEY",
            ),
            (
                RawAuth {
                    jwt_jwks_url: Some("http://idp.example.com/jwks".into()),
                    ..raw()
                },
                "JWT_JWKS_URL",
            ),
            (
                RawAuth {
                    allow_anonymous: Some("false".into()),
                    ..raw()
                },
                "ALLOW_ANONYMOUS",
            ),
            (
                RawAuth {
                    allow_anonymous: Some("maybe".into()),
                    ..raw()
                },
                "ALLOW_ANONYMOUS",
            ),
            (
                RawAuth {
                    trusted_proxy_hops: Some("-1".into()),
                    ..raw()
                },
                "TRUSTED_PROXY_HOPS",
            ),
        ];
        for (case, name) in cases {
            let message = AuthConfig::from_raw(case).unwrap_err().to_string();
            assert!(message.contains(name), "{message}");
            assert!(!message.contains(short), "{message}");
        }
    }

    #[test]
    fn local_http_jwks_urls_are_allowed() {
        for url in [
            "http://127.0.0.1:8080/jwks.json",
            "http://localhost/jwks",
            "http://[::1]:9/x",
        ] {
            assert!(secure_or_local(url), "{url}");
        }
        for url in [
            "http://example.com/jwks",
            "ftp://x",
            "http://127.0.0.1.evil.com/",
        ] {
            assert!(!secure_or_local(url), "{url}");
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let config = AuthConfig::default().with_jwt_secret(SECRET).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains(SECRET), "{debug}");
    }
}
