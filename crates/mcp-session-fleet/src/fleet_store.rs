//! The session store of a fleet: the shared store (Redis) seen through this
//! replica's [`SessionCache`], with every change announced to the other
//! replicas.
//!
//! | operation | Redis | fleet |
//! |---|---|---|
//! | `access` of a record cached less than `SESSION_CACHE_SECONDS` ago | none | none |
//! | `access` otherwise | the store's (`GETEX` pipeline, renewing the TTL); the record is cached | none |
//! | `access` while Redis cannot be reached, of a record read here within `SESSION_CACHE_SECONDS` + `SESSION_CACHE_OUTAGE_SECONDS` | none (a probe at most every [`PROBE_INTERVAL`]) | none: the last known record is served |
//! | `access` of a record Redis lost with its data (see [`data_loss`](crate::data_loss)), read here within `SESSION_CACHE_SECONDS` + `SESSION_CACHE_OUTAGE_SECONDS` | the store's, then the marker (`GET`, `SET NX`) and the store's `create` | none: the last known record is written back and served |
//! | `create` | the store's; the record is cached | none |
//! | `update` | the store's | `SessionChanged`, acknowledged by every replica |
//! | `delete`, `delete_user` | the store's | `SessionClosed` per session, acknowledged by every replica |
//! | `list`, `peek`, `find`, `scan`, `ping` | the store's (never cached) | none |
//!
//! So a session's TTL is renewed in Redis at most every refresh interval by
//! each replica that serves it, instead of at every request: a session
//! expires between `SESSION_TTL_SECONDS - SESSION_CACHE_SECONDS` and
//! `SESSION_TTL_SECONDS` after its last request (the refresh interval is at
//! most a tenth of the TTL, see [`refresh_interval`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use super::{AckRequest, Envelope, announce::Announcer, cache::SessionCache};
use crate::{
    connection::RedisConnection,
    data_loss::StoreEpoch,
    identity::UserHash,
    metrics::Metrics,
    store::{SessionPage, SessionRecord, SessionStore, StoreError, StoredSession, now_ms},
    trace_context::TraceContext,
};

/// The refresh interval of the cache for `SESSION_CACHE_SECONDS` = `cache`
/// and `SESSION_TTL_SECONDS` = `ttl`: `cache`, but at most a tenth of `ttl`
/// (so that a session never expires more than 10% early). Zero turns the
/// cache off.
pub fn refresh_interval(cache: Duration, ttl: Duration) -> Duration {
    cache.min(ttl / 10)
}

/// While Redis is unreachable, how often a request of a session with a
/// stale copy here tries Redis anyway (the others are served from the copy
/// at once, instead of each waiting for a command timeout).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// `inner` (the shared store) with this replica's cache in front and
/// announcements of every change (see the module docs).
pub struct FleetStore {
    inner: Arc<dyn SessionStore>,
    cache: Arc<SessionCache>,
    announcer: Arc<Announcer>,
    metrics: Arc<Metrics>,
    /// Whether the last read of a record failed for want of Redis.
    unreachable: AtomicBool,
    /// When Redis was last tried while unreachable (ms since the epoch).
    last_probe_ms: AtomicU64,
    /// Tells a record Redis lost with its data from one that ended; without
    /// it, a missing record always means the session ended.
    epoch: Option<StoreEpoch>,
}

