//! The fleet: how the replicas of one service cooperate through Redis.
//!
//! A session's requests may reach any replica, but some things live in one
//! process: the SSE connection a client holds open, the tool call waiting for
//! the client's answer to a sampling request. The [`FleetBus`] carries what
//! must reach them, over Redis pub/sub:
//!
//! | channel | kind | carries |
//! |---|---|---|
//! | `mcp_fleet:<service>` | `PUBLISH` | session deletions, server events of standalone streams, client responses and notifications for handlers running elsewhere |
//! | `mcp_replica:<service>:<replica_id>` | `SPUBLISH` (sharded) | HTTP+SSE messages for the stream this replica holds; acks |
//! | `mcp_stream_flush:<service>:<nonce>` | `SPUBLISH` (sharded) | requests to flush a response stream this replica produced to Redis, for a resumption elsewhere |
//!
//! Sending to a replica channel reports how many subscribers received the
//! message: zero means the replica holding the stream is gone, and the POST
//! gets `404` so that the client reconnects.
//!
//! Every replica keeps the events of the SSE streams it sends
//! ([`FleetEventStore`]): a request's response stream in its memory until
//! another replica asks for it or the client's connection breaks, then in
//! Redis Streams; a standalone stream in Redis Streams. A client that
//! reconnects with `Last-Event-ID` to any replica gets what it missed.
//!
//! The session store of a fleet is a [`FleetStore`]: each replica keeps the
//! records it serves in its [`SessionCache`], and every deletion or rewrite
//! of a record is announced on the fleet channel and acknowledged by every
//! replica before it is answered ([`announce`]), so that a cached record is
//! never served after its session ended.

pub mod announce;
pub(crate) mod buffer;
pub mod cache;
pub mod connection;
mod envelope;
pub mod events;
mod redis_store;
mod resume;
mod sessions;
mod store;
mod writer;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

pub use announce::Announcer;
pub use cache::SessionCache;
pub use envelope::Envelope;
pub use events::{EventSettings, FleetEventStore};
use fred::prelude::*;
pub use redis_store::RedisStore;
use rmcp::{
    model::{ClientJsonRpcMessage, RequestId},
    transport::streamable_http_server::session::{
        ServerSseMessage, SessionManager, local::LocalSessionManager,
    },
};
pub use sessions::{FleetSessionError, FleetSessionManager, FleetTransport};
pub use store::{FleetStore, refresh_interval};
use tokio::sync::mpsc;

use crate::{
    fleet::connection::{RedisConnection, unavailable},
    identity::Caller,
    metrics::{Delivery as Delivered, Metrics, RedisOp},
    session::SessionContext,
    store::{SessionStore, StoreError},
    transport::sse::SseStreams,
};

/// Longest wait at start-up for the fleet subscriptions.
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Outcome of sending a message to the replica that holds a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The replica received it.
    Delivered,
    /// No replica listens on that channel any more.
    Gone,
}

/// Live SSE connections of standalone streams on this replica, by stream id.
#[derive(Default)]
pub(crate) struct Tails {
    tails: Mutex<HashMap<String, Vec<mpsc::Sender<ServerSseMessage>>>>,
}

impl Tails {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Vec<mpsc::Sender<ServerSseMessage>>>> {
        self.tails
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection for `stream_id`; events arrive on the receiver.
    pub(crate) fn open(&self, stream_id: &str) -> mpsc::Receiver<ServerSseMessage> {
        let (sender, receiver) = mpsc::channel(64);
        self.lock()
            .entry(stream_id.to_owned())
            .or_default()
            .push(sender);
        receiver
    }

    /// Sends `event` to the connections of `stream_id`; returns whether
    /// one took it.
    fn deliver(&self, stream_id: &str, event: &ServerSseMessage) -> bool {
        let mut tails = self.lock();
        let Some(senders) = tails.get_mut(stream_id) else {
            return false;
        };
        // A full or closed connection is dropped: the client resumes with
        // Last-Event-ID and gets the rest from the event store.
        senders.retain(|sender| sender.try_send(event.clone()).is_ok());
        let delivered = !senders.is_empty();
        if !delivered {
            tails.remove(stream_id);
        }
        delivered
    }

    /// Closes every connection of the session's streams.
    pub(crate) fn close_session(&self, session_id: &str) {
        let prefix = format!("{session_id}:");
        self.lock()
            .retain(|stream_id, _| !stream_id.starts_with(&prefix));
    }
}

/// Server-to-client requests (sampling, elicitation, roots) that handlers on
/// this replica are waiting on, by session.
#[derive(Default)]
pub(crate) struct PendingRequests {
    pending: Mutex<HashSet<(String, RequestId)>>,
}

impl PendingRequests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(String, RequestId)>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn insert(&self, session_id: &str, id: RequestId) {
        self.lock().insert((session_id.to_owned(), id));
    }

