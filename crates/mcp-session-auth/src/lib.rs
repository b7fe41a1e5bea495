//! Authentication: the [`Caller`] of every MCP request, resolved once per
//! HTTP request before any MCP handling.
//!
//! | credential | checked by | principal (hashed into the `UserHash`) |
//! |---|---|---|
//! | `Authorization: Bearer <jwt>` | [`jwt`]: HS256/384/512 with `JWT_SECRET_KEY`, RS*/PS*/ES* with a JWKS | `jwt`, `iss`, `sub` |
//! | `Authorization: ApiKey <key>`, `X-API-Key: <key>` | [`api_keys`]: SHA-256 against `API_KEYS` | `api_key`, the key's name |
//! | none, with `ALLOW_ANONYMOUS=true` | [`anonymous`] | `anonymous`, client address and `User-Agent` |
//!
//! **The default.** With no credential mechanism configured (no
//! `JWT_SECRET_KEY`, `JWT_JWKS_URL`, `JWT_JWKS_FILE` or `API_KEYS`), the
//! service is open: `ALLOW_ANONYMOUS` defaults to `true` and every caller is
//! anonymous (a warning says so at start-up). As soon as one mechanism is
//! configured, `ALLOW_ANONYMOUS` defaults to `false`.
//!
//! Once a mechanism is configured, credentials that are present are always
//! checked, even when anonymous callers are allowed: a bad token is refused,
//! not downgraded to anonymous. (An open service reads no credential at all.)
//! Failures answer `401` with a `WWW-Authenticate` challenge saying why
//! ([`challenge`], RFC 6750 §3); they are logged with their reason, never
//! with the credential.

mod anonymous;
mod api_keys;
mod challenge;
mod config;
mod credentials;
mod error;
mod jwks;
mod jwt;
mod known_callers;
mod metadata;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

pub use api_keys::hash_api_key;
use axum::{
    Json, Router,
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
pub use config::AuthConfig;
pub use error::{AuthError, Scheme, TokenProblem};
pub use metadata::WELL_KNOWN;

use self::{
    api_keys::find_api_key,
    challenge::Challenges,
    credentials::{Credential, extract},
    jwt::JwtVerifier,
    known_callers::KnownCallers,
    metadata::ResourceMetadata,
};
use mcp_session_core::{
    config::ConfigError,
    identity::{Caller, PrincipalKind},
};

/// Resolves callers as configured by an [`AuthConfig`].
pub struct Authenticator {
    config: AuthConfig,
    jwt: Option<JwtVerifier>,
    challenges: Challenges,
    metadata: Option<ResourceMetadata>,
    /// The anonymous callers of the clients seen last.
    known_callers: KnownCallers,
}

/// Why a request was refused, and which scheme it tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The failure.
    pub error: AuthError,
    /// The scheme of the credential presented, if any.
    pub scheme: Option<Scheme>,
}

impl Authenticator {
    /// An authenticator for the service `realm` (its name, in challenges).
    ///
    /// # Errors
    /// [`ConfigError`] when the JWKS file cannot be read or the JWKS client
    /// cannot be built.
    pub fn new(config: &AuthConfig, realm: &str) -> Result<Self, ConfigError> {
        let jwt = JwtVerifier::from_config(config)?;
        let metadata = (!config.authorization_servers.is_empty()).then(|| ResourceMetadata {
            resource_url: config.resource_url.clone(),
            authorization_servers: config.authorization_servers.clone(),
            resource_name: realm.to_owned(),
            behind_proxy: config.trusted_proxy_hops > 0,
        });
        Ok(Self {
            challenges: Challenges {
                realm: realm.to_owned(),
                bearer: jwt.is_some(),
                api_key: !config.api_keys.is_empty(),
            },
            config: config.clone(),
            jwt,
            metadata,
            known_callers: KnownCallers::default(),
        })
    }

    /// The configuration it applies.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Logs what callers are accepted; warns when the service is open.
    pub fn log_mode(&self) {
        let config = &self.config;
        if !config.has_credentials() {
            tracing::warn!(
                "no authentication configured (JWT_SECRET_KEY, JWT_JWKS_URL, JWT_JWKS_FILE, API_KEYS): \
                 the service is open to anyone who can reach it; callers are anonymous, told apart by address and User-Agent"
            );
            return;
        }
        let algorithms: Vec<String> = config
            .jwt_algorithms
            .iter()
            .map(|algorithm| format!("{algorithm:?}"))
            .collect();
        tracing::info!(
            jwt = %algorithms.join(","),
            jwks = config.jwks_url.is_some() || config.jwks_file.is_some(),
            issuer = config.issuer.as_deref().unwrap_or("-"),
            api_keys = config.api_keys.len(),
            anonymous = config.allow_anonymous,
            trusted_proxy_hops = config.trusted_proxy_hops,
            "authentication required"
        );
    }

    /// Starts loading the JWKS from its URL in the background, so the first
    /// token does not wait for it.
    pub fn prefetch_keys(self: &Arc<Self>) {
        if self.config.jwks_url.is_some() {
            let this = self.clone();
            tokio::spawn(async move {
                if let Some(jwks) = this.jwt.as_ref().and_then(JwtVerifier::jwks) {
                    jwks.reload().await;
                }
            });
        }
    }

