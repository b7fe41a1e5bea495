//! The event writer: one task per replica that writes SSE events to Redis
//! Streams in pipelines (one round trip for many events under load).
//!
//! What it writes (see [`events`](super::events) for when):
//!
//! | [`Write`] | commands |
//! |---|---|
//! | [`Write::Event`] | `XADD mcp_stream_events:<stream> MAXLEN ~ 1000 * e <event id> d <payload>`, `EXPIRE` (a standalone stream: the session's TTL; a request's response stream: `EVENT_RETENTION_SECONDS`), and for a standalone stream `SPUBLISH mcp_standalone:<service>:<stream>` of the event (read by the replica holding its `GET` connection) |
//! | [`Write::Binding`] | `SET mcp_stream_session:<stream> <session id, or user:<user_hash>> EX` (the longer of the session's TTL and the retention) |
//! | [`Write::Barrier`] | nothing: it is answered once everything queued before it has been written |
//!
//! Writes are kept in the order they were queued, within a pipeline and
//! from one pipeline to the next. Events queued on a request's behalf hold
//! a place in the queue ([`Writer::place`], at most [`QUEUE`]): while Redis
//! is slow, such requests wait for a place rather than the queue growing
//! without bound. Writes of events already held in memory (a stream
//! flushed from the [`EventBuffer`](super::buffer::EventBuffer)) take no
//! place: they are bounded by the buffer's byte budget.

use std::{sync::Arc, time::Duration};

use fred::{
    prelude::*,
    types::{Expiration, streams::XCap},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::{is_standalone, stream_key, stream_session_key};
use crate::{connection::RedisConnection, metrics::RedisOp};

/// Events kept per stream in Redis (approximately: Redis trims in whole
/// nodes).
pub const MAX_EVENTS: u64 = 1000;

/// Writes queued on requests' behalf before they wait for a place.
pub const QUEUE: usize = 10_000;

/// Writes sent per pipeline at most.
const BATCH: usize = 512;

/// Scheduler turns the writer gives running requests to add to a batch.
const GATHER_TURNS: usize = 4;

/// One thing for the writer to do.
#[derive(Debug)]
pub(crate) enum Write {
    /// Append one event to a stream.
    Event {
        /// rmcp's stream id.
        stream_id: Arc<str>,
        /// Our event id (field `e`).
        event_id: String,
        /// The stored event, JSON (field `d`).
        payload: String,
        /// For a standalone stream: the [`Envelope`](super::Envelope) to
        /// publish on the stream's sharded channel once stored.
        publish: Option<Publish>,
        /// The request's place in the queue, released once written.
        place: Option<OwnedSemaphorePermit>,
    },
    /// Bind a request's response stream to its owner.
    Binding {
        /// rmcp's stream id.
        stream_id: Arc<str>,
        /// The owner's [`key`](super::StreamOwner::key): a session id, or
        /// `user:<user_hash>` for a request without a session.
        owner: String,
    },
    /// Answered once every write queued before it is done (or failed).
    Barrier(oneshot::Sender<()>),
}

/// A message to `SPUBLISH` once its event is stored.
#[derive(Debug)]
pub(crate) struct Publish {
    /// The sharded channel (`mcp_standalone:<service>:<stream>`).
    pub(crate) channel: String,
    /// The [`Envelope`](super::Envelope), JSON.
    pub(crate) envelope: String,
}

/// The handle of a replica's event writer.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    queue: mpsc::UnboundedSender<Write>,
    places: Arc<Semaphore>,
}

/// How long written keys live.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ttls {
    /// A standalone stream's key: the session's TTL.
    pub(crate) session: Duration,
    /// A request's response stream: its retention after its last event.
    pub(crate) retention: Duration,
}

impl Writer {
    /// Starts the writer task on `redis` (it ends when every handle is
    /// dropped).
    pub(crate) fn spawn(redis: RedisConnection, ttls: Ttls) -> Self {
        let (writer, queue) = Self::channel();
        tokio::spawn(write_batches(redis, queue, ttls));
        writer
    }

    /// A writer whose writes arrive on the returned receiver (the writer
    /// task's input; tests read it instead).
    pub(crate) fn channel() -> (Self, mpsc::UnboundedReceiver<Write>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        (
            Self {
                queue,
                places: Arc::new(Semaphore::new(QUEUE)),
            },
            receiver,
        )
    }

    /// Queues `write` (never waits; see [`place`](Self::place)).
    pub(crate) fn send(&self, write: Write) {
        if self.queue.send(write).is_err() {
            tracing::warn!("event writer stopped: an SSE event will not be resumable");
        }
    }

    /// A place in the queue for one event written on a request's behalf;
    /// waits while [`QUEUE`] such events are queued.
    pub(crate) async fn place(&self) -> Option<OwnedSemaphorePermit> {
        self.places.clone().acquire_owned().await.ok()
    }

    /// Queues a barrier: the receiver is answered once everything queued so
    /// far has been written.
    pub(crate) fn barrier(&self) -> oneshot::Receiver<()> {
        let (done, written) = oneshot::channel();
        self.send(Write::Barrier(done));
        written
    }
}

/// Writes queued writes, one pipeline per batch, until every handle is gone.
async fn write_batches(
    redis: RedisConnection,
    mut queue: mpsc::UnboundedReceiver<Write>,
    ttls: Ttls,
) {
    let session_ttl = ttls.session.as_secs().max(1) as i64;
    let retention = ttls.retention.as_secs().max(1) as i64;
    let binding_ttl = session_ttl.max(retention);
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
        let mut commands = 0usize;
        let mut queued = Ok(());
        for write in &batch {
            queued = async {
                match write {
                    Write::Binding { stream_id, owner } => {
                        let _: () = pipeline
                            .set(
                                stream_session_key(stream_id),
                                owner.as_str(),
                                Some(Expiration::EX(binding_ttl)),
                                None,
                                false,
                            )
                            .await?;
                        commands += 1;
                    }
                    Write::Event {
                        stream_id,
                        event_id,
                        payload,
                        publish,
                        place: _,
                    } => {
                        let key = stream_key(stream_id);
                        let cap = XCap::try_from(("MAXLEN", "~", MAX_EVENTS as i64))?;
                        let _: () = pipeline
                            .xadd(
                                &key,
                                false,
                                cap,
                                "*",
                                vec![("e", event_id.as_str()), ("d", payload.as_str())],
                            )
                            .await?;
                        let ttl = if is_standalone(stream_id) {
                            session_ttl
                        } else {
                            retention
                        };
                        let _: () = pipeline.expire(&key, ttl, None).await?;
                        commands += 2;
                        if let Some(Publish { channel, envelope }) = publish {
                            let _: () = pipeline
                                .spublish(channel.as_str(), envelope.as_str())
                                .await?;
                            commands += 1;
                        }
                    }
                    Write::Barrier(_) => {}
                }
                Ok::<(), fred::error::Error>(())
            }
            .await;
            if queued.is_err() {
                break;
            }
        }
        let written = match queued {
            Ok(()) if commands == 0 => Ok(()),
            Ok(()) => {
                redis.round_trip(RedisOp::EventsWrite);
                pipeline.all::<Vec<Value>>().await.map(|_| ())
            }
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            tracing::warn!(
                writes = batch.len(),
                error = %error.details(),
                "could not store SSE events for replay"
            );
        }
        // Barriers are answered and places released once their batch is
        // written (or failed).
        for write in batch.drain(..) {
            match write {
                Write::Barrier(done) => {
                    let _ = done.send(());
                }
                Write::Event { place, .. } => drop(place),
                Write::Binding { .. } => {}
            }
        }
    }
}
