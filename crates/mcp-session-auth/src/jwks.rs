//! The identity provider's public keys: a JSON Web Key Set (RFC 7517 §5),
//! from a file (`JWT_JWKS_FILE`) or a URL (`JWT_JWKS_URL`: Cognito's
//! `https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json`,
//! Entra's `https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys`,
//! Keycloak's `<realm>/protocol/openid-connect/certs`).
//!
//! A fetched set is used for `JWT_JWKS_CACHE_SECONDS`, then fetched again on
//! the next token. A token naming a key (`kid`) the set lacks (the provider
//! rotated its keys) triggers a reload too, at most once per
//! [`MIN_RELOAD_INTERVAL`], so that forged `kid`s cannot make the service
//! hammer the provider. When a reload fails, the keys already held stay in
//! use; with none at all, tokens get `503` (not `401`: they may be fine).
//!
//! Only public keys for signatures are kept: RSA (`RS*`, `PS*`) and EC
//! (`ES256` on P-256, `ES384` on P-384). Symmetric (`oct`) keys in a set are
//! ignored: HMAC tokens are checked with `JWT_SECRET_KEY` alone, so a public
//! key can never be used as an HMAC secret (the RS256 → HS256 swap attack).

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse},
};
use tokio::sync::{Mutex, RwLock};

use super::error::{AuthError, TokenProblem};
use mcp_session_core::config::ConfigError;

/// Shortest time between two reloads of the set.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// Largest accepted JWKS document.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Longest wait for the provider's JWKS endpoint.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Family {
    Rsa,
    Ec(EllipticCurve),
}

fn family_of(algorithm: Algorithm) -> Option<Family> {
    use Algorithm::*;
    match algorithm {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(Family::Rsa),
        ES256 => Some(Family::Ec(EllipticCurve::P256)),
        ES384 => Some(Family::Ec(EllipticCurve::P384)),
        _ => None,
    }
}

/// One usable public key of the set.
#[derive(Clone)]
struct SigningKey {
    kid: Option<String>,
    /// The key's own `alg`, when it names one: tokens must use exactly it.
    algorithm: Option<Algorithm>,
    family: Family,
    key: DecodingKey,
}

/// Reads the usable signature keys of a JWKS document.
///
/// # Errors
/// A message when the document is not a JSON object with a `keys` array.
/// Keys that cannot be used (encryption keys, symmetric keys, unknown types
/// or algorithms) are skipped, not errors.
fn parse(document: &[u8]) -> Result<Vec<SigningKey>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(document).map_err(|error| format!("not JSON: {error}"))?;
    let keys = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("no `keys` array (RFC 7517 §5)")?;
    Ok(keys
        .iter()
        .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
        .filter(|jwk| {
            !matches!(
                jwk.common.public_key_use,
                Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
            )
        })
        .filter_map(|jwk| {
            let family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Family::Rsa,
                AlgorithmParameters::EllipticCurve(params) => Family::Ec(params.curve.clone()),
                _ => return None,
            };
            // The key's `alg` by its JOSE name (RFC 7518 §3.1); one that is
            // no signature algorithm makes the key unusable.
            let algorithm = match jwk.common.key_algorithm {
                Some(algorithm) => Some(
                    serde_json::to_value(algorithm)
                        .ok()?
                        .as_str()?
                        .parse::<Algorithm>()
                        .ok()?,
                ),
                None => None,
            };
            Some(SigningKey {
                kid: jwk.common.key_id.clone(),
                algorithm,
                family,
                key: DecodingKey::from_jwk(&jwk).ok()?,
            })
        })
        .collect())
}

enum Origin {
    File(PathBuf),
    Url {
        url: String,
        client: reqwest::Client,
    },
}

#[derive(Default)]
struct Held {
    keys: Arc<Vec<SigningKey>>,
    /// When the keys were last loaded successfully.
    loaded_at: Option<Instant>,
    /// When a load was last tried.
    tried_at: Option<Instant>,
}

/// A JWKS, loaded from its file or URL and reloaded as described above.
pub struct Jwks {
    origin: Origin,
    held: RwLock<Held>,
    /// Serializes reloads: concurrent requests wait for one fetch.
    reloading: Mutex<()>,
    max_age: Duration,
}

impl Jwks {
    /// Loads the set in `path` now.
    ///
    /// # Errors
    /// [`ConfigError`] naming `JWT_JWKS_FILE` when the file cannot be read or
    /// holds no usable key.
    pub fn from_file(path: PathBuf) -> Result<Self, ConfigError> {
        let jwks = Self {
            origin: Origin::File(path.clone()),
            held: RwLock::default(),
            reloading: Mutex::new(()),
            max_age: Duration::MAX,
        };
        let keys = read_file(&path)
            .map_err(|error| ConfigError(format!("JWT_JWKS_FILE: {}: {error}", path.display())))?;
        if keys.is_empty() {
            return Err(ConfigError(format!(
                "JWT_JWKS_FILE: {}: no RSA or EC signature key",
                path.display()
            )));
        }
        *jwks.held.try_write().expect("not shared yet") = Held {
            keys: Arc::new(keys),
            loaded_at: Some(Instant::now()),
            tried_at: Some(Instant::now()),
        };
        Ok(jwks)
    }