    pub(crate) fn remove(&self, session_id: &str, id: &RequestId) -> bool {
        self.lock().remove(&(session_id.to_owned(), id.clone()))
    }

    pub(crate) fn contains(&self, session_id: &str, id: &RequestId) -> bool {
        self.lock().contains(&(session_id.to_owned(), id.clone()))
    }
}

/// What this replica holds of sessions, shared by the transports and the bus.
pub(crate) struct Locals {
    pub(crate) workers: Arc<LocalSessionManager>,
    /// Sessions whose worker here was restored: their handshake was
    /// replayed, so the client's own `initialized` is not for them.
    replayed: Mutex<HashSet<String>>,
    /// Sessions whose worker here is being restored: until the replayed
    /// handshake is over, nothing else may reach the worker (a message
    /// before its `initialize` kills it).
    restoring: Mutex<HashSet<String>>,
    pub(crate) sse: Arc<SseStreams>,
    pub(crate) tails: Tails,
    pub(crate) pending: PendingRequests,
    /// The session records this replica serves (see [`cache`]).
    pub(crate) cache: Arc<SessionCache>,
}

impl Locals {
    pub(crate) fn new(workers: LocalSessionManager, cache: Arc<SessionCache>) -> Self {
        Self {
            workers: Arc::new(workers),
            replayed: Mutex::default(),
            restoring: Mutex::default(),
            sse: Arc::default(),
            tails: Tails::default(),
            pending: PendingRequests::default(),
            cache,
        }
    }

    fn replayed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.replayed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn mark_replayed(&self, session_id: &str) {
        self.replayed().insert(session_id.to_owned());
    }

    pub(crate) fn was_replayed(&self, session_id: &str) -> bool {
        self.replayed().contains(session_id)
    }

    pub(crate) fn forget_replayed(&self, session_id: &str) {
        self.replayed().remove(session_id);
    }

    fn restoring(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.restoring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks `session_id` as being restored here (before its worker exists).
    pub(crate) fn begin_restore(&self, session_id: &str) {
        self.restoring().insert(session_id.to_owned());
    }

    /// The restore of `session_id` is over (done, failed or not needed).
    pub(crate) fn end_restore(&self, session_id: &str) {
        self.restoring().remove(session_id);
    }

    /// Whether `session_id`'s worker here is still replaying its handshake.
    pub(crate) fn is_restoring(&self, session_id: &str) -> bool {
        self.restoring().contains(session_id)
    }

    /// Hands `message` to this replica's rmcp worker of `session_id`, if it
    /// has one whose handshake is over (a worker being restored has had no
    /// request yet, so nothing forwarded is for it). Returns whether it did.
    pub(crate) async fn deliver_to_worker(
        &self,
        session_id: &str,
        message: ClientJsonRpcMessage,
    ) -> bool {
        let id: Arc<str> = session_id.into();
        if self.is_restoring(session_id) || !self.workers.has_session(&id).await.unwrap_or(false) {
            return false;
        }
        self.workers.accept_message(&id, message).await.is_ok()
    }

    /// Drops everything this replica holds of `session_id`.
    pub(crate) async fn close_session(&self, session_id: &str) {
        self.cache.invalidate(session_id);
        let id: Arc<str> = session_id.into();
        if let Err(error) = self.workers.close_session(&id).await {
            tracing::debug!(session_id, %error, "closing local worker");
        }
        self.tails.close_session(session_id);
        self.sse.close(session_id);
        self.forget_replayed(session_id);
    }
}

/// The Redis pub/sub bus between the replicas of one service.
pub struct FleetBus {
    redis: RedisConnection,
    fleet_channel: String,
    replica_prefix: String,
    replica_channel: String,
    replica_id: String,
    locals: Arc<Locals>,
    store: Arc<dyn SessionStore>,
    announcer: Arc<Announcer>,
    events: Arc<FleetEventStore>,
    metrics: Arc<Metrics>,
    /// Whether the subscriptions are in place (messages can reach us).
    joined: tokio::sync::watch::Sender<bool>,
}

impl FleetBus {
    /// Joins the fleet of `service` as `replica_id`: subscribes to the fleet
    /// channel, this replica's channel and the flush channel of `events`,
    /// and dispatches what arrives.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn join(
        redis: RedisConnection,
        service: &str,
        replica_id: &str,
        locals: Arc<Locals>,
        store: Arc<dyn SessionStore>,
        announcer: Arc<Announcer>,
        events: Arc<FleetEventStore>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let bus = Arc::new(Self {
            fleet_channel: format!("mcp_fleet:{service}"),
            replica_prefix: format!("mcp_replica:{service}:"),
            replica_channel: format!("mcp_replica:{service}:{replica_id}"),
            replica_id: replica_id.to_owned(),
            redis,
            locals,
            store,
            announcer,
            events,
            metrics,
            joined: tokio::sync::watch::Sender::new(false),
        });
        tokio::spawn(bus.clone().watch_connection());
        let listener = bus.clone();
        let mut joined = bus.joined.subscribe();
        tokio::spawn(async move { listener.listen().await });
        // Serve only once other replicas can reach us, unless Redis is down:
        // then start anyway, not ready, and join when it comes back.
        let _ = tokio::time::timeout(JOIN_WAIT, joined.wait_for(|joined| *joined)).await;
        bus
    }

