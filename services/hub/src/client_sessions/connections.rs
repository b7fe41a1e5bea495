//! From a stored connection to the hub's upstream session it uses, and from
//! a connect request to a stored connection.
//!
//! A connection holds no upstream state of its own: it names a server (a
//! configured upstream, or a URL the user connected) and the user's sealed
//! headers for it. Each request re-derives the route (the context key of the
//! caller, the client session and the credential values) and so finds the
//! hub's upstream session in Redis, which any replica re-attaches lazily
//! and re-establishes when it expired upstream:
//!
//! | server | upstream | context key |
//! |---|---|---|
//! | configured | the configured one; its `forward_headers` taken from the API request, or from the headers stored at connect, which win | the upstream's `sharing`; `session` means this client session |
//! | URL | `url-<sha256(url)[..16]>`, Streamable HTTP with sessions or stateless (2026-07-28), reached through the egress guard | per user and credential values (`sharing: user`) |

use std::collections::BTreeMap;

use http::{HeaderMap, StatusCode};
use mcp_session::Caller;
use sha2::{Digest, Sha256};

use super::{
    ClientSessions,
    error::ApiError,
    model::{ConnectRequest, UrlTransport},
    requests::Asker,
    store::StoredConnection,
};
use crate::{
    config::{
        Sharing, Upstream,
        client_sessions::{HeaderError, user_headers},
    },
    context_key::Principal,
    egress::EgressError,
    hub::Hub,
    upstream::Route,
};

/// Most headers one connection may carry.
const MAX_HEADERS: usize = 16;
/// Longest header value accepted.
const MAX_HEADER_VALUE: usize = 8 * 1024;
/// Longest URL accepted.
const MAX_URL: usize = 2048;

/// Whether `name` can name a server in a client session.
pub fn name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A connection's upstream and the headers it sends as the caller's.
pub enum Resolved<'h> {
    /// A configured upstream; the user's headers stand for the caller's.
    Configured(&'h Upstream, HeaderMap),
    /// A URL the user connected (the user's headers are its own).
    Url(Upstream),
}

impl Resolved<'_> {
    /// The route of a request of `caller` in client session `id`.
    pub fn route<'a>(&'a self, hub: &Hub, caller: &Caller, id: &str) -> Route<'a> {
        let user = caller.user_hash.to_string();
        let principal = Principal {
            user: &user,
            subject: &caller.subject,
            session: Some(id),
        };
        match self {
            Self::Configured(upstream, headers) => hub.route(upstream, principal, headers),
            Self::Url(upstream) => hub.route(upstream, principal, &HeaderMap::new()),
        }
    }
}

/// The AEAD context of a connection's sealed headers: the record it
/// belongs to.
fn seal_context(caller: &Caller, id: &str, server: &str) -> String {
    format!("{}:{id}:{server}", caller.user_hash)
}

/// The store name of the upstream of `url` spoken to over `transport`.
fn url_upstream_name(url: &str, transport: UrlTransport) -> String {
    let mut hash = Sha256::new();
    if transport == UrlTransport::Stateless {
        hash.update(b"stateless ");
    }
    hash.update(url.as_bytes());
    format!("url-{}", &hex::encode(hash.finalize())[..16])
}

fn header_error(error: HeaderError) -> ApiError {
    ApiError::invalid(format!("headers: {error}"))
}

fn egress_error(error: EgressError) -> ApiError {
    match error {
        EgressError::BadUrl(message) => ApiError::invalid(format!("url: {message}")),
        EgressError::Unresolved(_) => ApiError::invalid(format!("url: {error}")),
        EgressError::NotAllowed(_) | EgressError::Forbidden { .. } => ApiError::new(
            StatusCode::FORBIDDEN,
            "destination_forbidden",
            error.to_string(),
        ),
    }
}

impl ClientSessions {
    /// The upstream of `connection` in client session `id` of `caller`,
    /// its sealed headers opened.
    ///
    /// # Errors
    /// `404 unknown_server` for a configured server no longer configured,
    /// `409 credentials_unavailable` for headers this hub cannot open (the
    /// key changed: connect the server again), `403 destination_forbidden`
    /// for a URL the configuration no longer allows.
    pub(super) fn resolve(
        &self,
        asker: &Asker,
        id: &str,
        connection: &StoredConnection,
    ) -> Result<Resolved<'_>, ApiError> {
        let caller = &asker.caller;
        let headers = match &connection.sealed_headers {
            None => Vec::new(),
            Some(sealed) => {
                let opened = self
                    .sealer
                    .open(&seal_context(caller, id, &connection.server), sealed)
                    .map_err(|error| {
                        tracing::error!(%error, server = %connection.server, "stored credentials do not open");
                        ApiError::new(
                            StatusCode::CONFLICT,
                            "credentials_unavailable",
                            format!("the credentials stored for `{}` cannot be opened by this hub ({error}); connect the server again", connection.server),
                        )
                    })?;
                let map: BTreeMap<String, String> =
                    serde_json::from_slice(&opened).unwrap_or_default();
                user_headers(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .map_err(header_error)?
            }
        };
        match &connection.url {
            None => {
                let upstream =
                    self.hub
                        .config
                        .servers
                        .get(&connection.server)
                        .ok_or_else(|| {
                            ApiError::not_found(
                                "unknown_server",
                                format!(
                                    "`{}` is no longer configured on this hub: disconnect it",
                                    connection.server
                                ),
                            )
                        })?;
                // The API caller's own headers, as on `/mcp` (only the
                // upstream's `forward_headers` are sent on), the stored ones
                // in their place where given.
                let mut sent = asker.headers.clone();
                for (name, value) in headers {
                    sent.insert(name, value);
                }
                Ok(Resolved::Configured(upstream, sent))
            }
            Some(url) => {
                let parsed = url::Url::parse(url).map_err(|e| ApiError::invalid(e.to_string()))?;
                // The configuration may have changed since it was connected
                // (names are checked again by the resolver at each connection).
                self.settings()
                    .egress
                    .check_stored(&parsed)
                    .map_err(|error| {
                        let mut refused = egress_error(error);
                        refused.append_description("; disconnect it");
                        refused
                    })?;
                let transport = connection.transport.unwrap_or_default();
                Ok(Resolved::Url(Upstream::user_url(
                    url_upstream_name(url, transport),
                    parsed,
                    transport == UrlTransport::Stateless,
                    headers,
                    self.settings().url_timeout,
                )))
            }
        }
    }

