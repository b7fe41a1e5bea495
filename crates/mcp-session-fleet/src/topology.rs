//! [`Fleet`]: the one value that says whether this replica serves alone or as
//! one of a fleet on Redis, built in one place from the settings, so that no
//! caller ever checks for a bus, an event store or a Redis connection.
//!
//! | | solo (no `REDIS_URL`, or a given store) | Redis |
//! |---|---|---|
//! | session store | memory (or the given one) | [`RedisStore`] behind this replica's [`SessionCache`] ([`FleetStore`]) |
//! | task store (SEP-2663) | memory | [`RedisTaskStore`] |
//! | rmcp workers | restored from the store | the same, plus the fleet bus for what one replica holds |
//! | HTTP+SSE message for a stream held elsewhere | no such stream: [`Delivery::Gone`] | sent to the holder's channel |
//! | response streams (`Last-Event-ID`) | rmcp's, in this process | [`FleetEventStore`]: memory, then Redis Streams |
//! | readiness | always joined | joined once subscribed |
//! | shutdown hand-off | nothing to hand | running and finished streams written to Redis |
//!
//! Every counter goes to the same [`Metrics`], and every store is wrapped in
//! a [`MeteredStore`] that counts its failures.

use std::{sync::Arc, time::Duration};

use mcp_session_core::{
    identity::Caller,
    metered_store::MeteredStore,
    metrics::Metrics,
    session_end::SessionEndHook,
    store::{MemoryStore, SessionRecord, SessionStore, StoreError},
    task_store::{MemoryTaskStore, TaskStore},
};
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig},
};

use crate::{
    Announcer, ChangeFollower, ChangeInterest, ChangeNotice, Delivery, EventSettings, FleetBus,
    FleetEventStore, FleetStore, HeldSessions, RedisConnection, RedisStore, RedisTaskStore,
    SessionCache, SseStreams, StreamOwner, refresh_interval, sse_reaper::SseRegistry,
};

/// What a [`Fleet`] is built from (the library's `Config` fills it in).
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// The service's name: it names the fleet's channels and keys.
    pub service: String,
    /// This replica's id.
    pub replica_id: String,
    /// Where the fleet meets: `redis://`, `rediss://`, `redis-cluster://` or
    /// `rediss-cluster://` (see [`RedisConnection::connect`]); `None`: this
    /// replica serves alone, its sessions in memory.
    pub redis_url: Option<String>,
    /// Redis connections of this replica.
    pub redis_pool_size: usize,
    /// Longest wait for one Redis command.
    pub redis_command_timeout: Duration,
    /// Idle time before a session expires.
    pub session_ttl: Duration,
    /// How long this replica serves a record from its cache (see
    /// [`refresh_interval`]).
    pub session_cache: Duration,
    /// How long past its refresh a cached record is still served while
    /// Redis cannot be reached (see [`cache`](crate::cache)).
    pub session_cache_outage: Duration,
    /// How long a session's worker stays in this replica's memory after its
    /// last message (at most `session_ttl`); the next request restores it.
    pub session_worker_idle: Duration,
    /// Live sessions one user may hold.
    pub max_sessions_per_user: Option<usize>,
    /// Bytes of response-stream events held in memory before they move to
    /// Redis.
    pub event_buffer_bytes: usize,
    /// How long a response stream stays resumable after its last event.
    pub event_retention: Duration,
    /// Who is told of the sessions deleted on this replica (none by
    /// default).
    pub session_end: SessionEndHook,
    /// How long an HTTP+SSE session whose stream ended stays for its client
    /// to reconnect; also how long a replica must be gone before the fleet
    /// ends the sessions it held (see [`sse_reaper`](crate::sse_reaper)).
    pub sse_reconnect_grace: Duration,
}

/// Why a [`Fleet`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// `REDIS_URL` is not a Redis URL this client can use (the message never
    /// carries the URL's password).
    #[error("REDIS_URL: {0}")]
    RedisUrl(String),
}

