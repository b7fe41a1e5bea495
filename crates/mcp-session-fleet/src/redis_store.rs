//! Redis session store: what lets every replica serve every session.
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `mcp_user_session:<user_hash>:<session_id>` | string | the [`SessionRecord`] as JSON | `SESSION_TTL_SECONDS`, renewed by each request |
//! | `mcp_user_index:<user_hash>` | sorted set | the user's session ids, scored by expiry time (Unix ms) | same, renewed with its sessions |
//!
//! Each operation is one round trip (a pipeline or a script), except
//! `create` on a Redis Cluster under a per-user limit (two: the record is
//! written, then a script takes its place in the index atomically), a
//! `create` that finds the user's index full (three more, to drop the
//! entries of sessions that no longer exist and try again), `access` of a
//! session that is gone (two: its entry is removed) and `list` (two). On a
//! single Redis (not a cluster) `create` is one script ([`CREATE`]) that
//! writes the record and takes its place.
//!
//! The index stays true to the sessions that exist, whatever Redis evicts
//! under `maxmemory`: entries of expired sessions are dropped by each
//! creation and access of the user, an access lists its session again if
//! the index was evicted, and a full index is checked against the records
//! before a creation is refused (docs/sessions.md, Eviction). On a Redis
//! Cluster no command spans two keys (a record and its user's index are in
//! different slots).
//!
//! Administration pages through all sessions with `SCAN MATCH
//! mcp_user_session:*` (never `KEYS`, which blocks Redis), node by node on a
//! cluster; its cursor is `<node index>:<SCAN cursor>`.

use std::time::Duration;

use fred::{
    clients::{Pipeline, Pool},
    prelude::*,
    types::{ClusterHash, CustomCommand, Expiration, ExpireOptions, SetOptions, scripts::Script},
};

use crate::store::{SessionPage, SessionRecord, SessionStore, StoreError, StoredSession, now_ms};
use crate::{
    connection::{RedisConnection, unavailable},
    identity::UserHash,
    key_scan::glob_escape,
    metrics::{RedisOp, StoreOp},
};

/// The key of one session (the name the Python servers used):
/// `mcp_user_session:<user_hash>:<session_id>`.
pub fn session_key(user: &UserHash, id: &str) -> String {
    joined(&["mcp_user_session:", user.as_str(), ":", id])
}

/// The key of a user's session index: `mcp_user_index:<user_hash>`.
pub fn index_key(user: &UserHash) -> String {
    joined(&["mcp_user_index:", user.as_str()])
}

/// `parts` in one allocation: `format!` costs a key about 1,100
/// instructions, this about 150 (`scripts/callgrind.sh`), and a session
/// start names two keys.
fn joined(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        key.push_str(part);
    }
    key
}

/// The `SCAN MATCH` pattern of every session key.
const ALL_SESSIONS: &str = "mcp_user_session:*";

/// Sessions in Redis, shared by every replica of a service.
pub struct RedisStore {
    redis: RedisConnection,
    ttl: Duration,
    max_sessions_per_user: Option<usize>,
    /// [`CREATE`] and [`RESERVE`], sent by their SHA-1 (`EVALSHA`, loaded
    /// again after a `NOSCRIPT`: a restarted or failed-over Redis): the
    /// script's text is neither copied nor sent nor hashed by Redis per call.
    create_script: Script,
    reserve_script: Script,
}

