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

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{Extensions, StatusCode},
    middleware::{self, Next},
    response::Response,
};
use mcp_session_core::{
    session::HEADER_SESSION_ID,
    session_end::{SessionEndHook, SessionEndObserver},
};
use rmcp::ServerHandler;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

use crate::{
    admin::{self, AdminState},
    auth::{self, Authenticator},
    config::Config,
    connections,
    fleet::{Fleet, FleetSettings},
    health::{self, HealthState, ReadinessCheck},
    identity::Caller,
    metrics::Metrics,
    request_state::RequestStateConfig,
    service_context::ServiceContext,
    service_info::ServiceInfo,
    shutdown::Lifecycle,
    store::SessionStore,
    tasks::TaskRuntime,
    telemetry::{self, RequestObserver, ScrapeState},
    tools::session_tools::ToolsContext,
    transport::{self, TransportState},
};

/// Makes `ring` the process's rustls crypto provider. Two providers are
/// linked (`ring` for Redis and PostgreSQL TLS, `aws-lc-rs` for HTTPS JWKS
/// downloads), and rustls picks none by itself when it has two: a
/// `rediss://` connection would fail without this. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A service's registration of its own metrics ([`McpServer::with_metrics`]).
type MetricRegistration = Box<dyn FnOnce(&mut prometheus_client::registry::Registry) + Send>;

/// One MCP service, ready to bind: a handler factory plus configuration.
///
/// `S` is the service's rmcp [`ServerHandler`](rmcp::ServerHandler); the factory makes one per
/// session (and one per stateless request), so it should be cheap: clone
/// `Arc`s of shared resources such as a database pool into it. The
/// service's name and version (in logs, probes and `health_check`) are those
/// its handler reports in [`ServerHandler::get_info`] (`serverInfo`, MCP
/// 2025-06-18, Lifecycle §Initialization).
pub struct McpServer<S> {
    name: String,
    version: String,
    factory: Arc<dyn Fn() -> S + Send + Sync>,
    config: Config,
    store: Option<Arc<dyn SessionStore>>,
    readiness: Vec<ReadinessCheck>,
    /// The service's own routes, served behind authentication.
    routes: Router,
    /// The service's own routes served to anyone.
    public_routes: Router,
    /// Whether `/mcp/{scope}` is served too.
    scoped_endpoints: bool,
    /// Registers the service's own metrics.
    metric_registrations: Vec<MetricRegistration>,
    /// Told of the sessions deleted here.
    session_end: SessionEndHook,
}

impl<S: ServerHandler> McpServer<S> {
    /// A server making handlers with `factory`, configured by `config`.
    pub fn new(config: Config, factory: impl Fn() -> S + Send + Sync + 'static) -> Self {
        let info = factory().get_info().server_info;
        Self {
            name: info.name,
            version: info.version,
            factory: Arc::new(factory),
            config,
            store: None,
            readiness: Vec::new(),
            routes: Router::new(),
            public_routes: Router::new(),
            scoped_endpoints: false,
            metric_registrations: Vec::new(),
            session_end: SessionEndHook::default(),
        }
    }

    /// Tells `observer` of every session deleted on this replica (a
    /// client's `DELETE`, an HTTP+SSE stream closed for good, an admin's
    /// deletion; not an expiry), once, on the replica that deleted it: for a
    /// service that holds something per session elsewhere (the hub's
    /// upstream sessions).
    pub fn on_session_end(mut self, observer: Arc<dyn SessionEndObserver>) -> Self {
        self.session_end = SessionEndHook::new(observer);
        self
    }

