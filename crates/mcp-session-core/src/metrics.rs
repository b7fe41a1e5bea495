//! Prometheus metrics of one replica: their names, labels and the helpers
//! the server, transports, store and fleet call, rendered in the Prometheus
//! text format (version 0.0.4).
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `mcp_http_requests_total` | counter | `method`, `route`, `status` | HTTP requests answered, counted when the response starts |
//! | `mcp_http_request_duration_seconds` | histogram | `method`, `route` | time until the response is complete (for streams, `GET /sse` and `GET /mcp` without `Last-Event-ID`: until the stream opened) |
//! | `mcp_http_requests_in_flight` | gauge | | requests whose response is not complete yet (streams excluded): what a shutdown waits for |
//! | `mcp_sessions_live` | gauge | `transport` | sessions this replica holds an rmcp worker (`streamable_http`) or an open stream (`sse`) for |
//! | `mcp_sessions_created_total` | counter | `transport` | sessions created here |
//! | `mcp_sessions_restored_total` | counter | | Streamable HTTP sessions restored here from the store (created on, or last served by, another replica) |
//! | `mcp_session_not_found_total` | counter | `transport` | `404` answers to a request naming an unknown, expired, deleted or foreign session |
//! | `mcp_fleet_deliveries_total` | counter | `kind` | messages received over the fleet bus and delivered here (see [`FleetDelivery`]) |
//! | `mcp_fleet_messages_received_total` | counter | `channel` | messages this replica received over the fleet bus, whether or not they concerned it (see [`BusChannel`]): what the fleet's size costs each replica |
//! | `mcp_fleet_received_bytes_total` | counter | `channel` | bytes of those messages' payloads |
//! | `mcp_store_errors_total` | counter | `op` | session store operations that failed (store unreachable or a value unreadable) |
//! | `mcp_redis_round_trips_total` | counter | `op` | Redis round trips (one command or one pipeline) |
//! | `mcp_session_cache_total` | counter | `result` | lookups of a session's record for a request: `hit` (served from this replica's cache, no Redis round trip) or `miss` (read from the store) |
//! | `mcp_event_flushes_total` | counter | `reason` | request response streams written from this replica's memory to Redis (see [`EventFlush`]) |
//! | `mcp_event_buffer_bytes` | gauge | | bytes of response-stream events held in memory (an estimate; at most `EVENT_BUFFER_BYTES`) |
//! | `mcp_event_buffer_streams` | gauge | | response streams held in memory (markers of streams moved to Redis included) |
//! | `mcp_heap_bytes` | gauge | `state` | the heap allocator's memory ([`HeapBytes`]; jemalloc's statistics, only in a build with `mcp-session`'s feature `heap-stats`): `allocated` (held by the application), `active` (in pages in use: `allocated` plus the free room in them), `resident` (mapped and resident: `active` plus the allocator's metadata and the freed pages it has not given back yet), `retained` (address space kept mapped but given back to the system) |
//! | `mcp_stream_resumptions_total` | counter | `from` | request streams resumed here with `Last-Event-ID`: `memory` (held here) or `redis` |
//! | `mcp_replica_info` | info | `service`, `version`, `replica` | always 1: names the replica behind the scrape target |
//!
//! Labels take a bounded set of values: `route` is the template of the route
//! the HTTP router matched (`/mcp`, `/sse`, `/messages`,
//! `/admin/sessions/{id}`, ...; a request that matched none is
//! `other`), `method` one of the HTTP methods or `other`; never a session id,
//! a user or a raw path.
//!
//! The hot path stays cheap: label sets are `&'static str`s, integers and the
//! route template (no parsing of paths), and metrics with fixed labels are
//! resolved once at start-up into handles that are one atomic add each.
//! `GET /metrics` itself is served by `mcp-session`, which sets the gauges
//! read at scrape time from what its replica holds.

use std::{borrow::Cow, time::Duration};

