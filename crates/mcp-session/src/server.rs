//! The HTTP server: routes, middleware, session clean-up and graceful shutdown.
//!
//! [`McpServer`] assembles one service: its rmcp handler factory, the
//! [`Config`], and a [`SessionStore`]. [`McpServer::bind`] opens the listener
//! (so a test can learn the port), and [`BoundServer::run`] serves until a
//! shutdown signal, then scales in gracefully (see [`shutdown`](crate::shutdown)).
//!
//! ```text
//! TCP ─▶ axum Router ─▶ observe_requests ─┬─ auth (Caller, or 401) ─┬─ /mcp ─────────▶ transport::streamable_http ─▶ rmcp ─▶ ServerHandler
//!        (request id, log line, metrics)  │                         ├─ /sse, /messages ▶ transport::sse ─────────────▶ rmcp ─▶ ServerHandler
//!                                         │                         └─ /admin/… ───────▶ admin (admins only)
//!                                         ├─ /healthz, /readyz ▶ health
//!                                         ├─ /metrics ▶ metrics (unless METRICS_ENABLED=false)
//!                                         └─ /.well-known/oauth-protected-resource ▶ auth (RFC 9728)
//! ```

use std::{
    future::{Future, IntoFuture},
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use axum::{
    Extension, Router,
    extract::{DefaultBodyLimit, Request},
    http::StatusCode,
    middleware::{self, Next},
    response::Response,
    routing::{any, get, post},
    serve::ListenerExt,
};
use rmcp::{
    ServerHandler,
    transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig},
};
use tokio::net::TcpListener;

use crate::{
    admin,
    auth::{self, Authenticator},
    config::Config,
    fleet::connection::RedisConnection,
    fleet::{
        Announcer, EventSettings, FleetBus, FleetEventStore, FleetSessionManager, FleetStore,
        Locals, RedisStore, SessionCache, refresh_interval,
    },
    health::{self, ReadinessCheck},
    identity::Caller,
    metered_store::MeteredStore,
    metrics::{self, Metrics},
    request_state::RequestStateConfig,
    shutdown::Lifecycle,
    store::{MemoryStore, SessionStore},
    telemetry,
    transport::{
        sse::{self, SseTransport},
        streamable_http::{self, StreamableHttp},
    },
};

/// State shared by every route of one server.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn SessionStore>,
    /// What this replica holds of sessions: rmcp workers, SSE streams,
    /// standalone-stream connections, pending server-to-client requests.
    pub(crate) locals: Arc<Locals>,
    /// The Redis bus to the other replicas; `None` without Redis.
    pub(crate) bus: Option<Arc<FleetBus>>,
    /// The SSE event store of the fleet; `None` without Redis.
    pub(crate) events: Option<Arc<FleetEventStore>>,
    /// The shutdown sequence's state (see [`shutdown`](crate::shutdown)).
    pub(crate) lifecycle: Lifecycle,
    /// This server's Prometheus metrics.
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) service_name: String,
    pub(crate) service_version: String,
    /// When this server was bound (for uptime).
    pub(crate) started: Instant,
    /// The service's own readiness checks (its database, its upstream API).
    pub(crate) readiness: Vec<ReadinessCheck>,
    /// The keys that seal MRTR `requestState` (see [`crate::request_state`]).
    pub(crate) request_state: RequestStateConfig,
}

/// The servers of this process by replica id, for tool calls that reach a
/// handler without their request's server handle (HTTP+SSE messages
/// forwarded from another replica). Weak: a stopped server is forgotten.
static SERVERS: Mutex<Vec<(String, Weak<Shared>)>> = Mutex::new(Vec::new());

fn register(shared: &Arc<Shared>) {
    let mut servers = SERVERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    servers.retain(|(_, server)| server.strong_count() > 0);
    servers.push((shared.config.replica_id.clone(), Arc::downgrade(shared)));
}

/// The running server of replica `replica_id` in this process, if any.
pub(crate) fn shared_for_replica(replica_id: &str) -> Option<Arc<Shared>> {
    SERVERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .rev()
        .filter(|(id, _)| id == replica_id)
        .find_map(|(_, server)| server.upgrade())
}

