//! [`RedisTaskStore`]: tasks (SEP-2663) in Redis, one hash per task under
//! `mcp_task:<user_hash>:<task_id>` with two fields, `v` (the version) and
//! `r` (the document), so that every replica reads any task and changes it
//! by compare-and-set ([`CAS`], one script on one key: also on a cluster).

use std::time::Duration;

use async_trait::async_trait;
use fred::{prelude::*, types::scripts::Script};

use crate::{
    connection::{RedisConnection, unavailable},
    metrics::RedisOp,
    store::StoreError,
};
use mcp_session_core::task_store::{StoredTask, TaskKey, TaskStore};

/// Writes `ARGV[2]` as version `ARGV[1] + 1` with a time to live of
/// `ARGV[3]` ms if the hash `KEYS[1]` is at version `ARGV[1]` (`0`: absent);
/// returns 1 when written, 0 otherwise.
const CAS: &str = r#"
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(ARGV[1]) + 1), 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#;

/// Tasks in Redis, shared by every replica of a service.
pub struct RedisTaskStore {
    redis: RedisConnection,
    /// [`CAS`], sent by its SHA-1 (`EVALSHA`, loaded again after a
    /// `NOSCRIPT`).
    cas: Script,
}

impl RedisTaskStore {
    /// Tasks over `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis,
            cas: Script::from_lua(CAS),
        }
    }
}

#[async_trait]
impl TaskStore for RedisTaskStore {
    async fn read(&self, key: &TaskKey) -> Result<Option<StoredTask>, StoreError> {
        self.redis.round_trip(RedisOp::Task);
        let (version, document): (Option<String>, Option<String>) = self
            .redis
            .pool()
            .hmget(key.redis_key(), vec!["v", "r"])
            .await
            .map_err(unavailable)?;
        let (Some(version), Some(document)) = (version, document) else {
            return Ok(None);
        };
        let version = version
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("task version {version:?}")))?;
        Ok(Some(StoredTask { version, document }))
    }

    async fn write(
        &self,
        key: &TaskKey,
        read: Option<u64>,
        document: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.redis.round_trip(RedisOp::Task);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let written: i64 = self
            .cas
            .evalsha_with_reload(
                self.redis.pool().next(),
                vec![key.redis_key()],
                vec![
                    Value::from(read.unwrap_or(0).to_string()),
                    Value::from(document),
                    Value::from(ttl_ms.to_string()),
                ],
            )
            .await
            .map_err(unavailable)?;
        Ok(written == 1)
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