/// How this replica relates to the others: alone, or one of a fleet on Redis.
/// Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    replica_id: String,
    store: Arc<dyn SessionStore>,
    tasks: Arc<dyn TaskStore>,
    held: Arc<HeldSessions>,
    mode: Mode,
    metrics: Arc<Metrics>,
}

/// What a replica of a fleet has beyond a solo one.
pub(crate) enum Mode {
    Solo,
    Redis {
        bus: Arc<FleetBus>,
        events: Arc<FleetEventStore>,
        sse: SseRegistry,
    },
}

fn workers(settings: &FleetSettings) -> LocalSessionManager {
    let mut config = SessionConfig::default();
    // A worker dropped before its session's TTL is restored from the store
    // by the session's next request.
    config.keep_alive = Some(settings.session_ttl.min(settings.session_worker_idle));
    let mut workers = LocalSessionManager::default();
    workers.session_config = config;
    workers
}

impl Fleet {
    /// Builds the fleet `settings` describe: with a Redis URL, connects
    /// (in the background: a replica may start while Redis is down, not
    /// ready until it is back), joins the fleet's channels (waiting up to
    /// 5 s for the subscriptions), and shares sessions through Redis;
    /// without one, a solo replica with sessions in memory.
    ///
    /// # Errors
    /// [`FleetError::RedisUrl`] when the URL cannot be used.
    pub async fn start(
        settings: &FleetSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, FleetError> {
        let Some(url) = &settings.redis_url else {
            let mut store = MemoryStore::new(settings.session_ttl);
            if let Some(limit) = settings.max_sessions_per_user {
                store = store.with_max_sessions_per_user(limit);
            }
            return Ok(Self::solo(settings, Arc::new(store), metrics));
        };
        let redis = RedisConnection::connect(
            url,
            settings.redis_pool_size,
            settings.redis_command_timeout,
        )
        .map_err(|error| FleetError::RedisUrl(error.to_string()))?
        .with_metrics(metrics.clone());
        let tasks: Arc<dyn TaskStore> = Arc::new(RedisTaskStore::new(redis.clone()));
        let store = RedisStore::new(redis.clone(), settings.session_ttl)
            .with_max_sessions_per_user(settings.max_sessions_per_user);
        // Each replica caches the records it serves, and announces every
        // change to the others.
        let cache = Arc::new(SessionCache::new(
            refresh_interval(settings.session_cache, settings.session_ttl),
            settings.session_cache_outage,
        ));
        tokio::spawn(SessionCache::sweep_forever(Arc::downgrade(&cache)));
        let announcer = Arc::new(Announcer::new(
            redis.clone(),
            &settings.service,
            &settings.replica_id,
        ));
        let fleet_store = Arc::new(
            FleetStore::new(
                Arc::new(store),
                cache.clone(),
                announcer.clone(),
                metrics.clone(),
            )
            .writing_back_lost_sessions(redis.clone(), &settings.service),
        );
        tokio::spawn({
            let fleet_store = fleet_store.clone();
            async move { fleet_store.remember_the_store().await }
        });
        let store: Arc<dyn SessionStore> = settings.session_end.wrap(Arc::new(MeteredStore::new(
            fleet_store.clone(),
            metrics.clone(),
        )));
        let events = FleetEventStore::new(
            redis.clone(),
            &settings.service,
            EventSettings {
                session_ttl: settings.session_ttl,
                retention: settings.event_retention,
                buffer_bytes: settings.event_buffer_bytes,
            },
            announcer.clone(),
            metrics.clone(),
        );
        let workers = workers(settings).with_event_store(events.clone());
        let held = Arc::new(HeldSessions::new(workers, cache));
        let sse = SseRegistry::new(redis.clone(), &settings.service, &settings.replica_id);
        tokio::spawn(
            sse.clone()
                .reap_forever(store.clone(), settings.sse_reconnect_grace),
        );
        let bus = FleetBus::join(
            redis,
            &settings.service,
            &settings.replica_id,
            held.clone(),
            store.clone(),
            announcer,
            events.clone(),
            metrics.clone(),
        )
        .await;
        Ok(Self {
            inner: Arc::new(Inner {
                replica_id: settings.replica_id.clone(),
                store,
                tasks,
                held,
                mode: Mode::Redis { bus, events, sse },
                metrics,
            }),
        })
    }

    /// A replica serving alone over `store` (in memory, or one a test or an
    /// embedding application provides).
    pub fn solo(
        settings: &FleetSettings,
        store: Arc<dyn SessionStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let held = Arc::new(HeldSessions::new(
            workers(settings),
            Arc::new(SessionCache::disabled()),
        ));
        Self {
            inner: Arc::new(Inner {
                replica_id: settings.replica_id.clone(),
                store: settings
                    .session_end
                    .wrap(Arc::new(MeteredStore::new(store, metrics.clone()))),
                tasks: Arc::new(MemoryTaskStore::new()),
                held,
                mode: Mode::Solo,
                metrics,
            }),
        }
    }

    /// Where tasks (SEP-2663) live: in Redis for a fleet, so that any
    /// replica reads, updates and cancels any task; in memory alone.
    pub fn task_store(&self) -> &Arc<dyn TaskStore> {
        &self.inner.tasks
    }

    /// The session store every request goes through: counted in the
    /// metrics, and with Redis cached here and announced to the fleet.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.inner.replica_id
    }

