//! Resumable SSE streams across replicas: rmcp's `EventStore` for a fleet
//! (MCP 2025-06-18, Transports §Resumability and Redelivery).
//!
//! Every SSE event gets our own globally unique id,
//! `<stream_id>#<nonce>-<sequence>`: a `Last-Event-ID` names the stream to
//! replay from and, by the nonce (random per process), the replica that
//! produced it. Where the events are kept depends on the stream:
//!
//! - **A session's standalone stream** (`GET /mcp`, stream id
//!   `<session_id>:common`: server notifications, rare) is written to the
//!   Redis Stream `mcp_stream_events:<stream_id>` and published on the
//!   stream's sharded channel `mcp_standalone:<service>:<stream_id>`, which
//!   only the replica holding the client's GET connection reads
//!   ([`shard_subscriptions`](crate::shard_subscriptions)), so that replica
//!   sends it at once and any replica can replay it.
//! - **A request's response stream** (a `POST /mcp` answered as SSE, stream
//!   id a UUID) stays in this replica's memory ([`EventBuffer`]) and is
//!   written to Redis only when it may be needed elsewhere: when its HTTP
//!   response body is dropped before its end (the client left), when
//!   another replica asks for it, when this replica hands off at shutdown,
//!   or when the buffer is full while it is still running. From then on
//!   its later events are written through as they come.
//!
//! **Resuming a request's stream** ([`FleetEventStore::resume`]): the
//! replica holding it in memory replays it from there. Any other replica
//! asks the producing replica, on its flush channel
//! `mcp_stream_flush:<service>:<nonce>` (`SPUBLISH`, one receiver or none),
//! to flush the stream ([`Envelope::FlushStream`]); the holder writes it to
//! Redis and acknowledges ([`announce`](super::announce)); then the stream
//! is read from Redis, for at most [`FLUSH_WAIT`] of waiting. When nobody
//! listens on that channel (the producer is gone) the stream is read from
//! Redis at once: what the producer had not flushed before it died is lost
//! (the tool call was in flight on a dying replica).
//!
//! **Isolation.** A request's stream is owned by the session whose request
//! it answers or, for a request without a session (protocol 2026-07-28), by
//! the user who sent it. The owner is checked wherever the stream is read:
//! in memory ([`StreamOwner::admits`]), by the holder before it flushes
//! anything (a `Last-Event-ID` of another owner writes nothing), and in
//! Redis through the binding `mcp_stream_session:<stream_id>` (a session id,
//! or `user:<user_hash>`), written before the events. A `Last-Event-ID` of
//! another session or user, or of a session's stream on the stateless path,
//! replays nothing. The stateless path learns its caller from
//! [`with_caller`], which the HTTP layer wraps around each request.
//!
//! A request stream's priming event (an id and a retry hint, no message) is
//! not stored: resuming after it replays the whole stream.

