//! The hub's side as a client: upstream sessions that every hub replica
//! shares, and requests sent through them.
//!
//! [`Upstreams::request`] sends one JSON-RPC request to an upstream in the
//! session of the request's [`ContextKey`]:
//!
//! 1. the session comes from this replica's memory (no Redis round trip in
//!    the steady state), else from the [`store`] (made by another replica,
//!    or before a restart), else it is made: under a fleet-wide single-flight
//!    lock (`SET NX PX`), one replica sends `initialize` and stores the
//!    session while the others wait for it; on one replica, concurrent
//!    requests wait for the same lookup;
//! 2. the request goes out with the session's `Mcp-Session-Id` and
//!    `MCP-Protocol-Version` ([`http`]);
//! 3. if the upstream answers `404` (it restarted, expired the session, or
//!    an admin ended it), the stored id is deleted only if it is still the
//!    one used (compare-and-delete), a session is made again as in 1, and
//!    the request is sent once more: the client sees no error.
//!
//! While a session is in use, its TTL in Redis is renewed at most every
//! quarter of the TTL (one round trip, off the request's path).

pub mod held;
pub mod http;
pub mod listener;
pub mod stateless;
pub mod store;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use ::http::{HeaderMap, HeaderName, HeaderValue};
use mcp_session::store::now_ms;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::{
    http::{NoRelay, Relay, Target, UpstreamError, UpstreamHttp},
    store::{StoreError, StoredSession, UpstreamSessionStore},
};
use crate::{
    config::{Sharing, Upstream, UpstreamTransport},
    context_key::{ContextKey, ContextKeys, Principal},
    egress::EgressPolicy,
    metrics::{ErrorKind, HubMetrics, SessionEvent},
};

/// The protocol version the hub asks its upstreams for; an upstream answers
/// with this or an older one it supports (MCP 2025-11-25, Lifecycle
/// §Version Negotiation).
pub const PROTOCOL_VERSION: &str = "2025-11-25";
/// The protocol version of HTTP+SSE upstreams (MCP 2024-11-05).
pub const PROTOCOL_VERSION_2024: &str = "2024-11-05";

/// How long waiting for another replica's `initialize` may take beyond the
/// upstream's timeout.
/// The capabilities the hub declares in its `initialize` to an upstream
/// (MCP 2025-11-25, Lifecycle §Capability Negotiation): what it relays to
/// its clients during a request (sampling, elicitation), and `roots` only
/// for a session of one downstream session (`sharing: session`). Roots
/// belong to a client's session: a session shared by several would be told
/// the roots of whichever client's request it asked during. A URL a user
/// connected in a client session is used by the client-session API only,
/// which has no client to ask: nothing is declared to it.
pub fn client_capabilities(upstream: &Upstream) -> Value {
    if upstream.guarded {
        return json!({});
    }
    match upstream.sharing {
        Sharing::Session => json!({"sampling": {}, "elicitation": {}, "roots": {}}),
        Sharing::Shared | Sharing::User => json!({"sampling": {}, "elicitation": {}}),
    }
}

const LOCK_MARGIN: Duration = Duration::from_secs(5);
/// How often a replica waiting for another's `initialize` looks again.
const LOCK_POLL: Duration = Duration::from_millis(50);

/// Why an upstream request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The upstream could not be reached or answered something unusable.
    #[error("upstream `{server}`: {source}")]
    Upstream {
        /// The upstream's name.
        server: String,
        /// What went wrong.
        source: UpstreamError,
    },
    /// Redis, where upstream sessions live, did not answer.
    #[error("upstream `{server}`: {source}")]
    Store {
        /// The upstream's name.
        server: String,
        /// What went wrong.
        source: StoreError,
    },
    /// The upstream answered with a JSON-RPC error object: passed on as it
    /// is.
    #[error("upstream `{server}` answered with an error")]
    Rpc {
        /// The upstream's name.
        server: String,
        /// The `error` object.
        error: Value,
    },
    /// The downstream client cancelled the request.
    #[error("cancelled by the client")]
    Cancelled,
}

impl CallError {
    /// `source`, of upstream `server`.
    pub fn upstream(server: &str, source: UpstreamError) -> Self {
        Self::Upstream {
            server: server.to_owned(),
            source,
        }
    }

