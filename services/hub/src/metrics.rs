//! The hub's own Prometheus metrics, served by `GET /metrics` beside the
//! library's (`mcp_http_*`, `mcp_sessions_*`, …).
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `mcp_hub_upstream_sessions_total` | counter | `server`, `event` | upstream sessions `created` (an `initialize` this replica sent), `reused` (a request that used a session already made, here or by another replica), `reestablished` (made again after the upstream forgot the old one) |
//! | `mcp_hub_upstream_session_not_found_total` | counter | `server` | upstream answers `404` (or `400`) for a session it no longer knows |
//! | `mcp_hub_upstream_errors_total` | counter | `server`, `kind` | upstream requests that failed: `unreachable` (no connection, timeout), `http` (an HTTP error status), `protocol` (an answer that is not MCP), `store` (Redis did not answer) |
//! | `mcp_hub_upstream_request_duration_seconds` | histogram | `server` | time of one upstream request, re-establishing included |
//! | `mcp_hub_client_session_events_total` | counter | `event` | client-session API: `created`, `deleted`, `connected`, `disconnected`, `destination_refused` (a URL the egress guard refused: an SSRF attempt or a misconfigured allow-list), `limit_refused` (`max_per_user` or `max_connections` reached) |
//!
//! `server` takes the configured upstreams' names, and `user_url` for
//! every URL a user connected in a client session: a bounded set, whatever
//! URLs users bring.

use std::time::Duration;

use crate::config::Upstream;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::{Registry, Unit},
};

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// What happened to an upstream session (the `event` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// Made by an `initialize` of this replica.
    Created,
    /// A request used a session already made.
    Reused,
    /// Made again after the upstream forgot the old one.
    Reestablished,
}

impl SessionEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Reused => "reused",
            Self::Reestablished => "reestablished",
        }
    }
}

/// What happened in the client-session API (the `event` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSessionEvent {
    /// A client session was created.
    Created,
    /// A client session was deleted.
    Deleted,
    /// A server was connected.
    Connected,
    /// A server was disconnected.
    Disconnected,
    /// A URL was refused by the egress guard.
    DestinationRefused,
    /// A limit (`max_per_user`, `max_connections`) refused a request.
    LimitRefused,
}

impl ClientSessionEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Deleted => "deleted",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::DestinationRefused => "destination_refused",
            Self::LimitRefused => "limit_refused",
        }
    }
}

/// Why an upstream request failed (the `kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No connection, or no answer in time.
    Unreachable,
    /// An HTTP error status.
    Http,
    /// An answer that is not MCP.
    Protocol,
    /// The session store (Redis) did not answer.
    Store,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Http => "http",
            Self::Protocol => "protocol",
            Self::Store => "store",
        }
    }
}

/// The `server` label of URLs users connected.
pub const USER_URL_LABEL: &str = "user_url";

/// The `server` label of `upstream`.
fn server_label(upstream: &Upstream) -> String {
    if upstream.guarded {
        USER_URL_LABEL.to_owned()
    } else {
        upstream.name.clone()
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    server: String,
    event: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientEventLabels {
    event: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    server: String,
    kind: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The hub's metric handles (cheap to clone: each family is an `Arc`).
#[derive(Clone)]
pub struct HubMetrics {
    sessions: Family<EventLabels, Counter>,
    not_found: Family<ServerLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    durations: Family<ServerLabels, Histogram, fn() -> Histogram>,
    client_sessions: Family<ClientEventLabels, Counter>,
}

impl Default for HubMetrics {
    fn default() -> Self {
        Self {
            sessions: Family::default(),
            not_found: Family::default(),
            errors: Family::default(),
            durations: Family::new_with_constructor(latency_histogram),
            client_sessions: Family::default(),
        }
    }
}

impl HubMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "mcp_hub_upstream_sessions",
            "Upstream sessions created, reused and re-established, by upstream",
            self.sessions.clone(),
        );
        registry.register(
            "mcp_hub_upstream_session_not_found",
            "Upstream answers that the session named is unknown (404), by upstream",
            self.not_found.clone(),
        );
        registry.register(
            "mcp_hub_upstream_errors",
            "Upstream requests that failed, by upstream and kind",
            self.errors.clone(),
        );
        registry.register_with_unit(
            "mcp_hub_upstream_request_duration",
            "Time of one upstream request, re-establishing included, by upstream",
            Unit::Seconds,
            self.durations.clone(),
        );
        registry.register(
            "mcp_hub_client_session_events",
            "Client-session API events: created, deleted, connected, disconnected, destination_refused, limit_refused",
            self.client_sessions.clone(),
        );
    }

    /// Counts a client-session API `event`.
    pub fn client_session(&self, event: ClientSessionEvent) {
        self.client_sessions
            .get_or_create(&ClientEventLabels {
                event: event.as_str(),
            })
            .inc();
    }

    /// Counts `event` for an upstream session of `upstream`.
    pub fn session(&self, upstream: &Upstream, event: SessionEvent) {
        self.sessions
            .get_or_create(&EventLabels {
                server: server_label(upstream),
                event: event.as_str(),
            })
            .inc();
    }

    /// Counts a `404` of `upstream` for a session it no longer knows.
    pub fn not_found(&self, upstream: &Upstream) {
        self.not_found
            .get_or_create(&ServerLabels {
                server: server_label(upstream),
            })
            .inc();
    }

    /// Counts a failed request to `upstream`.
    pub fn error(&self, upstream: &Upstream, kind: ErrorKind) {
        self.errors
            .get_or_create(&KindLabels {
                server: server_label(upstream),
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Records the time one request to `upstream` took.
    pub fn request_took(&self, upstream: &Upstream, elapsed: Duration) {
        self.durations
            .get_or_create(&ServerLabels {
                server: server_label(upstream),
            })
            .observe(elapsed.as_secs_f64());
    }
}