use std::{
    collections::HashMap,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use fred::prelude::*;
use rmcp::{
    model::ServerJsonRpcMessage,
    transport::streamable_http_server::session::{
        EventId, EventStore, EventStoreError, EventStream, ServerSseMessage,
    },
};
use serde::{Deserialize, Serialize};

tokio::task_local! {
    /// The user hash of the caller of the request being served: whose
    /// streams a stateless resumption may read.
    static CALLER: UserHash;
}

/// Serves `request` (one HTTP request on `/mcp`) as the user `user_hash`
/// ([`Caller::user_hash`](crate::identity::Caller::user_hash)): a
/// `Last-Event-ID` resumption without a session made inside it replays
/// only that user's streams. Without it, such a resumption replays nothing.
pub async fn with_caller<F: Future>(user_hash: UserHash, request: F) -> F::Output {
    CALLER.scope(user_hash, request).await
}

pub(crate) mod buffer;
pub(crate) mod resume;
mod writer;

use self::{
    buffer::{Appended, Buffered, EventBuffer, Held, Payload},
    resume::BoxedEvents,
    writer::{Publish, Ttls, Write, Writer},
};
use crate::{
    Announcer, Envelope,
    announce::{ACK_WAIT, Asked, Copies},
};
use crate::{
    connection::RedisConnection,
    identity::UserHash,
    metrics::{Metrics, RedisOp, StreamResumption},
    trace_context::TraceContext,
};
pub use buffer::StreamOwner;

pub use writer::MAX_EVENTS;

/// Longest time the holder of a stream takes to write it to Redis for a
/// resumption elsewhere before it answers anyway: as long as the asking
/// replica waits for the answer.
pub const FLUSH_WAIT: Duration = ACK_WAIT;

/// How request response streams are kept (`EVENT_BUFFER_BYTES`,
/// `EVENT_RETENTION_SECONDS`).
#[derive(Debug, Clone, Copy)]
pub struct EventSettings {
    /// The session TTL: a standalone stream's key lives as long.
    pub session_ttl: Duration,
    /// How long a request's response stream stays resumable after its last
    /// event, in memory or in Redis.
    pub retention: Duration,
    /// Bytes of events this replica keeps in memory at most; 0 writes every
    /// event to Redis.
    pub buffer_bytes: usize,
}

/// The Redis key of a stream's events.
pub fn stream_key(stream_id: &str) -> String {
    format!("mcp_stream_events:{stream_id}")
}

/// The key that says a standalone stream had its first `GET` (see
/// [`FleetEventStore::first_attach`]).
pub fn attached_key(stream_id: &str) -> String {
    format!("mcp_stream_attached:{stream_id}")
}

/// The Redis key naming the session a request's response stream belongs to.
pub fn stream_session_key(stream_id: &str) -> String {
    format!("mcp_stream_session:{stream_id}")
}

/// The stream an event id belongs to.
pub fn stream_of(event_id: &str) -> Option<&str> {
    event_id.rsplit_once('#').map(|(stream, _)| stream)
}

/// The nonce of the replica process that produced an event id.
pub fn producer_of(event_id: &str) -> Option<&str> {
    let (_, tail) = event_id.rsplit_once('#')?;
    tail.split_once('-').map(|(nonce, _)| nonce)
}

/// Whether `stream_id` is a session's standalone (GET) stream.
pub fn is_standalone(stream_id: &str) -> bool {
    stream_id.ends_with(":common")
}

/// An SSE event with an id, and a message or a retry hint (or both).
pub(crate) fn sse_message(
    event_id: String,
    message: Option<ServerJsonRpcMessage>,
    retry: Option<Duration>,
) -> ServerSseMessage {
    let mut event = match message {
        Some(message) => ServerSseMessage::new(event_id, message),
        None => ServerSseMessage::priming(event_id, retry.unwrap_or_default()),
    };
    event.retry = retry;
    event
}

/// A stored event as read back (field `d` of a Redis Stream entry, or a
/// buffered event's payload).
#[derive(Deserialize)]
struct StoredEvent {
    #[serde(default)]
    message: Option<ServerJsonRpcMessage>,
    #[serde(default)]
    retry_ms: Option<u64>,
}

/// A stored event as written: the same JSON, borrowing the message.
#[derive(Serialize)]
struct StoredEventRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a ServerJsonRpcMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_ms: Option<u64>,
}

/// The SSE event of a stored event, `None` when its JSON is unreadable.
pub(crate) fn decode(event_id: String, payload: &str) -> Option<ServerSseMessage> {
    let stored: StoredEvent = serde_json::from_str(payload).ok()?;
    Some(sse_message(
        event_id,
        stored.message,
        stored.retry_ms.map(Duration::from_millis),
    ))
}

fn is_final(message: &ServerJsonRpcMessage) -> bool {
    matches!(
        message,
        ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_)
    )
}

/// rmcp's [`EventStore`] for a fleet: request streams in memory, flushed to
/// Redis on demand; standalone streams in Redis (see the module docs).
pub struct FleetEventStore {
    /// This store, for the resumptions rmcp asks for by reference.
    me: Weak<Self>,
    redis: RedisConnection,
    writer: Writer,
    buffer: Arc<EventBuffer>,
    announcer: Arc<Announcer>,
    nonce: String,
    flush_prefix: String,
    sequence: AtomicU64,
    /// `mcp_standalone:<service>:`, the prefix of standalone streams'
    /// channels.
    standalone_prefix: String,
    metrics: Arc<Metrics>,
    /// How long the first-`GET` mark of a session's standalone stream lives.
    session_ttl: Duration,
}

