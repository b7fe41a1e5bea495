//! Where client sessions live: in Redis for a fleet of hub replicas
//! ([`RedisClientSessionStore`]), in memory for a hub alone
//! ([`MemoryClientSessionStore`]), behind one trait ([`ClientSessionStore`]).
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `mcp_client_session:<user_hash>:<id>` | hash | field `meta`: JSON `{createdAtMs}`; field `server:<name>` per connected server: JSON [`StoredConnection`] (credentials sealed) | `CLIENT_SESSION_TTL_SECONDS` (1800), renewed by every request naming it |
//! | `mcp_client_session_index:<user_hash>` | sorted set | the user's client session ids, scored by when each expires (Unix ms) | the same, renewed with them |
//!
//! The user hash in the key is the caller's (`mcp-session`'s owner key), so
//! another user's id names no key: `404`, whatever the id. A hash without
//! its `meta` field (a connection written as the session expired) is no
//! session. Each command names one key, so the store works unchanged on
//! Redis Cluster; a connection is written only into a session that exists
//! (`put_connection.lua`, one key), and a new id enters its user's index
//! only under `max_per_user` (`reserve_slot.lua`, one key: atomic across
//! replicas).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use fred::{prelude::*, types::scripts::Script};
use mcp_session::redis::{RedisConnection, RedisOp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Writes a connection into a client session only if the session exists
/// (and renews its TTL).
const PUT_CONNECTION_LUA: &str = include_str!("put_connection.lua");

/// Adds a new id to its user's index only under the limit, atomically.
const RESERVE_SLOT_LUA: &str = include_str!("reserve_slot.lua");

/// The key of a client session.
pub fn session_key(user: &str, id: &str) -> String {
    format!("mcp_client_session:{user}:{id}")
}

/// The key of a user's index of client sessions.
pub fn index_key(user: &str) -> String {
    format!("mcp_client_session_index:{user}")
}

const META_FIELD: &str = "meta";
const SERVER_FIELD_PREFIX: &str = "server:";

/// Redis did not answer in time, or answered something unreadable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("client session store: {0}")]
pub struct StoreError(String);

fn redis_error(error: fred::error::Error) -> StoreError {
    StoreError(format!("redis: {}", error.details()))
}

/// One server connected in a client session, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredConnection {
    /// The name the session knows it by: a configured server's name, or
    /// the name the user gave a URL.
    pub server: String,
    /// The URL a user connected (`None`: a configured server).
    pub url: Option<String>,
    /// How the URL is spoken to (`None`: Streamable HTTP with sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<super::model::UrlTransport>,
    /// When it was connected (Unix ms).
    pub connected_at_ms: u64,
    /// The names of the headers the user gave (lowercase).
    #[serde(default)]
    pub header_names: Vec<String>,
    /// Their values, sealed ([`super::sealing`]); `None` without headers.
    pub sealed_headers: Option<String>,
}

/// A client session as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSessionRecord {
    /// Its id.
    pub id: String,
    /// When it was made (Unix ms).
    pub created_at_ms: u64,
    /// When it expires unless used again (Unix ms).
    pub expires_at_ms: u64,
    /// Its connections by server name.
    pub connections: BTreeMap<String, StoredConnection>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    created_at_ms: u64,
}