    /// The `result` of the JSON-RPC response `answer` of upstream `server`,
    /// or its `error` object as [`CallError::Rpc`].
    pub fn result_of(server: &str, mut answer: Value) -> Result<Value, Self> {
        if let Some(result) = answer.get_mut("result") {
            return Ok(result.take());
        }
        Err(Self::Rpc {
            server: server.to_owned(),
            error: answer
                .get_mut("error")
                .map(Value::take)
                .unwrap_or(Value::Null),
        })
    }

    fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Upstream {
                source: UpstreamError::Http { .. },
                ..
            } => Some(ErrorKind::Http),
            Self::Upstream {
                source: UpstreamError::Protocol(_),
                ..
            } => Some(ErrorKind::Protocol),
            Self::Upstream { .. } => Some(ErrorKind::Unreachable),
            Self::Store { .. } => Some(ErrorKind::Store),
            Self::Rpc { .. } | Self::Cancelled => None,
        }
    }
}

/// Where a request goes: the upstream, the context key of its session, and
/// the caller's headers sent on.
pub struct Route<'a> {
    /// The upstream.
    pub upstream: &'a Upstream,
    /// Whose session is used.
    pub context: ContextKey,
    forwarded: Vec<(HeaderName, HeaderValue)>,
    /// Where to relay the upstream session's own stream, if it is to be
    /// opened (see [`listener`]).
    listen: Option<Arc<dyn Relay>>,
    /// Whether the downstream client speaks MRTR (2026-07-28): a stateless
    /// upstream's `input_required` then goes to it as it is.
    client_mrtr: bool,
}

impl Route<'_> {
    /// This route, opening the upstream session's own stream (relayed to
    /// `relay`) when it is used.
    pub fn with_listener(mut self, relay: Arc<dyn Relay>) -> Self {
        self.listen = Some(relay);
        self
    }

    /// This route for a client of 2026-07-28, which answers `input_required`
    /// results itself (MRTR): a stateless upstream's are passed to it, and
    /// its retry (with `inputResponses` and the upstream's `requestState`)
    /// goes upstream as it is, from any hub replica.
    pub fn for_mrtr_client(mut self) -> Self {
        self.client_mrtr = true;
        self
    }

    /// Whether the downstream client speaks MRTR (2026-07-28).
    pub fn client_mrtr(&self) -> bool {
        self.client_mrtr
    }
}

/// An upstream session held in this replica's memory.
struct LiveSession {
    stored: StoredSession,
    /// When its TTL in the store was last renewed.
    renewed: Mutex<Instant>,
}

impl LiveSession {
    /// What a request needs of `stored`: its id, version and origin. The
    /// upstream's capabilities and server info stay in Redis (the info
    /// key) rather than in every replica's memory for every context.
    fn new(mut stored: StoredSession) -> Self {
        stored.capabilities = Value::Null;
        stored.server_info = Value::Null;
        Self {
            stored,
            renewed: Mutex::new(Instant::now()),
        }
    }

    fn target<'a>(&'a self, route: &'a Route<'_>) -> Target<'a> {
        Target {
            upstream: route.upstream,
            session_id: Some(&self.stored.session_id),
            protocol_version: Some(if self.stored.protocol_version.is_empty() {
                PROTOCOL_VERSION
            } else {
                &self.stored.protocol_version
            }),
            forwarded: &route.forwarded,
        }
    }
}

/// The upstream sessions of this hub replica, and the requests sent
/// through them.
pub struct Upstreams {
    http: UpstreamHttp,
    store: Arc<dyn UpstreamSessionStore>,
    keys: ContextKeys,
    live: moka::future::Cache<(String, ContextKey), Arc<LiveSession>>,
    ttl: Duration,
    replica: String,
    metrics: HubMetrics,
    next_id: AtomicU64,
    listeners: listener::Listeners,
    held: held::HeldSessions,
}

