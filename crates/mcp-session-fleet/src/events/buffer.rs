//! The events of request response streams, kept in the memory of the
//! replica that produced them until they may be needed elsewhere.
//!
//! A tool call's answer (a `POST /mcp` answered as SSE) almost always
//! reaches its client on the connection that asked for it; writing every
//! event to Redis for a resumption that does not come cost three commands
//! per call and two keys left in Redis for minutes. So the events of a
//! request's response stream stay here, in an [`EventBuffer`], and are
//! written to Redis ("flushed", then written through as they come) only
//! when they may be needed on another replica:
//!
//! | [`EventFlush`] | when |
//! |---|---|
//! | `disconnected` | the stream's HTTP response body was dropped before its end: the client's connection broke or it went away, and it may resume anywhere |
//! | `requested` | another replica received a `Last-Event-ID` of this stream and asked for it on the fleet bus ([`events`](super::events)) |
//! | `shutdown` | this replica is handing its clients off to the fleet ([`hand_off`](EventBuffer::hand_off)) |
//! | `budget` | the buffer is full and the stream is still running: it goes on in Redis rather than being dropped |
//!
//! **Bounds.** The buffer holds at most `EVENT_BUFFER_BYTES` (an estimate of
//! the heap its events take: their JSON, or 1 KiB for an answer whose frame
//! has not gone out yet (see [`Payload`]), their ids and a fixed overhead per
//! event and stream) and keeps a stream at least `EVENT_RETENTION_SECONDS`
//! after its last event unless the budget needs the room. Over budget,
//! the streams that arrived first go first: a finished stream (its answer
//! sent) is dropped, a running one is flushed to Redis and only its marker
//! (who owns it, that it lives in Redis now) stays. Memory is freed by a
//! sweep every second and at every event. `EVENT_BUFFER_BYTES=0` buffers
//! nothing: every event is written through, as before this buffer existed.
//!
//! **Who may resume.** A stream is owned by the session whose request it
//! answers, or by nobody in particular for a request without a session
//! (protocol 2026-07-28): its [`StreamOwner`], set from the response's first
//! event id, before the client has seen any id of the stream
//! ([`Fleet::watch_response`](crate::Fleet::watch_response)).
//! Until then it is [`StreamOwner::Pending`] and nobody can resume it. A stream
//! forgotten after its retention and then heard of again (a tool silent for
//! longer than that) starts over as pending: what it sends later reaches the
//! client's open connection but cannot be resumed.
//!
//! This is our own structure rather than a cache crate: a stream's weight
//! grows with each event, eviction must flush a running stream instead of
//! dropping it, in the same step and in order with its later events, and
//! the byte count is what the gauge reports.
//!
//! **Layout.** Under load the map holds tens of thousands of streams, and
//! every event looks its stream up: the map's slots are small (the id and a
//! box: a probe reads few cache lines and pages), hashed with hashbrown's
//! seeded foldhash (ids in `Last-Event-ID` come from clients), and an event
//! finds or makes its stream with one lookup. With the entries inline and
//! SipHash, the lookups were 3.5% of a Redis-backed replica's samples
//! under jemalloc (docs/benchmarks.md, "Memory per idle session, and the
//! allocator").
//!
//! **Shards.** Every tool call takes the buffer's lock three times (its
//! stream opened, bound to its session, answered), and the lock is held
//! while the oldest streams, cold in memory, are freed. Behind one lock the
//! worker threads queued on it: `perf` showed every `sched_yield` of a
//! loaded Redis-backed replica in `parking_lot`'s wait for it. So the
//! streams are spread by a keyed hash of their id over [`SHARDS`] shards
//! (fewer under a budget of a few MiB), each with its own lock, map,
//! eviction order and an equal share of the byte budget: the budget and the
//! retention hold per shard, and "first in, first out" holds among the
//! streams of one shard.

use std::{
    borrow::Cow,
    collections::VecDeque,
    hash::BuildHasher,
    sync::{Arc, Weak},
    time::Duration,
};

use hashbrown::{DefaultHashBuilder, HashMap, hash_map::EntryRef};

use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use tokio::{
    sync::{OwnedSemaphorePermit, oneshot, watch},
    time::Instant,
};

use rmcp::model::ServerJsonRpcMessage;

use super::{
    StoredEventRef,
    writer::{Write, Writer},
};
use crate::{
    identity::UserHash,
    metrics::{EventFlush, Metrics},
};

/// Bytes one heap allocation costs beyond what it holds (the allocator's
/// header and rounding), an estimate.
const ALLOCATION: usize = 16;

/// Bytes counted for a stream besides its slots in the map and the order
/// (counted by capacity, see [`Inner::footprint`]): its id (shared by both),
/// its boxed entry and its list of events.
const STREAM_OVERHEAD: usize =
    2 * std::mem::size_of::<usize>() + std::mem::size_of::<Entry>() + 3 * ALLOCATION;

/// Bytes counted for an event besides its id and JSON: its place in the
/// stream's list and its two strings' allocations.
const EVENT_OVERHEAD: usize = std::mem::size_of::<Buffered>() + 2 * ALLOCATION;

/// Bytes of one slot of the map of streams (hashbrown: the key, the boxed
/// entry and a control byte).
const MAP_SLOT: usize = std::mem::size_of::<(Arc<str>, Box<Entry>)>() + 1;

/// How often idle memory is swept.
const SWEEP: Duration = Duration::from_secs(1);

/// Streams past their retention that one request drops at most, under its
/// shard's lock: after a burst, the rest goes in the sweep, so that no
/// request waits on thousands of them (the budget still holds: it evicts
/// from the same end).
const EXPIRE_PER_REQUEST: usize = 64;

/// Streams past their retention the sweep drops per hold of a shard's lock;
/// between two holds, the requests waiting for the lock go first.
const EXPIRE_PER_HOLD: usize = 1024;

/// Shards of a buffer (see the module docs). 16 shards left the waits at
/// 300-700 per 10 s run but kept about 1 MB more per replica after a burst
/// of sessions ended (a release build's soak test: +17% to +22% of its
/// start, against +15% to +17% with one shard; likely each shard's smaller
/// tables sharing the allocator's slabs with longer-lived objects, not
/// measured); 4 shards: 1,100-2,000 waits, +16% to +19.5%. Against one
/// lock's 4,800-6,100 waits.
pub(crate) const SHARDS: usize = 4;

/// The least share of the budget a shard gets (bytes): a smaller
/// `EVENT_BUFFER_BYTES` is split over fewer shards, so that each still holds
/// a few thousand typical answers and its oldest-first order means something.
const MIN_SHARD_BUDGET: usize = 1 << 20;