/// Where client sessions live. Every method is one or two round trips to
/// Redis (or none, in memory).
#[async_trait::async_trait]
pub trait ClientSessionStore: Send + Sync + 'static {
    /// Stores a new, empty client session `id` of `user`, unless the user
    /// has `max_per_user` already (`Ok(false)`).
    async fn create(
        &self,
        user: &str,
        id: &str,
        now_ms: u64,
        ttl: Duration,
        max_per_user: usize,
    ) -> Result<bool, StoreError>;

    /// The client session `id` of `user`, its TTL renewed (sliding).
    async fn load(
        &self,
        user: &str,
        id: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Option<ClientSessionRecord>, StoreError>;

    /// Adds or replaces a connection; `Ok(false)` when the session is gone.
    async fn put_connection(
        &self,
        user: &str,
        id: &str,
        connection: &StoredConnection,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Removes a connection; `Ok(false)` when there was none.
    async fn remove_connection(
        &self,
        user: &str,
        id: &str,
        server: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes a client session; `Ok(false)` when there was none.
    async fn delete(&self, user: &str, id: &str) -> Result<bool, StoreError>;

    /// The user's live client sessions (not renewed by listing).
    async fn list(&self, user: &str, now_ms: u64) -> Result<Vec<ClientSessionRecord>, StoreError>;
}

/// Client sessions in Redis (see the module's table).
pub struct RedisClientSessionStore {
    redis: RedisConnection,
    put_connection: Script,
    reserve_slot: Script,
}

impl RedisClientSessionStore {
    /// A store on `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis,
            put_connection: Script::from_lua(PUT_CONNECTION_LUA),
            reserve_slot: Script::from_lua(RESERVE_SLOT_LUA),
        }
    }

    fn pool(&self) -> &fred::clients::Pool {
        self.redis.round_trip(RedisOp::Service);
        self.redis.pool()
    }
}

/// The record of a hash's fields, if it has its `meta`.
fn record_of(
    id: &str,
    fields: BTreeMap<String, String>,
    expires_at_ms: u64,
) -> Result<Option<ClientSessionRecord>, StoreError> {
    let Some(meta) = fields.get(META_FIELD) else {
        return Ok(None);
    };
    let meta: Meta = serde_json::from_str(meta).map_err(|e| StoreError(e.to_string()))?;
    let mut connections = BTreeMap::new();
    for (field, value) in &fields {
        if let Some(server) = field.strip_prefix(SERVER_FIELD_PREFIX) {
            let connection: StoredConnection =
                serde_json::from_str(value).map_err(|e| StoreError(e.to_string()))?;
            connections.insert(server.to_owned(), connection);
        }
    }
    Ok(Some(ClientSessionRecord {
        id: id.to_owned(),
        created_at_ms: meta.created_at_ms,
        expires_at_ms,
        connections,
    }))
}

fn ms(ttl: Duration) -> i64 {
    ttl.as_millis().max(1) as i64
}

#[async_trait::async_trait]
impl ClientSessionStore for RedisClientSessionStore {
    async fn create(
        &self,
        user: &str,
        id: &str,
        now_ms: u64,
        ttl: Duration,
        max_per_user: usize,
    ) -> Result<bool, StoreError> {
        // The place in the index first (atomic: the limit holds whatever
        // replicas create at once), then the record; a record that could not
        // be written leaves an id its first read removes.
        let expires = now_ms + ttl.as_millis() as u64;
        let reserved: i64 = self
            .reserve_slot
            .evalsha_with_reload(
                self.pool().next(),
                vec![index_key(user)],
                vec![
                    now_ms.to_string(),
                    expires.to_string(),
                    id.to_owned(),
                    max_per_user.to_string(),
                    ms(ttl).to_string(),
                ],
            )
            .await
            .map_err(redis_error)?;
        if reserved != 1 {
            return Ok(false);
        }
        let meta = serde_json::to_string(&Meta {
            created_at_ms: now_ms,
        })
        .map_err(|e| StoreError(e.to_string()))?;
        let key = session_key(user, id);
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .hset(&key, (META_FIELD, meta))
            .await
            .map_err(redis_error)?;
        let _: () = pipeline
            .pexpire(&key, ms(ttl), None)
            .await
            .map_err(redis_error)?;
        let _: Vec<Value> = pipeline.all().await.map_err(redis_error)?;
        Ok(true)
    }