/// Whether `program` (a path, or a name looked up in `PATH`) is a file.
fn program_exists(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

impl Upstreams {
    /// Upstream sessions kept in `store` for `ttl` after their last use,
    /// keyed with `keys`, made by replica `replica`; the URLs users connect
    /// are reached within `egress`.
    pub fn new(
        store: Arc<dyn UpstreamSessionStore>,
        keys: ContextKeys,
        ttl: Duration,
        replica: impl Into<String>,
        metrics: HubMetrics,
        egress: Arc<EgressPolicy>,
    ) -> Self {
        Self {
            http: UpstreamHttp::new(Duration::from_secs(5), egress),
            store,
            keys,
            live: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(ttl.min(Duration::from_secs(600)))
                .build(),
            ttl,
            replica: replica.into(),
            held: held::HeldSessions::new(metrics.clone(), ttl),
            metrics,
            next_id: AtomicU64::new(1),
            listeners: listener::Listeners::default(),
        }
    }

    /// Whether `upstream` answers now (see [`UpstreamHttp::probe`]); for a
    /// stdio upstream, whether its program can be found (its processes are
    /// started per replica, on first use).
    pub async fn probe(&self, upstream: &Upstream) -> http::Health {
        match &upstream.stdio {
            Some(command) => {
                let found = program_exists(&command.program);
                http::Health {
                    reachable: found,
                    status: None,
                    latency: Duration::ZERO,
                    error: (!found).then(|| format!("`{}` not found", command.program)),
                }
            }
            None => self.http.probe(upstream).await,
        }
    }

    /// Relays the own stream (`GET`) of the route's upstream session (made
    /// if there is none) to `relay` until it ends (the upstream closed it,
    /// another client holds it, or the relay's client is gone).
    ///
    /// # Errors
    /// [`CallError`] when the session cannot be had.
    pub async fn listen_session(
        &self,
        route: &Route<'_>,
        relay: Arc<dyn Relay>,
    ) -> Result<http::ListenEnd, CallError> {
        let session = self.session(route, false).await?;
        let (ready, _answered) = tokio::sync::oneshot::channel();
        Ok(self
            .http
            .listen(session.target(route), relay.as_ref(), ready)
            .await)
    }

    /// Removes the upstream sessions unused for their idle time from this
    /// replica's memory (see [`crate::catalog::Catalog::run_pending_tasks`]).
    pub async fn run_pending_tasks(&self) {
        self.live.run_pending_tasks().await;
    }

    /// The store of upstream sessions.
    pub fn store(&self) -> &Arc<dyn UpstreamSessionStore> {
        &self.store
    }

    /// The route of a request of `principal` (with its HTTP `headers`) to
    /// `upstream`: the caller's headers it sends on and the credential mapped
    /// to the caller (`user_headers`), and the context key derived from
    /// them.
    pub fn route<'a>(
        &self,
        upstream: &'a Upstream,
        principal: Principal<'_>,
        headers: &HeaderMap,
    ) -> Route<'a> {
        let mut forwarded: Vec<(HeaderName, HeaderValue)> = upstream
            .forward_headers
            .iter()
            .filter_map(|name| {
                headers.get(name).map(|value| {
                    let mut value = value.clone();
                    value.set_sensitive(true);
                    (name.clone(), value)
                })
            })
            .collect();
        if let Some(mapped) = upstream.user_headers.get(principal.subject) {
            forwarded.extend(mapped.iter().cloned());
        }
        let credentials: Vec<(&str, &[u8])> = upstream
            .headers
            .iter()
            .chain(forwarded.iter())
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        let context = self.keys.derive(upstream.sharing, principal, &credentials);
        Route {
            upstream,
            context,
            forwarded,
            listen: None,
            client_mrtr: false,
        }
    }

    /// The context key of `principal` on `upstream` when no credential is
    /// sent (a `shared` or `session` upstream's key needs none).
    pub fn context_of(&self, upstream: &Upstream, principal: Principal<'_>) -> ContextKey {
        self.keys.derive(upstream.sharing, principal, &[])
    }

    fn request_id(&self) -> Value {
        json!(format!(
            "hub-{}-{}",
            self.replica,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Sends `method` with `params` to the route's upstream in its session
    /// and returns the `result`, relaying what the upstream sends meanwhile
    /// through `relay`; `cancel` cancels it (the upstream is told with
    /// `notifications/cancelled`).
    ///
    /// # Errors
    /// See [`CallError`]; [`CallError::Rpc`] carries the upstream's own
    /// error, to be passed on.
    pub async fn request(
        &self,
        route: &Route<'_>,
        method: &str,
        params: Value,
        relay: Arc<dyn Relay>,
        cancel: &CancellationToken,
    ) -> Result<Value, CallError> {
        let started = std::time::Instant::now();
        let result = match route.upstream.transport {
            UpstreamTransport::Sse | UpstreamTransport::Stdio => {
                self.held_request(route, method, params, relay, cancel)
                    .await
            }
            UpstreamTransport::Stateless => {
                self.stateless_request(route, method, params, relay, cancel)
                    .await
            }
            UpstreamTransport::StreamableHttp => {
                self.request_in(route, method, params, relay.as_ref(), cancel)
                    .await
            }
        };
        let server = &route.upstream.name;
        self.metrics.request_took(route.upstream, started.elapsed());
        if let Err(error) = &result {
            if let Some(kind) = error.kind() {
                self.metrics.error(route.upstream, kind);
            }
            if !matches!(error, CallError::Rpc { .. } | CallError::Cancelled) {
                tracing::warn!(upstream = %server, method, %error, "upstream request failed");
            }
        }
        result
    }

    /// [`request`](Self::request) to an upstream whose sessions this replica
    /// holds: HTTP+SSE or stdio (see [`held`]).
    async fn held_request(
        &self,
        route: &Route<'_>,
        method: &str,
        params: Value,
        relay: Arc<dyn Relay>,
        cancel: &CancellationToken,
    ) -> Result<Value, CallError> {
        let server = route.upstream.name.clone();
        match self
            .held
            .request(route, method, params, relay, cancel)
            .await
        {
            Ok(result) => Ok(result),
            Err(Ok(error)) => Err(CallError::Rpc { server, error }),
            Err(Err(_)) if cancel.is_cancelled() => Err(CallError::Cancelled),
            Err(Err(source)) => Err(CallError::upstream(&server, source)),
        }
    }

    async fn request_in(
        &self,
        route: &Route<'_>,
        method: &str,
        params: Value,
        relay: &dyn Relay,
        cancel: &CancellationToken,
    ) -> Result<Value, CallError> {
        let server = &route.upstream.name;
        let mut session = self.session(route, false).await?;
        let mut retried = false;
        loop {
            if let Some(relay) = &route.listen {
                self.listeners
                    .ensure(&self.http, route, &session.stored, relay.clone())
                    .await;
            }
            let id = self.request_id();
            let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            let target = session.target(route);
            let outcome = tokio::select! {
                outcome = self.http.request(target, &message, relay) => outcome,
                () = cancel.cancelled() => {
                    let notice = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": id, "reason": "cancelled by the hub's client"}});
                    let _ = self.http.notify(target, &notice).await;
                    return Err(CallError::Cancelled);
                }
            };
            match outcome {
                Ok(reply) => {
                    self.renew(route, &session);
                    return CallError::result_of(server, reply.message);
                }
                Err(UpstreamError::SessionGone { status }) if !retried => {
                    retried = true;
                    self.metrics.not_found(route.upstream);
                    tracing::info!(upstream = %server, status, context_key = %route.context, "upstream session gone; re-establishing");
                    self.forget(route, &session.stored.session_id).await?;
                    session = self.session(route, true).await?;
                }
                Err(error) => return Err(CallError::upstream(server, error)),
            }
        }
    }

    /// The session of `route`: from memory, the store, or made now (see
    /// the module's documentation). `again`: the request's first session was
    /// gone (counted as re-established rather than created).
    async fn session(&self, route: &Route<'_>, again: bool) -> Result<Arc<LiveSession>, CallError> {
        let key = (route.upstream.name.clone(), route.context.clone());
        let made = AtomicBool::new(false);
        let session = self
            .live
            .try_get_with(key, async {
                let (stored, made_here) = self.load_or_make(route).await?;
                made.store(made_here, Ordering::Relaxed);
                Ok::<_, CallError>(Arc::new(LiveSession::new(stored)))
            })
            .await
            .map_err(|error| (*error).clone())?;
        let event = match (made.load(Ordering::Relaxed), again) {
            (false, _) => SessionEvent::Reused,
            (true, false) => SessionEvent::Created,
            (true, true) => SessionEvent::Reestablished,
        };
        self.metrics.session(route.upstream, event);
        Ok(session)
    }

    fn store_error(&self, route: &Route<'_>) -> impl Fn(StoreError) -> CallError {
        let server = route.upstream.name.clone();
        move |source| CallError::Store {
            server: server.clone(),
            source,
        }
    }

    /// The session the store holds for `route`, if any.
    async fn stored(&self, route: &Route<'_>) -> Result<Option<StoredSession>, CallError> {
        self.store
            .get(&route.upstream.name, &route.context)
            .await
            .map_err(self.store_error(route))
    }

    /// The stored session of `route`, or one made now under the fleet-wide
    /// lock; `true` when this call made it.
    async fn load_or_make(&self, route: &Route<'_>) -> Result<(StoredSession, bool), CallError> {
        let (server, context) = (&route.upstream.name, &route.context);
        let store_error = self.store_error(route);
        if let Some(stored) = self.stored(route).await? {
            return Ok((stored, false));
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lock_ttl = route.upstream.timeout + LOCK_MARGIN;
        let deadline = Instant::now() + lock_ttl;
        loop {
            if self
                .store
                .lock(server, context, &token, lock_ttl)
                .await
                .map_err(&store_error)?
            {
                let made = self.make_locked(route).await;
                if let Err(error) = self.store.unlock(server, context, &token).await {
                    tracing::warn!(upstream = %server, %error, "could not release the single-flight lock; it expires by itself");
                }
                return made;
            }
            // Another replica is making it: wait for it to appear.
            tokio::time::sleep(LOCK_POLL).await;
            if let Some(stored) = self.stored(route).await? {
                return Ok((stored, false));
            }
            if Instant::now() > deadline {
                return Err(CallError::upstream(
                    server,
                    UpstreamError::Unreachable(
                        "another hub replica did not finish establishing the session in time"
                            .to_owned(),
                    ),
                ));
            }
        }
    }

    /// With the lock held: the session another holder stored just before,
    /// or a new one.
    async fn make_locked(&self, route: &Route<'_>) -> Result<(StoredSession, bool), CallError> {
        let (server, context) = (&route.upstream.name, &route.context);
        let store_error = self.store_error(route);
        if let Some(stored) = self.stored(route).await? {
            return Ok((stored, false));
        }
        let stored = self.initialize(route).await?;
        self.store
            .put(server, context, &stored, self.ttl)
            .await
            .map_err(&store_error)?;
        tracing::info!(upstream = %server, context_key = %context, protocol_version = %stored.protocol_version, "upstream session established");
        Ok((stored, true))
    }

    /// `initialize` and `notifications/initialized` (MCP 2025-11-25,
    /// Lifecycle §Initialization): a new upstream session.
    async fn initialize(&self, route: &Route<'_>) -> Result<StoredSession, CallError> {
        let server = &route.upstream.name;
        let upstream_error = |source| CallError::upstream(server, source);
        let message = json!({
            "jsonrpc": "2.0",
            "id": self.request_id(),
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": client_capabilities(route.upstream),
                "clientInfo": {"name": "mcp-hub", "version": env!("CARGO_PKG_VERSION")},
            },
        });
        let target = Target {
            upstream: route.upstream,
            session_id: None,
            protocol_version: None,
            forwarded: &route.forwarded,
        };
        let reply = self
            .http
            .request(target, &message, &NoRelay)
            .await
            .map_err(upstream_error)?;
        let result = CallError::result_of(server, reply.message)?;
        let protocol_version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(PROTOCOL_VERSION)
            .to_owned();
        let session_id = reply.session_id.unwrap_or_default();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let target = Target {
            session_id: Some(&session_id),
            protocol_version: Some(&protocol_version),
            ..target
        };
        self.http
            .notify(target, &initialized)
            .await
            .map_err(upstream_error)?;
        Ok(StoredSession {
            session_id,
            protocol_version,
            created_at_ms: now_ms(),
            created_by: self.replica.clone(),
            capabilities: result.get("capabilities").cloned().unwrap_or(Value::Null),
            server_info: result.get("serverInfo").cloned().unwrap_or(Value::Null),
        })
    }

    /// Forgets the session `stale` of `route`: here, and in the store if it
    /// still holds that one.
    async fn forget(&self, route: &Route<'_>, stale: &str) -> Result<(), CallError> {
        let key = (route.upstream.name.clone(), route.context.clone());
        if self
            .live
            .get(&key)
            .await
            .is_some_and(|live| live.stored.session_id == stale)
        {
            self.live.invalidate(&key).await;
        }
        self.store
            .delete_if(&route.upstream.name, &route.context, stale)
            .await
            .map_err(self.store_error(route))?;
        Ok(())
    }

    /// Renews the stored session's TTL if a quarter of it passed since the
    /// last renewal, without waiting for Redis; stores it again if Redis
    /// lost it (a failover or an eviction), so that other replicas and a
    /// restarted hub find it.
    fn renew(&self, route: &Route<'_>, session: &Arc<LiveSession>) {
        {
            let mut renewed = session.renewed.lock();
            if renewed.elapsed() < self.ttl / 4 {
                return;
            }
            *renewed = Instant::now();
        }
        let store = self.store.clone();
        let (server, context, ttl) = (route.upstream.name.clone(), route.context.clone(), self.ttl);
        let stored = session.stored.clone();
        tokio::spawn(async move {
            let renewed = match store.touch(&server, &context, ttl).await {
                Ok(true) => Ok(()),
                // Lost by Redis: stored again (without the upstream's capabilities
                // and server info, which this replica does not keep).
                Ok(false) => store.put(&server, &context, &stored, ttl).await,
                Err(error) => Err(error),
            };
            if let Err(error) = renewed {
                tracing::warn!(upstream = %server, %error, "could not renew the upstream session's TTL");
            }
        });
    }

    /// Deletes the stored session of `server` for `context` and ends it
    /// upstream, so that every replica that still holds it in memory gets
    /// `404` and re-establishes; the deleted session, if there was one.
    ///
    /// # Errors
    /// [`CallError::Store`] when Redis does not answer (an upstream that
    /// cannot be told is only logged).
    pub async fn end_session(
        &self,
        upstream: &Upstream,
        context: &ContextKey,
    ) -> Result<Option<StoredSession>, CallError> {
        self.live
            .invalidate(&(upstream.name.clone(), context.clone()))
            .await;
        let deleted = self
            .store
            .delete(&upstream.name, context)
            .await
            .map_err(|source| CallError::Store {
                server: upstream.name.clone(),
                source,
            })?;
        if let Some(session) = &deleted
            && !session.session_id.is_empty()
        {
            let target = Target {
                upstream,
                session_id: Some(&session.session_id),
                protocol_version: Some(&session.protocol_version),
                forwarded: &[],
            };
            if let Err(error) = self.http.delete_session(target).await {
                tracing::warn!(upstream = %upstream.name, %error, "could not end the upstream session upstream; replicas holding it keep using it until it expires there");
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
impl Upstreams {
    /// The upstreams of `config` on a store in memory, for unit tests.
    pub(crate) fn in_memory(config: &crate::config::HubConfig) -> Self {
        Self::new(
            store::MemoryUpstreamStore::new(),
            ContextKeys::new("k"),
            config.session_ttl,
            "r1",
            HubMetrics::default(),
            config.client_sessions.egress.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HubConfig;

    fn principal<'a>(user: &'a str, subject: &'a str) -> Principal<'a> {
        Principal {
            user,
            subject,
            session: Some("s1"),
        }
    }

    #[test]
    fn routes_carry_forwarded_and_mapped_credentials_into_the_context_key() {
        let config = HubConfig::from_json(
            r#"{"servers": {"gh": {"url": "http://gh/mcp", "forward_headers": ["authorization"],
                "user_headers": {"alice": {"x-gh-token": "alice-token"}}}}}"#,
            &|_| None,
            false,
        )
        .unwrap();
        let upstreams = Upstreams::in_memory(&config);
        let gh = &config.servers["gh"];
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer a"));
        headers.insert("cookie", HeaderValue::from_static("not forwarded"));
        let alice = upstreams.route(gh, principal("ha", "alice"), &headers);
        let names: Vec<&str> = alice.forwarded.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["authorization", "x-gh-token"]);
        assert!(
            alice
                .forwarded
                .iter()
                .all(|(_, value)| value.is_sensitive())
        );
        let bob = upstreams.route(gh, principal("hb", "bob"), &headers);
        assert_eq!(bob.forwarded.len(), 1, "bob has no mapped credential");
        // Another forwarded value, another upstream session.
        headers.insert("authorization", HeaderValue::from_static("Bearer b"));
        let alice_again = upstreams.route(gh, principal("ha", "alice"), &headers);
        assert_ne!(alice.context, alice_again.context);
        assert_ne!(alice.context, bob.context);
    }
}
