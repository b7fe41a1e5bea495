//! The report cache in Redis, shared by the fleet: `SET key json EX ttl`,
//! `GET key`, `DEL key` (keys: [`super::key`]).

use std::time::Duration;

use fred::{
    clients::Pool,
    prelude::*,
    types::{Expiration, SetOptions},
};

use super::CacheEntry;

/// The shared cache.
#[derive(Clone)]
pub struct RedisCache {
    pool: Pool,
}

impl RedisCache {
    /// A cache in the Redis behind `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// The entry under `key`; an entry that does not parse (written by
    /// another version) is a miss.
    ///
    /// # Errors
    /// The Redis error's description.
    pub async fn get(&self, key: &str) -> Result<Option<CacheEntry>, String> {
        let value: Option<String> = self
            .pool
            .get(key)
            .await
            .map_err(|error| format!("redis: {}", error.details()))?;
        Ok(value.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Stores `entry` under each of `keys`, expiring after `ttl`.
    ///
    /// # Errors
    /// The first Redis error's description.
    pub async fn put(
        &self,
        keys: &[String],
        entry: &CacheEntry,
        ttl: Duration,
    ) -> Result<(), String> {
        let json = serde_json::to_string(entry).map_err(|error| error.to_string())?;
        let seconds = ttl.as_secs().max(1) as i64;
        let writes = keys.iter().map(|key| {
            self.pool.set::<(), _, _>(
                key.as_str(),
                json.as_str(),
                Some(Expiration::EX(seconds)),
                None::<SetOptions>,
                false,
            )
        });
        for result in futures::future::join_all(writes).await {
            result.map_err(|error| format!("redis: {}", error.details()))?;
        }
        Ok(())
    }

    /// Deletes `key`.
    ///
    /// # Errors
    /// The Redis error's description.
    pub async fn remove(&self, key: &str) -> Result<(), String> {
        self.pool
            .del::<(), _>(key)
            .await
            .map_err(|error| format!("redis: {}", error.details()))
    }
}