impl RedisStore {
    /// A store on `redis` whose sessions expire `ttl` after their last access.
    pub fn new(redis: RedisConnection, ttl: Duration) -> Self {
        Self {
            redis,
            ttl,
            max_sessions_per_user: None,
            create_script: Script::from_lua(CREATE),
            reserve_script: Script::from_lua(RESERVE),
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

    /// Counts one round trip of `op`.
    fn trip(&self, op: StoreOp) {
        self.redis.round_trip(RedisOp::Store(op));
    }

    fn ttl_seconds(&self) -> i64 {
        self.ttl.as_secs().max(1) as i64
    }

    /// The index score of a session renewed now: its expiry time, Unix ms.
    /// Sent as an integer (a sorted set score need not be written as a
    /// float, and an integer is cheaper to format).
    fn expiry_score(&self) -> u64 {
        now_ms() + self.ttl.as_millis() as u64
    }

    fn encode(record: &SessionRecord) -> Result<String, StoreError> {
        // A record with a client's `initialize` parameters is 400 to 700
        // bytes: one allocation instead of growing from empty (7 reallocations).
        let mut json = Vec::with_capacity(768);
        serde_json::to_writer(&mut json, record)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        // serde_json writes only UTF-8.
        String::from_utf8(json).map_err(|error| StoreError::Corrupt(error.to_string()))
    }

    fn decode(json: &str) -> Result<SessionRecord, StoreError> {
        serde_json::from_str(json).map_err(|error| StoreError::Corrupt(error.to_string()))
    }

    /// The sessions under `keys` with their TTLs (one pipeline), skipping
    /// keys that expired or were deleted meanwhile.
    async fn load(&self, op: StoreOp, keys: &[String]) -> Result<Vec<StoredSession>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.trip(op);
        let pipeline = self.pool().next().pipeline();
        for key in keys {
            let _: () = pipeline.get(key).await.map_err(unavailable)?;
            let _: () = pipeline.pttl(key).await.map_err(unavailable)?;
        }
        let values: Vec<Value> = pipeline.all().await.map_err(unavailable)?;
        let mut sessions = Vec::with_capacity(keys.len());
        for pair in values.chunks(2) {
            let [json, ttl] = pair else { continue };
            let Some(json) = json.as_str() else { continue };
            let ttl_ms = ttl.as_i64().unwrap_or(0);
            if ttl_ms <= 0 {
                continue;
            }
            sessions.push(StoredSession::new(
                Self::decode(&json)?,
                Duration::from_millis(ttl_ms as u64),
            ));
        }
        Ok(sessions)
    }

    /// Takes a place for session `id` of `user` if the user has fewer than
    /// `limit` live sessions, in one script ([`RESERVE`]), so that
    /// concurrent creations on any replicas never exceed the limit. When the
    /// index is full, the entries whose record is gone (evicted under
    /// `maxmemory`, or deleted while an access re-listed it) are removed and
    /// the place asked for once more: only sessions that exist count.
    async fn reserve(&self, user: &UserHash, id: &str, limit: usize) -> Result<(), StoreError> {
        let index = index_key(user);
        if self.try_reserve(&index, id, limit).await? {
            return Ok(());
        }
        self.reserve_in_full_index(user, &index, id, limit).await
    }

    /// Takes a place for session `id` in a user's `index` found full:
    /// removes the entries of sessions that no longer exist, then asks once
    /// more.
    ///
    /// # Errors
    /// [`StoreError::TooManySessions`] when the user has `limit` sessions
    /// that exist; [`StoreError::Unavailable`] when Redis fails.
    async fn reserve_in_full_index(
        &self,
        user: &UserHash,
        index: &str,
        id: &str,
        limit: usize,
    ) -> Result<(), StoreError> {
        if self.prune_missing(user, index).await? > 0 && self.try_reserve(index, id, limit).await? {
            return Ok(());
        }
        Err(StoreError::TooManySessions { limit })
    }

    /// Creates `record` (as `json`) on a single Redis with one [`CREATE`]:
    /// the record and its place in the index, in one round trip. When the
    /// index is full, [`reserve_in_full_index`](Self::reserve_in_full_index)
    /// tries again after removing the entries of sessions that are gone,
    /// and a refused session's record is removed.
    async fn create_in_one_script(
        &self,
        record: &SessionRecord,
        json: String,
    ) -> Result<(), StoreError> {
        let key = session_key(&record.user_hash, &record.id);
        let index = index_key(&record.user_hash);
        self.trip(StoreOp::Create);
        let created: i64 = self
            .create_script
            .evalsha_with_reload(
                self.pool().next(),
                vec![key.clone(), index.clone()],
                vec![
                    Value::from(json),
                    Value::Integer(self.ttl_seconds()),
                    Value::Integer(now_ms() as i64),
                    Value::Integer(self.expiry_score() as i64),
                    Value::from(record.id.as_str()),
                    Value::Integer(self.max_sessions_per_user.unwrap_or(0) as i64),
                ],
            )
            .await
            .map_err(unavailable)?;
        match (created, self.max_sessions_per_user) {
            (1, _) => Ok(()),
            (-1, _) => Err(already_exists(record)),
            (_, Some(limit)) => {
                let reserved = self
                    .reserve_in_full_index(&record.user_hash, &index, &record.id, limit)
                    .await;
                if reserved.is_err() {
                    self.remove_refused(&key, &record.id).await;
                }
                reserved
            }
            (_, None) => Err(StoreError::Corrupt(format!(
                "the creation script answered {created} for a session without a limit"
            ))),
        }
    }

    /// Removes the record of a session refused its place (best effort: the
    /// client never learns its id, and it expires with the TTL).
    async fn remove_refused(&self, key: &str, id: &str) {
        self.trip(StoreOp::Delete);
        let deleted: Result<i64, _> = self.pool().del(key).await;
        if let Err(error) = deleted {
            tracing::warn!(session_id = id, error = %error.details(), "could not remove the record of a refused session; it expires with the session TTL");
        }
    }

    /// One [`RESERVE`]: whether session `id` got its place in `index`.
    async fn try_reserve(&self, index: &str, id: &str, limit: usize) -> Result<bool, StoreError> {
        self.trip(StoreOp::Create);
        let admitted: i64 = self
            .reserve_script
            .evalsha_with_reload(
                self.pool().next(),
                vec![index.to_owned()],
                vec![
                    Value::Integer(now_ms() as i64),
                    Value::Integer(self.expiry_score() as i64),
                    Value::from(id),
                    Value::Integer(limit as i64),
                    Value::Integer(self.ttl_seconds()),
                ],
            )
            .await
            .map_err(unavailable)?;
        Ok(admitted == 1)
    }

    /// Removes from the user's `index` the sessions whose record no longer
    /// exists (one `ZRANGEBYSCORE`, one pipeline of `EXISTS`, one `ZREM`);
    /// returns how many. The records live on other keys (other slots of a
    /// cluster), so this cannot be one script; it needs none, because a
    /// creation writes its record before it takes its place (see
    /// [`create`](SessionStore::create)): an entry without a record is a
    /// session that is gone, never one being created.
    async fn prune_missing(&self, user: &UserHash, index: &str) -> Result<usize, StoreError> {
        self.trip(StoreOp::Create);
        let ids: Vec<String> = self
            .pool()
            .zrange(index, 0, -1, None, false, None, false)
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let pipeline = self.pool().next().pipeline();
        for id in &ids {
            let _: () = pipeline
                .exists(session_key(user, id))
                .await
                .map_err(unavailable)?;
        }
        self.trip(StoreOp::Create);
        let exists: Vec<i64> = pipeline.all().await.map_err(unavailable)?;
        let missing: Vec<String> = ids
            .into_iter()
            .zip(exists)
            .filter(|(_, exists)| *exists == 0)
            .map(|(id, _)| id)
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        self.trip(StoreOp::Create);
        let removed: i64 = self
            .pool()
            .zrem(index, missing)
            .await
            .map_err(unavailable)?;
        tracing::info!(
            user = user.short(),
            removed,
            "session index: entries of sessions that no longer exist removed"
        );
        Ok(usize::try_from(removed).unwrap_or(0))
    }

    /// Removes session `id`'s entry from `index`: the entry of a session
    /// that no longer exists. Best effort: the entry goes by itself at its
    /// expiry time otherwise.
    async fn release(&self, index: &str, id: &str) {
        self.trip(StoreOp::Delete);
        let released: Result<i64, _> = self.pool().zrem(index, id).await;
        if let Err(error) = released {
            tracing::warn!(session_id = id, error = %error.details(), "could not remove a session's index entry; it goes at the session TTL");
        }
    }
}

/// The error of a creation whose session id exists. Ids are 122-bit random
/// UUIDs, so this means a bug, not bad luck.
fn already_exists(record: &SessionRecord) -> StoreError {
    StoreError::Corrupt(format!("session id {} already exists", record.id))
}

/// Takes a place in a user's session index if one is free, atomically.
/// `KEYS[1]`: the index; `ARGV`: now (Unix ms), the new entry's expiry score,
/// the session id, the limit, the index TTL (s). Returns 1 when the session
/// got its place, 0 when the user already has `limit` live sessions. One
/// key, so it runs unchanged on Redis Cluster.
const RESERVE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
";

/// Creates a session on a single Redis: writes its record (`SET NX EX`) and
/// takes its place in the user's index, atomically. `KEYS[1]`: the record;
/// `KEYS[2]`: the index; `ARGV`: the record's JSON, the TTL (s), now (Unix
/// ms), the new entry's expiry score, the session id, the per-user limit (0:
/// none). Returns 1 when the session was created and listed, 0 when its
/// record was written but the user already has `limit` live sessions in the
/// index, -1 when a record with this id exists (nothing written). Its two
/// keys are in different slots of a cluster: on a Redis Cluster the record
/// and the index are written apart ([`RESERVE`], [`INDEX`]).
const CREATE: &str = r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return -1
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local limit = tonumber(ARGV[6])
if limit > 0 and redis.call('ZCARD', KEYS[2]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
";

/// Lists a session in a user's index. `KEYS[1]`: the index; `ARGV`: the
/// entry's expiry score, the session id, now (Unix ms), the index TTL (s).
/// One command instead of three (`ZADD`, `ZREMRANGEBYSCORE`, `EXPIRE`):
/// each command costs the service as much to send and read as the script
/// does (`scripts/callgrind.sh`). One key, so it runs unchanged on Redis
/// Cluster.
const INDEX: &str = r"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
";

impl RedisStore {
    /// Queues in `pipeline` the entry of session `id` in the user's `index`,
    /// scored by its new expiry time (added if the index lost it: evicted
    /// under `maxmemory`), the removal of the entries whose time has passed
    /// (sessions that expired), and the index's renewed TTL: one [`INDEX`].
    async fn queue_index(
        &self,
        pipeline: &Pipeline<Client>,
        index: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        // fred's pipelines have no `eval`: a custom `EVAL`, routed on a
        // cluster by its key (the third argument).
        let eval = CustomCommand::new_static("EVAL", ClusterHash::Offset(2), false);
        let _: () = pipeline
            .custom(
                eval,
                vec![
                    INDEX.to_owned(),
                    "1".to_owned(),
                    index.to_owned(),
                    self.expiry_score().to_string(),
                    id.to_owned(),
                    now_ms().to_string(),
                    self.ttl_seconds().to_string(),
                ],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Queues in `pipeline` the write of `record` as `json`, with the
    /// session TTL, under `condition` (`NX`: a new session; `XX`: only
    /// while it exists).
    async fn queue_write(
        &self,
        pipeline: &Pipeline<Client>,
        record: &SessionRecord,
        json: String,
        condition: SetOptions,
    ) -> Result<(), StoreError> {
        let _: () = pipeline
            .set(
                session_key(&record.user_hash, &record.id),
                json,
                Some(Expiration::EX(self.ttl_seconds())),
                Some(condition),
                false,
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let json = Self::encode(record)?;
        if !self.redis.is_clustered() {
            return self.create_in_one_script(record, json).await;
        }
        let index = index_key(&record.user_hash);
        let exists = || already_exists(record);
        let Some(limit) = self.max_sessions_per_user else {
            let pipeline = self.pool().next().pipeline();
            self.queue_write(&pipeline, record, json, SetOptions::NX)
                .await?;
            self.queue_index(&pipeline, &index, &record.id).await?;
            self.trip(StoreOp::Create);
            return match pipeline.all::<(Option<String>, i64)>().await {
                Ok((Some(_), ..)) => Ok(()),
                // NX refused: a session with this id exists. Ids are 122-bit
                // random UUIDs, so this means a bug, not bad luck.
                Ok((None, ..)) => Err(exists()),
                Err(error) => Err(unavailable(error)),
            };
        };
        // Under a limit, the record first, then its place: an index entry
        // without a record is then always a session that is gone, which
        // `reserve` may remove when the index is full.
        let key = session_key(&record.user_hash, &record.id);
        self.trip(StoreOp::Create);
        let written: Option<String> = self
            .pool()
            .set(
                &key,
                json,
                Some(Expiration::EX(self.ttl_seconds())),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(unavailable)?;
        if written.is_none() {
            return Err(exists());
        }
        let reserved = self.reserve(&record.user_hash, &record.id, limit).await;
        if reserved.is_err() {
            // Refused, or Redis failed: the record goes.
            self.remove_refused(&key, &record.id).await;
        }
        reserved
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
        self.queue_index(&pipeline, &index, id).await?;
        self.trip(StoreOp::Access);
        let (json, _): (Option<String>, i64) = pipeline.all().await.map_err(unavailable)?;
        let Some(json) = json else {
            // Expired, deleted or evicted: its entry goes (the pipeline
            // listed it again; a session that exists is always listed).
            self.release(&index, id).await;
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
        self.queue_write(&pipeline, record, json, SetOptions::XX)
            .await?;
        let _: () = pipeline
            .expire(
                index_key(&record.user_hash),
                self.ttl_seconds(),
                Some(ExpireOptions::GT),
            )
            .await
            .map_err(unavailable)?;
        self.trip(StoreOp::Update);
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
        self.trip(StoreOp::Delete);
        let (deleted, _): (i64, i64) = pipeline.all().await.map_err(unavailable)?;
        Ok(deleted > 0)
    }

    async fn list(&self, user: &UserHash) -> Result<Vec<StoredSession>, StoreError> {
        self.trip(StoreOp::List);
        let ids: Vec<String> = self
            .pool()
            .zrangebyscore(index_key(user), now_ms() as f64, f64::INFINITY, false, None)
            .await
            .map_err(unavailable)?;
        let keys: Vec<String> = ids.iter().map(|id| session_key(user, id)).collect();
        let mut sessions = self.load(StoreOp::List, &keys).await?;
        sessions.sort_by_key(|session| session.record.created_at_ms);
        Ok(sessions)
    }

    async fn peek(&self, user: &UserHash, id: &str) -> Result<Option<StoredSession>, StoreError> {
        Ok(self
            .load(StoreOp::Peek, &[session_key(user, id)])
            .await?
            .pop())
    }

    async fn find(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let pattern = format!("mcp_user_session:*:{}", glob_escape(id));
        let mut cursor = None;
        loop {
            let page = self
                .redis
                .scan_keys(
                    RedisOp::Store(StoreOp::Find),
                    cursor.as_deref(),
                    &pattern,
                    1000,
                )
                .await?;
            if let Some(found) = self
                .load(StoreOp::Find, &page.keys)
                .await?
                .into_iter()
                .next()
            {
                return Ok(Some(found));
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(None),
            }
        }
    }

    async fn scan(&self, cursor: Option<&str>, limit: usize) -> Result<SessionPage, StoreError> {
        let page = self
            .redis
            .scan_keys(RedisOp::Store(StoreOp::Scan), cursor, ALL_SESSIONS, limit)
            .await?;
        let sessions = self.load(StoreOp::Scan, &page.keys).await?;
        Ok(SessionPage::new(sessions, page.next_cursor))
    }

    async fn delete_user(&self, user: &UserHash) -> Result<Vec<String>, StoreError> {
        let index = index_key(user);
        self.trip(StoreOp::DeleteUser);
        let ids: Vec<String> = self
            .pool()
            .zrange(&index, 0, -1, None, false, None, false)
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.pool().next().pipeline();
        for id in &ids {
            let _: () = pipeline
                .del(session_key(user, id))
                .await
                .map_err(unavailable)?;
        }
        let _: () = pipeline.del(&index).await.map_err(unavailable)?;
        self.trip(StoreOp::DeleteUser);
        let deleted: Vec<i64> = pipeline.all().await.map_err(unavailable)?;
        Ok(ids
            .into_iter()
            .zip(deleted)
            .filter(|(_, count)| *count > 0)
            .map(|(id, _)| id)
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.redis.ping().await
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