/// Makes `ring` the process's rustls crypto provider. Two providers are
/// linked (`ring` for Redis and PostgreSQL TLS, `aws-lc-rs` for HTTPS JWKS
/// downloads), and rustls picks none by itself when it has two: a
/// `rediss://` connection would fail without this. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One MCP service, ready to bind: a handler factory plus configuration.
///
/// `S` is the service's rmcp [`ServerHandler`]; the factory makes one per
/// session (and one per stateless request), so it should be cheap: clone
/// `Arc`s of shared resources such as a database pool into it.
pub struct McpServer<S> {
    name: String,
    version: String,
    factory: Arc<dyn Fn() -> S + Send + Sync>,
    config: Config,
    store: Option<Arc<dyn SessionStore>>,
    readiness: Vec<ReadinessCheck>,
}

impl<S: ServerHandler> McpServer<S> {
    /// A server for the service `name` (for logs and health output) at
    /// `version`, making handlers with `factory`, configured by `config`.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        config: Config,
        factory: impl Fn() -> S + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            factory: Arc::new(factory),
            config,
            store: None,
            readiness: Vec::new(),
        }
    }

    /// Adds a readiness check: `GET /readyz` answers `503` while `check`
    /// fails, with its name and message in the body (see [`health`](crate::health)).
    /// For what a service cannot serve without, such as its database; the
    /// check runs on every probe (every few seconds), so keep it cheap, and
    /// its message is shown to whoever can reach `/readyz`, so keep secrets
    /// out of it.
    pub fn with_readiness_check<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.readiness.push(ReadinessCheck::new(name, check));
        self
    }

    /// Uses `store` instead of the store the configuration selects.
    pub fn with_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Opens the listener on `MCP_SERVER_HOST:MCP_SERVER_PORT`.
    ///
    /// # Errors
    /// The I/O error of binding (address in use, permission denied, unknown host).
    pub async fn bind(self) -> io::Result<BoundServer> {
        install_crypto_provider();
        let auth = Authenticator::new(&self.config.auth, &self.name)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?;
        let address = format!("{}:{}", self.config.host, self.config.port);
        let listener = TcpListener::bind(&address).await.map_err(|error| {
            io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
        })?;
        telemetry::set_replica_id(&self.config.replica_id);
        let metrics = Arc::new(Metrics::new(
            &self.name,
            &self.version,
            &self.config.replica_id,
        ));
        let (store, redis) = match self.store {
            Some(store) => (store, None),
            None => default_store(&self.config, &metrics)?,
        };
        // A fleet shares its sessions through Redis: each replica caches the
        // records it serves, and announces every change to the others.
        let (cache, announcer) = match &redis {
            Some(redis) => (
                Arc::new(SessionCache::new(refresh_interval(
                    self.config.session_cache,
                    self.config.session_ttl,
                ))),
                Some(Arc::new(Announcer::new(
                    redis.clone(),
                    &self.name,
                    &self.config.replica_id,
                ))),
            ),
            None => (Arc::new(SessionCache::disabled()), None),
        };
        let store: Arc<dyn SessionStore> = match &announcer {
            Some(announcer) => Arc::new(FleetStore::new(
                store,
                cache.clone(),
                announcer.clone(),
                metrics.clone(),
            )),
            None => store,
        };
        let store: Arc<dyn SessionStore> = Arc::new(MeteredStore::new(store, metrics.clone()));
        let mut session_config = SessionConfig::default();
        session_config.keep_alive = Some(self.config.session_ttl.min(MAX_WORKER_IDLE));
        let mut workers = LocalSessionManager::default();
        workers.session_config = session_config;
        let settings = EventSettings {
            session_ttl: self.config.session_ttl,
            retention: self.config.event_retention,
            buffer_bytes: self.config.event_buffer_bytes,
        };
        let events = redis
            .as_ref()
            .zip(announcer.as_ref())
            .map(|(redis, announcer)| {
                FleetEventStore::new(
                    redis.clone(),
                    &self.name,
                    settings,
                    announcer.clone(),
                    metrics.clone(),
                )
            });
        if let Some(events) = &events {
            workers = workers.with_event_store(events.clone());
        }
        let locals = Arc::new(Locals::new(workers, cache));
        let bus = match (redis, announcer, &events) {
            (Some(redis), Some(announcer), Some(events)) => Some(
                FleetBus::join(
                    redis,
                    &self.name,
                    &self.config.replica_id,
                    locals.clone(),
                    store.clone(),
                    announcer,
                    events.clone(),
                    metrics.clone(),
                )
                .await,
            ),
            _ => None,
        };
        let lifecycle = Lifecycle::default();
        let manager = FleetSessionManager::new(
            locals.clone(),
            bus.clone().zip(events.clone()),
            metrics.clone(),
            lifecycle.handing_off().clone(),
        );
        let request_state = request_state_keys(&self.config);
        let shared = Arc::new(Shared {
            config: self.config,
            store,
            locals,
            bus,
            events,
            lifecycle,
            metrics,
            service_name: self.name,
            service_version: self.version,
            started: Instant::now(),
            readiness: self.readiness,
            request_state,
        });
        register(&shared);
        let auth = Arc::new(auth);
        let router = router(shared.clone(), auth.clone(), self.factory, manager);
        Ok(BoundServer {
            listener,
            router,
            shared,
            auth,
        })
    }
}