use http::{Method, StatusCode};
use prometheus_client::{
    encoding::{EncodeLabelSet, prometheus_text},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram, info::Info},
    registry::{Registry, Unit},
};

use crate::store::TransportKind;

/// Upper bounds of the latency histogram's buckets, in seconds: from a
/// cached answer (1 ms) to a slow tool call (30 s).
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The HTTP method as a bounded label value.
pub fn method_of(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The transports, in the order of the per-transport handle arrays.
const TRANSPORTS: [TransportKind; 2] = [TransportKind::StreamableHttp, TransportKind::Sse];

fn slot(transport: TransportKind) -> usize {
    match transport {
        TransportKind::StreamableHttp => 0,
        TransportKind::Sse => 1,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Route,
}

/// The `route` label: the template of the route that served a request
/// (`/mcp`, `/admin/sessions/{id}`), as the HTTP router matched it,
/// or `other` for a request that matched none. Bounded by the routes a
/// server has; never a raw path, a session id or a user.
pub type Route = Cow<'static, str>;

/// The `route` label of a request that matched no route.
pub const OTHER_ROUTE: &str = "other";

/// The `route` label of a request the router matched to `template`,
/// borrowed from a process-wide set: a server has a few route templates,
/// each kept once (leaked on first use), so that labelling a request
/// allocates nothing. Anything that is not a template (a raw path) must
/// not be passed here: it would be kept for the process's lifetime.
pub fn route_label(template: &str) -> Route {
    static TEMPLATES: std::sync::OnceLock<parking_lot::RwLock<Vec<&'static str>>> =
        std::sync::OnceLock::new();
    let templates = TEMPLATES.get_or_init(Default::default);
    if let Some(known) = templates.read().iter().find(|known| **known == template) {
        return Cow::Borrowed(known);
    }
    let mut templates = templates.write();
    if let Some(known) = templates.iter().find(|known| **known == template) {
        return Cow::Borrowed(known);
    }
    let kept: &'static str = Box::leak(template.into());
    templates.push(kept);
    Cow::Borrowed(kept)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// The heap allocator's memory, in bytes (jemalloc's `stats.*`, read at
/// scrape time): what `mcp_heap_bytes` shows. Resident memory above
/// `allocated` is the allocator's: free room in its pages (fragmentation),
/// its metadata, and freed pages its decay has not given back yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapBytes {
    /// Held by the application (`stats.allocated`).
    pub allocated: u64,
    /// In pages in use (`stats.active`): `allocated` plus the free room in
    /// those pages.
    pub active: u64,
    /// Mapped and resident (`stats.resident`): `active` plus metadata and
    /// dirty pages not yet purged.
    pub resident: u64,
    /// Mapped but given back to the system (`stats.retained`): address
    /// space, not memory.
    pub retained: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    service: String,
    version: String,
    replica: String,
}

/// An operation of the [`SessionStore`](crate::store::SessionStore) (the
/// `op` label of `mcp_store_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// `create`.
    Create,
    /// `access` (every request of a session).
    Access,
    /// `update`.
    Update,
    /// `delete`.
    Delete,
    /// `list`.
    List,
    /// `peek`.
    Peek,
    /// `find`.
    Find,
    /// `scan`.
    Scan,
    /// `delete_user`.
    DeleteUser,
    /// `ping` (`/readyz`, `health_check`).
    Ping,
}

impl StoreOp {
    const ALL: [Self; 10] = [
        Self::Create,
        Self::Access,
        Self::Update,
        Self::Delete,
        Self::List,
        Self::Peek,
        Self::Find,
        Self::Scan,
        Self::DeleteUser,
        Self::Ping,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Access => "access",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Peek => "peek",
            Self::Find => "find",
            Self::Scan => "scan",
            Self::DeleteUser => "delete_user",
            Self::Ping => "ping",
        }
    }
}

