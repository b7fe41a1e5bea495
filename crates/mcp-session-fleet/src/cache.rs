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
//!   announcement, so the cache is off from the moment the connection is
//!   reported broken until the fleet channel is subscribed again, and
//!   entries from before are never served as fresh again
//!   ([`SessionCache::disconnected`]): each is read from Redis at its next
//!   request, which honours what changed meanwhile;
//! - a load that raced an announcement is not cached (see
//!   [`SessionCache::ticket`]).
//!
//! The cache is keyed by session id and holds the owner beside the record:
//! a lookup by another user is a miss, answered from Redis (`404`), never
//! from the cache.
//!
//! **Redis outages.** Entries are kept [`outage_grace`](SessionCache::outage_grace)
//! (`SESSION_CACHE_OUTAGE_SECONDS`) past their refresh, whatever happens to
//! the connection, for one use only: when Redis cannot be reached, a
//! session this replica has served within that time is served from its
//! last known record ([`SessionCache::get_stale`]) instead of failing, so
//! an outage (a failover, a restart, a cluster shard being replaced) costs
//! no tool call of a live session. What can go stale meanwhile is what
//! could not be announced: a session deleted elsewhere during the outage
//! is served here until Redis answers again or the grace ends.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{identity::UserHash, store::SessionRecord};

/// Most records one replica caches (about 1-2 KB each); beyond it the
/// least used are dropped and read from Redis again when needed.
const CAPACITY: usize = 100_000;

/// A cached record and the state of the cache when it was read.
struct Entry {
    record: SessionRecord,
    /// [`SessionCache::epoch`] at the time of the read.
    epoch: u64,
    /// When it was read from Redis.
    read_at: Instant,
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
    /// quick_cache: bounded, sharded, a few hundred instructions per
    /// lookup (moka's took about 1.7k, 1% of a tool call). Entries past
    /// their use are dropped by [`sweep_forever`](Self::sweep_forever).
    entries: Option<quick_cache::sync::Cache<String, Arc<Entry>>>,
    refresh: Duration,
    outage_grace: Duration,
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
    /// A cache whose records are re-read from Redis after `refresh`, and
    /// served for `outage_grace` more while Redis cannot be reached; a zero
    /// `refresh` caches nothing. Off until [`connected`](Self::connected).
    pub fn new(refresh: Duration, outage_grace: Duration) -> Self {
        let entries = (!refresh.is_zero()).then(|| quick_cache::sync::Cache::new(CAPACITY));
        Self {
            entries,
            refresh,
            outage_grace,
            enabled: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            changes: AtomicU64::new(0),
        }
    }

    /// Drops the entries past any use (read more than
    /// [`refresh`](Self::refresh) + [`outage_grace`](Self::outage_grace)
    /// ago) every `refresh`, for as long as `cache` is in use: the cache
    /// itself drops entries only when it is full, so without this a
    /// replica would keep the records of sessions long gone.
    pub async fn sweep_forever(cache: std::sync::Weak<Self>) {
        let Some(period) = cache.upgrade().map(|cache| cache.refresh) else {
            return;
        };
        if period.is_zero() {
            return;
        }
        crate::periodic::while_alive(cache, period, |cache| cache.drop_unusable()).await;
    }

    /// Drops the entries neither [`get`](Self::get) nor
    /// [`get_stale`](Self::get_stale) would serve any more.
    fn drop_unusable(&self) {
        if let Some(entries) = &self.entries {
            let usable = self.refresh + self.outage_grace;
            entries.retain(|_, entry| entry.read_at.elapsed() < usable);
        }
    }

    /// A cache that caches nothing (no fleet: nothing to cache for).
    pub fn disabled() -> Self {
        Self::new(Duration::ZERO, Duration::ZERO)
    }

    /// How long past its refresh a record may be served while Redis cannot
    /// be reached.
    pub fn outage_grace(&self) -> Duration {
        self.outage_grace
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
        if entry.epoch != self.epoch.load(Ordering::Acquire)
            || &entry.record.user_hash != user
            || entry.read_at.elapsed() >= self.refresh
        {
            return None;
        }
        Some(entry.record.clone())
    }

    /// `user`'s session `id` as last read from Redis, at most
    /// [`refresh`](Self::refresh) + [`outage_grace`](Self::outage_grace)
    /// ago, whatever happened to the connection since: only for when Redis
    /// cannot be reached (see the module docs). Sessions deleted or changed
    /// through this replica, or announced as such, are not served.
    /// A zero grace serves nothing: every request that needs Redis fails.
    pub fn get_stale(&self, user: &UserHash, id: &str) -> Option<SessionRecord> {
        if self.outage_grace.is_zero() {
            return None;
        }
        let entry = self.entries.as_ref()?.get(id)?;
        (&entry.record.user_hash == user
            && entry.read_at.elapsed() < self.refresh + self.outage_grace)
            .then(|| entry.record.clone())
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
            read_at: Instant::now(),
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
            entries.remove(record.id.as_str());
        }
    }

    /// Drops session `id` (it was deleted or its record changed).
    pub fn invalidate(&self, id: &str) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.remove(id);
        }
    }

    /// The pub/sub connection failed: announcements may be missed from now
    /// on, so nothing cached is served as fresh again and nothing is cached
    /// until [`connected`](Self::connected). The entries stay for
    /// [`get_stale`](Self::get_stale).
    pub fn disconnected(&self) {
        self.enabled.store(false, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.changes.fetch_add(1, Ordering::AcqRel);
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
        let cache = SessionCache::new(Duration::from_secs(60), Duration::from_secs(30));
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
        // Kept for an outage, for its owner only; an invalidation still
        // drops it.
        assert!(cache.get_stale(&alice, "s2").is_some());
        assert!(cache.get_stale(&user('b'), "s2").is_none());
        assert!(cache.get_stale(&alice, "s1").is_none());
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
        let cache = SessionCache::new(Duration::from_secs(60), Duration::from_secs(30));
        cache.insert(cache.ticket(), &record("s1", &alice));
        assert!(cache.get(&alice, "s1").is_none());
        let off = SessionCache::disabled();
        off.connected();
        off.insert(off.ticket(), &record("s1", &alice));
        assert!(off.get(&alice, "s1").is_none());
        assert!(!off.is_enabled());
    }

    #[test]
    fn the_sweep_drops_entries_past_their_grace_and_keeps_the_others() {
        let cache = SessionCache::new(Duration::from_millis(40), Duration::from_millis(40));
        cache.connected();
        let old = record("old", &user('a'));
        cache.insert(cache.ticket(), &old);
        std::thread::sleep(Duration::from_millis(100));
        let new = record("new", &user('a'));
        cache.insert(cache.ticket(), &new);
        cache.drop_unusable();
        let entries = cache.entries.as_ref().expect("a cache");
        assert_eq!(entries.len(), 1);
        assert!(entries.get("new").is_some());
        assert!(entries.get("old").is_none());
    }

    #[test]
    fn stale_entries_serve_only_within_the_outage_grace() {
        let cache = SessionCache::new(Duration::from_millis(20), Duration::from_millis(60));
        cache.connected();
        let alice = user('a');
        cache.insert(cache.ticket(), &record("s1", &alice));
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.get(&alice, "s1").is_none(), "older than the refresh");
        assert!(cache.get_stale(&alice, "s1").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get_stale(&alice, "s1").is_none(), "past the grace");
    }
}