    /// A set fetched from `url` when first needed, and again after `max_age`.
    ///
    /// # Errors
    /// [`ConfigError`] naming `JWT_JWKS_URL` when no HTTP client can be built.
    pub fn from_url(url: String, max_age: Duration) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("mcp-session/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ConfigError(format!("JWT_JWKS_URL: {error}")))?;
        Ok(Self {
            origin: Origin::Url { url, client },
            held: RwLock::default(),
            reloading: Mutex::new(()),
            max_age,
        })
    }

    /// Loads the set again, unless another load happened less than
    /// [`MIN_RELOAD_INTERVAL`] ago (then the held keys stay).
    pub async fn reload(&self) {
        let _one_at_a_time = self.reloading.lock().await;
        if let Some(tried_at) = self.held.read().await.tried_at
            && tried_at.elapsed() < MIN_RELOAD_INTERVAL
        {
            return;
        }
        let loaded = match &self.origin {
            Origin::File(path) => read_file(path),
            Origin::Url { url, client } => fetch(client, url).await,
        };
        let mut held = self.held.write().await;
        held.tried_at = Some(Instant::now());
        match loaded {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "token signing keys (JWKS) loaded");
                held.keys = Arc::new(keys);
                held.loaded_at = Some(Instant::now());
            }
            Err(error) => {
                tracing::warn!(%error, held = held.keys.len(), "cannot load the token signing keys (JWKS)");
            }
        }
    }

    /// The key to verify a token signed with `algorithm` by key `kid`.
    ///
    /// # Errors
    /// [`TokenProblem::UnknownKey`] when no key matches (after a reload);
    /// [`AuthError::KeysUnavailable`] when no key set could be loaded at all.
    pub async fn key(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        let stale = self
            .held
            .read()
            .await
            .loaded_at
            .is_none_or(|loaded_at| loaded_at.elapsed() >= self.max_age);
        if stale {
            self.reload().await;
        }
        if let Some(key) = self.find(kid, algorithm).await {
            return Ok(key);
        }
        self.reload().await;
        if let Some(key) = self.find(kid, algorithm).await {
            return Ok(key);
        }
        if self.held.read().await.loaded_at.is_none() {
            return Err(AuthError::KeysUnavailable);
        }
        Err(AuthError::InvalidToken(TokenProblem::UnknownKey))
    }

    async fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<DecodingKey> {
        let family = family_of(algorithm)?;
        let keys = self.held.read().await.keys.clone();
        let mut candidates = keys
            .iter()
            .filter(|key| key.family == family && key.algorithm.is_none_or(|own| own == algorithm));
        match kid {
            Some(kid) => candidates
                .find(|key| key.kid.as_deref() == Some(kid))
                .map(|key| key.key.clone()),
            // No `kid`: acceptable only when exactly one key could have signed.
            None => {
                let first = candidates.next()?;
                candidates.next().is_none().then(|| first.key.clone())
            }
        }
    }
}

fn read_file(path: &PathBuf) -> Result<Vec<SigningKey>, String> {
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    parse(&bytes)
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<SigningKey>, String> {
    let response = client
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| format!("GET {url}: {}", error.without_url()))?;
    if response
        .content_length()
        .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
    {
        return Err(format!("GET {url}: larger than {MAX_JWKS_BYTES} bytes"));
    }
    let body = response
        .bytes()
        .await
        .map_err(|error| format!("GET {url}: {}", error.without_url()))?;
    if body.len() > MAX_JWKS_BYTES {
        return Err(format!("GET {url}: larger than {MAX_JWKS_BYTES} bytes"));
    }
    parse(&body).map_err(|error| format!("GET {url}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A P-256 public key (from RFC 7517 Appendix A.1) and an RSA one.
    const SET: &str = r#"{"keys":[
        {"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"sig","kid":"ec1"},
        {"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"rsa1"},
        {"kty":"oct","k":"c2VjcmV0","kid":"sym"},
        {"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","use":"enc","kid":"rsa-enc"},
        {"kty":"future","kid":"unknown"}
    ]}"#;

    #[test]
    fn only_signature_public_keys_are_kept() {
        let keys = parse(SET.as_bytes()).unwrap();
        let kids: Vec<_> = keys.iter().filter_map(|key| key.kid.as_deref()).collect();
        assert_eq!(kids, ["ec1", "rsa1"]);
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").is_err());
    }

    #[tokio::test]
    async fn keys_are_chosen_by_kid_algorithm_and_family() {
        let dir = tempfile_dir();
        let path = dir.join("jwks.json");
        std::fs::write(&path, SET).unwrap();
        let jwks = Jwks::from_file(path).unwrap();
        assert!(jwks.key(Some("rsa1"), Algorithm::RS256).await.is_ok());
        // The key says RS256: a PS256 token cannot use it.
        assert_eq!(
            jwks.key(Some("rsa1"), Algorithm::PS256).await.err(),
            Some(AuthError::InvalidToken(TokenProblem::UnknownKey))
        );
        assert!(jwks.key(Some("ec1"), Algorithm::ES256).await.is_ok());
        assert!(jwks.key(Some("ec1"), Algorithm::ES384).await.is_err());
        assert!(jwks.key(Some("sym"), Algorithm::HS256).await.is_err());
        // Without a kid, the one RSA key.
        assert!(jwks.key(None, Algorithm::RS256).await.is_ok());
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jwks-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