/// What a Redis round trip was for (the `op` label of
/// `mcp_redis_round_trips_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisOp {
    /// A session store operation.
    Store(StoreOp),
    /// `PUBLISH` on the fleet channel.
    Publish,
    /// `SPUBLISH` to one replica's channel.
    SPublish,
    /// One pipeline of SSE events written for replay.
    EventsWrite,
    /// A read of a stream's stored events (`XRANGE`).
    EventsRead,
    /// A read of the session a response stream belongs to.
    StreamSession,
    /// `PUBLISH` of a session change every replica must acknowledge
    /// (`fleet::announce`).
    Announce,
    /// `SPUBLISH` of an acknowledgement to the replica that announced.
    Ack,
    /// `SPUBLISH` of a request to flush a response stream, to the replica
    /// that produced it.
    FlushRequest,
    /// A read or compare-and-set of a task (`task_store`).
    Task,
    /// A command on the service's own keys (the hub's upstream sessions).
    Service,
}

impl RedisOp {
    const OTHERS: [Self; 10] = [
        Self::Publish,
        Self::SPublish,
        Self::EventsWrite,
        Self::EventsRead,
        Self::StreamSession,
        Self::Announce,
        Self::Ack,
        Self::FlushRequest,
        Self::Task,
        Self::Service,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store(op) => op.as_str(),
            Self::Publish => "publish",
            Self::SPublish => "spublish",
            Self::EventsWrite => "events_write",
            Self::EventsRead => "events_read",
            Self::StreamSession => "stream_session",
            Self::Announce => "announce",
            Self::Ack => "ack",
            Self::FlushRequest => "flush_request",
            Self::Task => "task",
            Self::Service => "service",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Store(op) => op as usize,
            other => {
                StoreOp::ALL.len()
                    + Self::OTHERS
                        .iter()
                        .position(|known| *known == other)
                        .unwrap_or_default()
            }
        }
    }
}

/// What the fleet bus delivered here (the `kind` label of
/// `mcp_fleet_deliveries_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetDelivery {
    /// An HTTP+SSE `POST /messages` that reached another replica, handed to
    /// the stream held here.
    SseMessage,
    /// A client's response or notification that reached another replica,
    /// handed to the session's worker here.
    ClientMessage,
    /// A server event of a standalone stream, sent to a `GET /mcp`
    /// connection held here.
    StreamEvent,
    /// A session deleted on any replica, dropped here.
    SessionClosed,
    /// A change notice (resource updated, list changed) published by any
    /// replica, handed to the `subscriptions/listen` streams held here.
    Change,
}

impl FleetDelivery {
    const ALL: [Self; 5] = [
        Self::SseMessage,
        Self::ClientMessage,
        Self::StreamEvent,
        Self::SessionClosed,
        Self::Change,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SseMessage => "sse_message",
            Self::ClientMessage => "client_message",
            Self::StreamEvent => "stream_event",
            Self::SessionClosed => "session_closed",
            Self::Change => "change",
        }
    }
}

/// The kind of fleet-bus channel a message arrived on (the `channel` label
/// of `mcp_fleet_messages_received_total` and
/// `mcp_fleet_received_bytes_total`; see `mcp_session_fleet`'s crate docs
/// for the channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusChannel {
    /// `mcp_fleet:<service>`, which every replica reads (classic pub/sub).
    Fleet,
    /// This replica's own sharded channel (forwarded messages, acks).
    Replica,
    /// This replica's stream-flush channel.
    StreamFlush,
    /// A standalone stream's sharded channel, read while a `GET /mcp`
    /// connection of that stream is held here.
    Standalone,
    /// A change channel (a resource's updates, or list changes), read while
    /// a listen stream or a session's resource watcher here wants it.
    Change,
}

