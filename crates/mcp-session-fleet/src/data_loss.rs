//! Noticing that Redis lost its data, so that live sessions are written
//! back instead of ending.
//!
//! Redis can come back without the data it had: a node restarted with no
//! persistence, a replica promoted before it had every write of its primary
//! (replication is asynchronous: "Redis does not guarantee strong
//! consistency", Redis docs, Replication), an ElastiCache node replaced.
//! Every session record is then gone although its clients are mid-session,
//! and the replicas serving them hold recent copies in their
//! [`SessionCache`](crate::SessionCache).
//!
//! A missing record must still mean "ended" in every other case (deleted,
//! expired, or a forged id), so a copy is written back only when Redis is
//! known to have lost its data: each service keeps a marker key,
//! `mcp_store_epoch:<service>` (a random value, no TTL), and each replica
//! remembers the value it saw. The marker missing, or holding another value,
//! means the data this replica read before is gone. A deleted session has no
//! copy to write back: its deletion invalidated every replica's copy (the
//! `SessionClosed` announcement).
//!
//! Limits: in a Redis Cluster the marker lives on one shard, so only the
//! loss of that shard's data is noticed; under an `allkeys-*` eviction
//! policy the marker itself can be evicted, and sessions evicted meanwhile
//! are then written back too (which keeps them alive, as their clients
//! expect). `docs/sessions.md` (Redis going away) says what this means.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use fred::{
    prelude::*,
    types::{Expiration, SetOptions},
};
use parking_lot::Mutex;

use crate::{connection::RedisConnection, store::now_ms};

/// What a replica knows of the data Redis holds (see the module docs).
pub(crate) struct StoreEpoch {
    redis: RedisConnection,
    key: String,
    /// The marker's value when this replica last read it.
    seen: Mutex<Option<String>>,
    /// When this replica last noticed a loss (ms since the epoch; 0: never).
    lost_at_ms: AtomicU64,
}

impl StoreEpoch {
    /// The marker of `service` in `redis`.
    pub(crate) fn new(redis: RedisConnection, service: &str) -> Self {
        Self {
            redis,
            key: format!("mcp_store_epoch:{service}"),
            seen: Mutex::new(None),
            lost_at_ms: AtomicU64::new(0),
        }
    }

    /// Reads the marker (writing it when missing) and returns whether Redis
    /// lost its data less than `window` ago, as far as this replica can
    /// tell: now, or at an earlier check within `window`. `false` when Redis
    /// cannot be asked. One or two round trips.
    pub(crate) async fn lost_within(&self, window: Duration) -> bool {
        let Some(current) = self.read_or_write().await else {
            return false;
        };
        let noticed = {
            let mut seen = self.seen.lock();
            let noticed = seen.as_ref().is_some_and(|seen| *seen != current);
            *seen = Some(current);
            noticed
        };
        let now = now_ms();
        if noticed {
            self.lost_at_ms.store(now, Ordering::Release);
            tracing::warn!(
                marker = %self.key,
                "Redis lost its data (restarted empty, or failed over to a replica that lagged): \
                 the sessions cached here are written back as their clients come"
            );
        }
        let lost_at = self.lost_at_ms.load(Ordering::Acquire);
        lost_at != 0 && now.saturating_sub(lost_at) <= window.as_millis() as u64
    }

    /// Whether this replica has read the marker yet.
    pub(crate) fn has_seen(&self) -> bool {
        self.seen.lock().is_some()
    }

    /// The marker's value, written first when missing.
    async fn read_or_write(&self) -> Option<String> {
        let pool = self.redis.pool();
        if let Ok(Some(value)) = pool.get::<Option<String>, _>(&self.key).await {
            return Some(value);
        }
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let _: Option<String> = pool
            .set(
                &self.key,
                fresh.as_str(),
                None::<Expiration>,
                Some(SetOptions::NX),
                false,
            )
            .await
            .ok()?;
        pool.get::<Option<String>, _>(&self.key).await.ok()?
    }
}