    /// The HTTP+SSE streams held by this replica.
    pub fn sse_streams(&self) -> &SseStreams {
        &self.inner.held.sse
    }

    /// Extensions added to the HTTP request parts of every message that
    /// reaches a handler here from another replica (the server's own
    /// request extensions, which its tools read); set once at start-up.
    pub fn set_forwarded_extensions(&self, extensions: http::Extensions) {
        self.inner.held.set_extensions(extensions);
    }

    /// Whether other replicas can reach this one: subscribed to the fleet's
    /// channels (always, for a solo replica).
    pub fn is_joined(&self) -> bool {
        match &self.inner.mode {
            Mode::Solo => true,
            Mode::Redis { bus, .. } => bus.is_joined(),
        }
    }

    /// Ends what this replica holds of session `id` after its record was
    /// deleted here. With Redis the deletion's announcement already did so
    /// on every replica, this one included.
    pub async fn session_deleted(&self, id: &str) {
        if matches!(self.inner.mode, Mode::Solo) {
            self.inner.held.close_session(id).await;
        }
    }

    /// Whether the handler refused session `id`'s `initialize` on this
    /// replica (told once): rmcp hands such a session to the store after
    /// its answer all the same, and the store must not keep it, or the
    /// client's next request naming it would reach rmcp instead of getting
    /// `404`.
    pub fn take_failed_handshake(&self, id: &str) -> bool {
        self.inner.held.take_failed_handshake(id)
    }

    /// Closes this replica's rmcp worker of session `id`, if any.
    pub async fn close_worker(&self, id: &str) {
        let id: Arc<str> = id.into();
        if let Err(error) = rmcp::transport::streamable_http_server::SessionManager::close_session(
            self.inner.held.workers.as_ref(),
            &id,
        )
        .await
        {
            tracing::debug!(session_id = %id, %error, "closing local worker");
        }
    }