    /// Serves `routes` beside the MCP endpoints, behind the same
    /// authentication and with the same extensions: a handler finds the
    /// request's [`Caller`] in the request's extensions (an `Extension<Caller>`
    /// extractor), and checks [`Caller::is_admin`] itself where only admins may
    /// pass. For a service's own HTTP API (the hub's
    /// `/api/admin/upstream-sessions`); paths must not collide with the
    /// library's (`/mcp`, `/sse`, `/messages`, `/admin/…`, `/healthz`,
    /// `/readyz`, `/metrics`), or `bind` panics as axum does on overlapping
    /// routes.
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.routes = self.routes.merge(routes);
        self
    }

    /// Serves `routes` to anyone, without authentication: for what a
    /// browser loads before it can send a credential (the hub's `/console`
    /// page and its scripts) and public documents (`/api/openapi.json`).
    /// Request metrics and graceful shutdown apply as to every route; the
    /// same path rules as [`with_routes`](Self::with_routes).
    pub fn with_public_routes(mut self, routes: Router) -> Self {
        self.public_routes = self.public_routes.merge(routes);
        self
    }

    /// Also serves Streamable HTTP at `/mcp/{scope}` (one path segment), with
    /// the same handler factory: the handler reads the path of each request
    /// from the `http::request::Parts` rmcp puts in the request's extensions,
    /// and decides what `scope` means (the hub: a group of upstreams, or one
    /// upstream as a transparent proxy). Sessions are the same as on `/mcp`.
    pub fn with_scoped_endpoints(mut self) -> Self {
        self.scoped_endpoints = true;
        self
    }

    /// Registers the service's own metrics in the replica's registry, served
    /// by `GET /metrics` beside the library's; `register` runs once, in
    /// [`bind`](Self::bind). Name them with the service's prefix
    /// (`mcp_hub_…`), and keep label values bounded.
    pub fn with_metrics(
        mut self,
        register: impl FnOnce(&mut prometheus_client::registry::Registry) + Send + 'static,
    ) -> Self {
        self.metric_registrations.push(Box::new(register));
        self
    }

    /// Adds a readiness check: `GET /readyz` answers `503` while `check`
    /// fails, with its name and message in the body.
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

    /// Serves alone over `store` instead of the store the configuration
    /// selects (tests, or an application embedding the server).
    pub fn with_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Opens the listener on `MCP_SERVER_HOST:MCP_SERVER_PORT`, and joins
    /// the fleet when `REDIS_URL` is set.
    ///
    /// # Errors
    /// The I/O error of binding (address in use, permission denied, unknown
    /// host); `InvalidInput` for an unusable auth configuration or
    /// `REDIS_URL`.
    pub async fn bind(self) -> io::Result<BoundServer> {
        install_crypto_provider();
        let config = self.config;
        let invalid = |error: String| io::Error::new(io::ErrorKind::InvalidInput, error);
        let auth = Arc::new(
            Authenticator::new(&config.auth, &self.name).map_err(|e| invalid(e.to_string()))?,
        );
        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&address).await.map_err(|error| {
            io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
        })?;
        telemetry::set_replica_id(&config.replica_id);
        let mut metrics = Metrics::new(&self.name, &self.version, &config.replica_id);
        for register in self.metric_registrations {
            register(metrics.registry_mut());
        }
        let metrics = Arc::new(metrics);
        let mut settings = fleet_settings(&config, &self.name);
        settings.session_end = self.session_end;
        let fleet = match self.store {
            Some(store) => Fleet::solo(&settings, store, metrics.clone()),
            None => Fleet::start(&settings, metrics.clone())
                .await
                .map_err(|e| invalid(e.to_string()))?,
        };
        let service = Arc::new(ServiceInfo {
            name: self.name,
            version: self.version,
            replica_id: config.replica_id.clone(),
            started: Instant::now(),
        });
        let lifecycle = Arc::new(Lifecycle::default());
        let tasks = Arc::new(TaskRuntime::new(
            fleet.task_store().clone(),
            &config.replica_id,
        ));
        // What every request carries to the tools, and every message that
        // reaches a handler here from another replica.
        let mut lent = Extensions::new();
        lent.insert(Arc::new(ToolsContext {
            service: service.clone(),
            fleet: fleet.clone(),
            session_ttl: config.session_ttl,
        }));
        lent.insert(Arc::new(request_state_keys(&config)));
        lent.insert(fleet.clone());
        lent.insert(tasks.clone());
        let context = Arc::new(ServiceContext::new(lent));
        let mut forwarded = Extensions::new();
        forwarded.insert(context.clone());
        fleet.set_forwarded_extensions(forwarded);
        // Each group of routes gets its middleware as one layer: axum wraps
        // and boxes every route once per `Router::layer`, so one layer doing
        // everything costs a request one boxed future instead of one per
        // concern (docs/benchmarks.md, "Instructions per operation").
        let observer = Arc::new(RequestObserver {
            metrics,
            lifecycle: lifecycle.clone(),
        });
        let guarded = |note_unknown_sessions| {
            ServiceBuilder::new()
                // Bodies are limited by the transports themselves (rmcp and
                // `sse::post_message`), which answer 413 with a clear message.
                .layer(DefaultBodyLimit::disable())
                .layer(middleware::from_fn_with_state(
                    Arc::new(Gate {
                        observer: observer.clone(),
                        auth: auth.clone(),
                        context: context.clone(),
                        note_unknown_sessions,
                    }),
                    guard_requests,
                ))
        };
        let transport = transport::routes(
            TransportState::new(&config, fleet.clone(), lifecycle.clone()),
            self.factory,
            self.scoped_endpoints,
        )
        .layer(guarded(true));
        // Unknown paths answer as these routes do: 401 before 404.
        let protected = self
            .routes
            .merge(admin::routes(AdminState {
                fleet: fleet.clone(),
                session_ttl: config.session_ttl,
            }))
            .layer(guarded(false));
        let mut public = health::routes(HealthState {
            service: service.clone(),
            fleet: fleet.clone(),
            lifecycle: lifecycle.clone(),
            readiness: self.readiness,
        })
        .merge(auth::metadata_routes(auth.clone()))
        .merge(self.public_routes);
        if config.metrics_enabled {
            public = public.merge(telemetry::metrics_routes(ScrapeState {
                metrics: observer.metrics.clone(),
                fleet: fleet.clone(),
                lifecycle: lifecycle.clone(),
            }));
        }
        let router = public
            .layer(
                ServiceBuilder::new()
                    .layer(DefaultBodyLimit::disable())
                    .layer(middleware::from_fn_with_state(
                        observer,
                        telemetry::observe_requests,
                    )),
            )
            .merge(transport)
            .merge(protected);
        Ok(BoundServer {
            listener,
            router,
            fleet,
            lifecycle,
            service,
            config,
            auth,
            tasks,
        })
    }
}