/// Longest idle time of an in-memory session worker; a worker evicted earlier
/// than its session's TTL is restored from the store on the next request.
const MAX_WORKER_IDLE: Duration = Duration::from_secs(300);

/// The store `config` selects: Redis when `REDIS_URL` is set (returned too,
/// for the fleet bus), else memory.
fn default_store(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> io::Result<(Arc<dyn SessionStore>, Option<RedisConnection>)> {
    let Some(url) = &config.redis_url else {
        let mut store = MemoryStore::new(config.session_ttl);
        if let Some(limit) = config.max_sessions_per_user {
            store = store.with_max_sessions_per_user(limit);
        }
        return Ok((Arc::new(store), None));
    };
    let redis = RedisConnection::connect(url, config.redis_pool_size, config.redis_command_timeout)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?
        .with_metrics(metrics.clone());
    let store = RedisStore::new(redis.clone(), config.session_ttl)
        .with_max_sessions_per_user(config.max_sessions_per_user);
    Ok((Arc::new(store), Some(redis)))
}

/// The `requestState` keys: the configured ones; without any, a random key
/// for a single replica (no `REDIS_URL`), and none for a fleet, where a
/// state sealed here could not be opened by another replica.
fn request_state_keys(config: &Config) -> RequestStateConfig {
    let configured = &config.request_state;
    if configured.has_key() {
        tracing::info!(key_ids = ?configured.key_ids(), "requestState keys configured");
        configured.clone()
    } else if config.redis_url.is_none() {
        RequestStateConfig::random(configured.ttl)
    } else {
        tracing::info!(
            "MCP_REQUEST_STATE_KEY is not set: tools that return MRTR requestState (protocol 2026-07-28) will refuse to seal it"
        );
        configured.clone()
    }
}

/// Middleware: logs each request that named a session the caller does not
/// have (unknown, expired, deleted, or another user's: all alike `404`),
/// with the caller's user hash prefix, never a credential.
async fn note_unknown_sessions(request: Request, next: Next) -> Response {
    let session = telemetry::named_session(&request);
    let caller = request.extensions().get::<Caller>().cloned();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    if response.status() == StatusCode::NOT_FOUND
        && let (Some(session_id), Some(caller)) = (session, caller)
    {
        tracing::info!(
            %method,
            %path,
            session_id,
            user = caller.user_hash.short(),
            principal = caller.kind.as_str(),
            "no such session for this caller (unknown, expired, or another user's)"
        );
    }
    response
}

fn router<S: ServerHandler>(
    shared: Arc<Shared>,
    auth: Arc<Authenticator>,
    factory: Arc<dyn Fn() -> S + Send + Sync>,
    manager: FleetSessionManager,
) -> Router {
    let streamable = Arc::new(StreamableHttp::new(factory.clone(), &shared, manager));
    let sse = Arc::new(SseTransport {
        shared: shared.clone(),
        factory,
    });
    let mcp_routes = Router::new()
        .route(
            "/mcp",
            any(streamable_http::handle::<S>).with_state((shared.clone(), streamable)),
        )
        .route("/sse", get(sse::open_stream::<S>))
        .route("/messages", post(sse::post_message::<S>))
        .route("/messages/", post(sse::post_message::<S>))
        .with_state(sse)
        .layer(middleware::from_fn(note_unknown_sessions))
        .merge(admin::routes(shared.clone()))
        .layer(middleware::from_fn_with_state(
            auth.clone(),
            auth::authenticate_requests,
        ))
        // Session tools find their server here (tools::session).
        .layer(Extension(shared.clone()));
    let metadata = auth::metadata_routes(auth);
    let mut probes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if shared.config.metrics_enabled {
        probes = probes.route("/metrics", get(metrics::scrape));
    }
    probes
        .with_state(shared.clone())
        .merge(metadata)
        .merge(mcp_routes)
        // Bodies are limited by the transports themselves (rmcp and
        // `sse::post_message`), which answer 413 with a clear message.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            shared,
            telemetry::observe_requests,
        ))
}

