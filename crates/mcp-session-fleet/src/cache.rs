//! Each replica's cache of the session records it serves, so that a request
//! of a live session costs no Redis round trip.
//!
//! Every request of a session must know that the session exists, belongs to
//! the caller, and what its record holds; without a cache that is one
//! `GETEX` pipeline per request. With it, a replica reads a record from
//! Redis (renewing its TTL) when it first serves the session and then at
//! most every [`SessionCache::refresh`] (`SESSION_CACHE_SECONDS`), and
//! answers the requests in between from memory.
//!
//! The cache stays true to Redis because every change of a record goes
//! through the fleet: a replica that deletes or rewrites a record announces
//! it on the fleet channel and waits for every other replica to have dropped
//! its copy before it answers (see [`Announcer`](super::announce::Announcer)).
//! What the announcements cannot cover is bounded by the refresh interval:
//!
//! - a record that disappears from Redis by other means (its TTL ran out
//!   while this replica did not renew it, a `DEL` by hand, eviction) is
//!   noticed at the next refresh;
//! - while this replica's pub/sub connection is down it could miss an
//!   announcement, so the cache is off from the moment fred reports the
//!   connection broken until the fleet channel is subscribed again, and
//!   entries from before are never used again ([`SessionCache::disconnected`]);
//! - a load that raced an announcement is not cached (see
//!   [`SessionCache::ticket`]).
//!
//! The cache is keyed by session id and holds the owner beside the record:
//! a lookup by another user is a miss, answered from Redis (`404`), never
//! from the cache.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{identity::UserHash, store::SessionRecord};

/// Most records one replica caches (about 1-2 KB each); beyond it the
/// least used are dropped and read from Redis again when needed.
const CAPACITY: u64 = 100_000;

/// A cached record and the state of the cache when it was read.
struct Entry {
    record: SessionRecord,
    /// [`SessionCache::epoch`] at the time of the read.
    epoch: u64,
}

/// Taken before reading a record from Redis; the record may be cached
/// afterwards only if nothing was invalidated meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    changes: u64,
}