/// How many shards a buffer of `budget` bytes has: [`SHARDS`], fewer for a
/// budget under `SHARDS` MiB (one under 2 MiB); [`SHARDS`] for 0 (no
/// budget: every stream written through).
fn shards_for(budget: usize) -> usize {
    if budget == 0 {
        return SHARDS;
    }
    (budget / MIN_SHARD_BUDGET).clamp(1, SHARDS)
}

/// Who may resume a request's response stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOwner {
    /// Not known yet: no id of the stream has been sent; nobody may resume it.
    Pending,
    /// The session whose request the stream answers.
    Session(String),
    /// The user (by [`user_hash`](crate::identity::Caller::user_hash))
    /// whose request without a session the stream answers (the stateless
    /// path, protocol 2026-07-28): only that user may resume it.
    User(UserHash),
}

/// The prefix of a [`StreamOwner::User`]'s key; session ids are server-made
/// UUIDs and never start with it.
const USER_KEY: &str = "user:";

impl StreamOwner {
    /// The owner as written in Redis (`mcp_stream_session:<stream_id>`) and
    /// in flush requests: a session's id, or `user:<user_hash>`; `None`
    /// while [`Pending`](Self::Pending).
    pub(crate) fn key(&self) -> Option<String> {
        match self {
            Self::Pending => None,
            Self::Session(session_id) => Some(session_id.clone()),
            Self::User(user_hash) => Some(format!("{USER_KEY}{user_hash}")),
        }
    }

    /// The owner a [`key`](Self::key) names; a malformed user key names
    /// nobody ([`Pending`](Self::Pending)).
    pub(crate) fn from_key(key: &str) -> Self {
        match key.strip_prefix(USER_KEY) {
            Some(user_hash) => UserHash::parse(user_hash).map_or(Self::Pending, Self::User),
            None => Self::Session(key.to_owned()),
        }
    }

    /// Whether `requester` (the session, or the user on the stateless path,
    /// of a resumption) may read the stream: the same session or user;
    /// never a pending stream.
    pub(crate) fn admits(&self, requester: &StreamOwner) -> bool {
        *self != Self::Pending && self == requester
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Session(id) => id.len() + ALLOCATION,
            Self::User(user_hash) => user_hash.as_str().len() + ALLOCATION,
            Self::Pending => 0,
        }
    }
}

/// One stored event: our event id and its [`Payload`].
#[derive(Debug, Clone)]
pub(crate) struct Buffered {
    pub(crate) event_id: String,
    pub(crate) payload: Payload,
}

/// Bytes counted for a message not yet framed ([`Payload::Message`]): about
/// the heap rmcp's typed answer takes (a typical calculator answer: 1,340
/// bytes in 9 allocations, against 216 as JSON).
const UNFRAMED_MESSAGE: usize = 1024;

/// A stored event's content.
///
/// rmcp serializes each message into its SSE frame; serializing it again
/// for the buffer was most of what a buffered answer cost (about 5k
/// instructions per tool call, `scripts/callgrind.sh`). So an event comes
/// in as rmcp's message and takes the JSON of its frame when the frame goes
/// out ([`EventBuffer::framed`]); kept as a message it would take several
/// times the memory. A message that must be written or replayed before its
/// frame went out (a client that left first) is serialized then.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// The stored event's JSON (the `d` field of its Redis Stream entry).
    Json(String),
    /// The message, until its frame goes out.
    Message(Arc<ServerJsonRpcMessage>),
}

impl Payload {
    /// The stored event's JSON.
    pub(crate) fn json(&self) -> Cow<'_, str> {
        match self {
            Self::Json(json) => Cow::Borrowed(json),
            Self::Message(message) => Cow::Owned(stored_json(message)),
        }
    }

    /// The stored event's JSON, owned.
    pub(crate) fn into_json(self) -> String {
        match self {
            Self::Json(json) => json,
            Self::Message(message) => stored_json(&message),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Json(json) => json.len(),
            Self::Message(_) => UNFRAMED_MESSAGE,
        }
    }
}

/// The JSON of a stored event of `message` (no retry hint).
fn stored_json(message: &ServerJsonRpcMessage) -> String {
    // rmcp frames the same message with `serde_json::to_string(..).expect(..)`.
    serde_json::to_string(&StoredEventRef {
        message: Some(message),
        retry_ms: None,
    })
    .expect("a JSON-RPC message serializes")
}

/// The stored event's JSON around `data`, a message's JSON (the `data:` of
/// its SSE frame): what [`stored_json`] makes of the message.
fn stored_json_around(data: &str) -> String {
    const BEFORE: &str = r#"{"message":"#;
    let mut json = String::with_capacity(BEFORE.len() + data.len() + 1);
    json.push_str(BEFORE);
    json.push_str(data);
    json.push('}');
    json
}

impl Buffered {
    fn bytes(&self) -> usize {
        EVENT_OVERHEAD + self.event_id.len() + self.payload.bytes()
    }
}

struct Entry {
    stream_id: Arc<str>,
    generation: u64,
    owner: StreamOwner,
    events: Vec<Buffered>,
    bytes: usize,
    /// Its last event (a response or an error) has been stored.
    finished: bool,
    /// Its events are in Redis (or on their way): later ones are written
    /// through.
    spilled: bool,
    /// Its events are no longer in memory (spilled to make room).
    trimmed: bool,
    last: Instant,
    /// Wakes the resumptions that follow the stream here.
    changes: Option<watch::Sender<()>>,
}

impl Entry {
    /// A pending stream, not yet counted nor queued ([`Inner::admit`]).
    /// Its list has room for one event: most streams hold one (the
    /// response), and it is allocated here, before the shard's lock.
    fn new(stream_id: Arc<str>, now: Instant) -> Box<Self> {
        Box::new(Self {
            bytes: STREAM_OVERHEAD + stream_id.len(),
            stream_id,
            generation: 0,
            owner: StreamOwner::Pending,
            events: Vec::with_capacity(1),
            finished: false,
            spilled: false,
            trimmed: false,
            last: now,
            changes: None,
        })
    }

    fn changed(&self) {
        if let Some(changes) = &self.changes {
            changes.send_replace(());
        }
    }
}

/// What a shard lets go of under its lock, freed when this is dropped,
/// after the lock: the streams it removed and the events it trimmed. Their
/// memory is mostly cold (the oldest streams), and while the lock is held
/// every request on the shard waits (docs/benchmarks.md, "the event
/// buffer's lock"). One or two streams per call in the steady state: kept
/// inline.
struct Evicted {
    entries: SmallVec<[Box<Entry>; 2]>,
    events: SmallVec<[Vec<Buffered>; 1]>,
}