    /// The caller of a request with `headers` from `peer`.
    ///
    /// # Errors
    /// A [`Refusal`] saying why the request is not authenticated.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Caller, Refusal> {
        let refuse = |error, scheme| Refusal { error, scheme };
        let anonymous = || {
            self.known_callers
                .caller(headers, peer, self.config.trusted_proxy_hops)
        };
        if !self.config.has_credentials() {
            // An open service reads no credential: whatever a client or a
            // gateway sends, the caller is anonymous, as before auth existed.
            return Ok(anonymous());
        }
        match extract(headers).map_err(|error| refuse(error, None))? {
            Credential::Bearer(token) => {
                let Some(jwt) = &self.jwt else {
                    return Err(refuse(
                        AuthError::InvalidRequest {
                            reason: "bearer tokens are not accepted here",
                        },
                        Some(Scheme::Bearer),
                    ));
                };
                let token = jwt
                    .verify(&token)
                    .await
                    .map_err(|error| refuse(error, Some(Scheme::Bearer)))?;
                Ok(Caller::new(PrincipalKind::Jwt, token.issuer, token.subject)
                    .with_admin(token.is_admin))
            }
            Credential::ApiKey(key) => {
                if self.config.api_keys.is_empty() {
                    return Err(refuse(
                        AuthError::InvalidRequest {
                            reason: "API keys are not accepted here",
                        },
                        Some(Scheme::ApiKey),
                    ));
                }
                let entry = find_api_key(&self.config.api_keys, &key)
                    .ok_or(refuse(AuthError::UnknownApiKey, Some(Scheme::ApiKey)))?;
                Ok(Caller::new(PrincipalKind::ApiKey, "", entry.name.clone())
                    .with_admin(entry.admin))
            }
            Credential::None if self.config.allow_anonymous => Ok(anonymous()),
            Credential::None => Err(refuse(AuthError::Missing, None)),
        }
    }

    /// The response refusing a request with `headers`.
    pub fn refusal_response(&self, refusal: &Refusal, headers: &HeaderMap) -> Response {
        let metadata_url = self.metadata.as_ref().map(|metadata| metadata.url(headers));
        self.challenges
            .response(&refusal.error, refusal.scheme, metadata_url.as_deref())
    }

    /// The RFC 9728 metadata document for the well-known path `suffix`, if
    /// an authorization server is configured.
    pub fn metadata_document(
        &self,
        headers: &HeaderMap,
        suffix: &str,
    ) -> Option<serde_json::Value> {
        self.metadata
            .as_ref()
            .map(|metadata| metadata.document(headers, suffix))
    }
}

fn peer_of(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// The routes of the OAuth protected resource metadata (RFC 9728 §3):
/// `GET /.well-known/oauth-protected-resource` and
/// `GET /.well-known/oauth-protected-resource/<resource path>`, served
/// without authentication (`404` when no authorization server is configured).
pub fn metadata_routes(auth: Arc<Authenticator>) -> Router {
    Router::new()
        .route(metadata::WELL_KNOWN, get(protected_resource_metadata))
        .route(
            &format!("{}/{{*resource}}", metadata::WELL_KNOWN),
            get(protected_resource_metadata),
        )
        .with_state(auth)
}

/// Middleware (for `axum::middleware::from_fn_with_state` with the
/// [`Authenticator`]): authenticates the request and puts its [`Caller`]
/// into the request's extensions, or answers the refusal, `401` with a
/// `WWW-Authenticate` challenge (RFC 6750 §3), logged with its reason and
/// the client's address, never with the credential.
pub async fn authenticate_requests(
    State(auth): State<Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    admit(&auth, request, |request| next.run(request)).await
}

/// What [`authenticate_requests`] does, for a middleware that does more
/// around it in one future: authenticates `request` and, when it is
/// admitted, answers it with `serve`, its [`Caller`] in its extensions;
/// otherwise answers the refusal (`401`, logged as there).
pub async fn admit<F, Fut>(auth: &Authenticator, mut request: Request, serve: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let peer = peer_of(&request);
    match auth.authenticate(request.headers(), peer).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            serve(request).await
        }
        Err(refusal) => {
            let client =
                anonymous::client_ip(request.headers(), peer, auth.config.trusted_proxy_hops)
                    .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
            tracing::warn!(
                method = %request.method(),
                path = %request.uri().path(),
                reason = %refusal.error,
                scheme = ?refusal.scheme,
                client = %client,
                "authentication refused"
            );
            auth.refusal_response(&refusal, request.headers())
        }
    }
}

/// `GET /.well-known/oauth-protected-resource[/<path>]`: the RFC 9728
/// document, or `404` when no authorization server is configured.
async fn protected_resource_metadata(
    State(auth): State<Arc<Authenticator>>,
    request: Request,
) -> Response {
    let suffix = request
        .uri()
        .path()
        .strip_prefix(metadata::WELL_KNOWN)
        .unwrap_or_default();
    match auth.metadata_document(request.headers(), suffix) {
        Some(document) => {
            let mut response = Json(document).into_response();
            // Public information, read by browser-based clients too.
            response.headers_mut().insert(
                axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
                axum::http::HeaderValue::from_static("*"),
            );
            response
        }
        None => (axum::http::StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}