impl BusChannel {
    const ALL: [Self; 5] = [
        Self::Fleet,
        Self::Replica,
        Self::StreamFlush,
        Self::Standalone,
        Self::Change,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fleet => "fleet",
            Self::Replica => "replica",
            Self::StreamFlush => "stream_flush",
            Self::Standalone => "standalone",
            Self::Change => "change",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a request's response stream was written from memory to Redis (the
/// `reason` label of `mcp_event_flushes_total`; see
/// `mcp_session_fleet::events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventFlush {
    /// Its HTTP response body was dropped before its end: the client left.
    Disconnected,
    /// Another replica asked for it, to resume it there.
    Requested,
    /// This replica handed its streams to the fleet at shutdown.
    Shutdown,
    /// The buffer was full while the stream was still running.
    Budget,
}

impl EventFlush {
    const ALL: [Self; 4] = [
        Self::Disconnected,
        Self::Requested,
        Self::Shutdown,
        Self::Budget,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::Requested => "requested",
            Self::Shutdown => "shutdown",
            Self::Budget => "budget",
        }
    }
}

/// Where a resumed request stream was read (the `from` label of
/// `mcp_stream_resumptions_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamResumption {
    /// This replica's memory (it produced the stream).
    Memory,
    /// Redis (flushed there by the replica that produced it).
    Redis,
}

/// The metrics of one server, registered in its own registry (so that
/// servers sharing a process, as in tests, keep theirs apart).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    sessions_live: [Gauge; 2],
    sessions_created: [Counter; 2],
    sessions_restored: Counter,
    not_found: [Counter; 2],
    deliveries: [Counter; FleetDelivery::ALL.len()],
    bus_messages: [Counter; BusChannel::ALL.len()],
    bus_bytes: [Counter; BusChannel::ALL.len()],
    store_errors: [Counter; StoreOp::ALL.len()],
    round_trips: [Counter; StoreOp::ALL.len() + RedisOp::OTHERS.len()],
    /// `hit`, `miss`.
    session_cache: [Counter; 2],
    event_flushes: [Counter; EventFlush::ALL.len()],
    event_buffer_bytes: Gauge,
    event_buffer_streams: Gauge,
    heap: Family<StateLabels, Gauge>,
    /// `memory`, `redis`.
    resumptions: [Counter; 2],
}

/// Labels of `mcp_fleet_messages_received_total` and
/// `mcp_fleet_received_bytes_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: &'static str,
}

/// Labels of `mcp_event_flushes_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Labels of `mcp_stream_resumptions_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FromLabels {
    from: &'static str,
}

