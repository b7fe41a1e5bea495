//! Resumable SSE streams on Redis Streams: rmcp's `EventStore`, shared by all
//! replicas (MCP 2025-06-18, Transports §Resumability and Redelivery).
//!
//! Each SSE stream's events are appended to the Redis Stream
//! `mcp_stream_events:<stream_id>` (trimmed to about [`MAX_EVENTS`] entries;
//! a session's standalone stream expires with the session's TTL, a request's
//! response stream [`REQUEST_STREAM_TTL`] after its last event), with our own globally unique event id in
//! field `e` and the message in field `d`. Event ids are
//! `<stream_id>#<replica nonce>-<sequence>`, so a `Last-Event-ID` names the
//! stream to replay from, whichever replica wrote it.
//!
//! A request stream's priming event is not stored: it carries no message,
//! and a replay after it is the whole stream.
//!
//! Writes are batched: [`RedisEventStore::store_event`] assigns the id and
//! queues the event; one writer task sends whatever has queued as one
//! pipeline (one round trip for many events under load). Events of standalone
//! streams (`<session_id>:common`) are also published on the fleet channel in
//! the same pipeline, so the replica holding the client's GET connection
//! sends them at once.
//!
//! A request's response stream is bound to its session
//! (`mcp_stream_session:<stream_id>`, written in the same batches), so that a
//! `Last-Event-ID` resumes only within the session that received it: another
//! session, or a request without one (the stateless path), replays nothing.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use fred::{
    prelude::*,
    types::{Expiration, streams::XCap},
};
use rmcp::{
    model::ServerJsonRpcMessage,
    transport::streamable_http_server::session::{
        EventId, EventStore, EventStoreError, EventStream, ServerSseMessage,
    },
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::Envelope;
use crate::{metrics::RedisOp, redis::RedisConnection};

/// Events kept per stream (approximately: Redis trims in whole nodes).
pub const MAX_EVENTS: u64 = 1000;

/// Events queued for the writer before `store_event` waits.
const QUEUE: usize = 10_000;

/// Events written per pipeline at most.
const BATCH: usize = 512;

/// Scheduler turns the writer gives running requests to add to a batch.
const GATHER_TURNS: usize = 4;

/// How long a request's response stream stays replayable after its last
/// event (a standalone stream lives as long as its session).
pub const REQUEST_STREAM_TTL: Duration = Duration::from_secs(300);

/// The Redis key of a stream's events.
pub fn stream_key(stream_id: &str) -> String {
    format!("mcp_stream_events:{stream_id}")
}

/// The Redis key naming the session a request's response stream belongs to.
pub fn stream_session_key(stream_id: &str) -> String {
    format!("mcp_stream_session:{stream_id}")
}

/// The stream an event id belongs to.
pub fn stream_of(event_id: &str) -> Option<&str> {
    event_id.rsplit_once('#').map(|(stream, _)| stream)
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

#[derive(Serialize, Deserialize)]
struct StoredEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<ServerJsonRpcMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_ms: Option<u64>,
}

struct Queued {
    stream_id: String,
    event_id: String,
    payload: String,
    publish: Option<String>,
    /// Set on a binding of the stream to this session (no event is written).
    session: Option<String>,
}

/// rmcp's [`EventStore`] on Redis Streams, with batched writes.
pub struct RedisEventStore {
    redis: RedisConnection,
    queue: mpsc::Sender<Queued>,
    nonce: String,
    sequence: AtomicU64,
    fleet_channel: String,
}

impl RedisEventStore {
    /// An event store on `redis` for the fleet of `service`; stream keys
    /// expire `ttl` after their last event.
    pub fn new(redis: RedisConnection, service: &str, ttl: Duration) -> Arc<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let fleet_channel = format!("mcp_fleet:{service}");
        tokio::spawn(write_batches(
            redis.clone(),
            receiver,
            fleet_channel.clone(),
            ttl.as_secs().max(1) as i64,
        ));
        Arc::new(Self {
            redis,
            queue,
            nonce: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            sequence: AtomicU64::new(0),
            fleet_channel,
        })
    }

    /// The name of the fleet channel common events are published on.
    pub fn fleet_channel(&self) -> &str {
        &self.fleet_channel
    }

    /// The events of `stream_id` stored after `after` (all of them when
    /// `after` is `None` or no longer stored), in order.
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
            .filter_map(|(_, mut fields)| {
                let event_id = fields.remove("e")?;
                let stored: StoredEvent = serde_json::from_str(fields.get("d")?).ok()?;
                Some(sse_message(
                    event_id,
                    stored.message,
                    stored.retry_ms.map(Duration::from_millis),
                ))
            })
            .collect())
    }

    /// Binds request stream `stream_id` to `session_id` (written with the
    /// next batch of events; lost, and the stream not resumable, only if the
    /// writer's queue is full).
    pub fn bind_stream(&self, stream_id: &str, session_id: &str) {
        let binding = Queued {
            stream_id: stream_id.to_owned(),
            event_id: String::new(),
            payload: String::new(),
            publish: None,
            session: Some(session_id.to_owned()),
        };
        if self.queue.try_send(binding).is_err() {
            tracing::warn!(
                session_id,
                "event writer busy: a response stream will not be resumable"
            );
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

    /// The session request stream `stream_id` is bound to, waiting up to
    /// 500 ms for a binding still on its way to Redis.
    pub async fn stream_session(&self, stream_id: &str) -> Option<String> {
        for _ in 0..10 {
            if let Some(session) = self.bound_session(stream_id).await {
                return Some(session);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Whether the stream holds the event `event_id` yet (writes are batched,
    /// so an id handed to a client may reach Redis a moment later).
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
}

#[async_trait::async_trait]
impl EventStore for RedisEventStore {
    async fn store_event(
        &self,
        stream_id: &str,
        event: &ServerSseMessage,
    ) -> Result<EventId, EventStoreError> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let event_id = format!("{stream_id}#{}-{sequence}", self.nonce);
        if event.message.is_none() && !is_standalone(stream_id) {
            // A request stream's priming event (an id and a retry hint, no
            // message) opens the stream: resuming after it replays the whole
            // stream, which is what an id not found in the stream replays
            // too, so it is not written (one XADD and one EXPIRE less per
            // tool call). The stream's binding to its session is written
            // when rmcp sends it (`bind_stream`).
            return Ok(event_id);
        }
        let stored = StoredEvent {
            message: event.message.as_deref().cloned(),
            retry_ms: event.retry.map(|retry| retry.as_millis() as u64),
        };
        let payload = serde_json::to_string(&stored)?;
        let publish = if is_standalone(stream_id) {
            Some(serde_json::to_string(&Envelope::StreamEvent {
                stream_id: stream_id.to_owned(),
                event_id: event_id.clone(),
                message: stored.message,
                retry_ms: stored.retry_ms,
            })?)
        } else {
            None
        };
        self.queue
            .send(Queued {
                stream_id: stream_id.to_owned(),
                event_id: event_id.clone(),
                payload,
                publish,
                session: None,
            })
            .await
            .map_err(|_| "event writer stopped")?;
        Ok(event_id)
    }

    /// The stateless path (a `GET` without `Mcp-Session-Id`): streams of
    /// sessions are not replayed there, only through their session.
    async fn replay_events_after(
        &self,
        last_event_id: &str,
    ) -> Result<EventStream, EventStoreError> {
        let stream_id = stream_of(last_event_id).ok_or("malformed Last-Event-ID")?;
        if is_standalone(stream_id) || self.bound_session(stream_id).await.is_some() {
            return Err(
                "Last-Event-ID of a session's stream: resume with its Mcp-Session-Id".into(),
            );
        }
        let events = self.events_after(stream_id, Some(last_event_id)).await?;
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

/// Writes queued events, one pipeline per batch, until the store is dropped.
async fn write_batches(
    redis: RedisConnection,
    mut queue: mpsc::Receiver<Queued>,
    fleet_channel: String,
    ttl_seconds: i64,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        // Under load, requests that are already running queue their events
        // within a moment: let them (one turn of the scheduler, no timer, so
        // an idle replica writes at once), for fewer and fuller pipelines.
        for _ in 0..GATHER_TURNS {
            if batch.len() >= BATCH {
                break;
            }
            tokio::task::yield_now().await;
            if queue.is_empty() {
                break;
            }
            let room = BATCH - batch.len();
            queue.recv_many(&mut batch, room).await;
        }
        let pipeline = redis.pool().next().pipeline();
        let mut queued = Ok(());
        for event in &batch {
            let key = stream_key(&event.stream_id);
            let cap = XCap::try_from(("MAXLEN", "~", MAX_EVENTS as i64));
            queued = async {
                if let Some(session) = &event.session {
                    let _: () = pipeline
                        .set(
                            stream_session_key(&event.stream_id),
                            session.as_str(),
                            Some(Expiration::EX(ttl_seconds)),
                            None,
                            false,
                        )
                        .await?;
                    return Ok(());
                }
                let _: () = pipeline
                    .xadd(
                        &key,
                        false,
                        cap?,
                        "*",
                        vec![
                            ("e", event.event_id.as_str()),
                            ("d", event.payload.as_str()),
                        ],
                    )
                    .await?;
                let ttl = if is_standalone(&event.stream_id) {
                    ttl_seconds
                } else {
                    ttl_seconds.min(REQUEST_STREAM_TTL.as_secs() as i64)
                };
                let _: () = pipeline.expire(&key, ttl, None).await?;
                if let Some(envelope) = &event.publish {
                    let _: () = pipeline
                        .publish(fleet_channel.as_str(), envelope.as_str())
                        .await?;
                }
                Ok::<(), fred::error::Error>(())
            }
            .await;
            if queued.is_err() {
                break;
            }
        }
        let written = match queued {
            Ok(()) => {
                redis.round_trip(RedisOp::EventsWrite);
                pipeline.all::<Vec<Value>>().await.map(|_| ())
            }
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            tracing::warn!(
                events = batch.len(),
                error = %error.details(),
                "could not store SSE events for replay"
            );
        }
        batch.clear();
    }
}
