//! Bearer JWTs (RFC 7519, sent as RFC 6750 §2.1 bearer tokens).
//!
//! A token is accepted when, in this order:
//! 1. it is three base64url segments whose header names an `alg` listed in
//!    `JWT_ALGORITHM` (`none` is always refused, RFC 7519 §6) and no `crit`
//!    extension (none is understood here, RFC 7515 §4.1.11);
//! 2. its signature verifies: HS256/384/512 with `JWT_SECRET_KEY`, RS*/PS*/ES*
//!    with the JWKS key its `kid` names ([`Jwks`]); the key is chosen by the
//!    algorithm family, so one kind of key never verifies the other kind;
//! 3. `exp` is in the future and `nbf` (if any) in the past, give or take
//!    `JWT_LEEWAY_SECONDS` (RFC 7519 §4.1.4, §4.1.5); `exp` and `sub` are
//!    required; `iat` (if any) is not in the future (§4.1.6);
//! 4. `iss`, if any, is one string, and is present and equals `JWT_ISSUER`
//!    when that is set (RFC 7519 §4.1.1), and `aud` holds
//!    one of `JWT_AUDIENCE` when set (§4.1.3); a token without `aud` may
//!    match by its `client_id` claim instead (Cognito access tokens carry no
//!    `aud`).
//!
//! The principal is `(issuer, sub)`; admin rights come from a role listed in
//! `JWT_ADMIN_ROLES` found in one of the `JWT_ROLES_CLAIM` claims.

use std::collections::HashSet;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};

use super::{
    config::AuthConfig,
    error::{AuthError, TokenProblem},
    jwks::Jwks,
};
use mcp_session_core::config::ConfigError;

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `iss`, or empty when the token has none.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// Whether one of the token's roles is an admin role.
    pub is_admin: bool,
}

/// Checks bearer tokens as configured (see the module docs).
pub struct JwtVerifier {
    algorithms: Vec<Algorithm>,
    secret: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audiences: Vec<String>,
    leeway_seconds: u64,
    roles_claims: Vec<String>,
    admin_roles: HashSet<String>,
}