    /// Whether this replica is subscribed to the fleet's channels.
    pub fn is_joined(&self) -> bool {
        *self.joined.borrow()
    }

    async fn listen(self: Arc<Self>) {
        let subscriber = self.redis.subscriber().clone();
        let mut messages = subscriber.message_rx();
        // Subscriptions are tracked and renewed by fred after reconnections;
        // retry the first ones until Redis answers.
        loop {
            let subscribed = async {
                subscriber.subscribe(self.fleet_channel.as_str()).await?;
                subscriber.ssubscribe(self.replica_channel.as_str()).await?;
                subscriber.ssubscribe(self.events.flush_channel()).await
            }
            .await;
            match subscribed {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(error = %error.details(), "fleet subscription failed, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
        self.joined.send_replace(true);
        self.locals.cache.connected();
        tracing::info!(channel = %self.replica_channel, "joined the fleet");
        loop {
            match messages.recv().await {
                Ok(message) => {
                    let Some(text) = message.value.as_str() else {
                        continue;
                    };
                    match serde_json::from_str::<Envelope>(&text) {
                        Ok(envelope) => self.dispatch(envelope).await,
                        Err(error) => tracing::warn!(%error, "undecodable fleet message"),
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "fleet listener lagged; messages lost");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    }

    /// Keeps the cache off while announcements could be missed: from a
    /// failure of the pub/sub connection until the fleet channel is
    /// subscribed again after fred reconnected (see [`cache`]).
    async fn watch_connection(self: Arc<Self>) {
        let subscriber = self.redis.subscriber().clone();
        let mut errors = subscriber.error_rx();
        let mut reconnections = subscriber.reconnect_rx();
        loop {
            tokio::select! {
                error = errors.recv() => match error {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        self.locals.cache.disconnected();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                reconnected = reconnections.recv() => match reconnected {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        self.locals.cache.disconnected();
                        // fred renews the subscriptions too; this one tells
                        // us when the fleet channel is heard again.
                        match subscriber.subscribe(self.fleet_channel.as_str()).await {
                            Ok(()) => self.locals.cache.connected(),
                            Err(error) => tracing::warn!(error = %error.details(), "fleet channel not subscribed after a reconnection; session cache off"),
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }

    /// Acknowledges `ack` once what it asked for is done, off the listener.
    fn acknowledge(&self, ack: Option<announce::AckRequest>) {
        if let Some(ack) = ack {
            let announcer = self.announcer.clone();
            tokio::spawn(async move { announcer.acknowledge(&ack).await });
        }
    }

    async fn dispatch(&self, envelope: Envelope) {
        match envelope {
            Envelope::SessionClosed { session_id, ack } => {
                self.locals.close_session(&session_id).await;
                self.metrics.fleet_delivery(Delivered::SessionClosed);
                self.acknowledge(ack);
            }
            Envelope::SessionChanged { session_id, ack } => {
                self.locals.cache.invalidate(&session_id);
                self.acknowledge(ack);
            }
            Envelope::Ack { token, held } => self.announcer.acked(token, held),
            Envelope::FlushStream {
                stream_id,
                session_id,
                ack,
            } => {
                // Off the listener: the flush waits for its write.
                let (events, announcer) = (self.events.clone(), self.announcer.clone());
                tokio::spawn(async move {
                    let held = events.flush_for(&stream_id, session_id.as_deref()).await;
                    announcer.answer(&ack, held).await;
                });
            }
            Envelope::ClientMessage {
                origin,
                session_id,
                caller,
                record,
                message,
            } => {
                if origin == self.replica_id {
                    return;
                }
                let session = record.map(|record| SessionContext::new(*record, self.store.clone()));
                if self
                    .locals
                    .sse
                    .deliver(&session_id, &caller, session.clone(), message.clone())
                    .await
                {
                    self.metrics.fleet_delivery(Delivered::SseMessage);
                    return;
                }
                let for_pending_request = match &message {
                    ClientJsonRpcMessage::Response(response) => Some(&response.id),
                    ClientJsonRpcMessage::Error(error) => error.id.as_ref(),
                    _ => None,
                };
                let initialized = matches!(
                    &message,
                    ClientJsonRpcMessage::Notification(notification)
                        if matches!(notification.notification, rmcp::model::ClientNotification::InitializedNotification(_))
                );
                match for_pending_request {
                    Some(id) if !self.locals.pending.contains(&session_id, id) => {}
                    _ if initialized && self.locals.was_replayed(&session_id) => {}
                    _ => {
                        if self
                            .locals
                            .deliver_to_worker(&session_id, with_caller(message, caller, session))
                            .await
                        {
                            self.metrics.fleet_delivery(Delivered::ClientMessage);
                        }
                    }
                }
            }
            Envelope::StreamEvent {
                stream_id,
                event_id,
                message,
                retry_ms,
            } => {
                let event = events::sse_message(
                    event_id,
                    message,
                    retry_ms.map(std::time::Duration::from_millis),
                );
                if self.locals.tails.deliver(&stream_id, &event) {
                    self.metrics.fleet_delivery(Delivered::StreamEvent);
                }
            }
        }
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    fn encode(envelope: &Envelope) -> Result<String, StoreError> {
        serde_json::to_string(envelope).map_err(|error| StoreError::Corrupt(error.to_string()))
    }

    /// Tells every replica (this one included) about `envelope`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn broadcast(&self, envelope: &Envelope) -> Result<(), StoreError> {
        self.redis.round_trip(RedisOp::Publish);
        let _: i64 = self
            .redis
            .pool()
            .next()
            .publish(self.fleet_channel.as_str(), Self::encode(envelope)?)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Sends `envelope` to replica `replica_id` alone.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn send_to(
        &self,
        replica_id: &str,
        envelope: &Envelope,
    ) -> Result<Delivery, StoreError> {
        self.redis.round_trip(RedisOp::SPublish);
        let receivers: i64 = self
            .redis
            .pool()
            .next()
            .spublish(
                format!("{}{replica_id}", self.replica_prefix),
                Self::encode(envelope)?,
            )
            .await
            .map_err(unavailable)?;
        Ok(if receivers > 0 {
            Delivery::Delivered
        } else {
            Delivery::Gone
        })
    }
}

/// Attaches the caller (and the session's context) to a message that crossed
/// replicas, as the HTTP request parts it arrived with would have: tools read
/// them there.
pub(crate) fn with_caller(
    mut message: ClientJsonRpcMessage,
    caller: Caller,
    session: Option<SessionContext>,
) -> ClientJsonRpcMessage {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = http::Method::POST;
    parts.extensions.insert(caller);
    if let Some(session) = session {
        parts.extensions.insert(session);
    }
    message.insert_extension(parts);
    message
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use rmcp::{
        model::{ClientJsonRpcMessage, ClientNotification, InitializedNotification},
        transport::streamable_http_server::{
            SessionManager,
            session::{RestoreOutcome, local::LocalSessionManager},
        },
    };

    use super::{Locals, SessionCache};

    fn initialized() -> ClientJsonRpcMessage {
        ClientJsonRpcMessage::notification(ClientNotification::InitializedNotification(
            InitializedNotification::default(),
        ))
    }

    /// A client's `initialized` forwarded from another replica while this
    /// one replays the handshake of the same session must not reach the new
    /// worker before its `initialize`: that ends the worker (and the
    /// request being served gets `500`).
    #[tokio::test]
    async fn a_worker_being_restored_gets_no_forwarded_message() {
        let locals = Locals::new(
            LocalSessionManager::default(),
            Arc::new(SessionCache::new(Duration::from_secs(5))),
        );
        let id: Arc<str> = "session-r".into();
        locals.begin_restore(&id);
        let outcome = locals.workers.restore_session(id.clone()).await.unwrap();
        assert!(matches!(outcome, RestoreOutcome::Restored(_)));
        assert!(locals.workers.has_session(&id).await.unwrap());
        assert!(!locals.deliver_to_worker(&id, initialized()).await);
        assert!(locals.is_restoring(&id));
        locals.end_restore(&id);
        assert!(!locals.is_restoring(&id));
    }
}