    async fn load(
        &self,
        user: &str,
        id: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Option<ClientSessionRecord>, StoreError> {
        let (key, index) = (session_key(user, id), index_key(user));
        let expires = now_ms + ttl.as_millis() as u64;
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline.hgetall(&key).await.map_err(redis_error)?;
        let _: () = pipeline
            .pexpire(&key, ms(ttl), None)
            .await
            .map_err(redis_error)?;
        // XX: a pruned id is not brought back.
        let _: () = pipeline
            .zadd(
                &index,
                Some(SetOptions::XX),
                None,
                false,
                false,
                (expires as f64, id),
            )
            .await
            .map_err(redis_error)?;
        let _: () = pipeline
            .pexpire(&index, ms(ttl), None)
            .await
            .map_err(redis_error)?;
        let (fields, _, _, _): (BTreeMap<String, String>, i64, i64, i64) =
            pipeline.all().await.map_err(redis_error)?;
        let record = record_of(id, fields, expires)?;
        if record.is_none() {
            // Gone (expired, or evicted under memory pressure): out of the
            // index too, so it counts no more against the user's limit.
            let _: i64 = self.pool().zrem(&index, id).await.map_err(redis_error)?;
        }
        Ok(record)
    }

    async fn put_connection(
        &self,
        user: &str,
        id: &str,
        connection: &StoredConnection,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let value = serde_json::to_string(connection).map_err(|e| StoreError(e.to_string()))?;
        let field = format!("{SERVER_FIELD_PREFIX}{}", connection.server);
        let written: i64 = self
            .put_connection
            .evalsha_with_reload(
                self.pool().next(),
                vec![session_key(user, id)],
                vec![field, value, ms(ttl).to_string()],
            )
            .await
            .map_err(redis_error)?;
        Ok(written == 1)
    }

    async fn remove_connection(
        &self,
        user: &str,
        id: &str,
        server: &str,
    ) -> Result<bool, StoreError> {
        let removed: i64 = self
            .pool()
            .hdel(
                session_key(user, id),
                format!("{SERVER_FIELD_PREFIX}{server}"),
            )
            .await
            .map_err(redis_error)?;
        Ok(removed == 1)
    }

    async fn delete(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .del(session_key(user, id))
            .await
            .map_err(redis_error)?;
        let _: () = pipeline
            .zrem(index_key(user), id)
            .await
            .map_err(redis_error)?;
        let (deleted, _): (i64, i64) = pipeline.all().await.map_err(redis_error)?;
        Ok(deleted == 1)
    }

    async fn list(&self, user: &str, now_ms: u64) -> Result<Vec<ClientSessionRecord>, StoreError> {
        let scored: Vec<(String, f64)> = self
            .pool()
            .zrangebyscore(index_key(user), now_ms as f64, f64::INFINITY, true, None)
            .await
            .map_err(redis_error)?;
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.pool().next().pipeline();
        for (id, _) in &scored {
            let _: () = pipeline
                .hgetall(session_key(user, id))
                .await
                .map_err(redis_error)?;
        }
        let all: Vec<BTreeMap<String, String>> = pipeline.all().await.map_err(redis_error)?;
        let mut records = Vec::new();
        for ((id, expires), fields) in scored.iter().zip(all) {
            if let Some(record) = record_of(id, fields, *expires as u64)? {
                records.push(record);
            }
        }
        Ok(records)
    }
}

/// Client sessions in this process's memory, for a hub alone (no
/// `REDIS_URL`): bounded, each dropped `ttl` after its last use.
pub struct MemoryClientSessionStore {
    sessions: moka::sync::Cache<(String, String), Arc<Mutex<ClientSessionRecord>>>,
}

impl MemoryClientSessionStore {
    /// An empty store whose sessions live `ttl` after their last use.
    pub fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            sessions: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(ttl)
                .build(),
        })
    }
}

#[async_trait::async_trait]
impl ClientSessionStore for MemoryClientSessionStore {
    async fn create(
        &self,
        user: &str,
        id: &str,
        now_ms: u64,
        ttl: Duration,
        max_per_user: usize,
    ) -> Result<bool, StoreError> {
        let live = self
            .sessions
            .iter()
            .filter(|(key, _)| key.0 == user)
            .count();
        if live >= max_per_user {
            return Ok(false);
        }
        let record = ClientSessionRecord {
            id: id.to_owned(),
            created_at_ms: now_ms,
            expires_at_ms: now_ms + ttl.as_millis() as u64,
            connections: BTreeMap::new(),
        };
        self.sessions.insert(
            (user.to_owned(), id.to_owned()),
            Arc::new(Mutex::new(record)),
        );
        Ok(true)
    }

