//! How sessions are shown to people: by the session tools and the admin API.
//!
//! Times are RFC 3339 in UTC (`2025-06-18T09:30:00.000Z`), durations whole
//! seconds. The `initialize` parameters are summed up (protocol version,
//! client name and version), never shown whole.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use schemars::JsonSchema;
use serde::Serialize;

use mcp_session_core::store::{StoredSession, now_ms};

/// Unix milliseconds as RFC 3339 UTC text.
pub(crate) fn rfc3339(ms: u64) -> String {
    DateTime::from_timestamp_millis(ms as i64)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// One session, as listed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionSummary {
    /// The session id (`Mcp-Session-Id`, or `session_id` of `/messages`).
    pub id: String,
    /// The owner's user hash (hex SHA-256 of the principal).
    pub user_hash: String,
    /// `streamable_http` or `sse`.
    pub transport: String,
    /// The protocol version the client asked for in `initialize`, e.g.
    /// `2025-06-18`; absent before the handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The client's `clientInfo` as `name/version`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// When the session was created (RFC 3339, UTC).
    pub created_at: String,
    /// When the session was last used (RFC 3339, UTC; to within a request).
    pub last_access_at: String,
    /// Seconds before the session expires unless used.
    pub ttl_seconds: u64,
    /// The replica that created the session (for HTTP+SSE: the one holding
    /// its stream).
    pub replica: String,
    /// Whether this is the session the request itself belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<bool>,
}

impl SessionSummary {
    /// Summarizes `session`, whose TTL is renewed to `session_ttl` on every
    /// request: the last access is when its remaining TTL was full.
    pub fn of(session: &StoredSession, session_ttl: Duration) -> Self {
        let record = &session.record;
        let idle = session_ttl.saturating_sub(session.ttl).as_millis() as u64;
        let last_access = now_ms()
            .saturating_sub(idle)
            .max(record.last_access_ms)
            .max(record.created_at_ms);
        Self {
            id: record.id.clone(),
            user_hash: record.user_hash.to_string(),
            transport: record.transport.as_str().to_owned(),
            protocol_version: record.protocol_version().map(str::to_owned),
            client: record.initialize_params.as_ref().map(|params| {
                format!("{}/{}", params.client_info.name, params.client_info.version)
            }),
            created_at: rfc3339(record.created_at_ms),
            last_access_at: rfc3339(last_access),
            ttl_seconds: session.ttl.as_secs(),
            replica: record.replica_id.clone(),
            current: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_750_239_000_123), "2025-06-18T09:30:00.123Z");
    }
}
