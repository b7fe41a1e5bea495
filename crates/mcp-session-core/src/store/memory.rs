//! In-memory session store: the embedded default, for one replica.
//!
//! Sessions live in a map guarded by a mutex (never held across an `.await`),
//! with a per-user index mirroring `mcp_user_index:<user_hash>`. Expired
//! sessions are invisible at once and removed by [`SessionStore::purge_expired`],
//! which the server calls every `SESSION_CLEANUP_INTERVAL_SECONDS`.

use std::time::Duration;

// hashbrown's seeded foldhash rather than SipHash: every request looks its
// session up here, and the map's hashing was most of a lookup
// (`scripts/callgrind.sh`).
use hashbrown::{HashMap, HashSet};
use parking_lot::Mutex;
use tokio::time::Instant;

use super::{SessionPage, SessionRecord, SessionStore, StoreError, StoredSession, now_ms};
use crate::identity::UserHash;

struct Entry {
    record: SessionRecord,
    expires_at: Instant,
}

#[derive(Default)]
struct Maps {
    sessions: HashMap<String, Entry>,
    index: HashMap<UserHash, HashSet<String>>,
}

impl Maps {
    fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.sessions.remove(id)?;
        if let Some(ids) = self.index.get_mut(&entry.record.user_hash) {
            ids.remove(id);
            if ids.is_empty() {
                self.index.remove(&entry.record.user_hash);
            }
        }
        Some(entry)
    }

    /// The live entry `id` if `user` owns it; removes it if it has expired.
    fn live(&mut self, user: &UserHash, id: &str, now: Instant) -> Option<&mut Entry> {
        let expired = match self.sessions.get(id) {
            Some(entry) if &entry.record.user_hash != user => return None,
            Some(entry) => entry.expires_at <= now,
            None => return None,
        };
        if expired {
            self.remove(id);
            return None;
        }
        self.sessions.get_mut(id)
    }
}

/// Sessions in this process's memory, expiring `ttl` after their last use.
pub struct MemoryStore {
    ttl: Duration,
    max_sessions_per_user: Option<usize>,
    maps: Mutex<Maps>,
}