fn is_hmac(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

fn invalid(problem: TokenProblem) -> AuthError {
    AuthError::InvalidToken(problem)
}

/// The value at `path`: a claim named `path` itself (`cognito:groups`,
/// `https://example.com/roles`), else `a.b.c` through nested objects.
fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

/// Roles in a claim: an array of strings, or one string of roles separated
/// by spaces or commas (`scope`).
fn roles(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => text
            .split([' ', ','])
            .filter(|role| !role.is_empty())
            .collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

impl JwtVerifier {
    /// A verifier for `config`, or `None` when JWTs are not configured.
    ///
    /// # Errors
    /// [`ConfigError`] when the JWKS file cannot be read or the JWKS client
    /// cannot be built.
    pub fn from_config(config: &AuthConfig) -> Result<Option<Self>, ConfigError> {
        if !config.jwt_enabled() {
            return Ok(None);
        }
        let jwks = match (&config.jwks_file, &config.jwks_url) {
            (Some(path), _) => Some(Jwks::from_file(path.clone())?),
            (None, Some(url)) => Some(Jwks::from_url(url.clone(), config.jwks_cache)?),
            (None, None) => None,
        };
        Ok(Some(Self {
            algorithms: config.jwt_algorithms.clone(),
            secret: config
                .jwt_secret
                .as_ref()
                .map(|secret| DecodingKey::from_secret(secret.expose().as_bytes())),
            jwks,
            issuer: config.issuer.clone(),
            audiences: config.audiences.clone(),
            leeway_seconds: config.leeway.as_secs(),
            roles_claims: config.roles_claims.clone(),
            admin_roles: config.admin_roles.iter().cloned().collect(),
        }))
    }

    /// The JWKS, when tokens are checked against one.
    pub fn jwks(&self) -> Option<&Jwks> {
        self.jwks.as_ref()
    }

    /// The token's `alg` and `kid`, read from its header without trusting it.
    fn header(&self, token: &str) -> Result<(Algorithm, Option<String>), AuthError> {
        let mut segments = token.split('.');
        let (Some(header), Some(_), Some(_), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(invalid(TokenProblem::Malformed));
        };
        let header: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(invalid(TokenProblem::Malformed))?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(invalid(TokenProblem::Malformed))?;
        if alg.eq_ignore_ascii_case("none") {
            return Err(invalid(TokenProblem::Unsigned));
        }
        let algorithm: Algorithm = alg
            .parse()
            .map_err(|_| invalid(TokenProblem::AlgorithmNotAccepted))?;
        if !self.algorithms.contains(&algorithm) {
            return Err(invalid(TokenProblem::AlgorithmNotAccepted));
        }
        // RFC 7515 §4.1.11: a recipient that does not understand an
        // extension listed in `crit` must reject the token; this service
        // understands none (a malformed `crit` is refused the same way).
        if header.contains_key("crit") {
            return Err(invalid(TokenProblem::UnknownCritical));
        }
        let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
        Ok((algorithm, kid))
    }

    /// Verifies `token` (see the module docs for the checks and their order).
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] naming the first check that failed;
    /// [`AuthError::KeysUnavailable`] when the JWKS cannot be loaded.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let (algorithm, kid) = self.header(token)?;
        let key = if is_hmac(algorithm) {
            self.secret
                .clone()
                .ok_or(invalid(TokenProblem::AlgorithmNotAccepted))?
        } else {
            let jwks = self
                .jwks
                .as_ref()
                .ok_or(invalid(TokenProblem::AlgorithmNotAccepted))?;
            jwks.key(kid.as_deref(), algorithm).await?
        };
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = self.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims = ["exp", "sub"].into_iter().map(String::from).collect();
        if let Some(issuer) = &self.issuer {
            // jsonwebtoken compares `iss` only when the token has one: a
            // configured issuer must also make the claim required.
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|error| {
                invalid(match error.kind() {
                    ErrorKind::ExpiredSignature => TokenProblem::Expired,
                    ErrorKind::ImmatureSignature => TokenProblem::NotYetValid,
                    ErrorKind::InvalidIssuer => TokenProblem::WrongIssuer,
                    ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => {
                        TokenProblem::WrongIssuer
                    }
                    ErrorKind::InvalidAudience => TokenProblem::WrongAudience,
                    ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
                        TokenProblem::MissingClaim
                    }
                    ErrorKind::InvalidAlgorithm
                    | ErrorKind::MissingAlgorithm
                    | ErrorKind::InvalidAlgorithmName
                    | ErrorKind::UnsupportedAlgorithm => TokenProblem::AlgorithmNotAccepted,
                    ErrorKind::InvalidToken
                    | ErrorKind::Base64(_)
                    | ErrorKind::Json(_)
                    | ErrorKind::Utf8(_) => TokenProblem::Malformed,
                    _ => TokenProblem::BadSignature,
                })
            })?
            .claims;
        // jsonwebtoken accepts an array `iss` when one element matches;
        // RFC 7519 §4.1.1 makes it one StringOrURI.
        if claims.get("iss").is_some_and(|iss| !iss.is_string()) {
            return Err(invalid(TokenProblem::BadClaimType));
        }
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_f64().ok_or(invalid(TokenProblem::BadClaimType))?;
            let now = jsonwebtoken::get_current_timestamp() as f64;
            if iat > now + self.leeway_seconds as f64 {
                return Err(invalid(TokenProblem::IssuedInFuture));
            }
        }
        if !self.audiences.is_empty() && !self.audience_matches(&claims) {
            return Err(invalid(TokenProblem::WrongAudience));
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|sub| !sub.is_empty())
            .ok_or(invalid(TokenProblem::MissingClaim))?
            .to_owned();
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let is_admin = !self.admin_roles.is_empty()
            && self
                .roles_claims
                .iter()
                .filter_map(|path| claim(&claims, path))
                .flat_map(roles)
                .any(|role| self.admin_roles.contains(role));
        Ok(VerifiedToken {
            issuer,
            subject,
            is_admin,
        })
    }

    fn audience_matches(&self, claims: &Map<String, Value>) -> bool {
        let accepted = |value: &str| self.audiences.iter().any(|audience| audience == value);
        match claims.get("aud") {
            Some(Value::String(aud)) => accepted(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
            Some(_) => false,
            None => claims
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(accepted),
        }
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn verifier(adjust: impl FnOnce(&mut AuthConfig)) -> JwtVerifier {
        let mut config = AuthConfig::default().with_jwt_secret(SECRET).unwrap();
        adjust(&mut config);
        JwtVerifier::from_config(&config).unwrap().unwrap()
    }

    fn token(claims: Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn problem(result: Result<VerifiedToken, AuthError>) -> TokenProblem {
        match result {
            Err(AuthError::InvalidToken(problem)) => problem,
            other => panic!("expected an invalid token, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_good_token_names_its_principal() {
        let verifier = verifier(|config| {
            config.issuer = Some("https://issuer".into());
            config.audiences = vec!["mcp".into()];
            config.admin_roles = vec!["admin".into()];
            config.roles_claims = vec!["realm_access.roles".into(), "cognito:groups".into()];
        });
        let verified = verifier
            .verify(&token(json!({
                "sub": "alice", "iss": "https://issuer", "aud": ["x", "mcp"],
                "exp": now() + 60, "realm_access": {"roles": ["user", "admin"]}
            })))
            .await
            .unwrap();
        assert_eq!(verified.subject, "alice");
        assert_eq!(verified.issuer, "https://issuer");
        assert!(verified.is_admin);
        // Cognito access tokens: no aud, a client_id; groups in cognito:groups.
        let verified = verifier
            .verify(&token(json!({
                "sub": "bob", "iss": "https://issuer", "client_id": "mcp",
                "exp": now() + 60, "cognito:groups": ["staff"]
            })))
            .await
            .unwrap();
        assert!(!verified.is_admin);
    }

    #[tokio::test]
    async fn each_failure_has_its_reason() {
        let verifier = verifier(|config| {
            config.issuer = Some("https://issuer".into());
            config.audiences = vec!["mcp".into()];
        });
        let good = json!({"sub": "a", "iss": "https://issuer", "aud": "mcp", "exp": now() + 60});
        let with = |key: &str, value: Value| {
            let mut claims = good.clone();
            claims[key] = value;
            token(claims)
        };
        let cases = [
            (with("exp", json!(now() - 3600)), TokenProblem::Expired),
            (with("nbf", json!(now() + 3600)), TokenProblem::NotYetValid),
            (with("aud", json!("other")), TokenProblem::WrongAudience),
            (
                with("iss", json!("https://evil")),
                TokenProblem::WrongIssuer,
            ),
            (
                token(json!({"sub": "a", "aud": "mcp", "exp": now() + 60})),
                TokenProblem::WrongIssuer,
            ),
            (
                token(json!({"iss": "https://issuer", "aud": "mcp", "exp": now() + 60})),
                TokenProblem::MissingClaim,
            ),
            (
                token(json!({"sub": "a", "iss": "https://issuer", "aud": "mcp"})),
                TokenProblem::MissingClaim,
            ),
            // An array `iss` holding the right issuer (jsonwebtoken alone
            // accepts it).
            (
                with("iss", json!(["https://issuer", "https://evil"])),
                TokenProblem::BadClaimType,
            ),
            (
                with("iat", json!(now() + 3600)),
                TokenProblem::IssuedInFuture,
            ),
            (with("iat", json!("yesterday")), TokenProblem::BadClaimType),
            ("garbage".to_owned(), TokenProblem::Malformed),
            ("a.b.c".to_owned(), TokenProblem::Malformed),
            ("a.b.c.d".to_owned(), TokenProblem::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(problem(verifier.verify(&token).await), expected);
        }
        // Signed with another secret.
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &good,
            &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
        )
        .unwrap();
        assert_eq!(
            problem(verifier.verify(&forged).await),
            TokenProblem::BadSignature
        );
        // A well-signed token whose header lists a critical extension.
        let mut critical = Header::new(Algorithm::HS256);
        critical.crit = Some(vec!["exp".to_owned()]);
        let critical = encode(
            &critical,
            &good,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            problem(verifier.verify(&critical).await),
            TokenProblem::UnknownCritical
        );
        // An `iat` within the leeway is fine.
        assert!(
            verifier
                .verify(&with("iat", json!(now() + 1)))
                .await
                .is_ok()
        );
        // alg none: the header rewritten, the signature dropped.
        let body = token(good.clone());
        let payload = body.split('.').nth(1).unwrap();
        let unsigned = format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
        );
        assert_eq!(
            problem(verifier.verify(&unsigned).await),
            TokenProblem::Unsigned
        );
        // An algorithm not accepted (HS512 when only HS256 is).
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &good,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            problem(verifier.verify(&hs512).await),
            TokenProblem::AlgorithmNotAccepted
        );
    }

    #[tokio::test]
    async fn leeway_forgives_small_clock_skew() {
        let verifier = verifier(|config| config.leeway = std::time::Duration::from_secs(30));
        let claims = json!({"sub": "a", "exp": now() - 10, "nbf": now() + 10});
        assert!(verifier.verify(&token(claims)).await.is_ok());
    }
}
