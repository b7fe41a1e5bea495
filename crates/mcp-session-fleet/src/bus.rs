//! The Redis pub/sub bus between the replicas of one service: what it
//! subscribes to, and how each message that arrives is dispatched to what
//! this replica holds (see the crate docs for the channels).

use std::sync::Arc;

use fred::prelude::*;
use mcp_session_core::session::{SessionContext, attach};
use mcp_session_core::traced_span;
use rmcp::model::ClientJsonRpcMessage;
use tracing::Instrument;

use crate::{
    AckRequest, ChangeInterest, ChangeNotice, Envelope, FleetEventStore, HeldSessions, StreamOwner,
    announce::{Announcer, Asked, Copies},
    connection::{RedisConnection, unavailable},
    events,
    identity::Caller,
    metrics::{BusChannel, FleetDelivery, Metrics, RedisOp},
    shard_subscriptions::{ChannelGuard, ShardSubscriptions},
    sse_stream_id,
    store::{SessionRecord, SessionStore, StoreError},
    trace_context::TraceContext,
};

/// How often a joined replica checks that Redis still counts it on its
/// sharded channels.
const SUBSCRIPTION_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

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

/// The Redis pub/sub bus between the replicas of one service.
pub struct FleetBus {
    redis: RedisConnection,
    fleet_channel: String,
    replica_prefix: String,
    replica_channel: String,
    replica_id: String,
    held: Arc<HeldSessions>,
    store: Arc<dyn SessionStore>,
    announcer: Arc<Announcer>,
    events: Arc<FleetEventStore>,
    metrics: Arc<Metrics>,
    /// The sharded channels read for what this replica holds (standalone
    /// streams, change topics).
    subscriptions: Arc<ShardSubscriptions>,
    /// `mcp_standalone:<service>:`.
    standalone_prefix: String,
    /// `mcp_change:<service>:`.
    change_prefix: String,
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
        held: Arc<HeldSessions>,
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
            subscriptions: ShardSubscriptions::start(redis.clone()),
            standalone_prefix: format!("mcp_standalone:{service}:"),
            change_prefix: format!("mcp_change:{service}:"),
            redis,
            held,
            store,
            announcer,
            events,
            metrics,
            joined: tokio::sync::watch::Sender::new(false),
        });
        let mut joined = bus.joined.subscribe();
        tokio::spawn(bus.clone().listen());
        tokio::spawn(bus.clone().keep_subscribed());
        // Serve only once other replicas can reach us, unless Redis is down:
        // then start anyway, not ready, and join when it comes back.
        let _ = tokio::time::timeout(JOIN_WAIT, joined.wait_for(|joined| *joined)).await;
        bus
    }

    /// Whether this replica is subscribed to the fleet's channels.
    pub fn is_joined(&self) -> bool {
        *self.joined.borrow()
    }

    /// Receives the fleet's messages, for as long as the subscriber lives
    /// (across reconnections: [`keep_subscribed`](Self::keep_subscribed)
    /// renews the subscriptions).
    async fn listen(self: Arc<Self>) {
        let mut messages = self.redis.subscriber().message_rx();
        loop {
            match messages.recv().await {
                Ok(message) => {
                    let Some(text) = message.value.as_str() else {
                        continue;
                    };
                    let channel = self.channel_kind(&message.channel);
                    self.metrics.fleet_message_received(channel, text.len());
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

    /// The kind of the channel a message arrived on.
    fn channel_kind(&self, channel: &str) -> BusChannel {
        if channel == self.fleet_channel {
            BusChannel::Fleet
        } else if channel == self.replica_channel {
            BusChannel::Replica
        } else if channel.starts_with(&self.standalone_prefix) {
            BusChannel::Standalone
        } else if channel.starts_with(&self.change_prefix) {
            BusChannel::Change
        } else {
            BusChannel::StreamFlush
        }
    }

    /// The sharded channels this replica reads for what it holds.
    pub(crate) fn subscriptions(&self) -> &Arc<ShardSubscriptions> {
        &self.subscriptions
    }

    /// Subscribes to the three channels and keeps them subscribed: after
    /// every reconnection of the subscriber (a Redis restart, a failover
    /// that dropped the connections, a cluster node replaced), and whenever
    /// the periodic check ([`SUBSCRIPTION_CHECK`]) finds this replica's
    /// sharded channels without it (`PUBSUB SHARDNUMSUB`). Until all three
    /// are in place again the replica is not joined (`/readyz` fails) and
    /// the session cache is off, since announcements could be missed (see
    /// [`cache`]).
    ///
    /// The library does this itself rather than through fred's
    /// `manage_subscriptions`: fred 10.1 renews subscriptions with a
    /// `PSUBSCRIBE` that has no pattern when none are used, which Redis
    /// refuses, and the `SSUBSCRIBE`s that follow it are never sent.
    async fn keep_subscribed(self: Arc<Self>) {
        let subscriber = self.redis.subscriber().clone();
        let mut errors = subscriber.error_rx();
        let mut reconnections = subscriber.reconnect_rx();
        let mut check = tokio::time::interval(SUBSCRIPTION_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            // (Re)subscribe until Redis takes all three.
            loop {
                match self.subscribe_all().await {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::warn!(error = %error.details(), "fleet subscription failed, retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
            // The channels of what this replica holds, again.
            self.subscriptions.renew();
            self.joined.send_replace(true);
            self.held.cache.connected();
            if first {
                tracing::info!(channel = %self.replica_channel, "joined the fleet");
                first = false;
            } else {
                tracing::info!(channel = %self.replica_channel, "fleet channels subscribed again");
            }
            // Until something says the subscriptions may be gone.
            loop {
                tokio::select! {
                    error = errors.recv() => match error {
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            self.left("the pub/sub connection failed");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    reconnected = reconnections.recv() => match reconnected {
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            self.left("the pub/sub connection was remade");
                            break;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    _ = check.tick() => {
                        // An error said the connection failed and no
                        // reconnection was announced after it (the error
                        // was an old one, or the connection came back
                        // unannounced): subscribe again rather than wait.
                        if !*self.joined.borrow() {
                            break;
                        }
                        if !self.subscriptions_hold().await {
                            self.left("a sharded channel of this replica has no subscriber");
                            break;
                        }
                    }
                }
            }
        }
    }

    /// The subscriptions may be gone: not joined, session cache off.
    fn left(&self, why: &str) {
        if self.joined.send_replace(false) {
            tracing::warn!(reason = why, "fleet subscriptions lost; subscribing again");
        }
        self.held.cache.disconnected();
    }

    async fn subscribe_all(&self) -> Result<(), fred::error::Error> {
        let subscriber = self.redis.subscriber();
        subscriber.subscribe(self.fleet_channel.as_str()).await?;
        subscriber.ssubscribe(self.replica_channel.as_str()).await?;
        subscriber.ssubscribe(self.events.flush_channel()).await
    }

    /// Whether Redis counts a subscriber on this replica's sharded channels
    /// (only this replica subscribes to them). `true` when Redis cannot be
    /// asked: a connection failure is the reconnection's business.
    async fn subscriptions_hold(&self) -> bool {
        let flush_channel = self.events.flush_channel();
        for channel in [self.replica_channel.as_str(), flush_channel.as_str()] {
            if self.redis.shard_subscribers(channel).await == Some(0) {
                return false;
            }
        }
        true
    }

    /// Acknowledges `ack` once what it asked for is done, off the listener.
    fn acknowledge(&self, ack: Option<AckRequest>) {
        if let Some(ack) = ack {
            let announcer = self.announcer.clone();
            tokio::spawn(async move { announcer.acknowledge(&ack).await });
        }
    }

    /// Handles one message from another replica (or this one), in a span
    /// that is a child of the sender's (see [`TraceContext`]).
    async fn dispatch(&self, envelope: Envelope) {
        let span = traced_span!(
            "fleet_receive",
            otel.name = format!("fleet receive {}", envelope.kind()),
            otel.kind = "consumer",
            messaging.system = "redis",
            messaging.operation.type = "receive",
            replica = %self.replica_id,
        );
        if let Some(trace) = envelope.trace() {
            trace.adopt(&span);
        }
        self.handle(envelope).instrument(span).await;
    }

    async fn handle(&self, envelope: Envelope) {
        match envelope {
            Envelope::SessionClosed {
                session_id, ack, ..
            } => {
                self.held.close_session(&session_id).await;
                self.metrics.fleet_delivery(FleetDelivery::SessionClosed);
                self.acknowledge(ack);
            }
            Envelope::SessionChanged {
                session_id, ack, ..
            } => {
                self.held.cache.invalidate(&session_id);
                self.acknowledge(ack);
            }
            Envelope::Ack { token, held } => self.announcer.acked(token, held),
            Envelope::FlushStream {
                stream_id,
                owner,
                ack,
                ..
            } => {
                let requester =
                    owner.map_or(StreamOwner::Pending, |key| StreamOwner::from_key(&key));
                // Off the listener: the flush waits for its write.
                let (events, announcer) = (self.events.clone(), self.announcer.clone());
                tokio::spawn(
                    async move {
                        let held = events.flush_for(&stream_id, &requester).await;
                        announcer.answer(&ack, held).await;
                    }
                    .in_current_span(),
                );
            }
            Envelope::SseRelease {
                session_id, ack, ..
            } => {
                // Off the listener: the flush waits for its write.
                let (held, events, announcer) = (
                    self.held.clone(),
                    self.events.clone(),
                    self.announcer.clone(),
                );
                tokio::spawn(
                    async move {
                        let released = held.sse.release(&session_id);
                        let owner = StreamOwner::Session(session_id.clone());
                        let flushed = events.flush_for(&sse_stream_id(&session_id), &owner).await;
                        tracing::info!(
                            session_id,
                            released,
                            "an /sse session moved to another replica"
                        );
                        announcer.answer(&ack, released || flushed).await;
                    }
                    .in_current_span(),
                );
            }
            Envelope::ClientMessage {
                origin,
                session_id,
                caller,
                record,
                message,
                ack,
                ..
            } => {
                if origin == self.replica_id {
                    return;
                }
                if let Some(ack) = ack.as_ref()
                    && let Some(delivered) = self.announcer.answered_before(ack)
                {
                    // A copy sent again (its answer was lost or late, as
                    // in a failover): answered again, not delivered twice.
                    let (announcer, ack) = (self.announcer.clone(), ack.clone());
                    tokio::spawn(async move { announcer.answer(&ack, delivered).await });
                    return;
                }
                let session = record.map(|record| SessionContext::new(*record, self.store.clone()));
                let message = attach(message, self.held.extensions(), caller.clone(), session);
                let delivered = self
                    .held
                    .sse
                    .deliver(&session_id, &caller.user_hash, message.clone())
                    .await;
                if let Some(ack) = ack {
                    // An HTTP+SSE message for the stream held here, or a
                    // client's response for the handler waiting here: say
                    // whether it was (the sender looks elsewhere if not).
                    let delivered = if delivered {
                        self.metrics.fleet_delivery(FleetDelivery::SseMessage);
                        true
                    } else if self.held.waits_for(&session_id, &message)
                        && self.held.deliver_to_worker(&session_id, message).await
                    {
                        self.metrics.fleet_delivery(FleetDelivery::ClientMessage);
                        true
                    } else {
                        false
                    };
                    self.announcer.remember(&ack, delivered);
                    let announcer = self.announcer.clone();
                    tokio::spawn(async move { announcer.answer(&ack, delivered).await });
                    return;
                }
                if delivered {
                    self.metrics.fleet_delivery(FleetDelivery::SseMessage);
                    return;
                }
                let for_pending_request = crate::held::response_id(&message);
                let initialized = matches!(
                    &message,
                    ClientJsonRpcMessage::Notification(notification)
                        if matches!(notification.notification, rmcp::model::ClientNotification::InitializedNotification(_))
                );
                match for_pending_request {
                    Some(id) if !self.held.pending.contains(&session_id, id) => {}
                    _ if initialized && self.held.was_replayed(&session_id) => {}
                    _ => {
                        if self.held.deliver_to_worker(&session_id, message).await {
                            self.metrics.fleet_delivery(FleetDelivery::ClientMessage);
                        }
                    }
                }
            }
            Envelope::StreamEvent {
                stream_id,
                event_id,
                message,
                retry_ms,
                ..
            } => {
                let event = events::sse_message(
                    event_id,
                    message,
                    retry_ms.map(std::time::Duration::from_millis),
                );
                if self.held.standalone.deliver(&stream_id, &event) {
                    self.metrics.fleet_delivery(FleetDelivery::StreamEvent);
                }
            }
            Envelope::Change {
                user, notification, ..
            } => {
                self.held
                    .listen
                    .deliver(ChangeNotice { user, notification });
                self.metrics.fleet_delivery(FleetDelivery::Change);
            }
        }
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// Where this replica asks and acknowledges.
    pub(crate) fn announcer(&self) -> &Announcer {
        &self.announcer
    }

    /// The channel of replica `replica_id` (`mcp_replica:<service>:<id>`).
    pub(crate) fn replica_channel_of(&self, replica_id: &str) -> String {
        format!("{}{replica_id}", self.replica_prefix)
    }

    /// A client `message` of `caller`'s session `session_id` that reached
    /// this replica, for the replicas that can deliver it (with the
    /// session's `record` when the receiver needs the session's context,
    /// and `ack` when the sender waits for the one that took it).
    pub fn client_message(
        &self,
        session_id: &str,
        caller: Caller,
        record: Option<SessionRecord>,
        message: ClientJsonRpcMessage,
        ack: Option<AckRequest>,
    ) -> Envelope {
        Envelope::ClientMessage {
            trace: TraceContext::current(),
            origin: self.replica_id.clone(),
            session_id: session_id.to_owned(),
            caller,
            record: record.map(Box::new),
            message,
            ack,
        }
    }

    /// Sends a client's response (or error) `message` to a server-to-client
    /// request of session `session_id` to the replica whose handler waits
    /// for it, over the fleet channel, and returns whether one took it.
    /// Sent again while not every replica acknowledged it, so that a
    /// failover does not lose it ([`Announcer::announce_until_held`]).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn send_client_response(
        &self,
        session_id: &str,
        caller: Caller,
        message: ClientJsonRpcMessage,
    ) -> Result<bool, StoreError> {
        let ack = self.announcer.request();
        let envelope = self.client_message(session_id, caller, None, message, Some(ack.clone()));
        self.announcer.announce_until_held(&envelope, &ack).await
    }

    /// Sends `caller`'s HTTP+SSE `message` of session `record` to replica
    /// `holder`, which holds (or held) the session's stream, and waits for
    /// its answer: [`Delivery::Delivered`] when its stream took the message,
    /// [`Delivery::Gone`] when no replica listens there or the stream is no
    /// longer there.
    ///
    /// An unanswered message is sent again under the same ack token
    /// ([`Announcer::ask`] with [`Copies::UntilAnswered`]), which the holder does at most
    /// once: a copy lost with a failing primary is delivered by the new one.
    /// When no copy is answered in time, the holder is slow (it has the
    /// message: [`Delivery::Delivered`]) or died with it (Redis counts no
    /// listener: [`Delivery::Gone`], and the stream's next holder takes it).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn send_sse_message(
        &self,
        holder: &str,
        caller: Caller,
        record: SessionRecord,
        message: ClientJsonRpcMessage,
    ) -> Result<Delivery, StoreError> {
        let ack = self.announcer.request();
        let session_id = record.id.clone();
        let envelope = self.client_message(
            &session_id,
            caller,
            Some(record),
            message,
            Some(ack.clone()),
        );
        let channel = self.replica_channel_of(holder);
        Ok(
            match self
                .announcer
                .ask(
                    RedisOp::SPublish,
                    &channel,
                    &envelope,
                    &ack,
                    Copies::UntilAnswered,
                )
                .await?
            {
                Asked::Answered { held: true } => Delivery::Delivered,
                Asked::Answered { held: false } | Asked::Gone => Delivery::Gone,
                Asked::NoAnswer => match self.redis.shard_subscribers(&channel).await {
                    Some(0) => Delivery::Gone,
                    _ => Delivery::Delivered,
                },
            },
        )
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
            .instrument(self.redis.span(RedisOp::Publish, "PUBLISH"))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// `SPUBLISH`es `envelope` on `channel`; returns how many subscribers
    /// received it.
    async fn spublish(&self, channel: String, envelope: &Envelope) -> Result<i64, StoreError> {
        self.redis.round_trip(RedisOp::SPublish);
        self.redis
            .pool()
            .next()
            .spublish(channel, Self::encode(envelope)?)
            .instrument(self.redis.span(RedisOp::SPublish, "SPUBLISH"))
            .await
            .map_err(unavailable)
    }

    /// Publishes `notice` on its change channel, for the replicas whose
    /// streams want it (see [`listen_streams`](crate::listen_streams)).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub(crate) async fn publish_change(&self, notice: ChangeNotice) -> Result<(), StoreError> {
        let channel = notice.channel(&self.change_prefix);
        let envelope = Envelope::Change {
            trace: TraceContext::current(),
            user: notice.user,
            notification: notice.notification,
        };
        self.spublish(channel, &envelope).await.map(|_| ())
    }

    /// Subscribes to the change channels `interest` needs and waits until
    /// Redis confirmed them (a few seconds at most: with Redis away the
    /// stream goes on, and hears of changes once it is back).
    pub(crate) async fn want_changes(&self, interest: &ChangeInterest) -> Vec<ChannelGuard> {
        let guards: Vec<ChannelGuard> = interest
            .channels(&self.change_prefix)
            .into_iter()
            .map(|channel| self.subscriptions.want(channel))
            .collect();
        futures::future::join_all(guards.iter().map(ChannelGuard::ready)).await;
        guards
    }
}