impl MemoryStore {
    /// An empty store whose sessions expire `ttl` after their last access.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            max_sessions_per_user: None,
            maps: Mutex::new(Maps::default()),
        }
    }

    /// Limits each user to `limit` live sessions; [`SessionStore::create`]
    /// fails with [`StoreError::TooManySessions`] beyond it.
    pub fn with_max_sessions_per_user(mut self, limit: usize) -> Self {
        self.max_sessions_per_user = Some(limit);
        self
    }

    /// Number of sessions held, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn stored(entry: &Entry, now: Instant) -> StoredSession {
        StoredSession {
            record: entry.record.clone(),
            ttl: entry.expires_at - now,
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Maps> {
        // A panic while holding the lock cannot leave the maps half-updated in
        // a way that matters more than losing the process: recover the guard.
        self.maps.lock()
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut maps = self.lock();
        if let Some(limit) = self.max_sessions_per_user {
            let ids: Vec<String> = maps
                .index
                .get(&record.user_hash)
                .map(|ids| ids.iter().cloned().collect())
                .unwrap_or_default();
            let live = ids
                .iter()
                .filter(|id| maps.live(&record.user_hash, id, now).is_some())
                .count();
            if live >= limit {
                return Err(StoreError::TooManySessions { limit });
            }
        }
        maps.index
            .entry(record.user_hash.clone())
            .or_default()
            .insert(record.id.clone());
        maps.sessions.insert(
            record.id.clone(),
            Entry {
                record: record.clone(),
                expires_at: now + self.ttl,
            },
        );
        Ok(())
    }

    async fn access(&self, user: &UserHash, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let now = Instant::now();
        let mut maps = self.lock();
        Ok(maps.live(user, id, now).map(|entry| {
            entry.expires_at = now + self.ttl;
            entry.record.last_access_ms = now_ms();
            entry.record.clone()
        }))
    }

    async fn update(&self, record: &SessionRecord) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut maps = self.lock();
        Ok(match maps.live(&record.user_hash, &record.id, now) {
            Some(entry) => {
                entry.record = record.clone();
                entry.expires_at = now + self.ttl;
                true
            }
            None => false,
        })
    }

    async fn delete(&self, user: &UserHash, id: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut maps = self.lock();
        if maps.live(user, id, now).is_none() {
            return Ok(false);
        }
        Ok(maps.remove(id).is_some())
    }

    async fn list(&self, user: &UserHash) -> Result<Vec<StoredSession>, StoreError> {
        let now = Instant::now();
        let maps = self.lock();
        let mut sessions: Vec<StoredSession> = maps
            .index
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| maps.sessions.get(id))
            .filter(|entry| entry.expires_at > now)
            .map(|entry| StoredSession {
                record: entry.record.clone(),
                ttl: entry.expires_at - now,
            })
            .collect();
        sessions.sort_by_key(|session| session.record.created_at_ms);
        Ok(sessions)
    }

    async fn peek(&self, user: &UserHash, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let now = Instant::now();
        let maps = self.lock();
        Ok(maps
            .sessions
            .get(id)
            .filter(|entry| &entry.record.user_hash == user && entry.expires_at > now)
            .map(|entry| Self::stored(entry, now)))
    }

    async fn find(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let now = Instant::now();
        let maps = self.lock();
        Ok(maps
            .sessions
            .get(id)
            .filter(|entry| entry.expires_at > now)
            .map(|entry| Self::stored(entry, now)))
    }

    /// Pages in session id order; the cursor is the last id of the page.
    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<SessionPage, StoreError> {
        let now = Instant::now();
        let maps = self.lock();
        let mut ids: Vec<&String> = maps
            .sessions
            .iter()
            .filter(|(id, entry)| {
                entry.expires_at > now && cursor.is_none_or(|after| id.as_str() > after)
            })
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        let limit = limit.max(1);
        let more = ids.len() > limit;
        ids.truncate(limit);
        let next_cursor = more.then(|| ids.last().map(|id| (*id).clone())).flatten();
        let sessions = ids
            .into_iter()
            .filter_map(|id| maps.sessions.get(id))
            .map(|entry| Self::stored(entry, now))
            .collect();
        Ok(SessionPage::new(sessions, next_cursor))
    }

    async fn delete_user(&self, user: &UserHash) -> Result<Vec<String>, StoreError> {
        let now = Instant::now();
        let mut maps = self.lock();
        let ids: Vec<String> = maps
            .index
            .get(user)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default();
        let mut deleted = Vec::new();
        for id in ids {
            if let Some(entry) = maps.remove(&id)
                && entry.expires_at > now
            {
                deleted.push(id);
            }
        }
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn purge_expired(&self) -> usize {
        let now = Instant::now();
        let mut maps = self.lock();
        let expired: Vec<String> = maps
            .sessions
            .iter()
            .filter(|(_, entry)| entry.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            maps.remove(id);
        }
        expired.len()
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        identity::{Caller, PrincipalKind},
        store::TransportKind,
    };

    fn alice() -> UserHash {
        Caller::new(PrincipalKind::Jwt, "iss", "alice").user_hash
    }

    fn bob() -> UserHash {
        Caller::new(PrincipalKind::Jwt, "iss", "bob").user_hash
    }

    fn record(user: UserHash, id: &str) -> SessionRecord {
        SessionRecord::new(id, user, TransportKind::StreamableHttp, "r1")
    }

    #[tokio::test]
    async fn a_session_is_only_found_by_its_owner() {
        let store = MemoryStore::new(Duration::from_secs(60));
        store.create(&record(alice(), "s1")).await.unwrap();
        assert!(store.access(&alice(), "s1").await.unwrap().is_some());
        assert!(store.access(&bob(), "s1").await.unwrap().is_none());
        assert!(!store.delete(&bob(), "s1").await.unwrap());
        assert!(store.list(&bob()).await.unwrap().is_empty());
        assert_eq!(store.list(&alice()).await.unwrap().len(), 1);
        assert!(store.delete(&alice(), "s1").await.unwrap());
        assert!(store.access(&alice(), "s1").await.unwrap().is_none());
        assert!(store.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_slides_with_each_access() {
        let store = MemoryStore::new(Duration::from_secs(60));
        store.create(&record(alice(), "s1")).await.unwrap();
        tokio::time::advance(Duration::from_secs(45)).await;
        assert!(store.access(&alice(), "s1").await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(45)).await;
        // 90 s after creation but only 45 s after the last access: alive.
        assert!(store.access(&alice(), "s1").await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(store.access(&alice(), "s1").await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn purge_removes_only_expired_sessions() {
        let store = MemoryStore::new(Duration::from_secs(60));
        store.create(&record(alice(), "old")).await.unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        store.create(&record(alice(), "new")).await.unwrap();
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(store.purge_expired().await, 1);
        assert_eq!(store.len(), 1);
        let listed = store.list(&alice()).await.unwrap();
        assert_eq!(listed[0].record.id, "new");
        assert_eq!(listed[0].ttl, Duration::from_secs(29));
    }

    #[tokio::test]
    async fn update_never_resurrects_a_deleted_session() {
        let store = MemoryStore::new(Duration::from_secs(60));
        let mut session = record(alice(), "s1");
        store.create(&session).await.unwrap();
        session.replica_id = "r2".into();
        assert!(store.update(&session).await.unwrap());
        assert_eq!(
            store
                .access(&alice(), "s1")
                .await
                .unwrap()
                .unwrap()
                .replica_id,
            "r2"
        );
        store.delete(&alice(), "s1").await.unwrap();
        assert!(!store.update(&session).await.unwrap());
        assert!(store.access(&alice(), "s1").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn admin_reads_do_not_renew_and_scan_pages_through_everything() {
        let store = MemoryStore::new(Duration::from_secs(60));
        for i in 0..7 {
            store
                .create(&record(alice(), &format!("a{i}")))
                .await
                .unwrap();
        }
        store.create(&record(bob(), "b0")).await.unwrap();
        assert!(store.peek(&alice(), "a1").await.unwrap().is_some());
        assert!(store.peek(&bob(), "a1").await.unwrap().is_none());
        assert_eq!(
            store.find("b0").await.unwrap().unwrap().record.user_hash,
            bob()
        );
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.scan(cursor.as_deref(), 3).await.unwrap();
            assert!(page.sessions.len() <= 3);
            seen.extend(page.sessions.into_iter().map(|session| session.record.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen, ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "b0"]);
        let mut deleted = store.delete_user(&alice()).await.unwrap();
        deleted.sort();
        assert_eq!(deleted.len(), 7);
        assert!(store.list(&alice()).await.unwrap().is_empty());
        assert_eq!(store.list(&bob()).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_per_user_cap_counts_live_sessions_only() {
        let store = MemoryStore::new(Duration::from_secs(60)).with_max_sessions_per_user(2);
        store.create(&record(alice(), "a")).await.unwrap();
        store.create(&record(alice(), "b")).await.unwrap();
        assert!(matches!(
            store.create(&record(alice(), "c")).await,
            Err(StoreError::TooManySessions { limit: 2 })
        ));
        store.create(&record(bob(), "d")).await.unwrap();
        store.delete(&alice(), "a").await.unwrap();
        store.create(&record(alice(), "c")).await.unwrap();
    }
}