impl Evicted {
    fn new() -> Self {
        Self {
            entries: SmallVec::new(),
            events: SmallVec::new(),
        }
    }
}

/// A stream's place in the eviction order.
struct Slot {
    stream_id: Arc<str>,
    generation: u64,
    /// When it was queued: activity after it moves the stream back.
    stamp: Instant,
}

#[derive(Default)]
struct Inner {
    streams: HashMap<Arc<str>, Box<Entry>>,
    books: Books,
}

/// A shard's bookkeeping beside its map (apart from it, so that a new
/// entry can be counted while the map's vacant entry still borrows the map).
#[derive(Default)]
struct Books {
    /// The streams in eviction order, oldest first.
    order: VecDeque<Slot>,
    /// The streams' and their events' bytes.
    bytes: usize,
    next_generation: u64,
    /// Every stream is written through (no budget, or handed off).
    write_through: bool,
}

/// What [`EventBuffer::append`] did.
#[derive(Debug)]
pub(crate) enum Appended {
    /// Stored.
    Done,
    /// The stream is written through: call again with a place in the
    /// writer's queue ([`Writer::place`]).
    NeedsPlace(Buffered),
}

/// What this replica holds of a stream ([`EventBuffer::holding`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) owner: StreamOwner,
    /// Its events are in memory (else only in Redis).
    pub(crate) in_memory: bool,
}

/// What [`EventBuffer::read_after`] found.
#[derive(Debug)]
pub(crate) enum Read {
    /// The events after the given id, whether the stream has finished, and
    /// a receiver woken at its next change.
    Events {
        events: Vec<Buffered>,
        finished: bool,
        changes: watch::Receiver<()>,
    },
    /// Its events are in Redis now.
    InRedis,
    /// Not held here (never, or no longer).
    Gone,
}

/// The bounded buffer of one replica (see the module docs).
pub(crate) struct EventBuffer {
    shards: Box<[Mutex<Inner>]>,
    /// Picks a stream's shard (seeded per process: stream ids named in a
    /// `Last-Event-ID` come from clients).
    hasher: DefaultHashBuilder,
    /// Bytes per shard.
    budget: usize,
    retention: Duration,
    writer: Writer,
    metrics: Arc<Metrics>,
}

impl EventBuffer {
    /// A buffer of `budget` bytes in up to [`SHARDS`] shards (see
    /// [`shards_for`]), keeping streams `retention` after their last event,
    /// flushing through `writer`; `budget` 0 writes every stream through.
    /// Must be called within a Tokio runtime (it starts the sweep).
    pub(crate) fn start(
        budget: usize,
        retention: Duration,
        writer: Writer,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Self::start_sharded(shards_for(budget), budget, retention, writer, metrics)
    }