/// The fleet `config` describes, for the service `service`.
fn fleet_settings(config: &Config, service: &str) -> FleetSettings {
    FleetSettings {
        service: service.to_owned(),
        replica_id: config.replica_id.clone(),
        redis_url: config.redis_url.clone(),
        redis_pool_size: config.redis_pool_size,
        redis_command_timeout: config.redis_command_timeout,
        session_ttl: config.session_ttl,
        session_cache: config.session_cache,
        session_cache_outage: config.session_cache_outage,
        session_worker_idle: config.session_worker_idle,
        max_sessions_per_user: config.max_sessions_per_user,
        event_buffer_bytes: config.event_buffer_bytes,
        event_retention: config.event_retention,
        sse_reconnect_grace: config.sse_reconnect_grace,
        session_end: SessionEndHook::default(),
    }
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

/// What [`guard_requests`] does around the routes behind authentication.
struct Gate {
    observer: Arc<RequestObserver>,
    auth: Arc<Authenticator>,
    /// What every request carries to the tools.
    context: Arc<ServiceContext>,
    /// Whether a `404` to a request naming a session is logged (the
    /// transports' routes).
    note_unknown_sessions: bool,
}

/// Middleware of the routes behind authentication, in one future: observes
/// the request (`telemetry::observe_requests`), gives it the
/// [`ServiceContext`], authenticates it (`401`, or its [`Caller`] in its
/// extensions), then answers it, noting unknown sessions on the transports.
async fn guard_requests(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let gate = &*gate;
    telemetry::observe(&gate.observer, request, move |mut request| async move {
        request.extensions_mut().insert(gate.context.clone());
        auth::admit(&gate.auth, request, move |request| async move {
            if gate.note_unknown_sessions {
                note_unknown_sessions(request, next).await
            } else {
                next.run(request).await
            }
        })
        .await
    })
    .await
}

/// Logs each request that named a session the caller does not have
/// (unknown, expired, deleted, or another user's: all alike `404`), with
/// the caller's user hash prefix, never a credential.
async fn note_unknown_sessions(request: Request, next: Next) -> Response {
    // What the line needs, kept cheaply (shared buffers, no parsing) for
    // the rare `404`.
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let session_header = request.headers().get(HEADER_SESSION_ID).cloned();
    let caller = request
        .extensions()
        .get::<Caller>()
        .map(|caller| (caller.user_hash.clone(), caller.kind));
    let response = next.run(request).await;
    if response.status() == StatusCode::NOT_FOUND
        && let Some((user_hash, kind)) = caller
        && let Some(session_id) = telemetry::session_named_by(session_header.as_ref(), &uri)
    {
        tracing::info!(
            %method,
            path = uri.path(),
            session_id,
            user = user_hash.short(),
            principal = kind.as_str(),
            "no such session for this caller (unknown, expired, or another user's)"
        );
    }
    response
}

/// A server with its listener open, not yet serving.
pub struct BoundServer {
    listener: TcpListener,
    router: Router,
    fleet: Fleet,
    lifecycle: Arc<Lifecycle>,
    service: Arc<ServiceInfo>,
    config: Config,
    auth: Arc<Authenticator>,
    tasks: Arc<TaskRuntime>,
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
        self.fleet.store().clone()
    }

    /// Serves until `shutdown` completes, then scales in gracefully (see
    /// docs/operations.md, Scale-in): `/readyz` fails at once; after
    /// `SHUTDOWN_DRAIN_SECONDS` the listener closes and the streams held here
    /// end; requests in flight get up to `SHUTDOWN_GRACE_SECONDS` to finish.
    /// Returns `Ok` after a graceful shutdown, even one cut short by the
    /// grace period.
    ///
    /// Accept errors (such as running out of file descriptors) are retried,
    /// never fatal; connections are served as the `connections` module
    /// says (`HTTP_HEADER_READ_TIMEOUT_SECONDS`).
    ///
    /// # Errors
    /// The listener's address cannot be read.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let (fleet, lifecycle) = (self.fleet, self.lifecycle);
        let cleanup = tokio::spawn(purge_expired_sessions(
            fleet.store().clone(),
            self.config.session_cleanup_interval,
        ));
        tracing::info!(
            service = %self.service.name,
            version = %self.service.version,
            replica = %self.service.replica_id,
            address = %self.listener.local_addr()?,
            store = fleet.store().backend(),
            "serving MCP on /mcp (Streamable HTTP) and /sse (HTTP+SSE)"
        );
        self.auth.log_mode();
        self.auth.prefetch_keys();
        let handed_off = lifecycle.handing_off().clone();
        let serving = connections::serve(
            self.listener,
            self.router,
            self.config.header_read_timeout,
            handed_off.cancelled_owned(),
        );
        let scaling = scale_in(&fleet, &lifecycle, &self.tasks, &self.config, shutdown);
        tokio::pin!(serving, scaling);
        tokio::select! {
            () = &mut serving => {
                // Every connection closed during the shutdown: let it end.
                scaling.await;
            }
            deadline = &mut scaling => {
                // Every stream has ended; connections close as their last
                // response does.
                if tokio::time::timeout_at(deadline, serving).await.is_err() {
                    tracing::warn!("grace period over, exiting with connections open");
                }
            }
        };
        cleanup.abort();
        tracing::info!("shut down");
        Ok(())
    }
}

