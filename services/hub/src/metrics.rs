//! The hub's own Prometheus metrics, served by `GET /metrics` beside the
//! library's (`mcp_http_*`, `mcp_sessions_*`, …).
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `mcp_hub_upstream_sessions_total` | counter | `server`, `event` | upstream sessions `created` (an `initialize` this replica sent), `reused` (a request that used a session already made, here or by another replica), `reestablished` (made again after the upstream forgot the old one) |
//! | `mcp_hub_upstream_session_not_found_total` | counter | `server` | upstream answers `404` (or `400`) for a session it no longer knows |
//! | `mcp_hub_upstream_errors_total` | counter | `server`, `kind` | upstream requests that failed: `unreachable` (no connection, timeout), `http` (an HTTP error status), `protocol` (an answer that is not MCP), `store` (Redis did not answer) |
//! | `mcp_hub_upstream_request_duration_seconds` | histogram | `server` | time of one upstream request, re-establishing included |
//!
//! `server` takes the configured upstreams' names: a bounded set.

use std::time::Duration;

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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    server: String,
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
}

impl Default for HubMetrics {
    fn default() -> Self {
        Self {
            sessions: Family::default(),
            not_found: Family::default(),
            errors: Family::default(),
            durations: Family::new_with_constructor(latency_histogram),
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
    }

    /// Counts `event` for an upstream session of `server`.
    pub fn session(&self, server: &str, event: SessionEvent) {
        self.sessions
            .get_or_create(&EventLabels {
                server: server.to_owned(),
                event: event.as_str(),
            })
            .inc();
    }

    /// Counts a `404` of `server` for a session it no longer knows.
    pub fn not_found(&self, server: &str) {
        self.not_found
            .get_or_create(&ServerLabels {
                server: server.to_owned(),
            })
            .inc();
    }

    /// Counts a failed request to `server`.
    pub fn error(&self, server: &str, kind: ErrorKind) {
        self.errors
            .get_or_create(&KindLabels {
                server: server.to_owned(),
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Records the time one request to `server` took.
    pub fn request_took(&self, server: &str, elapsed: Duration) {
        self.durations
            .get_or_create(&ServerLabels {
                server: server.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}