/// A server with its listener open, not yet serving.
pub struct BoundServer {
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    auth: Arc<Authenticator>,
}

impl BoundServer {
    /// The address the listener is bound to (useful with port `0`).
    ///
    /// # Errors
    /// The I/O error of reading the socket's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The session store the server uses.
    pub fn store(&self) -> Arc<dyn SessionStore> {
        self.shared.store.clone()
    }

    /// Serves until `shutdown` completes, then scales in gracefully (see
    /// [`shutdown`](crate::shutdown)): `/readyz` fails at once; after
    /// `SHUTDOWN_DRAIN_SECONDS` the listener closes and the streams held here
    /// end; requests in flight get up to `SHUTDOWN_GRACE_SECONDS` to finish.
    /// Returns `Ok` after a graceful shutdown, even one cut short by the
    /// grace period.
    ///
    /// # Errors
    /// The I/O error that stopped the listener.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let shared = self.shared;
        let cleanup = tokio::spawn(purge_expired_sessions(shared.clone()));
        tracing::info!(
            service = %shared.service_name,
            version = %shared.service_version,
            replica = %shared.config.replica_id,
            address = %self.listener.local_addr()?,
            store = shared.store.backend(),
            "serving MCP on /mcp (Streamable HTTP) and /sse (HTTP+SSE)"
        );
        self.auth.log_mode();
        self.auth.prefetch_keys();
        let handed_off = shared.lifecycle.handing_off().clone();
        let serving = axum::serve(
            // Responses are SSE streams written in small chunks: without
            // TCP_NODELAY, Nagle's algorithm and delayed ACKs hold each back
            // by ~40 ms.
            self.listener.tap_io(|tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
            }),
            // The peer address identifies anonymous callers (auth::anonymous).
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(handed_off.cancelled_owned())
        .into_future();
        let scaling = scale_in(&shared, shutdown);
        tokio::pin!(serving, scaling);
        let result = tokio::select! {
            result = &mut serving => {
                if !shared.lifecycle.is_draining() {
                    // The listener failed before any shutdown signal.
                    shared.lifecycle.stop();
                    cleanup.abort();
                    return result;
                }
                // Every connection closed during the shutdown: let it end.
                scaling.await;
                result
            }
            deadline = &mut scaling => {
                // Every stream has ended; connections close as their last
                // response does.
                match tokio::time::timeout_at(deadline, serving).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!("grace period over, exiting with connections open");
                        Ok(())
                    }
                }
            }
        };
        cleanup.abort();
        tracing::info!("shut down");
        result
    }
}

/// The shutdown sequence of [`BoundServer::run`], from the signal to the end
/// of rmcp's workers; returns the deadline of the grace period.
async fn scale_in(shared: &Shared, signal: impl Future<Output = ()>) -> tokio::time::Instant {
    signal.await;
    let lifecycle = &shared.lifecycle;
    let (drain, grace) = (shared.config.shutdown_drain, shared.config.shutdown_grace);
    lifecycle.start_draining();
    tracing::info!(
        drain_seconds = drain.as_secs(),
        grace_seconds = grace.as_secs(),
        "shutting down: /readyz fails, new SSE streams are refused"
    );
    tokio::time::sleep(drain).await;
    lifecycle.hand_off();
    // The response streams held here may be resumed elsewhere from now on.
    if let Some(events) = &shared.events {
        events.hand_off();
    }
    tracing::info!(
        sse_streams = shared.locals.sse.len(),
        in_flight = lifecycle.in_flight(),
        "stopped accepting; streams closed, clients reconnect to other replicas; finishing requests in flight"
    );
    let deadline = tokio::time::Instant::now() + grace;
    let left = lifecycle.finish_requests(deadline).await;
    if left > 0 {
        tracing::warn!(
            in_flight = left,
            grace_seconds = grace.as_secs(),
            "grace period over, stopping with requests in flight"
        );
    }
    lifecycle.stop();
    if !lifecycle.finish_tasks(deadline).await {
        tracing::warn!("grace period over before every SSE session was cleaned up");
    }
    if let Some(events) = &shared.events {
        events.drain(deadline).await;
    }
    deadline
}

/// Every `SESSION_CLEANUP_INTERVAL_SECONDS`, removes expired sessions from
/// stores that do not expire them by themselves.
async fn purge_expired_sessions(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(shared.config.session_cleanup_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let purged = shared.store.purge_expired().await;
        if purged > 0 {
            tracing::info!(purged, "expired sessions removed");
        }
    }
}

/// Completes on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