/// The shutdown sequence of [`BoundServer::run`], from the signal to the end
/// of rmcp's workers; returns the deadline of the grace period.
async fn scale_in(
    fleet: &Fleet,
    lifecycle: &Lifecycle,
    tasks: &TaskRuntime,
    config: &Config,
    signal: impl Future<Output = ()>,
) -> tokio::time::Instant {
    signal.await;
    let (drain, grace) = (config.shutdown_drain, config.shutdown_grace);
    lifecycle.start_draining();
    tracing::info!(
        drain_seconds = drain.as_secs(),
        grace_seconds = grace.as_secs(),
        "shutting down: /readyz fails, new SSE streams are refused"
    );
    tokio::time::sleep(drain).await;
    lifecycle.hand_off();
    // The response streams held here may be resumed elsewhere from now on.
    fleet.hand_off();
    tracing::info!(
        sse_streams = fleet.sse_streams().len(),
        in_flight = lifecycle.in_flight(),
        "stopped accepting; streams closed, clients reconnect to other replicas; finishing requests in flight"
    );
    let deadline = tokio::time::Instant::now() + grace;
    let (left, ()) = tokio::join!(lifecycle.finish_requests(deadline), tasks.finish(deadline));
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
    fleet.drain(deadline).await;
    deadline
}

/// Every `SESSION_CLEANUP_INTERVAL_SECONDS`, removes expired sessions from
/// stores that do not expire them by themselves.
async fn purge_expired_sessions(store: Arc<dyn SessionStore>, every: std::time::Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let purged = store.purge_expired().await;
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
