//! What a stored session holds.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rmcp::model::InitializeRequestParams;
use serde::{Deserialize, Serialize};

use crate::identity::UserHash;

/// The MCP transport a session was opened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// Streamable HTTP (`/mcp`), MCP 2025-03-26 and later.
    StreamableHttp,
    /// HTTP+SSE (`/sse` + `/messages`), MCP 2024-11-05.
    Sse,
}

impl TransportKind {
    /// The stable lowercase name (`streamable_http`, `sse`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StreamableHttp => "streamable_http",
            Self::Sse => "sse",
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// One session, as every replica sees it.
///
/// Serialized as JSON under `mcp_user_session:<user_hash>:<session_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionRecord {
    /// The session id (`Mcp-Session-Id`, or `session_id` of `/messages`).
    pub id: String,
    /// The owner.
    pub user_hash: UserHash,
    /// The transport the session was opened on.
    pub transport: TransportKind,
    /// The client's `initialize` parameters (protocol version, client info,
    /// capabilities), once the handshake has happened; another replica
    /// replays them to restore the session (MCP 2025-06-18, Lifecycle
    /// §Initialization). Shared: every request's copy of the record (the
    /// store's answer to each access) points at the same parameters, which
    /// never change after the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialize_params: Option<Arc<InitializeRequestParams>>,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: u64,
    /// Last request time, Unix milliseconds (as of the last update of the record).
    pub last_access_ms: u64,
    /// The replica that created the session (for HTTP+SSE: the one holding
    /// its stream).
    pub replica_id: String,
    /// The minimum log level set by `logging/setLevel` (`debug` ..
    /// `emergency`), see `mcp_session::session::SessionContext`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Resource URIs the client subscribed to (`resources/subscribe`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub subscriptions: BTreeSet<String>,
    /// The service's own per-session values, by key (see
    /// `mcp_session::session::SessionContext::state`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state: BTreeMap<String, serde_json::Value>,
    /// For HTTP+SSE: when the client of the session's stream left (Unix
    /// milliseconds), while the session waits for it to reconnect; `None`
    /// while a stream is connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_detached_at_ms: Option<u64>,
    /// For HTTP+SSE: the id of the session this one continues, when its
    /// client reconnected without `Last-Event-ID` and this session took the
    /// lost one over (which ended). A message the client still posts to the
    /// lost session's endpoint, before it reads the new `endpoint` event or
    /// while it was in flight, is delivered here instead of getting `404`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues: Option<String>,
    /// For Streamable HTTP: the replica that answered `initialize` ran no
    /// session worker for it, so no worker waits for the client's
    /// `notifications/initialized`. Every worker of the session is restored
    /// from this record and replays the notification itself, and any replica
    /// acknowledges the client's own (`202`) and drops it. `false` in records
    /// of earlier versions, whose handshake worker takes the notification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub workerless_handshake: bool,
}

impl SessionRecord {
    /// A new session of `user_hash` on `transport`, created now by `replica_id`.
    pub fn new(
        id: impl Into<String>,
        user_hash: UserHash,
        transport: TransportKind,
        replica_id: impl Into<String>,
    ) -> Self {
        let now = now_ms();
        Self {
            id: id.into(),
            user_hash,
            transport,
            initialize_params: None,
            created_at_ms: now,
            last_access_ms: now,
            replica_id: replica_id.into(),
            log_level: None,
            subscriptions: BTreeSet::new(),
            state: BTreeMap::new(),
            stream_detached_at_ms: None,
            continues: None,
            workerless_handshake: false,
        }
    }

    /// The negotiated protocol version the client asked for in `initialize`
    /// (e.g. `2025-06-18`), once known.
    pub fn protocol_version(&self) -> Option<&str> {
        self.initialize_params
            .as_ref()
            .map(|params| params.protocol_version.as_str())
    }
}

/// A session and its remaining time to live, as listed by
/// [`SessionStore::list`](super::SessionStore::list).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredSession {
    /// The session.
    pub record: SessionRecord,
    /// Time left before it expires unless used.
    pub ttl: Duration,
}

impl StoredSession {
    /// `record`, which expires in `ttl` unless used.
    pub fn new(record: SessionRecord, ttl: Duration) -> Self {
        Self { record, ttl }
    }
}

/// One page of [`SessionStore::scan`](super::SessionStore::scan).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SessionPage {
    /// The sessions of this page.
    pub sessions: Vec<StoredSession>,
    /// The cursor of the next page; `None` when this was the last.
    pub next_cursor: Option<String>,
}

impl SessionPage {
    /// A page of `sessions`, followed by `next_cursor`.
    pub fn new(sessions: Vec<StoredSession>, next_cursor: Option<String>) -> Self {
        Self {
            sessions,
            next_cursor,
        }
    }
}