    /// Checks a connect request and makes the connection to store: the
    /// server exists (or the URL is allowed, and every address it has), the
    /// headers are valid and the server takes them, and they are sealed.
    pub(super) async fn prepare(
        &self,
        caller: &Caller,
        id: &str,
        request: ConnectRequest,
    ) -> Result<StoredConnection, ApiError> {
        let headers = request.headers.unwrap_or_default();
        if headers.len() > MAX_HEADERS
            || headers
                .iter()
                .any(|(name, value)| name.len() > 256 || value.len() > MAX_HEADER_VALUE)
        {
            return Err(ApiError::invalid(format!(
                "headers: at most {MAX_HEADERS}, each value at most {} KiB",
                MAX_HEADER_VALUE / 1024
            )));
        }
        let checked = user_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(header_error)?;
        if request.transport.is_some() && request.url.is_none() {
            return Err(ApiError::invalid(
                "`transport` applies to a `url`; a configured server has its own",
            ));
        }
        let configured = self.hub.config.servers.get(&request.server);
        let url = match (&request.url, configured) {
            (None, None) => {
                return Err(ApiError::not_found(
                    "unknown_server",
                    format!(
                        "no server named `{}` on this hub (GET /api/servers lists them); to connect a URL, send `url` too",
                        request.server
                    ),
                ));
            }
            (None, Some(upstream)) => {
                if let Some((name, _)) = checked
                    .iter()
                    .find(|(name, _)| !upstream.forward_headers.contains(name))
                {
                    return Err(ApiError::invalid(format!(
                        "headers: `{name}` is not a header `{}` takes from its callers (forward_headers: {:?})",
                        upstream.name,
                        upstream
                            .forward_headers
                            .iter()
                            .map(http::HeaderName::as_str)
                            .collect::<Vec<_>>()
                    )));
                }
                None
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "server_name_taken",
                    format!(
                        "`{}` is a configured server: connect it without `url`, or give the URL another name",
                        request.server
                    ),
                ));
            }
            (Some(url), None) => {
                if url.len() > MAX_URL {
                    return Err(ApiError::invalid(format!("url: at most {MAX_URL} bytes")));
                }
                let parsed =
                    url::Url::parse(url).map_err(|e| ApiError::invalid(format!("url: {e}")))?;
                self.settings()
                    .egress
                    .check(&parsed)
                    .await
                    .map_err(egress_error)?;
                Some(parsed.to_string())
            }
        };
        let sealed_headers = if checked.is_empty() {
            None
        } else {
            let plain: BTreeMap<&str, &str> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let plaintext = serde_json::to_vec(&plain).unwrap_or_default();
            Some(
                self.sealer
                    .seal(&seal_context(caller, id, &request.server), &plaintext)
                    .map_err(|error| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "credentials_unavailable",
                            error.to_string(),
                        )
                    })?,
            )
        };
        Ok(StoredConnection {
            server: request.server,
            transport: request.transport.filter(|_| url.is_some()),
            url,
            connected_at_ms: mcp_session::store::now_ms(),
            header_names: checked.iter().map(|(name, _)| name.to_string()).collect(),
            sealed_headers,
        })
    }

    /// Ends, in the background, the upstream session that belonged to this
    /// client session alone (a configured server shared per `session`);
    /// others are shared and stay.
    pub(super) fn end_own_session(&self, caller: &Caller, id: &str, connection: &StoredConnection) {
        let Some(upstream) = self
            .hub
            .config
            .servers
            .get(&connection.server)
            .filter(|upstream| connection.url.is_none() && upstream.sharing == Sharing::Session)
        else {
            return;
        };
        let user = caller.user_hash.to_string();
        let context = self.hub.upstreams.context_of(
            upstream,
            Principal {
                user: &user,
                subject: &caller.subject,
                session: Some(id),
            },
        );
        let (hub, name) = (self.hub.clone(), upstream.name.clone());
        tokio::spawn(async move {
            let Some(upstream) = hub.config.servers.get(&name) else {
                return;
            };
            if let Err(error) = hub.upstreams.end_session(upstream, &context).await {
                tracing::warn!(upstream = %name, %error, "could not end a client session's upstream session; it expires by itself");
            }
        });
    }
}