    async fn load(
        &self,
        user: &str,
        id: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Option<ClientSessionRecord>, StoreError> {
        Ok(self
            .sessions
            .get(&(user.to_owned(), id.to_owned()))
            .map(|record| {
                let mut record = record.lock();
                record.expires_at_ms = now_ms + ttl.as_millis() as u64;
                record.clone()
            }))
    }

    async fn put_connection(
        &self,
        user: &str,
        id: &str,
        connection: &StoredConnection,
        _ttl: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self
            .sessions
            .get(&(user.to_owned(), id.to_owned()))
            .map(|record| {
                record
                    .lock()
                    .connections
                    .insert(connection.server.clone(), connection.clone());
            })
            .is_some())
    }

    async fn remove_connection(
        &self,
        user: &str,
        id: &str,
        server: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .sessions
            .get(&(user.to_owned(), id.to_owned()))
            .is_some_and(|record| record.lock().connections.remove(server).is_some()))
    }

    async fn delete(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .sessions
            .remove(&(user.to_owned(), id.to_owned()))
            .is_some())
    }

    async fn list(&self, user: &str, _now_ms: u64) -> Result<Vec<ClientSessionRecord>, StoreError> {
        let mut records: Vec<ClientSessionRecord> = self
            .sessions
            .iter()
            .filter(|(key, _)| key.0 == user)
            .map(|(_, record)| record.lock().clone())
            .collect();
        records.sort_by_key(|record| record.created_at_ms);
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(server: &str) -> StoredConnection {
        StoredConnection {
            server: server.to_owned(),
            url: None,
            transport: None,
            connected_at_ms: 1,
            header_names: Vec::new(),
            sealed_headers: None,
        }
    }

    #[tokio::test]
    async fn memory_store_keeps_users_apart_and_bounds_them() {
        let store = MemoryClientSessionStore::new(Duration::from_secs(60));
        let ttl = Duration::from_secs(60);
        assert!(store.create("alice", "cs_1", 0, ttl, 2).await.unwrap());
        assert!(store.create("alice", "cs_2", 0, ttl, 2).await.unwrap());
        assert!(!store.create("alice", "cs_3", 0, ttl, 2).await.unwrap());
        assert!(
            store
                .put_connection("alice", "cs_1", &connection("calc"), ttl)
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_connection("bob", "cs_1", &connection("calc"), ttl)
                .await
                .unwrap()
        );
        assert!(store.load("bob", "cs_1", 0, ttl).await.unwrap().is_none());
        let record = store.load("alice", "cs_1", 5, ttl).await.unwrap().unwrap();
        assert_eq!(record.connections.len(), 1);
        assert_eq!(record.expires_at_ms, 60_005);
        assert!(
            store
                .remove_connection("alice", "cs_1", "calc")
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_connection("alice", "cs_1", "calc")
                .await
                .unwrap()
        );
        assert_eq!(store.list("alice", 0).await.unwrap().len(), 2);
        assert!(store.list("bob", 0).await.unwrap().is_empty());
        assert!(store.delete("alice", "cs_1").await.unwrap());
        assert!(!store.delete("alice", "cs_1").await.unwrap());
    }

    #[test]
    fn a_hash_without_meta_is_no_session() {
        let mut fields = BTreeMap::new();
        fields.insert(
            "server:calc".to_owned(),
            serde_json::to_string(&connection("calc")).unwrap(),
        );
        assert_eq!(record_of("cs_1", fields.clone(), 0).unwrap(), None);
        fields.insert("meta".to_owned(), r#"{"createdAtMs": 7}"#.to_owned());
        let record = record_of("cs_1", fields, 9).unwrap().unwrap();
        assert_eq!((record.created_at_ms, record.expires_at_ms), (7, 9));
        assert_eq!(record.connections["calc"], connection("calc"));
    }
}
