//! The in-process report cache (one replica, no Redis): a bounded
//! [`moka`] cache whose entries each carry their own expiry.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::CacheEntry;

/// Most entries kept; the least recently used go first.
pub const MAX_ENTRIES: u64 = 10_000;

/// An entry and when it expires.
#[derive(Clone)]
struct Stored {
    entry: Arc<CacheEntry>,
    expires: Instant,
}

/// The in-process cache; clones share it.
#[derive(Clone)]
pub struct MemoryCache {
    entries: moka::sync::Cache<String, Stored>,
}

impl MemoryCache {
    /// A cache whose entries live at most `longest_ttl` (the longer of the
    /// two TTLs; each entry's own TTL is checked on read).
    pub fn new(longest_ttl: Duration) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(longest_ttl.max(Duration::from_secs(1)))
                .build(),
        }
    }

    /// The live entry under `key`.
    pub fn get(&self, key: &str) -> Option<CacheEntry> {
        let stored = self.entries.get(key)?;
        if stored.expires <= Instant::now() {
            self.entries.invalidate(key);
            return None;
        }
        Some(stored.entry.as_ref().clone())
    }

    /// Stores `entry` under every key of `keys` for `ttl`.
    pub fn put(&self, keys: &[String], entry: &CacheEntry, ttl: Duration) {
        let stored = Stored {
            entry: Arc::new(entry.clone()),
            expires: Instant::now() + ttl,
        };
        for key in keys {
            self.entries.insert(key.clone(), stored.clone());
        }
    }

    /// Drops the entry under `key`.
    pub fn remove(&self, key: &str) {
        self.entries.invalidate(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_by_their_own_ttl() {
        let cache = MemoryCache::new(Duration::from_secs(3600));
        let entry = CacheEntry::now(Some(serde_json::json!({"x": 1})));
        cache.put(&["a".into(), "b".into()], &entry, Duration::from_secs(3600));
        cache.put(&["short".into()], &entry, Duration::from_millis(1));
        assert_eq!(cache.get("a"), Some(entry.clone()));
        assert_eq!(cache.get("b"), Some(entry));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get("short"), None);
        cache.remove("a");
        assert_eq!(cache.get("a"), None);
    }
}