/// The records this replica serves, each at most [`refresh`](Self::refresh)
/// old (see the module docs).
pub struct SessionCache {
    entries: Option<moka::sync::Cache<String, Arc<Entry>>>,
    refresh: Duration,
    /// Whether announcements can reach this replica (its fleet channel is
    /// subscribed and the connection has not failed since).
    enabled: AtomicBool,
    /// Bumped when the pub/sub connection fails or comes back: entries of an
    /// older epoch are never used.
    epoch: AtomicU64,
    /// Bumped by every invalidation of any session.
    changes: AtomicU64,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("refresh", &self.refresh)
            .field("enabled", &self.enabled.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SessionCache {
    /// A cache whose records are re-read from Redis after `refresh`; a zero
    /// `refresh` caches nothing. Off until [`connected`](Self::connected).
    pub fn new(refresh: Duration) -> Self {
        let entries = (!refresh.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(refresh)
                .build()
        });
        Self {
            entries,
            refresh,
            enabled: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            changes: AtomicU64::new(0),
        }
    }

    /// A cache that caches nothing (no fleet: nothing to cache for).
    pub fn disabled() -> Self {
        Self::new(Duration::ZERO)
    }

    /// How old a cached record may get before it is read (and its TTL
    /// renewed) in Redis again.
    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// `user`'s session `id`, if cached, fresh, and owned by `user`.
    pub fn get(&self, user: &UserHash, id: &str) -> Option<SessionRecord> {
        let entries = self.entries.as_ref()?;
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let entry = entries.get(id)?;
        if entry.epoch != self.epoch.load(Ordering::Acquire) || &entry.record.user_hash != user {
            return None;
        }
        Some(entry.record.clone())
    }

    /// Taken before reading a record from Redis, for [`insert`](Self::insert).
    pub fn ticket(&self) -> Ticket {
        Ticket {
            epoch: self.epoch.load(Ordering::Acquire),
            changes: self.changes.load(Ordering::Acquire),
        }
    }

    /// Caches `record`, read from Redis after `ticket` was taken, unless an
    /// invalidation or a connection failure happened since (the record may
    /// then be stale already: the next request reads it again).
    pub fn insert(&self, ticket: Ticket, record: &SessionRecord) {
        let Some(entries) = &self.entries else {
            return;
        };
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        let entry = Arc::new(Entry {
            record: record.clone(),
            epoch: ticket.epoch,
        });
        if self.epoch.load(Ordering::Acquire) != ticket.epoch
            || self.changes.load(Ordering::Acquire) != ticket.changes
        {
            return;
        }
        entries.insert(record.id.clone(), entry);
        // An invalidation between the check and the insert must not leave
        // the entry behind.
        if self.changes.load(Ordering::Acquire) != ticket.changes {
            entries.invalidate(&record.id);
        }
    }

    /// Drops session `id` (it was deleted or its record changed).
    pub fn invalidate(&self, id: &str) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.invalidate(id);
        }
    }

    /// The pub/sub connection failed: announcements may be missed from now
    /// on, so nothing cached is used again and nothing is cached until
    /// [`connected`](Self::connected).
    pub fn disconnected(&self) {
        self.enabled.store(false, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.changes.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }

    /// The fleet channel is subscribed (again): announcements reach this
    /// replica, caching may start (anew).
    pub fn connected(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.enabled.store(true, Ordering::Release);
    }

    /// Whether records are being cached now.
    pub fn is_enabled(&self) -> bool {
        self.entries.is_some() && self.enabled.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TransportKind;

    fn user(c: char) -> UserHash {
        UserHash::parse(&c.to_string().repeat(64)).expect("a user hash")
    }

    fn record(id: &str, owner: &UserHash) -> SessionRecord {
        SessionRecord::new(id, owner.clone(), TransportKind::StreamableHttp, "r1")
    }

    fn connected_cache() -> SessionCache {
        let cache = SessionCache::new(Duration::from_secs(60));
        cache.connected();
        cache
    }

    #[test]
    fn serves_only_the_owner() {
        let cache = connected_cache();
        let (alice, bob) = (user('a'), user('b'));
        cache.insert(cache.ticket(), &record("s1", &alice));
        assert_eq!(cache.get(&alice, "s1").map(|r| r.id), Some("s1".into()));
        assert!(cache.get(&bob, "s1").is_none());
        assert!(cache.get(&alice, "s2").is_none());
    }

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_cached() {
        let cache = connected_cache();
        let alice = user('a');
        let ticket = cache.ticket();
        cache.invalidate("s1");
        cache.insert(ticket, &record("s1", &alice));
        assert!(cache.get(&alice, "s1").is_none());
    }

    #[test]
    fn invalidation_and_disconnection_drop_entries() {
        let cache = connected_cache();
        let alice = user('a');
        cache.insert(cache.ticket(), &record("s1", &alice));
        cache.insert(cache.ticket(), &record("s2", &alice));
        cache.invalidate("s1");
        assert!(cache.get(&alice, "s1").is_none());
        assert!(cache.get(&alice, "s2").is_some());
        let ticket = cache.ticket();
        cache.disconnected();
        assert!(cache.get(&alice, "s2").is_none());
        cache.insert(ticket, &record("s3", &alice));
        assert!(
            cache.get(&alice, "s3").is_none(),
            "cached while disconnected"
        );
        cache.connected();
        assert!(
            cache.get(&alice, "s2").is_none(),
            "an entry of an old epoch"
        );
        cache.insert(ticket, &record("s3", &alice));
        assert!(
            cache.get(&alice, "s3").is_none(),
            "a ticket of an old epoch"
        );
        cache.insert(cache.ticket(), &record("s3", &alice));
        assert!(cache.get(&alice, "s3").is_some());
    }

    #[test]
    fn nothing_is_cached_before_the_first_connection_or_when_disabled() {
        let alice = user('a');
        let cache = SessionCache::new(Duration::from_secs(60));
        cache.insert(cache.ticket(), &record("s1", &alice));
        assert!(cache.get(&alice, "s1").is_none());
        let off = SessionCache::disabled();
        off.connected();
        off.insert(off.ticket(), &record("s1", &alice));
        assert!(off.get(&alice, "s1").is_none());
        assert!(!off.is_enabled());
    }
}
