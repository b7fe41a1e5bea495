//! Redis session store: what lets every replica serve every session.
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `mcp_user_session:<user_hash>:<session_id>` | string | the [`SessionRecord`] as JSON | `SESSION_TTL_SECONDS`, renewed by each request |
//! | `mcp_user_index:<user_hash>` | sorted set | the user's session ids, scored by expiry time (Unix ms) | same, renewed with its sessions |
//!
//! Each operation is one round trip (a pipeline), except `create` under a
//! per-user limit (two) and `list` (two). No command spans two keys, so the
//! store works unchanged on Redis Cluster.

use std::time::Duration;

use fred::{
    clients::Pool,
    prelude::*,
    types::{ClusterHash, CustomCommand, Expiration, ExpireOptions, SetOptions},
};

use super::{SessionRecord, SessionStore, StoreError, StoredSession, now_ms};
use crate::{
    identity::UserHash,
    redis::{RedisConnection, unavailable},
};

/// The key of one session (the name the Python servers used).
pub fn session_key(user: &UserHash, id: &str) -> String {
    format!("mcp_user_session:{user}:{id}")
}

/// The key of a user's session index.
pub fn index_key(user: &UserHash) -> String {
    format!("mcp_user_index:{user}")
}

/// Sessions in Redis, shared by every replica of a service.
pub struct RedisStore {
    redis: RedisConnection,
    ttl: Duration,
    max_sessions_per_user: Option<usize>,
}

impl RedisStore {
    /// A store on `redis` whose sessions expire `ttl` after their last access.
    pub fn new(redis: RedisConnection, ttl: Duration) -> Self {
        Self {
            redis,
            ttl,
            max_sessions_per_user: None,
        }
    }

    /// Limits each user to `limit` live sessions.
    pub fn with_max_sessions_per_user(mut self, limit: Option<usize>) -> Self {
        self.max_sessions_per_user = limit;
        self
    }

    fn pool(&self) -> &Pool {
        self.redis.pool()
    }

    fn ttl_seconds(&self) -> i64 {
        self.ttl.as_secs().max(1) as i64
    }

    fn expiry_score(&self) -> f64 {
        (now_ms() + self.ttl.as_millis() as u64) as f64
    }

    fn encode(record: &SessionRecord) -> Result<String, StoreError> {
        serde_json::to_string(record).map_err(|error| StoreError::Corrupt(error.to_string()))
    }

    fn decode(json: &str) -> Result<SessionRecord, StoreError> {
        serde_json::from_str(json).map_err(|error| StoreError::Corrupt(error.to_string()))
    }

    /// Number of `user`'s live sessions, after dropping expired index entries.
    async fn live_count(&self, user: &UserHash) -> Result<usize, StoreError> {
        let index = index_key(user);
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .zremrangebyscore(&index, f64::NEG_INFINITY, now_ms() as f64)
            .await
            .map_err(unavailable)?;
        let _: () = pipeline.zcard(&index).await.map_err(unavailable)?;
        let (_, count): (i64, i64) = pipeline.all().await.map_err(unavailable)?;
        Ok(count.max(0) as usize)
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        if let Some(limit) = self.max_sessions_per_user
            && self.live_count(&record.user_hash).await? >= limit
        {
            return Err(StoreError::TooManySessions { limit });
        }
        let json = Self::encode(record)?;
        let index = index_key(&record.user_hash);
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .set(
                session_key(&record.user_hash, &record.id),
                json,
                Some(Expiration::EX(self.ttl_seconds())),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(unavailable)?;
        let _: () = pipeline
            .zadd(
                &index,
                None,
                None,
                false,
                false,
                (self.expiry_score(), record.id.as_str()),
            )
            .await
            .map_err(unavailable)?;
        let _: () = pipeline
            .expire(&index, self.ttl_seconds(), None)
            .await
            .map_err(unavailable)?;
        let (created, _, _): (Option<String>, i64, i64) =
            pipeline.all().await.map_err(unavailable)?;
        if created.is_none() {
            // NX refused: a session with this id exists. Ids are 122-bit
            // random UUIDs, so this means a bug, not bad luck.
            return Err(StoreError::Corrupt(format!(
                "session id {} already exists",
                record.id
            )));
        }
        Ok(())
    }

    async fn access(&self, user: &UserHash, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let index = index_key(user);
        let getex = CustomCommand::new_static("GETEX", ClusterHash::FirstKey, false);
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .custom(
                getex,
                vec![
                    session_key(user, id),
                    "EX".to_owned(),
                    self.ttl_seconds().to_string(),
                ],
            )
            .await
            .map_err(unavailable)?;
        let _: () = pipeline
            .zadd(
                &index,
                Some(SetOptions::XX),
                None,
                false,
                false,
                (self.expiry_score(), id),
            )
            .await
            .map_err(unavailable)?;
        let _: () = pipeline
            .expire(&index, self.ttl_seconds(), None)
            .await
            .map_err(unavailable)?;
        let (json, _, _): (Option<String>, i64, i64) = pipeline.all().await.map_err(unavailable)?;
        let Some(json) = json else {
            return Ok(None);
        };
        let mut record = Self::decode(&json)?;
        if &record.user_hash != user || record.id != id {
            return Err(StoreError::Corrupt(format!(
                "record under the key of session {id} names another session"
            )));
        }
        record.last_access_ms = now_ms();
        Ok(Some(record))
    }

    async fn update(&self, record: &SessionRecord) -> Result<bool, StoreError> {
        let json = Self::encode(record)?;
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .set(
                session_key(&record.user_hash, &record.id),
                json,
                Some(Expiration::EX(self.ttl_seconds())),
                Some(SetOptions::XX),
                false,
            )
            .await
            .map_err(unavailable)?;
        let _: () = pipeline
            .expire(
                index_key(&record.user_hash),
                self.ttl_seconds(),
                Some(ExpireOptions::GT),
            )
            .await
            .map_err(unavailable)?;
        let (updated, _): (Option<String>, i64) = pipeline.all().await.map_err(unavailable)?;
        Ok(updated.is_some())
    }

    async fn delete(&self, user: &UserHash, id: &str) -> Result<bool, StoreError> {
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .del(session_key(user, id))
            .await
            .map_err(unavailable)?;
        let _: () = pipeline
            .zrem(index_key(user), id)
            .await
            .map_err(unavailable)?;
        let (deleted, _): (i64, i64) = pipeline.all().await.map_err(unavailable)?;
        Ok(deleted > 0)
    }

    async fn list(&self, user: &UserHash) -> Result<Vec<StoredSession>, StoreError> {
        let ids: Vec<String> = self
            .pool()
            .zrangebyscore(index_key(user), now_ms() as f64, f64::INFINITY, false, None)
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.pool().next().pipeline();
        for id in &ids {
            let key = session_key(user, id);
            let _: () = pipeline.get(&key).await.map_err(unavailable)?;
            let _: () = pipeline.pttl(&key).await.map_err(unavailable)?;
        }
        let values: Vec<Value> = pipeline.all().await.map_err(unavailable)?;
        let mut sessions = Vec::with_capacity(ids.len());
        for pair in values.chunks(2) {
            let [json, ttl] = pair else { continue };
            let Some(json) = json.as_str() else { continue };
            let ttl_ms = ttl.as_i64().unwrap_or(0);
            if ttl_ms <= 0 {
                continue;
            }
            sessions.push(StoredSession {
                record: Self::decode(&json)?,
                ttl: Duration::from_millis(ttl_ms as u64),
            });
        }
        sessions.sort_by_key(|session| session.record.created_at_ms);
        Ok(sessions)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.redis.ping().await
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