    /// [`start`](Self::start) with `shards` shards (at least one), each
    /// with `budget / shards` bytes.
    pub(crate) fn start_sharded(
        shards: usize,
        budget: usize,
        retention: Duration,
        writer: Writer,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let shards = shards.max(1);
        let buffer = Arc::new(Self {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Inner {
                        books: Books {
                            write_through: budget == 0,
                            ..Books::default()
                        },
                        ..Inner::default()
                    })
                })
                .collect(),
            hasher: DefaultHashBuilder::default(),
            budget: budget / shards,
            retention,
            writer,
            metrics,
        });
        tokio::spawn(sweep(Arc::downgrade(&buffer)));
        buffer
    }

    /// The locked shard of `stream_id`.
    fn lock(&self, stream_id: &str) -> MutexGuard<'_, Inner> {
        self.shard(stream_id).lock()
    }

    fn shard(&self, stream_id: &str) -> &Mutex<Inner> {
        let hash = self.hasher.hash_one(stream_id) as usize;
        &self.shards[hash % self.shards.len()]
    }

    /// Opens `stream_id` (its priming event, which carries no message and is
    /// not stored), so that a resumption after it finds the stream.
    pub(crate) fn open(&self, stream_id: &str) {
        let now = Instant::now();
        // Allocated before the lock, and what is evicted freed after it:
        // every request on the shard waits while its lock is held.
        let fresh = Entry::new(stream_id.into(), now);
        let mut evicted = Evicted::new();
        {
            let mut inner = self.lock(stream_id);
            inner.insert(fresh, &mut evicted);
            self.enforce(&mut inner, now, &mut evicted, EXPIRE_PER_REQUEST);
        }
        drop(evicted);
    }

    /// Stores `event` of `stream_id`; `finished` when it is the stream's
    /// last (a response or an error). A stream that is written through
    /// needs a `place` in the writer's queue: without one, the event comes
    /// back in [`Appended::NeedsPlace`].
    pub(crate) fn append(
        &self,
        stream_id: &str,
        event: Buffered,
        finished: bool,
        place: Option<OwnedSemaphorePermit>,
    ) -> Appended {
        let now = Instant::now();
        let mut evicted = Evicted::new();
        let mut inner = self.lock(stream_id);
        let entry = inner.entry(stream_id, now);
        if entry.spilled && place.is_none() {
            return Appended::NeedsPlace(event);
        }
        entry.last = now;
        entry.finished |= finished;
        let added = if entry.trimmed { 0 } else { event.bytes() };
        // A stream written through queues its event under the lock that
        // queued its earlier ones: Redis gets them in order.
        if entry.spilled && entry.trimmed {
            self.writer.send(Write::Event {
                stream_id: entry.stream_id.clone(),
                event_id: event.event_id,
                payload: event.payload.into_json(),
                publish: None,
                place,
            });
        } else {
            if entry.spilled {
                self.writer.send(Write::Event {
                    stream_id: entry.stream_id.clone(),
                    event_id: event.event_id.clone(),
                    payload: event.payload.json().into_owned(),
                    publish: None,
                    place,
                });
            }
            if entry.events.is_empty() {
                // Most streams hold one event (the response): no room for more.
                entry.events.reserve_exact(1);
            }
            entry.events.push(event);
            entry.bytes += added;
        }
        entry.changed();
        inner.books.bytes += added;
        self.enforce(&mut inner, now, &mut evicted, EXPIRE_PER_REQUEST);
        drop(inner);
        drop(evicted);
        Appended::Done
    }

    /// The SSE frame of event `event_id` of `stream_id` went out, carrying
    /// `data`, the message's JSON as rmcp serialized it: the event keeps
    /// that JSON instead of the message ([`Payload`]). Anything else (an
    /// event not held here, or held as JSON already: a replay) is left as
    /// it is.
    ///
    /// Only if the stream's shard is free: this would be a fourth hold of
    /// the lock per tool call (after the stream's opening, binding and
    /// answer), and waiting for it cost more than it saves. An event left
    /// as its message is counted as such and serialized if it is ever
    /// written or replayed.
    pub(crate) fn framed(&self, stream_id: &str, event_id: &str, data: &str) {
        // Allocated before the lock, the message freed after it.
        let json = Payload::Json(stored_json_around(data));
        let message = {
            let Some(mut guard) = self.shard(stream_id).try_lock() else {
                return;
            };
            let inner = &mut *guard;
            let Some(entry) = inner.streams.get_mut(stream_id) else {
                return;
            };
            let Some(event) = entry
                .events
                .iter_mut()
                .rev()
                .find(|event| event.event_id == event_id)
                .filter(|event| matches!(event.payload, Payload::Message(_)))
            else {
                return;
            };
            let (before, after) = (event.payload.bytes(), json.bytes());
            entry.bytes = entry.bytes - before + after;
            inner.books.bytes = inner.books.bytes - before + after;
            std::mem::replace(&mut event.payload, json)
        };
        drop(message);
    }

    /// Sets the owner of `stream_id`, once: a stream's owner never changes.
    /// A stream already in Redis gets its binding to the session written.
    ///
    /// A stream no longer held here when its owner is known (written
    /// through and dropped, or flushed and evicted, before its response's
    /// first event reached the transport, as happens under load) has its
    /// events in Redis: its binding is written too, or no replica could
    /// resume it.
    pub(crate) fn bind(&self, stream_id: &str, owner: StreamOwner) {
        let mut inner = self.lock(stream_id);
        let Some(entry) = inner.streams.get_mut(stream_id) else {
            if let Some(key) = owner.key() {
                self.writer.send(Write::Binding {
                    stream_id: stream_id.into(),
                    owner: key,
                });
            }
            return;
        };
        if entry.owner != StreamOwner::Pending || owner == StreamOwner::Pending {
            return;
        }
        let added = owner.bytes();
        if entry.spilled
            && let Some(key) = owner.key()
        {
            self.writer.send(Write::Binding {
                stream_id: entry.stream_id.clone(),
                owner: key,
            });
        }
        entry.owner = owner;
        entry.bytes += added;
        inner.books.bytes += added;
    }

    /// Flushes `stream_id` to Redis because its response body was dropped
    /// before its end; returns whether this replica held it in memory.
    pub(crate) fn disconnected(&self, stream_id: &str) -> bool {
        let mut inner = self.lock(stream_id);
        let Some(entry) = inner.streams.get_mut(stream_id) else {
            return false;
        };
        self.spill(entry, EventFlush::Disconnected);
        true
    }

    /// Flushes `stream_id` for a resumption elsewhere by `requester` (its
    /// session, or its user on the stateless path), if this replica holds
    /// it and `requester` owns it; the receiver is answered once its events
    /// are in Redis. `None` otherwise: nothing is written for a stream of
    /// another owner.
    pub(crate) fn flush_for(
        &self,
        stream_id: &str,
        requester: &StreamOwner,
    ) -> Option<oneshot::Receiver<()>> {
        let mut inner = self.lock(stream_id);
        let entry = inner.streams.get_mut(stream_id)?;
        if !entry.owner.admits(requester) {
            return None;
        }
        self.spill(entry, EventFlush::Requested);
        Some(self.writer.barrier())
    }

    /// The hand-off of a stopping replica: every stream that may be resumed
    /// is flushed to Redis (running ones first) and every later event is
    /// written through. The receiver is answered once they are written.
    pub(crate) fn hand_off(&self) -> oneshot::Receiver<()> {
        // Every shard locked at once: no event slips between the flush and
        // write-through.
        let mut shards: Vec<_> = self.shards.iter().map(|shard| shard.lock()).collect();
        for inner in &mut shards {
            inner.books.write_through = true;
        }
        for running in [true, false] {
            for inner in &mut shards {
                for entry in inner.streams.values_mut() {
                    // A finished stream nobody was told of cannot be resumed.
                    let resumable = !entry.finished || entry.owner != StreamOwner::Pending;
                    if entry.finished != running && resumable {
                        self.spill(entry, EventFlush::Shutdown);
                    }
                }
            }
        }
        self.writer.barrier()
    }

    /// Answered once everything queued for Redis so far is written.
    pub(crate) fn written(&self) -> oneshot::Receiver<()> {
        self.writer.barrier()
    }

    /// Whether, and how, this replica holds `stream_id`.
    pub(crate) fn holding(&self, stream_id: &str) -> Option<Held> {
        let inner = self.lock(stream_id);
        inner.streams.get(stream_id).map(|entry| Held {
            owner: entry.owner.clone(),
            in_memory: !entry.trimmed,
        })
    }

    /// The events of `stream_id` after the event `after` (all of them when
    /// `after` is `None` or not among them: a priming event's id).
    pub(crate) fn read_after(&self, stream_id: &str, after: Option<&str>) -> Read {
        let mut inner = self.lock(stream_id);
        let Some(entry) = inner.streams.get_mut(stream_id) else {
            return Read::Gone;
        };
        if entry.trimmed {
            return Read::InRedis;
        }
        let start = after
            .and_then(|after| {
                entry
                    .events
                    .iter()
                    .position(|event| event.event_id == after)
            })
            .map_or(0, |position| position + 1);
        let changes = entry
            .changes
            .get_or_insert_with(|| watch::channel(()).0)
            .subscribe();
        Read::Events {
            events: entry.events[start..].to_vec(),
            finished: entry.finished,
            changes,
        }
    }

    /// Bytes counted and streams held now.
    pub(crate) fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(bytes, streams), shard| {
            let inner = shard.lock();
            (bytes + inner.footprint(), streams + inner.streams.len())
        })
    }

    /// Writes `entry`'s events to Redis, and from now on its later ones,
    /// unless it is already there. Called under the lock, so that later
    /// events queue after these.
    fn spill(&self, entry: &mut Entry, reason: EventFlush) {
        if entry.spilled {
            return;
        }
        entry.spilled = true;
        if let Some(key) = entry.owner.key() {
            self.writer.send(Write::Binding {
                stream_id: entry.stream_id.clone(),
                owner: key,
            });
        }
        for event in &entry.events {
            self.writer.send(Write::Event {
                stream_id: entry.stream_id.clone(),
                event_id: event.event_id.clone(),
                payload: event.payload.json().into_owned(),
                publish: None,
                place: None,
            });
        }
        self.metrics.event_flush(reason);
    }

    /// Drops what is past its retention (at most `expire` streams), then
    /// makes room in `inner` (one shard) down to its share of the budget;
    /// returns whether more may be past their retention.
    fn enforce(
        &self,
        inner: &mut Inner,
        now: Instant,
        evicted: &mut Evicted,
        expire: usize,
    ) -> bool {
        let more = inner.expire(now, self.retention, evicted, expire);
        let mut steps = inner.books.order.len();
        while inner.footprint() > self.budget && steps > 0 {
            steps -= 1;
            let Some(slot) = inner.books.order.pop_front() else {
                break;
            };
            let Some(entry) = inner.streams.get_mut(&slot.stream_id) else {
                continue;
            };
            if entry.generation != slot.generation {
                continue;
            }
            if entry.finished {
                inner.remove(&slot.stream_id, evicted);
                continue;
            }
            // Still running: it goes on in Redis; its marker stays (and
            // expires like any stream).
            self.spill(entry, EventFlush::Budget);
            let freed: usize = entry.events.iter().map(Buffered::bytes).sum();
            evicted.events.push(std::mem::take(&mut entry.events));
            entry.trimmed = true;
            entry.bytes -= freed;
            entry.changed();
            inner.books.bytes -= freed;
            inner.books.order.push_back(slot);
        }
        more
    }
}

