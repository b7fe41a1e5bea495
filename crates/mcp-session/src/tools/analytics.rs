//! Session analytics: counts over every live session of the service, for
//! admins (the `get_session_analytics` tool and `GET /admin/analytics`).
//!
//! Computed by paging through the store ([`SessionStore::scan`]), at most
//! [`MAX_SCANNED`] sessions; past that the counts are marked incomplete.

use std::collections::{BTreeMap, HashSet};

use schemars::JsonSchema;
use serde::Serialize;

use mcp_session_core::store::{SessionStore, StoreError, now_ms};

/// Most sessions one analytics run reads.
pub const MAX_SCANNED: usize = 100_000;

/// Sessions per age bracket (time since creation).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct AgeBuckets {
    /// Created less than a minute ago.
    pub under_1m: usize,
    /// 1 to 10 minutes old.
    pub from_1m_to_10m: usize,
    /// 10 to 60 minutes old.
    pub from_10m_to_1h: usize,
    /// 1 to 6 hours old.
    pub from_1h_to_6h: usize,
    /// 6 to 24 hours old.
    pub from_6h_to_24h: usize,
    /// Older than a day.
    pub over_24h: usize,
}

impl AgeBuckets {
    fn add(&mut self, age_ms: u64) {
        const MINUTE: u64 = 60_000;
        const HOUR: u64 = 60 * MINUTE;
        let bucket = match age_ms {
            age if age < MINUTE => &mut self.under_1m,
            age if age < 10 * MINUTE => &mut self.from_1m_to_10m,
            age if age < HOUR => &mut self.from_10m_to_1h,
            age if age < 6 * HOUR => &mut self.from_1h_to_6h,
            age if age < 24 * HOUR => &mut self.from_6h_to_24h,
            _ => &mut self.over_24h,
        };
        *bucket += 1;
    }
}

/// Counts over the live sessions of the whole service (every replica).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct SessionAnalytics {
    /// Live sessions counted.
    pub total_sessions: usize,
    /// Distinct users (user hashes) owning them.
    pub users: usize,
    /// Sessions per transport (`streamable_http`, `sse`).
    pub by_transport: BTreeMap<String, usize>,
    /// Sessions per protocol version (`unknown` before the handshake).
    pub by_protocol_version: BTreeMap<String, usize>,
    /// Sessions per creating replica.
    pub by_replica: BTreeMap<String, usize>,
    /// Sessions per age bracket.
    pub age: AgeBuckets,
    /// Most sessions one user holds.
    pub max_sessions_per_user: usize,
    /// Whether every session was counted (`false` past 100 000 sessions).
    pub complete: bool,
}

/// Counts every live session of `store` (up to [`MAX_SCANNED`]).
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn analyze(store: &dyn SessionStore) -> Result<SessionAnalytics, StoreError> {
    let mut analytics = SessionAnalytics {
        complete: true,
        ..SessionAnalytics::default()
    };
    let mut per_user: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = HashSet::new();
    let now = now_ms();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.scan(cursor.as_deref(), 1000).await?;
        for session in page.sessions {
            let record = session.record;
            // SCAN may return a key twice across pages.
            if !seen.insert(record.id.clone()) {
                continue;
            }
            analytics.total_sessions += 1;
            *analytics
                .by_transport
                .entry(record.transport.as_str().to_owned())
                .or_default() += 1;
            *analytics
                .by_protocol_version
                .entry(record.protocol_version().unwrap_or("unknown").to_owned())
                .or_default() += 1;
            *analytics
                .by_replica
                .entry(record.replica_id.clone())
                .or_default() += 1;
            analytics.age.add(now.saturating_sub(record.created_at_ms));
            *per_user.entry(record.user_hash.to_string()).or_default() += 1;
        }
        if seen.len() >= MAX_SCANNED {
            analytics.complete = page.next_cursor.is_none();
            break;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    analytics.users = per_user.len();
    analytics.max_sessions_per_user = per_user.values().copied().max().unwrap_or(0);
    Ok(analytics)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        identity::{Caller, PrincipalKind},
        store::{MemoryStore, SessionRecord, TransportKind},
    };

    #[tokio::test]
    async fn sessions_are_counted_by_kind() {
        let store = MemoryStore::new(Duration::from_secs(60));
        let alice = Caller::new(PrincipalKind::Jwt, "iss", "alice").user_hash;
        let bob = Caller::new(PrincipalKind::ApiKey, "", "bob").user_hash;
        for (user, id, transport, replica) in [
            (&alice, "a1", TransportKind::StreamableHttp, "r1"),
            (&alice, "a2", TransportKind::Sse, "r2"),
            (&bob, "b1", TransportKind::StreamableHttp, "r1"),
        ] {
            store
                .create(&SessionRecord::new(id, user.clone(), transport, replica))
                .await
                .unwrap();
        }
        let analytics = analyze(&store).await.unwrap();
        assert_eq!(analytics.total_sessions, 3);
        assert_eq!(analytics.users, 2);
        assert_eq!(analytics.by_transport["streamable_http"], 2);
        assert_eq!(analytics.by_transport["sse"], 1);
        assert_eq!(analytics.by_replica["r1"], 2);
        assert_eq!(analytics.by_protocol_version["unknown"], 3);
        assert_eq!(analytics.age.under_1m, 3);
        assert_eq!(analytics.max_sessions_per_user, 2);
        assert!(analytics.complete);
    }
}
