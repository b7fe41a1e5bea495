//! The report cache: answers of the API kept for `VIRUSTOTAL_CACHE_TTL_SECONDS`
//! (and "not found" answers for `VIRUSTOTAL_NOT_FOUND_CACHE_TTL_SECONDS`), so
//! that repeated lookups, on any replica, cost no quota.
//!
//! With `REDIS_URL` the cache is in Redis and shared by the fleet, one
//! string per object:
//!
//! | key | value | expires |
//! |---|---|---|
//! | `mcp_vt_cache:<kind>:<id>` | JSON [`CacheEntry`] | after its TTL |
//!
//! `<kind>` is `file`, `url`, `domain`, `ip_address` or `analysis`; `<id>`
//! the normalised API identifier (a file report is stored under its MD5,
//! SHA-1 and SHA-256 alike). Without Redis the cache is in process ([`memory`]).
//!
//! The cache is a help, never a dependency: a read that fails is a miss,
//! a write that fails is logged, and the lookup goes on.

pub mod memory;
pub mod redis;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use memory::MemoryCache;
pub use redis::RedisCache;

use crate::indicator::Kind;

/// One cached answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// When the API gave the answer (Unix time, ms).
    pub fetched_at_ms: u64,
    /// The report as the tool returns it, or `None` for `NotFoundError`.
    pub report: Option<Value>,
}

impl CacheEntry {
    /// An answer fetched now.
    pub fn now(report: Option<Value>) -> Self {
        Self {
            fetched_at_ms: now_ms(),
            report,
        }
    }

    /// The entry's age in whole seconds (0 if a replica's clock is behind).
    pub fn age_seconds(&self) -> u64 {
        now_ms().saturating_sub(self.fetched_at_ms) / 1000
    }
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// `mcp_vt_cache:<kind>:<id>`.
pub fn key(kind: Kind, id: &str) -> String {
    format!("mcp_vt_cache:{}:{id}", kind.as_str())
}

/// Where reports are cached.
#[derive(Clone)]
pub enum Cache {
    /// Nothing is cached (`VIRUSTOTAL_CACHE_TTL_SECONDS=0`).
    Off,
    /// In this process (one replica).
    Memory(MemoryCache),
    /// In Redis, shared by the fleet.
    Redis(RedisCache),
}

impl Cache {
    /// The entry under `key`, if any and not expired; a failed read is
    /// logged and answers `None`.
    pub async fn get(&self, key: &str) -> Option<CacheEntry> {
        match self {
            Self::Off => None,
            Self::Memory(cache) => cache.get(key),
            Self::Redis(cache) => match cache.get(key).await {
                Ok(entry) => entry,
                Err(error) => {
                    tracing::warn!(%error, "report cache read failed; treated as a miss");
                    None
                }
            },
        }
    }

    /// Stores `entry` under each of `keys` for `ttl`; a failed write is
    /// logged.
    pub async fn put(&self, keys: &[String], entry: &CacheEntry, ttl: Duration) {
        match self {
            Self::Off => {}
            Self::Memory(cache) => cache.put(keys, entry, ttl),
            Self::Redis(cache) => {
                if let Err(error) = cache.put(keys, entry, ttl).await {
                    tracing::warn!(%error, "report cache write failed");
                }
            }
        }
    }

    /// Drops the entry under `key` (a URL that was just submitted again);
    /// a failure is logged.
    pub async fn remove(&self, key: &str) {
        match self {
            Self::Off => {}
            Self::Memory(cache) => cache.remove(key),
            Self::Redis(cache) => {
                if let Err(error) = cache.remove(key).await {
                    tracing::warn!(%error, "report cache delete failed");
                }
            }
        }
    }

    /// `off`, `memory` or `redis`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_family() {
        assert_eq!(
            key(Kind::File, "44d88612fea8a8f36de82e1278abb02f"),
            "mcp_vt_cache:file:44d88612fea8a8f36de82e1278abb02f"
        );
        assert_eq!(
            key(Kind::IpAddress, "2001:db8::1"),
            "mcp_vt_cache:ip_address:2001:db8::1"
        );
    }

    #[test]
    fn ages_never_go_negative() {
        let entry = CacheEntry {
            fetched_at_ms: now_ms() + 60_000,
            report: None,
        };
        assert_eq!(entry.age_seconds(), 0);
        let entry = CacheEntry {
            fetched_at_ms: now_ms() - 90_500,
            report: None,
        };
        assert_eq!(entry.age_seconds(), 90);
    }
}