impl Inner {
    /// The bytes counted against the budget: the streams' and events' own,
    /// and the map's and the order's (by their capacity, which grows by
    /// doubling and does not shrink).
    fn footprint(&self) -> usize {
        // hashbrown keeps an eighth of its buckets free.
        let buckets = self.streams.capacity() / 7 * 8;
        self.books.bytes
            + buckets * MAP_SLOT
            + self.books.order.capacity() * std::mem::size_of::<Slot>()
    }

    /// The entry of `stream_id`, created (pending) when there is none.
    fn entry(&mut self, stream_id: &str, now: Instant) -> &mut Entry {
        let vacant = match self.streams.entry_ref(stream_id) {
            EntryRef::Occupied(occupied) => return occupied.into_mut(),
            EntryRef::Vacant(vacant) => vacant,
        };
        let entry = Entry::new(stream_id.into(), now);
        let stream_id = entry.stream_id.clone();
        let entry = vacant.insert_with_key(stream_id, entry);
        self.books.admit(entry);
        entry
    }

    /// Adds `fresh` (from [`Entry::new`]) unless its stream is held
    /// already; then `fresh` goes to `evicted`, to be freed after the lock.
    fn insert(&mut self, fresh: Box<Entry>, evicted: &mut Evicted) {
        let vacant = match self.streams.entry(fresh.stream_id.clone()) {
            hashbrown::hash_map::Entry::Occupied(_) => {
                evicted.entries.push(fresh);
                return;
            }
            hashbrown::hash_map::Entry::Vacant(vacant) => vacant,
        };
        let entry = vacant.insert(fresh);
        self.books.admit(entry);
    }

    /// Removes `stream_id`; its memory goes to `evicted`, to be freed
    /// after the lock.
    fn remove(&mut self, stream_id: &str, evicted: &mut Evicted) {
        if let Some(entry) = self.streams.remove(stream_id) {
            self.books.bytes -= entry.bytes;
            evicted.entries.push(entry);
        }
    }

    /// Gives back the map's and the order's memory once a burst of streams
    /// is gone ([`shrink::target`](crate::shrink::target)).
    fn shrink(&mut self) {
        if let Some(capacity) = crate::shrink::target(self.streams.len(), self.streams.capacity()) {
            self.streams.shrink_to(capacity);
        }
        if let Some(capacity) =
            crate::shrink::target(self.books.order.len(), self.books.order.capacity())
        {
            self.books.order.shrink_to(capacity);
        }
    }

    /// Drops, from the front of the order, the streams silent for
    /// `retention`; a stream queued that long ago but active since goes to
    /// the back. Looks at `limit` streams at most; returns whether it
    /// stopped there (more may be due).
    fn expire(
        &mut self,
        now: Instant,
        retention: Duration,
        evicted: &mut Evicted,
        limit: usize,
    ) -> bool {
        let mut steps = self.books.order.len();
        let mut allowed = limit;
        while steps > 0 {
            if allowed == 0 {
                return true;
            }
            allowed -= 1;
            steps -= 1;
            let Some(slot) = self.books.order.front() else {
                break;
            };
            let last = match self.streams.get(&slot.stream_id) {
                Some(entry) if entry.generation == slot.generation => entry.last,
                _ => {
                    self.books.order.pop_front();
                    continue;
                }
            };
            if now.duration_since(last) >= retention {
                let slot = self.books.order.pop_front().expect("front");
                self.remove(&slot.stream_id, evicted);
            } else if now.duration_since(slot.stamp) >= retention {
                let mut slot = self.books.order.pop_front().expect("front");
                slot.stamp = last;
                self.books.order.push_back(slot);
            } else {
                break;
            }
        }
        false
    }
}

impl Books {
    /// Counts a new `entry`, gives it its generation and queues it last in
    /// the eviction order.
    fn admit(&mut self, entry: &mut Entry) {
        self.next_generation += 1;
        entry.generation = self.next_generation;
        entry.spilled = self.write_through;
        entry.trimmed = self.write_through;
        self.bytes += entry.bytes;
        self.order.push_back(Slot {
            stream_id: entry.stream_id.clone(),
            generation: entry.generation,
            stamp: entry.last,
        });
    }
}