    /// Sends an HTTP+SSE `message` of `caller`'s session `session_id` to
    /// replica `holder`, which holds its stream.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn forward_to_stream(
        &self,
        holder: &str,
        caller: &Caller,
        record: SessionRecord,
        message: ClientJsonRpcMessage,
    ) -> Result<Delivery, StoreError> {
        let Mode::Redis { bus, .. } = &self.inner.mode else {
            return Ok(Delivery::Gone);
        };
        bus.send_sse_message(holder, caller.clone(), record, message)
            .await
    }

    /// Whether response streams are kept for resumption on another replica
    /// (with Redis): only then do [`stream_opened`](Self::stream_opened)
    /// and [`stream_disconnected`](Self::stream_disconnected) matter.
    pub fn shares_streams(&self) -> bool {
        matches!(self.inner.mode, Mode::Redis { .. })
    }

    /// Binds request response stream `stream_id` to `owner`, the only one
    /// who may resume it.
    pub fn stream_opened(&self, stream_id: &str, owner: StreamOwner) {
        if let Mode::Redis { events, .. } = &self.inner.mode {
            events.bind(stream_id, owner);
        }
    }

    /// The client's connection to `stream_id` broke before its end: its
    /// events go to Redis, where any replica can replay them.
    pub fn stream_disconnected(&self, stream_id: &str) {
        if let Mode::Redis { events, .. } = &self.inner.mode {
            events.disconnected(stream_id);
        }
    }

    /// The SSE frame of event `event_id` of request stream `stream_id` went
    /// out with `data`, its message's JSON: the buffered event keeps that
    /// (see `events::buffer::Payload`).
    pub fn event_framed(&self, stream_id: &str, event_id: &str, data: &str) {
        if let Mode::Redis { events, .. } = &self.inner.mode {
            events.buffer().framed(stream_id, event_id, data);
        }
    }

    /// At shutdown: the response streams held here may be resumed elsewhere
    /// from now on.
    pub fn hand_off(&self) {
        if let Mode::Redis { events, .. } = &self.inner.mode {
            events.hand_off();
        }
    }

    /// At shutdown: waits until the streams handed off are written, or
    /// `deadline`.
    pub async fn drain(&self, deadline: tokio::time::Instant) {
        if let Mode::Redis { events, .. } = &self.inner.mode {
            events.drain(deadline).await;
        }
    }

    /// What this replica holds now, for probes and metrics.
    pub async fn held(&self) -> HeldCounts {
        let (event_bytes, event_streams) = match &self.inner.mode {
            Mode::Solo => (0, 0),
            Mode::Redis { events, .. } => events.buffer_usage(),
        };
        HeldCounts {
            workers: self.inner.held.workers.sessions.read().await.len(),
            sse_streams: self.inner.held.sse.len(),
            event_bytes,
            event_streams,
        }
    }

    /// Sets the gauges read at scrape time from [`held`](Self::held), with
    /// `in_flight` requests.
    pub async fn update_gauges(&self, in_flight: usize) {
        let held = self.held().await;
        let metrics = &self.inner.metrics;
        metrics.set_gauges(held.workers, held.sse_streams, in_flight);
        if self.shares_streams() {
            metrics.set_event_buffer(held.event_bytes, held.event_streams);
        }
    }

    pub(crate) fn held_sessions(&self) -> &Arc<HeldSessions> {
        &self.inner.held
    }

    pub(crate) fn mode(&self) -> &Mode {
        &self.inner.mode
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }
}

/// What a replica holds at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldCounts {
    /// rmcp workers (Streamable HTTP sessions served here lately).
    pub workers: usize,
    /// Open HTTP+SSE streams.
    pub sse_streams: usize,
    /// Bytes of response-stream events in memory (an estimate).
    pub event_bytes: usize,
    /// Response streams in memory.
    pub event_streams: usize,
}

// Change notices for the listen streams of the fleet (see `listen_streams`).
impl Fleet {
    /// Tells every listen stream and resource watcher of the fleet that
    /// wants `notice` (on any replica, once each) about it.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn publish_change(&self, notice: ChangeNotice) -> Result<(), StoreError> {
        match self.mode() {
            Mode::Solo => {
                self.held_sessions().listen.deliver(notice);
                Ok(())
            }
            Mode::Redis { bus, .. } => bus.publish_change(notice).await,
        }
    }

    /// The notices that reach this replica from now on, for one listen
    /// stream or watcher that wants `interest`: in a fleet, this replica
    /// reads the channels of `interest` while the follower lives, and this
    /// returns once Redis confirmed them (so that a change published after
    /// it is heard). The follower also gets the notices other streams here
    /// brought in: it applies its own filter.
    pub async fn listen_changes(&self, interest: &ChangeInterest) -> ChangeFollower {
        let notices = self.held_sessions().listen.subscribe();
        let channels = match self.mode() {
            Mode::Solo => Vec::new(),
            Mode::Redis { bus, .. } => bus.want_changes(interest).await,
        };
        ChangeFollower::new(notices, channels)
    }
}