impl FleetStore {
    /// The fleet's view of `inner`, cached in `cache`, changes announced by
    /// `announcer`, cache hits counted in `metrics`.
    pub fn new(
        inner: Arc<dyn SessionStore>,
        cache: Arc<SessionCache>,
        announcer: Arc<Announcer>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner,
            cache,
            announcer,
            metrics,
            unreachable: AtomicBool::new(false),
            last_probe_ms: AtomicU64::new(0),
            epoch: None,
        }
    }

    /// Writes back the sessions cached here when Redis (`redis`) lost its
    /// data, as told by the marker of `service` (see
    /// [`data_loss`](crate::data_loss)); starts watching the marker.
    pub fn writing_back_lost_sessions(mut self, redis: RedisConnection, service: &str) -> Self {
        self.epoch = Some(StoreEpoch::new(redis, service));
        self
    }

    /// Reads the data-loss marker once Redis answers (trying every second),
    /// so that a later loss is noticed; nothing without
    /// [`writing_back_lost_sessions`](Self::writing_back_lost_sessions).
    pub async fn remember_the_store(&self) {
        let Some(epoch) = &self.epoch else {
            return;
        };
        loop {
            epoch.lost_within(Duration::ZERO).await;
            if epoch.has_seen() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// `user`'s session `id`, missing from Redis: written back from the
    /// copy here when Redis lost its data and the copy is recent enough to
    /// be served in an outage (see [`data_loss`](crate::data_loss)).
    async fn write_back(&self, user: &UserHash, id: &str) -> Option<SessionRecord> {
        let epoch = self.epoch.as_ref()?;
        let copy = self.cache.get_stale(user, id)?;
        if !epoch
            .lost_within(self.cache.refresh() + self.cache.outage_grace())
            .await
        {
            return None;
        }
        match self.inner.create(&copy).await {
            Ok(()) => {
                tracing::info!(session_id = %id, "session written back after Redis lost its data");
                Some(copy)
            }
            Err(error) => {
                tracing::info!(session_id = %id, %error, "a session Redis lost could not be written back");
                None
            }
        }
    }

    /// Whether Redis is believed unreachable and was tried less than
    /// [`PROBE_INTERVAL`] ago (else this request is the probe).
    fn skip_redis(&self) -> bool {
        if !self.unreachable.load(Ordering::Acquire) {
            return false;
        }
        let now = now_ms();
        let last = self.last_probe_ms.load(Ordering::Acquire);
        if now.saturating_sub(last) < PROBE_INTERVAL.as_millis() as u64 {
            return true;
        }
        // One request probes; concurrent ones keep using their copies.
        self.last_probe_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    }

    /// The last known record of `user`'s session `id`, served because
    /// Redis cannot be reached (see [`SessionCache::get_stale`]).
    fn stale(&self, user: &UserHash, id: &str) -> Option<SessionRecord> {
        let mut record = self.cache.get_stale(user, id)?;
        self.metrics.session_cache(true);
        record.last_access_ms = now_ms();
        Some(record)
    }

    /// Announces that session `id` ended, to every replica.
    async fn announce_closed(&self, id: &str) -> Result<(), StoreError> {
        let ack = self.announcer.request();
        let envelope = Envelope::SessionClosed {
            trace: TraceContext::current(),
            session_id: id.to_owned(),
            ack: Some(ack.clone()),
        };
        self.announce(&envelope, &ack).await
    }

    /// [`access`](SessionStore::access) of a session not cached here (or
    /// due for its renewal): read from Redis (renewing its TTL), else the
    /// stale copy while Redis is unreachable, else written back from this
    /// replica's copy when Redis lost it.
    async fn access_from_redis(
        &self,
        user: &UserHash,
        id: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.metrics.session_cache(false);
        let ticket = self.cache.ticket();
        let record = match self.inner.access(user, id).await {
            Ok(record) => {
                if self.unreachable.swap(false, Ordering::AcqRel) {
                    tracing::info!("Redis answers again: sessions are read from it again");
                }
                record
            }
            Err(StoreError::Unavailable(error)) => {
                if !self.unreachable.swap(true, Ordering::AcqRel) {
                    self.last_probe_ms.store(now_ms(), Ordering::Release);
                    tracing::warn!(
                        %error,
                        grace_seconds = self.cache.outage_grace().as_secs(),
                        "Redis unreachable: serving the sessions cached here from their last known records"
                    );
                }
                return match self.stale(user, id) {
                    Some(record) => Ok(Some(record)),
                    None => Err(StoreError::Unavailable(error)),
                };
            }
            Err(error) => return Err(error),
        };
        let record = match record {
            Some(record) => Some(record),
            None => self.write_back(user, id).await,
        };
        if let Some(record) = &record {
            self.cache.insert(ticket, record);
        }
        Ok(record)
    }

    async fn announce(&self, envelope: &Envelope, ack: &AckRequest) -> Result<(), StoreError> {
        self.announcer.announce(envelope, ack).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl SessionStore for FleetStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let ticket = self.cache.ticket();
        self.inner.create(record).await?;
        self.cache.insert(ticket, record);
        Ok(())
    }

    async fn access(&self, user: &UserHash, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        if let Some(mut record) = self.cache.get(user, id) {
            self.metrics.session_cache(true);
            record.last_access_ms = now_ms();
            return Ok(Some(record));
        }
        if self.skip_redis()
            && let Some(record) = self.stale(user, id)
        {
            return Ok(Some(record));
        }
        // Boxed: the miss path's future (Redis, then a write-back) is what
        // every call, hits included, would otherwise move into this one's box.
        Box::pin(self.access_from_redis(user, id)).await
    }

    async fn update(&self, record: &SessionRecord) -> Result<bool, StoreError> {
        let updated = self.inner.update(record).await;
        // Whatever happened, the copy here may be stale now.
        self.cache.invalidate(&record.id);
        let updated = updated?;
        let ack = self.announcer.request();
        let envelope = Envelope::SessionChanged {
            trace: TraceContext::current(),
            session_id: record.id.clone(),
            ack: Some(ack.clone()),
        };
        self.announce(&envelope, &ack).await?;
        Ok(updated)
    }

    async fn delete(&self, user: &UserHash, id: &str) -> Result<bool, StoreError> {
        let deleted = self.inner.delete(user, id).await;
        self.cache.invalidate(id);
        let deleted = deleted?;
        self.announce_closed(id).await?;
        Ok(deleted)
    }

    async fn list(&self, user: &UserHash) -> Result<Vec<StoredSession>, StoreError> {
        self.inner.list(user).await
    }

    async fn peek(&self, user: &UserHash, id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.inner.peek(user, id).await
    }

    async fn find(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.inner.find(id).await
    }

    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<SessionPage, StoreError> {
        self.inner.scan(cursor, limit).await
    }

    async fn delete_user(&self, user: &UserHash) -> Result<Vec<String>, StoreError> {
        let deleted = self.inner.delete_user(user).await?;
        for id in &deleted {
            self.cache.invalidate(id);
        }
        for id in &deleted {
            self.announce_closed(id).await?;
        }
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn purge_expired(&self) -> usize {
        self.inner.purge_expired().await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_interval_is_at_most_a_tenth_of_the_ttl() {
        let s = Duration::from_secs;
        assert_eq!(refresh_interval(s(5), s(3600)), s(5));
        assert_eq!(refresh_interval(s(5), s(20)), s(2));
        assert_eq!(refresh_interval(s(0), s(3600)), Duration::ZERO);
    }
}