/// Every [`SWEEP`], frees what has passed its retention, until the buffer
/// is dropped.
async fn sweep(buffer: Weak<EventBuffer>) {
    crate::periodic::while_alive(buffer, SWEEP, |buffer| {
        let now = Instant::now();
        for shard in &buffer.shards {
            let mut evicted = Evicted::new();
            let mut inner = shard.lock();
            // In holds of EXPIRE_PER_HOLD streams; the requests waiting
            // meanwhile go first (a fair unlock), while what one hold
            // dropped is freed. Each hold but the last moves the front of
            // the order on by that many, so the passes are bounded.
            let mut passes = inner.books.order.len() / EXPIRE_PER_HOLD + 1;
            while buffer.enforce(&mut inner, now, &mut evicted, EXPIRE_PER_HOLD) && passes > 0 {
                passes -= 1;
                let dropped = std::mem::replace(&mut evicted, Evicted::new());
                MutexGuard::unlocked_fair(&mut inner, || drop(dropped));
            }
            inner.shrink();
            drop(inner);
            drop(evicted);
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc::UnboundedReceiver;

    use super::*;

    const RETENTION: Duration = Duration::from_secs(300);

    /// A buffer of one shard, whose eviction order is the order of all
    /// streams.
    fn buffer(budget: usize) -> (Arc<EventBuffer>, UnboundedReceiver<Write>, Arc<Metrics>) {
        sharded(1, budget)
    }

    fn sharded(
        shards: usize,
        budget: usize,
    ) -> (Arc<EventBuffer>, UnboundedReceiver<Write>, Arc<Metrics>) {
        let (writer, writes) = Writer::channel();
        let metrics = Arc::new(Metrics::new("test", "0", "replica-1"));
        let buffer = EventBuffer::start_sharded(shards, budget, RETENTION, writer, metrics.clone());
        (buffer, writes, metrics)
    }

    fn event(stream: &str, index: usize) -> Buffered {
        Buffered {
            event_id: format!("{stream}#nonce-{index}"),
            payload: Payload::Json(format!(
                r#"{{"message":{{"jsonrpc":"2.0","id":{index},"result":{{}}}}}}"#
            )),
        }
    }

    /// The stream owner of the user whose hash is `digit` 64 times.
    fn user(digit: char) -> StreamOwner {
        StreamOwner::User(UserHash::parse(&digit.to_string().repeat(64)).expect("a user hash"))
    }

    /// What the writer was asked to do so far: `binding <stream> <session>`,
    /// `event <id>`, `barrier`.
    fn taken(receiver: &mut UnboundedReceiver<Write>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(write) = receiver.try_recv() {
            seen.push(match write {
                Write::Binding { stream_id, owner } => format!("binding {stream_id} {owner}"),
                Write::Event { event_id, .. } => format!("event {event_id}"),
                Write::Barrier(_) => "barrier".to_owned(),
            });
        }
        seen
    }

    /// One stream with its response: what a tool call leaves.
    fn answered(buffer: &EventBuffer, stream: &str) {
        buffer.open(stream);
        buffer.bind(stream, StreamOwner::Session("session-a".into()));
        let stored = buffer.append(stream, event(stream, 0), true, None);
        assert!(matches!(stored, Appended::Done));
    }

    fn flushes(metrics: &Metrics, reason: &str) -> String {
        let line = format!("mcp_event_flushes_total{{reason=\"{reason}\"}} ");
        let text = metrics.render();
        text.lines()
            .find_map(|sample| sample.strip_prefix(&line))
            .unwrap_or_default()
            .to_owned()
    }

    /// An answer as rmcp hands it to the store: its message.
    fn message(index: usize) -> Arc<ServerJsonRpcMessage> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "jsonrpc": "2.0", "id": index, "result": {"content": [
                    {"type": "text", "text": "{\"result\": 3}"}]}
            }))
            .expect("a response"),
        )
    }

    fn unframed(stream: &str, index: usize) -> Buffered {
        Buffered {
            event_id: format!("{stream}#nonce-{index}"),
            payload: Payload::Message(message(index)),
        }
    }

    fn payloads(buffer: &EventBuffer, stream: &str) -> Vec<String> {
        match buffer.read_after(stream, None) {
            Read::Events { events, .. } => events
                .iter()
                .map(|event| event.payload.json().into_owned())
                .collect(),
            _ => panic!("{stream} is not in memory"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_keeps_its_frames_json_instead_of_its_message() {
        let (buffer, _, _) = buffer(usize::MAX);
        buffer.open("s");
        buffer.bind("s", StreamOwner::Session("session-a".into()));
        let stored = buffer.append("s", unframed("s", 0), true, None);
        assert!(matches!(stored, Appended::Done));
        let (unframed_bytes, _) = buffer.usage();
        // Before its frame: its JSON, made from the message when asked for.
        let expected = stored_json(&message(0));
        assert_eq!(payloads(&buffer, "s"), std::slice::from_ref(&expected));

        let data = serde_json::to_string(&*message(0)).unwrap();
        buffer.framed("s", "s#nonce-1", &data);
        buffer.framed("t", "t#nonce-0", &data);
        assert_eq!(buffer.usage().0, unframed_bytes, "another event: unchanged");
        buffer.framed("s", "s#nonce-0", &data);
        let (framed_bytes, _) = buffer.usage();
        assert_eq!(
            unframed_bytes - framed_bytes,
            UNFRAMED_MESSAGE - expected.len(),
            "counted by its JSON now"
        );
        match buffer.read_after("s", None) {
            Read::Events { events, .. } => {
                assert!(matches!(&events[0].payload, Payload::Json(json) if *json == expected));
            }
            _ => panic!("s is not in memory"),
        }
        // A replay's frame of the same event changes nothing.
        buffer.framed("s", "s#nonce-0", &data);
        assert_eq!(buffer.usage().0, framed_bytes);
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_flushed_before_its_frame_is_written_as_its_messages_json() {
        let (buffer, mut writes, _) = buffer(usize::MAX);
        buffer.open("s");
        buffer.bind("s", StreamOwner::Session("session-a".into()));
        buffer.append("s", unframed("s", 0), false, None);
        assert!(buffer.disconnected("s"));
        let mut written = Vec::new();
        while let Ok(write) = writes.try_recv() {
            if let Write::Event { payload, .. } = write {
                written.push(payload);
            }
        }
        assert_eq!(written, [stored_json(&message(0))]);
        let decoded = super::super::decode("s#nonce-0".into(), &written[0]).expect("decodes");
        assert_eq!(
            serde_json::to_value(decoded.message.as_deref()).unwrap(),
            serde_json::to_value(&*message(0)).unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn finished_streams_are_dropped_oldest_first_within_the_byte_budget() {
        let (probe, _, _) = buffer(usize::MAX);
        answered(&probe, "stream-999");
        let (one_stream, _) = probe.usage();
        let budget = 20 * one_stream;
        let (buffer, mut queue, _) = buffer(budget);
        for index in 0..200 {
            answered(&buffer, &format!("stream-{index:03}"));
            let (bytes, _) = buffer.usage();
            assert!(bytes <= budget, "{bytes} bytes held, budget {budget}");
        }
        // The map's and the order's capacity count too (the probe's share of
        // them is larger than one stream's among many), so about 20 streams
        // fit.
        let (bytes, held) = buffer.usage();
        assert!(bytes <= budget, "{bytes} bytes held, budget {budget}");
        assert!((10..=30).contains(&held), "{held} streams held");
        assert_eq!(buffer.holding("stream-000"), None);
        // The newest `held` streams are kept, all older ones dropped.
        for index in 0..200 {
            let holding = buffer.holding(&format!("stream-{index:03}"));
            if index < 200 - held {
                assert_eq!(holding, None, "stream-{index:03} kept");
            } else {
                assert!(holding.expect("held").in_memory);
            }
        }
        // Finished streams are dropped, never written to Redis.
        assert!(taken(&mut queue).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn opening_a_held_stream_again_keeps_its_events_owner_and_place() {
        let (buffer, _, _) = buffer(usize::MAX);
        buffer.open("stream-a");
        buffer.append("stream-a", event("stream-a", 1), false, None);
        buffer.bind("stream-a", StreamOwner::Session("session-1".into()));
        let (bytes, streams) = buffer.usage();
        buffer.open("stream-a");
        assert_eq!(buffer.usage(), (bytes, streams));
        assert_eq!(
            buffer.holding("stream-a"),
            Some(Held {
                owner: StreamOwner::Session("session-1".into()),
                in_memory: true,
            })
        );
        match buffer.read_after("stream-a", None) {
            Read::Events { events, .. } => {
                let ids: Vec<_> = events.iter().map(|event| event.event_id.as_str()).collect();
                assert_eq!(ids, ["stream-a#nonce-1"]);
                assert_eq!(
                    events[0].payload.json(),
                    event("stream-a", 1).payload.json()
                );
            }
            other => panic!("stream-a read as {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_holds_over_all_shards_and_each_drops_its_oldest_first() {
        let (probe, _, _) = buffer(usize::MAX);
        answered(&probe, "stream-9999");
        let (one_stream, _) = probe.usage();
        let budget = SHARDS * 20 * one_stream;
        let (buffer, mut queue, _) = sharded(SHARDS, budget);
        let total = 100 * SHARDS;
        for index in 0..total {
            answered(&buffer, &format!("stream-{index:04}"));
            let (bytes, _) = buffer.usage();
            assert!(bytes <= budget, "{bytes} bytes held, budget {budget}");
        }
        let (_, held) = buffer.usage();
        assert!(
            (5 * SHARDS..=30 * SHARDS).contains(&held),
            "{held} streams held in {SHARDS} shards"
        );
        // The streams spread over the shards: the newest ones are all kept
        // and the oldest all dropped, although no shard sees every stream.
        for index in 0..2 * SHARDS {
            assert_eq!(buffer.holding(&format!("stream-{index:04}")), None);
        }
        for index in total - 2 * SHARDS..total {
            let holding = buffer.holding(&format!("stream-{index:04}"));
            assert!(holding.expect("held").in_memory, "stream-{index:04}");
        }
        assert!(taken(&mut queue).is_empty());
        // Past their retention every shard's streams go, by the sweep.
        tokio::time::advance(RETENTION).await;
        tokio::time::sleep(SWEEP).await;
        assert_eq!(buffer.usage().1, 0);
    }

    #[test]
    fn a_small_budget_is_split_over_fewer_shards() {
        const MIB: usize = 1 << 20;
        assert_eq!(shards_for(64 * MIB), SHARDS);
        assert_eq!(shards_for(usize::MAX), SHARDS);
        assert_eq!(shards_for(2 * MIB), 2.min(SHARDS));
        assert_eq!(shards_for(MIB + 1), 1);
        assert_eq!(shards_for(256 * 1024), 1);
        assert_eq!(shards_for(0), SHARDS);
    }

    #[tokio::test(start_paused = true)]
    async fn the_hand_off_flushes_the_streams_of_every_shard() {
        let (buffer, mut queue, _) = sharded(SHARDS, usize::MAX);
        let streams: Vec<String> = (0..4 * SHARDS).map(|index| format!("s-{index}")).collect();
        for stream in &streams {
            buffer.open(stream);
            buffer.bind(stream, StreamOwner::Session("session-a".into()));
            buffer.append(stream, event(stream, 0), false, None);
        }
        drop(buffer.hand_off());
        let written = taken(&mut queue);
        for stream in &streams {
            assert!(
                written.contains(&format!("event {stream}#nonce-0")),
                "{stream}"
            );
        }
        let Appended::NeedsPlace(_) = buffer.append("s-0", event("s-0", 1), true, None) else {
            panic!("written through after the hand-off");
        };
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_stream_over_the_budget_goes_on_in_redis() {
        let (probe, _, _) = buffer(usize::MAX);
        answered(&probe, "probe");
        let (one_stream, _) = probe.usage();
        let (buffer, mut queue, metrics) = buffer(10 * one_stream);
        buffer.open("running");
        buffer.bind("running", StreamOwner::Session("session-r".into()));
        for index in 0..2 {
            let stored = buffer.append("running", event("running", index), false, None);
            assert!(matches!(stored, Appended::Done));
        }
        for index in 0..20 {
            answered(&buffer, &format!("stream-{index}"));
        }
        // It was the oldest: flushed (binding first, then its events in
        // order), and only its marker stays in memory.
        assert_eq!(
            taken(&mut queue),
            [
                "binding running session-r",
                "event running#nonce-0",
                "event running#nonce-1"
            ]
        );
        assert_eq!(
            buffer.holding("running"),
            Some(Held {
                owner: StreamOwner::Session("session-r".into()),
                in_memory: false
            })
        );
        assert!(matches!(buffer.read_after("running", None), Read::InRedis));
        assert_eq!(flushes(&metrics, "budget"), "1");
        // Its next events are written through, each with a place in the
        // writer's queue.
        let Appended::NeedsPlace(next) = buffer.append("running", event("running", 2), true, None)
        else {
            panic!("a written-through stream needs a place in the queue");
        };
        let place = buffer.writer.place().await;
        assert!(matches!(
            buffer.append("running", next, true, place),
            Appended::Done
        ));
        assert_eq!(taken(&mut queue), ["event running#nonce-2"]);
        let (bytes, _) = buffer.usage();
        assert!(bytes <= 10 * one_stream);
    }

    #[tokio::test(start_paused = true)]
    async fn streams_are_kept_their_retention_after_their_last_event() {
        let (buffer, _, _) = buffer(usize::MAX);
        answered(&buffer, "old");
        tokio::time::advance(RETENTION - Duration::from_secs(1)).await;
        buffer.open("running");
        assert!(buffer.holding("old").is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        // The sweep runs every second; a new event sweeps too.
        tokio::time::sleep(SWEEP).await;
        assert_eq!(buffer.holding("old"), None);
        assert!(buffer.holding("running").is_some());
        // A running stream kept alive by its events outlives its retention
        // counted from its start.
        for _ in 0..3 {
            tokio::time::advance(RETENTION / 2).await;
            let stored = buffer.append("running", event("running", 1), false, None);
            assert!(matches!(stored, Appended::Done));
            tokio::time::sleep(SWEEP).await;
            assert!(buffer.holding("running").is_some());
        }
        let (bytes, streams) = buffer.usage();
        assert_eq!(streams, 1);
        assert!(bytes > 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_drops_few_expired_streams_and_the_sweep_the_rest() {
        let (buffer, _, _) = buffer(usize::MAX);
        let burst = 5 * EXPIRE_PER_HOLD + 7;
        for index in 0..burst {
            answered(&buffer, &format!("burst-{index}"));
        }
        tokio::time::advance(RETENTION + Duration::from_secs(1)).await;
        // A request after the burst's retention drops a few of them, not
        // all, under its lock.
        buffer.open("new");
        let (_, held) = buffer.usage();
        assert_eq!(held, burst + 1 - EXPIRE_PER_REQUEST);
        assert_eq!(buffer.holding("burst-0"), None);
        assert!(buffer.holding(&format!("burst-{}", burst - 1)).is_some());
        // The sweep drops the rest, in holds of EXPIRE_PER_HOLD.
        tokio::time::sleep(SWEEP).await;
        assert_eq!(buffer.usage().1, 1);
        assert!(buffer.holding("new").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_tables_shrink_once_a_burst_of_streams_is_gone() {
        let (buffer, _, _) = buffer(usize::MAX);
        let (empty, _) = buffer.usage();
        for index in 0..3000 {
            answered(&buffer, &format!("stream-{index}"));
        }
        let (burst, streams) = buffer.usage();
        assert_eq!(streams, 3000);
        tokio::time::advance(RETENTION + Duration::from_secs(1)).await;
        buffer.open("after");
        tokio::time::sleep(SWEEP * 2).await;
        let (after, streams) = buffer.usage();
        assert_eq!(streams, 1);
        // The map and the order are back to a few slots: what counts
        // against the budget is about the empty buffer's again.
        assert!(
            after < empty + 16 * 1024,
            "empty {empty} B, after the burst {burst} B, after it went {after} B"
        );
        assert!(buffer.holding("after").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_bound_after_it_left_memory_gets_its_binding_in_redis() {
        // Written through and dropped (or flushed and evicted) before the
        // transport bound it: only Redis has it, so the binding goes there.
        let (buffer, mut queue, _) = buffer(usize::MAX);
        buffer.bind("gone", StreamOwner::Session("session-g".into()));
        assert_eq!(taken(&mut queue), ["binding gone session-g"]);
        // A pending owner is no binding.
        buffer.bind("gone-too", StreamOwner::Pending);
        assert!(taken(&mut queue).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_has_one_owner_and_pending_streams_admit_nobody() {
        let (buffer, _, _) = buffer(usize::MAX);
        buffer.open("mine");
        let pending = buffer.holding("mine").expect("held").owner;
        let (session_a, session_b) = (
            StreamOwner::Session("session-a".into()),
            StreamOwner::Session("session-b".into()),
        );
        let (alice, bob) = (user('a'), user('b'));
        assert!(!pending.admits(&session_a) && !pending.admits(&alice));
        assert!(!pending.admits(&StreamOwner::Pending));
        buffer.bind("mine", session_a.clone());
        buffer.bind("mine", session_b.clone());
        buffer.bind("mine", alice.clone());
        let owner = buffer.holding("mine").expect("held").owner;
        assert!(owner.admits(&session_a));
        assert!(!owner.admits(&session_b) && !owner.admits(&alice));
        buffer.open("stateless");
        buffer.bind("stateless", alice.clone());
        let owner = buffer.holding("stateless").expect("held").owner;
        assert!(owner.admits(&alice));
        assert!(!owner.admits(&bob) && !owner.admits(&session_a));
        // A user's key never reads as a session's, nor the other way round.
        assert_eq!(StreamOwner::from_key(&alice.key().unwrap()), alice);
        assert_eq!(StreamOwner::from_key(&session_a.key().unwrap()), session_a);
        assert_eq!(StreamOwner::Pending.key(), None);
        assert_eq!(StreamOwner::from_key("user:alice"), StreamOwner::Pending);
    }

    #[tokio::test(start_paused = true)]
    async fn a_disconnected_stream_is_flushed_in_order_and_its_next_events_follow() {
        let (buffer, mut queue, metrics) = buffer(usize::MAX);
        buffer.open("cut");
        buffer.bind("cut", StreamOwner::Session("session-a".into()));
        let stored = buffer.append("cut", event("cut", 0), false, None);
        assert!(matches!(stored, Appended::Done));
        assert!(buffer.disconnected("cut"));
        assert!(!buffer.disconnected("unknown"));
        let Appended::NeedsPlace(next) = buffer.append("cut", event("cut", 1), true, None) else {
            panic!("written through after the flush");
        };
        let place = buffer.writer.place().await;
        buffer.append("cut", next, true, place);
        assert_eq!(
            taken(&mut queue),
            [
                "binding cut session-a",
                "event cut#nonce-0",
                "event cut#nonce-1"
            ]
        );
        assert_eq!(flushes(&metrics, "disconnected"), "1");
        // Still served from memory here, all of it.
        let Read::Events {
            events, finished, ..
        } = buffer.read_after("cut", None)
        else {
            panic!("still in memory");
        };
        assert_eq!(events.len(), 2);
        assert!(finished);
        // A second drop (a resumed connection dropped again) writes nothing.
        buffer.disconnected("cut");
        assert!(taken(&mut queue).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_for_another_session_writes_nothing() {
        let (buffer, mut queue, metrics) = buffer(usize::MAX);
        answered(&buffer, "theirs");
        let session = |id: &str| StreamOwner::Session(id.into());
        assert!(buffer.flush_for("theirs", &session("session-b")).is_none());
        assert!(buffer.flush_for("theirs", &user('a')).is_none());
        assert!(buffer.flush_for("unknown", &session("session-a")).is_none());
        assert!(taken(&mut queue).is_empty());
        assert!(buffer.flush_for("theirs", &session("session-a")).is_some());
        assert_eq!(
            taken(&mut queue),
            [
                "binding theirs session-a",
                "event theirs#nonce-0",
                "barrier"
            ]
        );
        assert_eq!(flushes(&metrics, "requested"), "1");
    }

    #[tokio::test(start_paused = true)]
    async fn the_hand_off_flushes_running_streams_first_then_writes_through() {
        let (buffer, mut queue, metrics) = buffer(usize::MAX);
        answered(&buffer, "done");
        buffer.open("running");
        buffer.bind("running", user('a'));
        buffer.append("running", event("running", 0), false, None);
        // Finished before anyone saw an id of it: nobody can resume it.
        buffer.open("unseen");
        buffer.append("unseen", event("unseen", 0), true, None);
        drop(buffer.hand_off());
        assert_eq!(
            taken(&mut queue),
            [
                format!("binding running user:{}", "a".repeat(64)).as_str(),
                "event running#nonce-0",
                "binding done session-a",
                "event done#nonce-0",
                "barrier"
            ]
        );
        assert_eq!(flushes(&metrics, "shutdown"), "2");
        // A stream opened now is written through from its start.
        buffer.open("late");
        let Appended::NeedsPlace(_) = buffer.append("late", event("late", 0), true, None) else {
            panic!("written through after the hand-off");
        };
    }
}