/// Labels of `mcp_session_cache_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Handles of `family` for each label value of `values`, in order.
fn handles<const N: usize, L, F>(
    family: &Family<L, Counter>,
    values: [&'static str; N],
    labels: F,
) -> [Counter; N]
where
    L: Clone + std::hash::Hash + Eq,
    F: Fn(&'static str) -> L,
{
    values.map(|value| family.get_or_create_owned(&labels(value)))
}

impl Metrics {
    /// The metrics of replica `replica` of `service` at `version`, every
    /// counter at zero.
    pub fn new(service: &str, version: &str, replica: &str) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "mcp_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register_with_unit(
            "mcp_http_request_duration",
            "Time until the response is complete (streams: until they opened)",
            Unit::Seconds,
            durations.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "mcp_http_requests_in_flight",
            "Requests whose response is not complete yet, streams excluded",
            in_flight.clone(),
        );
        let transports = TRANSPORTS.map(TransportKind::as_str);
        let live = Family::<TransportLabels, Gauge>::default();
        registry.register(
            "mcp_sessions_live",
            "Sessions this replica holds an rmcp worker or an open SSE stream for",
            live.clone(),
        );
        let sessions_live =
            transports.map(|transport| live.get_or_create_owned(&TransportLabels { transport }));
        let created = Family::<TransportLabels, Counter>::default();
        registry.register(
            "mcp_sessions_created",
            "Sessions created on this replica",
            created.clone(),
        );
        let restored = Counter::default();
        registry.register(
            "mcp_sessions_restored",
            "Streamable HTTP sessions restored on this replica from the session store",
            restored.clone(),
        );
        let not_found = Family::<TransportLabels, Counter>::default();
        registry.register(
            "mcp_session_not_found",
            "404 answers to requests naming an unknown, expired, deleted or foreign session",
            not_found.clone(),
        );
        let deliveries = Family::<KindLabels, Counter>::default();
        registry.register(
            "mcp_fleet_deliveries",
            "Messages received over the fleet bus and delivered on this replica",
            deliveries.clone(),
        );
        let bus_messages = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "mcp_fleet_messages_received",
            "Messages received over the fleet bus, whether or not they concerned this replica, by channel kind",
            bus_messages.clone(),
        );
        let bus_bytes = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "mcp_fleet_received_bytes",
            "Payload bytes of the messages received over the fleet bus, by channel kind",
            bus_bytes.clone(),
        );
        let store_errors = Family::<OpLabels, Counter>::default();
        registry.register(
            "mcp_store_errors",
            "Session store operations that failed (unreachable, or an unreadable value)",
            store_errors.clone(),
        );
        let round_trips = Family::<OpLabels, Counter>::default();
        registry.register(
            "mcp_redis_round_trips",
            "Redis round trips (one command or one pipeline), by purpose",
            round_trips.clone(),
        );
        let cache_lookups = Family::<ResultLabels, Counter>::default();
        registry.register(
            "mcp_session_cache",
            "Lookups of a session's record for a request: hit (this replica's cache) or miss (the store)",
            cache_lookups.clone(),
        );
        let flushes = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "mcp_event_flushes",
            "Request response streams written from this replica's memory to Redis, by reason",
            flushes.clone(),
        );
        let event_buffer_bytes = Gauge::default();
        registry.register(
            "mcp_event_buffer_bytes",
            "Bytes of response-stream events held in this replica's memory (estimate)",
            event_buffer_bytes.clone(),
        );
        let event_buffer_streams = Gauge::default();
        registry.register(
            "mcp_event_buffer_streams",
            "Response streams held in this replica's memory",
            event_buffer_streams.clone(),
        );
        let heap = Family::<StateLabels, Gauge>::default();
        registry.register(
            "mcp_heap_bytes",
            "The heap allocator's memory in bytes, by state: allocated, active, resident, retained",
            heap.clone(),
        );
        let resumptions = Family::<FromLabels, Counter>::default();
        registry.register(
            "mcp_stream_resumptions",
            "Request streams resumed here with Last-Event-ID, by where they were read",
            resumptions.clone(),
        );
        registry.register(
            "mcp_replica",
            "The service, version and replica behind this scrape target",
            Info::new(ReplicaLabels {
                service: service.to_owned(),
                version: version.to_owned(),
                replica: replica.to_owned(),
            }),
        );
        let trip_ops: [&'static str; StoreOp::ALL.len() + RedisOp::OTHERS.len()] =
            std::array::from_fn(|index| match StoreOp::ALL.get(index) {
                Some(op) => op.as_str(),
                None => RedisOp::OTHERS[index - StoreOp::ALL.len()].as_str(),
            });
        Self {
            sessions_live,
            sessions_created: handles(&created, transports, |transport| TransportLabels {
                transport,
            }),
            sessions_restored: restored,
            not_found: handles(&not_found, transports, |transport| TransportLabels {
                transport,
            }),
            deliveries: handles(
                &deliveries,
                FleetDelivery::ALL.map(FleetDelivery::as_str),
                |kind| KindLabels { kind },
            ),
            bus_messages: handles(
                &bus_messages,
                BusChannel::ALL.map(BusChannel::as_str),
                |channel| ChannelLabels { channel },
            ),
            bus_bytes: handles(
                &bus_bytes,
                BusChannel::ALL.map(BusChannel::as_str),
                |channel| ChannelLabels { channel },
            ),
            store_errors: handles(&store_errors, StoreOp::ALL.map(StoreOp::as_str), |op| {
                OpLabels { op }
            }),
            round_trips: handles(&round_trips, trip_ops, |op| OpLabels { op }),
            session_cache: handles(&cache_lookups, ["hit", "miss"], |result| ResultLabels {
                result,
            }),
            event_flushes: handles(
                &flushes,
                EventFlush::ALL.map(EventFlush::as_str),
                |reason| ReasonLabels { reason },
            ),
            event_buffer_bytes,
            event_buffer_streams,
            heap,
            resumptions: handles(&resumptions, ["memory", "redis"], |from| FromLabels {
                from,
            }),
            requests,
            durations,
            in_flight,
            registry,
        }
    }

    /// The registry, for a service to register its own metrics in (before
    /// the server starts serving).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Counts a response that started with `status` to a `method` request
    /// on `route` (the values of [`method_of`] and the matched [`Route`]).
    pub fn request_answered(&self, method: &'static str, route: &Route, status: StatusCode) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.clone(),
                status: status.as_u16(),
            })
            .inc();
    }

    /// Records that a `method` request on `route` took `elapsed`.
    pub fn request_completed(&self, method: &'static str, route: &Route, elapsed: Duration) {
        self.durations
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a session created here.
    pub fn session_created(&self, transport: TransportKind) {
        self.sessions_created[slot(transport)].inc();
    }

    /// Counts a Streamable HTTP session restored here from the store.
    pub fn session_restored(&self) {
        self.sessions_restored.inc();
    }

    /// Counts a `404` for a session id that names no session of the caller.
    pub fn session_not_found(&self, transport: TransportKind) {
        self.not_found[slot(transport)].inc();
    }

    /// Counts a message of the fleet bus delivered here.
    pub fn fleet_delivery(&self, kind: FleetDelivery) {
        self.deliveries[kind as usize].inc();
    }

    /// Counts a message of `bytes` payload bytes that arrived on a fleet-bus
    /// channel of kind `channel`, before it is decoded.
    pub fn fleet_message_received(&self, channel: BusChannel, bytes: usize) {
        self.bus_messages[channel.index()].inc();
        self.bus_bytes[channel.index()].inc_by(bytes as u64);
    }

    /// Counts a failed session store operation.
    pub fn store_error(&self, op: StoreOp) {
        self.store_errors[op as usize].inc();
    }

    /// Counts one Redis round trip.
    pub fn redis_round_trip(&self, op: RedisOp) {
        self.round_trips[op.index()].inc();
    }

    /// Counts a lookup of a session's record: `hit` when this replica's
    /// cache answered it.
    pub fn session_cache(&self, hit: bool) {
        self.session_cache[usize::from(!hit)].inc();
    }

    /// Counts a response stream written from memory to Redis.
    pub fn event_flush(&self, reason: EventFlush) {
        self.event_flushes[reason as usize].inc();
    }

    /// Counts a request stream resumed here.
    pub fn stream_resumed(&self, from: StreamResumption) {
        self.resumptions[from as usize].inc();
    }

    /// Sets the event buffer's gauges, read at scrape time: `bytes` held
    /// in `streams` streams.
    pub fn set_event_buffer(&self, bytes: usize, streams: usize) {
        self.event_buffer_bytes.set(bytes as i64);
        self.event_buffer_streams.set(streams as i64);
    }

    /// Sets `mcp_heap_bytes`, read at scrape time (a replica whose
    /// allocator keeps no statistics never calls it, and shows none).
    pub fn set_heap(&self, heap: HeapBytes) {
        for (state, bytes) in [
            ("allocated", heap.allocated),
            ("active", heap.active),
            ("resident", heap.resident),
            ("retained", heap.retained),
        ] {
            self.heap
                .get_or_create(&StateLabels { state })
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// Sets the gauges, read at scrape time: `workers` rmcp workers
    /// (Streamable HTTP sessions), `sse_streams` open HTTP+SSE streams,
    /// `in_flight` requests.
    pub fn set_gauges(&self, workers: usize, sse_streams: usize, in_flight: usize) {
        self.in_flight.set(in_flight as i64);
        self.sessions_live[slot(TransportKind::StreamableHttp)].set(workers as i64);
        self.sessions_live[slot(TransportKind::Sse)].set(sse_streams as i64);
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(8 * 1024);
        if let Err(error) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_are_kept_once_per_template() {
        let first = route_label("/mcp-route-label-test");
        let again = route_label(&String::from("/mcp-route-label-test"));
        assert!(matches!(first, Cow::Borrowed(_)));
        match (first, again) {
            (Cow::Borrowed(first), Cow::Borrowed(again)) => {
                assert_eq!(first, "/mcp-route-label-test");
                assert!(std::ptr::eq(first, again), "kept once");
            }
            _ => panic!("borrowed labels"),
        }
        assert_eq!(route_label("/admin/sessions/{id}"), "/admin/sessions/{id}");
    }

    #[test]
    fn the_heap_renders_once_set_by_state() {
        let metrics = Metrics::new("calculator", "1.0", "replica-1");
        assert!(!metrics.render().contains("mcp_heap_bytes{"));
        metrics.set_heap(HeapBytes {
            allocated: 1024,
            active: 4096,
            resident: 8192,
            retained: u64::MAX,
        });
        let text = metrics.render();
        for line in [
            r#"mcp_heap_bytes{state="allocated"} 1024"#,
            r#"mcp_heap_bytes{state="active"} 4096"#,
            r#"mcp_heap_bytes{state="resident"} 8192"#,
            r#"mcp_heap_bytes{state="retained"} 9223372036854775807"#,
        ] {
            assert!(
                text.lines().any(|sample| sample == line),
                "{line} in\n{text}"
            );
        }
    }

    #[test]
    fn routes_and_methods_are_bounded() {
        assert_eq!(method_of(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn counters_render_with_their_labels() {
        let metrics = Metrics::new("calculator", "1.0", "replica-1");
        let mcp: Route = "/mcp".into();
        metrics.request_answered("POST", &mcp, StatusCode::OK);
        metrics.request_answered("POST", &mcp, StatusCode::OK);
        metrics.request_completed("POST", &mcp, Duration::from_millis(3));
        metrics.session_not_found(TransportKind::Sse);
        metrics.redis_round_trip(RedisOp::Store(StoreOp::Access));
        metrics.redis_round_trip(RedisOp::StreamSession);
        metrics.fleet_delivery(FleetDelivery::SessionClosed);
        metrics.event_flush(EventFlush::Disconnected);
        metrics.stream_resumed(StreamResumption::Redis);
        metrics.set_event_buffer(4096, 2);
        metrics.set_gauges(3, 1, 0);
        let text = metrics.render();
        for line in [
            "mcp_http_requests_total{method=\"POST\",route=\"/mcp\",status=\"200\"} 2",
            "mcp_http_request_duration_seconds_bucket{method=\"POST\",route=\"/mcp\",le=\"0.005\"} 1",
            "mcp_session_not_found_total{transport=\"sse\"} 1",
            "mcp_session_not_found_total{transport=\"streamable_http\"} 0",
            "mcp_redis_round_trips_total{op=\"access\"} 1",
            "mcp_redis_round_trips_total{op=\"stream_session\"} 1",
            "mcp_fleet_deliveries_total{kind=\"session_closed\"} 1",
            "mcp_sessions_live{transport=\"streamable_http\"} 3",
            "mcp_event_flushes_total{reason=\"disconnected\"} 1",
            "mcp_event_flushes_total{reason=\"budget\"} 0",
            "mcp_stream_resumptions_total{from=\"redis\"} 1",
            "mcp_event_buffer_bytes 4096",
            "mcp_event_buffer_streams 2",
            "mcp_replica_info{service=\"calculator\",version=\"1.0\",replica=\"replica-1\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