impl std::fmt::Debug for FleetEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetEventStore")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl FleetEventStore {
    /// The event store of one replica of `service` on `redis`, asking other
    /// replicas for their streams through `announcer`. Must be called
    /// within a Tokio runtime (it starts the writer and the buffer's sweep).
    pub fn new(
        redis: RedisConnection,
        service: &str,
        settings: EventSettings,
        announcer: Arc<Announcer>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let writer = Writer::spawn(
            redis.clone(),
            Ttls {
                session: settings.session_ttl,
                retention: settings.retention,
            },
        );
        let buffer = EventBuffer::start(
            settings.buffer_bytes,
            settings.retention,
            writer.clone(),
            metrics.clone(),
        );
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            redis,
            writer,
            buffer,
            announcer,
            nonce: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            flush_prefix: format!("mcp_stream_flush:{service}:"),
            sequence: AtomicU64::new(0),
            standalone_prefix: format!("mcp_standalone:{service}:"),
            metrics,
            session_ttl: settings.session_ttl,
        })
    }

    /// Whether this is the first `GET` of the standalone stream `stream_id`
    /// in the whole fleet (one `SET NX EX`, marking it for the session's
    /// lifetime). The first `GET` gets the events sent before it, as a
    /// single process's buffered channel would give them; a later `GET`
    /// without `Last-Event-ID` starts a new stream from now (MCP 2025-06-18,
    /// Transports §Listening for Messages from the Server). `false` when
    /// Redis cannot be reached.
    pub async fn first_attach(&self, stream_id: &str) -> bool {
        self.redis.round_trip(RedisOp::EventsRead);
        let ttl = i64::try_from(self.session_ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let set: Result<Option<String>, _> = self
            .redis
            .pool()
            .set(
                attached_key(stream_id),
                "1",
                Some(Expiration::EX(ttl)),
                Some(SetOptions::NX),
                false,
            )
            .await;
        matches!(set, Ok(Some(_)))
    }

    /// The sharded channel the events of standalone stream `stream_id` are
    /// published on (`mcp_standalone:<service>:<stream_id>`), read by the
    /// replica that holds a `GET` connection of it.
    pub fn standalone_channel(&self, stream_id: &str) -> String {
        format!("{}{stream_id}", self.standalone_prefix)
    }

    /// The channel this replica takes flush requests on (`SSUBSCRIBE`d by
    /// the fleet bus).
    pub fn flush_channel(&self) -> String {
        format!("{}{}", self.flush_prefix, self.nonce)
    }

    /// The id of the next event of `stream_id`,
    /// `<stream_id>#<nonce>-<sequence>` (built without `format!`'s
    /// machinery: two ids per tool call).
    fn next_event_id(&self, stream_id: &str) -> String {
        let mut digits = itoa::Buffer::new();
        let sequence = digits.format(self.sequence.fetch_add(1, Ordering::Relaxed));
        let mut event_id =
            String::with_capacity(stream_id.len() + self.nonce.len() + sequence.len() + 2);
        event_id.push_str(stream_id);
        event_id.push('#');
        event_id.push_str(&self.nonce);
        event_id.push('-');
        event_id.push_str(sequence);
        event_id
    }

    pub(crate) fn buffer(&self) -> &Arc<EventBuffer> {
        &self.buffer
    }

    /// Bytes of events buffered here, and streams held.
    pub fn buffer_usage(&self) -> (usize, usize) {
        self.buffer.usage()
    }

    /// The events of `stream_id` stored in Redis after `after` (all of them
    /// when `after` is `None` or no longer stored), in order.
    ///
    /// # Errors
    /// Redis being unreachable.
    pub async fn events_after(
        &self,
        stream_id: &str,
        after: Option<&str>,
    ) -> Result<Vec<ServerSseMessage>, EventStoreError> {
        self.redis.round_trip(RedisOp::EventsRead);
        let entries: Vec<(String, HashMap<String, String>)> = self
            .redis
            .pool()
            .xrange(stream_key(stream_id), "-", "+", None)
            .await
            .map_err(|error| format!("redis: {}", error.details()))?;
        let start = after
            .and_then(|after| {
                entries
                    .iter()
                    .position(|(_, fields)| fields.get("e").map(String::as_str) == Some(after))
            })
            .map_or(0, |position| position + 1);
        Ok(entries
            .into_iter()
            .skip(start)
            .filter_map(|(_, mut fields)| decode(fields.remove("e")?, fields.get("d")?))
            .collect())
    }

    /// Sets who may resume request stream `stream_id` (from its response's
    /// first event id, before the client sees it); a stream's owner is set
    /// once.
    pub(crate) fn bind(&self, stream_id: &str, owner: StreamOwner) {
        self.buffer.bind(stream_id, owner);
    }

    /// Opens the event stream `stream_id` of HTTP+SSE session `session_id`
    /// here, owned by the session.
    pub(crate) fn open_session_stream(&self, stream_id: &str, session_id: &str) {
        self.buffer.open(stream_id);
        self.buffer
            .bind(stream_id, StreamOwner::Session(session_id.to_owned()));
    }

    /// Stores `message`, sent on the event stream `stream_id` of HTTP+SSE
    /// session `session_id`, and returns its event id: kept in memory like a
    /// request's response stream (and moved to Redis on the same occasions),
    /// owned by the session, never finished.
    ///
    /// # Errors
    /// The message cannot be encoded, or the event writer stopped.
    pub(crate) async fn append_session_event(
        &self,
        stream_id: &str,
        session_id: &str,
        message: &ServerJsonRpcMessage,
    ) -> Result<String, EventStoreError> {
        let event_id = self.next_event_id(stream_id);
        // HTTP+SSE frames do not pass `EventBuffer::framed`: JSON now.
        let payload = Payload::Json(serde_json::to_string(&StoredEventRef {
            message: Some(message),
            retry_ms: None,
        })?);
        let buffered = Buffered {
            event_id: event_id.clone(),
            payload,
        };
        if let Appended::NeedsPlace(buffered) = self.buffer.append(stream_id, buffered, false, None)
        {
            let place = self.writer.place().await.ok_or("event writer stopped")?;
            self.buffer.append(stream_id, buffered, false, Some(place));
        }
        // Owned from its first event (again, if the retention dropped it).
        self.buffer
            .bind(stream_id, StreamOwner::Session(session_id.to_owned()));
        Ok(event_id)
    }

    /// The response body of request stream `stream_id` was dropped before
    /// its end: its events go to Redis, now and from now on.
    pub(crate) fn disconnected(&self, stream_id: &str) {
        self.buffer.disconnected(stream_id);
    }

    /// A flush request from another replica: writes `stream_id` to Redis if
    /// this replica holds it and `requester` owns it, and returns whether it
    /// did, once written (at most [`FLUSH_WAIT`]).
    pub(crate) async fn flush_for(&self, stream_id: &str, requester: &StreamOwner) -> bool {
        let Some(written) = self.buffer.flush_for(stream_id, requester) else {
            return false;
        };
        if tokio::time::timeout(FLUSH_WAIT, written).await.is_err() {
            tracing::info!("a flushed response stream is still on its way to Redis");
        }
        true
    }

    /// The shutdown hand-off: flushes every stream that may be resumed to
    /// Redis and writes every later event through (see
    /// [`drain`](Self::drain)).
    pub(crate) fn hand_off(&self) {
        let (bytes, streams) = self.buffer.usage();
        drop(self.buffer.hand_off());
        tracing::info!(
            streams,
            bytes,
            "response streams held here go to Redis, for resumption on other replicas"
        );
    }

    /// Waits until every event queued for Redis is written, or `deadline`.
    pub(crate) async fn drain(&self, deadline: tokio::time::Instant) {
        if tokio::time::timeout_at(deadline, self.buffer.written())
            .await
            .is_err()
        {
            tracing::warn!("grace period over before every SSE event was written to Redis");
        }
    }

    async fn bound_session(&self, stream_id: &str) -> Option<String> {
        self.redis.round_trip(RedisOp::StreamSession);
        self.redis
            .pool()
            .get::<Option<String>, _>(stream_session_key(stream_id))
            .await
            .ok()
            .flatten()
    }

    /// The session request stream `stream_id` is bound to in Redis, waiting
    /// up to 500 ms for a binding still on its way there.
    async fn stream_session(&self, stream_id: &str) -> Option<String> {
        for _ in 0..10 {
            if let Some(session) = self.bound_session(stream_id).await {
                return Some(session);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Whether the Redis stream holds the event `event_id` yet (writes are
    /// batched, so an id handed to a client may reach Redis a moment later).
    pub async fn contains(&self, stream_id: &str, event_id: &str) -> bool {
        self.redis.round_trip(RedisOp::EventsRead);
        let entries: Result<Vec<(String, HashMap<String, String>)>, _> = self
            .redis
            .pool()
            .xrange(stream_key(stream_id), "-", "+", None)
            .await;
        entries.is_ok_and(|entries| {
            entries
                .iter()
                .any(|(_, fields)| fields.get("e").map(String::as_str) == Some(event_id))
        })
    }

    /// Asks the replica that produced `stream_id` (by its `nonce`) to flush
    /// it to Redis for a resumption by `requester`.
    async fn ask_producer(&self, nonce: &str, stream_id: &str, requester: &StreamOwner) -> Asked {
        let ack = self.announcer.request();
        let envelope = Envelope::FlushStream {
            trace: TraceContext::current(),
            stream_id: stream_id.to_owned(),
            owner: requester.key(),
            ack: ack.clone(),
        };
        let channel = format!("{}{nonce}", self.flush_prefix);
        match self
            .announcer
            .ask(
                RedisOp::FlushRequest,
                &channel,
                &envelope,
                &ack,
                Copies::One,
            )
            .await
        {
            Ok(asked) => asked,
            Err(error) => {
                tracing::warn!(%error, "could not ask for a response stream held elsewhere");
                Asked::NoAnswer
            }
        }
    }

    /// Resumes the request stream of `last_event_id` after it, for
    /// `requester` (the session of the request, or its user on the
    /// stateless path): from memory when this replica holds it, else from
    /// Redis once its producer has flushed it. Within a session the stream
    /// follows new events until its response (at most 5 minutes); without
    /// one it is what is stored now (the client polls again).
    ///
    /// # Errors
    /// The `Last-Event-ID` is malformed, or names a stream `requester` does
    /// not own (another session's or user's, or a session's stream on the
    /// stateless path): nothing is replayed.
    pub(crate) async fn resume(
        self: &Arc<Self>,
        last_event_id: &str,
        requester: &StreamOwner,
    ) -> Result<BoxedEvents, EventStoreError> {
        let follow = matches!(requester, StreamOwner::Session(_));
        self.resume_following(last_event_id, requester, follow)
            .await
    }

    /// [`resume`](Self::resume), following new events (`follow`) or not.
    pub(crate) async fn resume_following(
        self: &Arc<Self>,
        last_event_id: &str,
        requester: &StreamOwner,
        follow: bool,
    ) -> Result<BoxedEvents, EventStoreError> {
        let refused = || -> EventStoreError {
            "Last-Event-ID of a stream this request may not resume".into()
        };
        let stream_id = stream_of(last_event_id).ok_or("malformed Last-Event-ID")?;
        if is_standalone(stream_id) || *requester == StreamOwner::Pending {
            return Err(refused());
        }
        let (stream_id, after) = (stream_id.to_owned(), last_event_id.to_owned());
        match self.buffer.holding(&stream_id) {
            Some(Held { owner, .. }) if !owner.admits(requester) => return Err(refused()),
            Some(Held {
                in_memory: true, ..
            }) => {
                self.metrics.stream_resumed(StreamResumption::Memory);
                return Ok(resume::from_buffer(self.clone(), stream_id, after, follow));
            }
            Some(Held {
                in_memory: false, ..
            }) => {
                self.metrics.stream_resumed(StreamResumption::Redis);
                return Ok(resume::from_redis(self.clone(), stream_id, after, follow));
            }
            None => {}
        }
        let asked = match producer_of(last_event_id) {
            Some(nonce) if nonce != self.nonce => {
                self.ask_producer(nonce, &stream_id, requester).await
            }
            // Ours, and no longer here: in Redis if it was ever flushed.
            _ => Asked::Gone,
        };
        let bound = match asked {
            Asked::NoAnswer => self.stream_session(&stream_id).await,
            _ => self.bound_session(&stream_id).await,
        };
        if bound != requester.key() {
            return Err(refused());
        }
        self.metrics.stream_resumed(StreamResumption::Redis);
        Ok(resume::from_redis(self.clone(), stream_id, after, follow))
    }

    /// Stores one event of a standalone stream: written to Redis and
    /// published on the stream's sharded channel.
    async fn store_standalone(
        &self,
        stream_id: &str,
        event_id: &str,
        event: &ServerSseMessage,
    ) -> Result<(), EventStoreError> {
        let retry_ms = event.retry.map(|retry| retry.as_millis() as u64);
        let payload = serde_json::to_string(&StoredEventRef {
            message: event.message.as_deref(),
            retry_ms,
        })?;
        let publish = serde_json::to_string(&Envelope::StreamEvent {
            trace: TraceContext::current(),
            stream_id: stream_id.to_owned(),
            event_id: event_id.to_owned(),
            message: event.message.as_deref().cloned(),
            retry_ms,
        })?;
        let place = self.writer.place().await;
        self.writer.send(Write::Event {
            stream_id: stream_id.into(),
            event_id: event_id.to_owned(),
            payload,
            publish: Some(Publish {
                channel: self.standalone_channel(stream_id),
                envelope: publish,
            }),
            place,
        });
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventStore for FleetEventStore {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<EventId, EventStoreError> {
        let event_id = self.next_event_id(stream_id);
        if is_standalone(stream_id) {
            self.store_standalone(stream_id, &event_id, event).await?;
            return Ok(event_id);
        }
        let Some(shared) = &event.message else {
            // A request stream's priming event (an id and a retry hint, no
            // message) opens the stream: resuming after it replays the
            // whole stream, which is what an id not found in the stream
            // replays too, so it is not stored.
            self.buffer.open(stream_id);
            return Ok(event_id);
        };
        let message: &ServerJsonRpcMessage = shared;
        // Kept as rmcp's message until its frame goes out with its JSON
        // (`Payload`); a retry hint beside a message is serialized now.
        let payload = match event.retry {
            None => Payload::Message(shared.clone()),
            Some(retry) => Payload::Json(serde_json::to_string(&StoredEventRef {
                message: Some(message),
                retry_ms: Some(retry.as_millis() as u64),
            })?),
        };
        let buffered = Buffered {
            event_id: event_id.clone(),
            payload,
        };
        let finished = is_final(message);
        if let Appended::NeedsPlace(buffered) =
            self.buffer.append(stream_id, buffered, finished, None)
        {
            // Written through to Redis: wait for a place in the queue.
            let place = self.writer.place().await.ok_or("event writer stopped")?;
            self.buffer
                .append(stream_id, buffered, finished, Some(place));
        }
        Ok(event_id)
    }

    /// The stateless path (a `GET` with `Last-Event-ID` and no
    /// `Mcp-Session-Id`): only the caller's streams of requests without a
    /// session are replayed there (the caller comes from [`with_caller`]);
    /// a session's streams only through their session.
    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        let store = self
            .me
            .upgrade()
            .ok_or("the event store is shutting down")?;
        let caller = CALLER
            .try_with(|user_hash| StreamOwner::User(user_hash.clone()))
            .unwrap_or(StreamOwner::Pending);
        store.resume(last_event_id, &caller).await
    }
}
