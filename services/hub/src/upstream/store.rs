//! Where upstream sessions are kept: in Redis for a fleet of hub replicas
//! ([`RedisUpstreamStore`]), in memory for a hub alone
//! ([`MemoryUpstreamStore`]), behind one trait ([`UpstreamSessionStore`]).
//!
//! Keys (the users' layout for the first; the others in the same family):
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `mcp:upstream:session:<serverName>:<contextKey>` | string | the upstream's `Mcp-Session-Id` (empty when the upstream keeps no sessions) | `session_ttl_seconds` (3600), renewed while in use |
//! | `mcp:upstream:session-info:<serverName>:<contextKey>` | string | JSON: the session id again, the negotiated protocol version, the upstream's capabilities and server info, when and by which replica it was made | same |
//! | `mcp:upstream:lock:<serverName>:<contextKey>` | string | a random token: the replica initializing this session (single flight) | the upstream's timeout + 5 s |
//!
//! With these, any hub replica uses a session another one made, with no
//! `initialize` of its own: the id goes in the `Mcp-Session-Id` header, the
//! version in `MCP-Protocol-Version` (MCP 2025-11-25, Transports §Protocol
//! Version Header). A stale id is removed with a compare-and-delete script
//! (`compare_and_delete.lua`), so a replica that saw an old id never removes
//! the new one another replica just stored. No command spans two keys: the
//! store works unchanged on Redis Cluster.

use std::{collections::HashMap, sync::Arc, time::Duration};

use fred::{prelude::*, types::scripts::Script};
use mcp_session::redis::{RedisConnection, RedisOp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::context_key::ContextKey;

/// The compare-and-delete script.
const COMPARE_AND_DELETE_LUA: &str = include_str!("compare_and_delete.lua");

/// The prefix of upstream session keys.
const SESSION_PREFIX: &str = "mcp:upstream:session:";

/// The key holding the upstream session id of `server` for `context`.
pub fn session_key(server: &str, context: &ContextKey) -> String {
    format!("{SESSION_PREFIX}{server}:{context}")
}

fn info_key(server: &str, context: &ContextKey) -> String {
    format!("mcp:upstream:session-info:{server}:{context}")
}

fn lock_key(server: &str, context: &ContextKey) -> String {
    format!("mcp:upstream:lock:{server}:{context}")
}

/// A failure of the store: Redis did not answer in time, or answered
/// something this hub cannot read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("upstream session store: {0}")]
pub struct StoreError(String);

fn redis_error(error: fred::error::Error) -> StoreError {
    StoreError(format!("redis: {}", error.details()))
}

/// An upstream session as stored: what a replica needs to use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSession {
    /// The upstream's `Mcp-Session-Id`; empty when it issued none.
    pub session_id: String,
    /// The protocol version the upstream agreed to in `initialize`.
    pub protocol_version: String,
    /// When it was made (Unix ms).
    pub created_at_ms: u64,
    /// The hub replica that made it.
    pub created_by: String,
    /// What the upstream said it can do in `initialize` (its
    /// `capabilities`; null when unknown).
    #[serde(default)]
    pub capabilities: serde_json::Value,
    /// The upstream's `serverInfo`.
    #[serde(default)]
    pub server_info: serde_json::Value,
}

/// One upstream session, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedSession {
    /// The upstream's name.
    pub server_name: String,
    /// Whose session it is (see [`ContextKey`]).
    pub context_key: String,
    /// The upstream's `Mcp-Session-Id`.
    pub session_id: String,
    /// Seconds until it expires unless used.
    pub ttl: i64,
}

/// A page of [`ListedSession`]s.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListedPage {
    /// The sessions of this page.
    pub sessions: Vec<ListedSession>,
    /// Where the next page starts, `None` after the last.
    pub next_cursor: Option<String>,
}

/// Where upstream sessions live: every method is one round trip to Redis
/// (or none, in memory).
#[async_trait::async_trait]
pub trait UpstreamSessionStore: Send + Sync + 'static {
    /// The stored session of `server` for `context`, if any.
    async fn get(
        &self,
        server: &str,
        context: &ContextKey,
    ) -> Result<Option<StoredSession>, StoreError>;

    /// Stores `session` for `ttl`, replacing any other.
    async fn put(
        &self,
        server: &str,
        context: &ContextKey,
        session: &StoredSession,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    /// Renews the TTL of the stored session (it is in use); `false` when
    /// there is none (Redis lost it: a failover, an eviction).
    async fn touch(
        &self,
        server: &str,
        context: &ContextKey,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Deletes the stored session if its id is still `stale` (what the
    /// caller used when the upstream answered 404); `true` if deleted.
    async fn delete_if(
        &self,
        server: &str,
        context: &ContextKey,
        stale: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes the stored session, whatever it is; the deleted one, if any.
    async fn delete(
        &self,
        server: &str,
        context: &ContextKey,
    ) -> Result<Option<StoredSession>, StoreError>;

    /// Takes the single-flight lock of `server` for `context` with `token`
    /// for `ttl` unless another holder has it (`SET NX PX`); `true` if taken.
    async fn lock(
        &self,
        server: &str,
        context: &ContextKey,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Releases the lock if `token` still holds it.
    async fn unlock(
        &self,
        server: &str,
        context: &ContextKey,
        token: &str,
    ) -> Result<(), StoreError>;

    /// About `limit` stored sessions, of `server` only when given, from
    /// `cursor` (`None`: the first page).
    async fn list(
        &self,
        server: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ListedPage, StoreError>;

    /// Appends `value` to the queue `key`, which expires `ttl` after this
    /// push (the messages of a call waiting for its client's input, see
    /// `crate::pending`).
    async fn push(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError>;

    /// Takes the first value of the queue `key`, if there is one.
    async fn pop(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Marks `key` as existing for `ttl`.
    async fn mark(&self, key: &str, ttl: Duration) -> Result<(), StoreError>;

    /// Whether `key` is marked (and not expired).
    async fn marked(&self, key: &str) -> Result<bool, StoreError>;

    /// `redis` or `memory`.
    fn backend(&self) -> &'static str;
}

/// Upstream sessions in Redis, shared by every hub replica.
pub struct RedisUpstreamStore {
    redis: RedisConnection,
    compare_and_delete: Script,
}

impl RedisUpstreamStore {
    /// A store on `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis,
            compare_and_delete: Script::from_lua(COMPARE_AND_DELETE_LUA),
        }
    }

    fn pool(&self) -> &fred::clients::Pool {
        self.redis.round_trip(RedisOp::Service);
        self.redis.pool()
    }

    async fn compare_and_delete(&self, key: String, seen: &str) -> Result<bool, StoreError> {
        let deleted: i64 = self
            .compare_and_delete
            .evalsha_with_reload(self.pool().next(), vec![key], vec![seen.to_owned()])
            .await
            .map_err(redis_error)?;
        Ok(deleted == 1)
    }
}

/// The session of `id` (the session key's value) given the info key's
/// `info`: the info when it describes that id, else a record with the id
/// alone (an info key lost or older than its session: the version is then
/// the hub's default).
fn stored_from(id: String, info: Option<String>) -> StoredSession {
    info.and_then(|info| serde_json::from_str::<StoredSession>(&info).ok())
        .filter(|info| info.session_id == id)
        .unwrap_or(StoredSession {
            session_id: id,
            protocol_version: String::new(),
            created_at_ms: 0,
            created_by: String::new(),
            capabilities: serde_json::Value::Null,
            server_info: serde_json::Value::Null,
        })
}

#[async_trait::async_trait]
impl UpstreamSessionStore for RedisUpstreamStore {
    async fn get(
        &self,
        server: &str,
        context: &ContextKey,
    ) -> Result<Option<StoredSession>, StoreError> {
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .get(session_key(server, context))
            .await
            .map_err(redis_error)?;
        let _: () = pipeline
            .get(info_key(server, context))
            .await
            .map_err(redis_error)?;
        let (id, info): (Option<String>, Option<String>) =
            pipeline.all().await.map_err(redis_error)?;
        Ok(id.map(|id| stored_from(id, info)))
    }

    async fn put(
        &self,
        server: &str,
        context: &ContextKey,
        session: &StoredSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let info = serde_json::to_string(session).map_err(|e| StoreError(e.to_string()))?;
        let expiry = Some(Expiration::PX(ttl.as_millis().max(1) as i64));
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .set(
                session_key(server, context),
                session.session_id.as_str(),
                expiry.clone(),
                None,
                false,
            )
            .await
            .map_err(redis_error)?;
        let _: () = pipeline
            .set(info_key(server, context), info, expiry, None, false)
            .await
            .map_err(redis_error)?;
        let _: Vec<Value> = pipeline.all().await.map_err(redis_error)?;
        Ok(())
    }

    async fn touch(
        &self,
        server: &str,
        context: &ContextKey,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ms = ttl.as_millis().max(1) as i64;
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline
            .pexpire(session_key(server, context), ms, None)
            .await
            .map_err(redis_error)?;
        let _: () = pipeline
            .pexpire(info_key(server, context), ms, None)
            .await
            .map_err(redis_error)?;
        let (renewed, _): (i64, i64) = pipeline.all().await.map_err(redis_error)?;
        Ok(renewed == 1)
    }

    async fn delete_if(
        &self,
        server: &str,
        context: &ContextKey,
        stale: &str,
    ) -> Result<bool, StoreError> {
        let deleted = self
            .compare_and_delete(session_key(server, context), stale)
            .await?;
        if deleted {
            // The info of the stale session; a new one rewrites it anyway.
            let _: i64 = self
                .pool()
                .del(info_key(server, context))
                .await
                .map_err(redis_error)?;
        }
        Ok(deleted)
    }

    async fn delete(
        &self,
        server: &str,
        context: &ContextKey,
    ) -> Result<Option<StoredSession>, StoreError> {
        let found = self.get(server, context).await?;
        if found.is_some() {
            let pipeline = self.pool().next().pipeline();
            let _: () = pipeline
                .del(session_key(server, context))
                .await
                .map_err(redis_error)?;
            let _: () = pipeline
                .del(info_key(server, context))
                .await
                .map_err(redis_error)?;
            let _: Vec<Value> = pipeline.all().await.map_err(redis_error)?;
        }
        Ok(found)
    }

    async fn lock(
        &self,
        server: &str,
        context: &ContextKey,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let taken: Option<String> = self
            .pool()
            .set(
                lock_key(server, context),
                token,
                Some(Expiration::PX(ttl.as_millis().max(1) as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(redis_error)?;
        Ok(taken.is_some())
    }

    async fn unlock(
        &self,
        server: &str,
        context: &ContextKey,
        token: &str,
    ) -> Result<(), StoreError> {
        self.compare_and_delete(lock_key(server, context), token)
            .await
            .map(drop)
    }

    async fn list(
        &self,
        server: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ListedPage, StoreError> {
        let pattern = match server {
            Some(server) => format!(
                "{SESSION_PREFIX}{}:*",
                mcp_session::redis::glob_escape(server)
            ),
            None => format!("{SESSION_PREFIX}*"),
        };
        let page = self
            .redis
            .scan_keys(RedisOp::Service, cursor, &pattern, limit)
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        let mut sessions = Vec::new();
        if !page.keys.is_empty() {
            let pipeline = self.pool().next().pipeline();
            for key in &page.keys {
                let _: () = pipeline.get(key).await.map_err(redis_error)?;
                let _: () = pipeline.ttl(key).await.map_err(redis_error)?;
            }
            let values: Vec<Value> = pipeline.all().await.map_err(redis_error)?;
            for (key, pair) in page.keys.iter().zip(values.chunks(2)) {
                let (Some(id), Some(ttl)) = (pair[0].as_string(), pair[1].as_i64()) else {
                    continue; // expired or deleted meanwhile
                };
                let Some((server_name, context_key)) = key
                    .strip_prefix(SESSION_PREFIX)
                    .and_then(|rest| rest.split_once(':'))
                else {
                    continue;
                };
                sessions.push(ListedSession {
                    server_name: server_name.to_owned(),
                    context_key: context_key.to_owned(),
                    session_id: id,
                    ttl,
                });
            }
        }
        sessions.sort_by(|a, b| {
            (&a.server_name, &a.context_key).cmp(&(&b.server_name, &b.context_key))
        });
        Ok(ListedPage {
            sessions,
            next_cursor: page.next_cursor,
        })
    }

    async fn push(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let pipeline = self.pool().next().pipeline();
        let _: () = pipeline.rpush(key, value).await.map_err(redis_error)?;
        let _: () = pipeline
            .pexpire(key, ttl.as_millis().max(1) as i64, None)
            .await
            .map_err(redis_error)?;
        let _: Vec<Value> = pipeline.all().await.map_err(redis_error)?;
        Ok(())
    }

    async fn pop(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.pool().lpop(key, None).await.map_err(redis_error)
    }

    async fn mark(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        self.pool()
            .set::<(), _, _>(
                key,
                "1",
                Some(Expiration::PX(ttl.as_millis().max(1) as i64)),
                None,
                false,
            )
            .await
            .map_err(redis_error)
    }

    async fn marked(&self, key: &str) -> Result<bool, StoreError> {
        let found: i64 = self.pool().exists(key).await.map_err(redis_error)?;
        Ok(found > 0)
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// Upstream sessions in this process's memory: for a hub alone (no
/// `REDIS_URL`); they end with the process.
#[derive(Default)]
pub struct MemoryUpstreamStore {
    sessions: Mutex<HashMap<(String, ContextKey), (StoredSession, Instant)>>,
    locks: Mutex<HashMap<(String, ContextKey), (String, Instant)>>,
    queues: Mutex<HashMap<String, (std::collections::VecDeque<String>, Instant)>>,
}

impl MemoryUpstreamStore {
    /// An empty store.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }
}

fn entry(server: &str, context: &ContextKey) -> (String, ContextKey) {
    (server.to_owned(), context.clone())
}

#[async_trait::async_trait]
impl UpstreamSessionStore for MemoryUpstreamStore {
    async fn get(
        &self,
        server: &str,
        context: &ContextKey,
    ) -> Result<Option<StoredSession>, StoreError> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, (_, expires)| *expires > now);
        Ok(sessions
            .get(&entry(server, context))
            .map(|(session, _)| session.clone()))
    }

    async fn put(
        &self,
        server: &str,
        context: &ContextKey,
        session: &StoredSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.sessions.lock().insert(
            entry(server, context),
            (session.clone(), Instant::now() + ttl),
        );
        Ok(())
    }

    async fn touch(
        &self,
        server: &str,
        context: &ContextKey,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        Ok(
            match self.sessions.lock().get_mut(&entry(server, context)) {
                Some((_, expires)) if *expires > now => {
                    *expires = now + ttl;
                    true
                }
                _ => false,
            },
        )
    }

    async fn delete_if(
        &self,
        server: &str,
        context: &ContextKey,
        stale: &str,
    ) -> Result<bool, StoreError> {
        let mut sessions = self.sessions.lock();
        let key = entry(server, context);
        let matches = sessions
            .get(&key)
            .is_some_and(|(session, _)| session.session_id == stale);
        if matches {
            sessions.remove(&key);
        }
        Ok(matches)
    }

    async fn delete(
        &self,
        server: &str,
        context: &ContextKey,
    ) -> Result<Option<StoredSession>, StoreError> {
        Ok(self
            .sessions
            .lock()
            .remove(&entry(server, context))
            .map(|(session, _)| session))
    }

    async fn lock(
        &self,
        server: &str,
        context: &ContextKey,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut locks = self.locks.lock();
        locks.retain(|_, (_, expires)| *expires > now);
        let key = entry(server, context);
        if locks.contains_key(&key) {
            return Ok(false);
        }
        locks.insert(key, (token.to_owned(), now + ttl));
        Ok(true)
    }

    async fn unlock(
        &self,
        server: &str,
        context: &ContextKey,
        token: &str,
    ) -> Result<(), StoreError> {
        let mut locks = self.locks.lock();
        let key = entry(server, context);
        if locks.get(&key).is_some_and(|(held, _)| held == token) {
            locks.remove(&key);
        }
        Ok(())
    }

    async fn list(
        &self,
        server: Option<&str>,
        _cursor: Option<&str>,
        _limit: usize,
    ) -> Result<ListedPage, StoreError> {
        let now = Instant::now();
        let mut sessions: Vec<ListedSession> = self
            .sessions
            .lock()
            .iter()
            .filter(|((name, _), (_, expires))| {
                *expires > now && server.is_none_or(|server| server == name)
            })
            .map(|((name, context), (session, expires))| ListedSession {
                server_name: name.clone(),
                context_key: context.to_string(),
                session_id: session.session_id.clone(),
                ttl: (*expires - now).as_secs() as i64,
            })
            .collect();
        sessions.sort_by(|a, b| {
            (&a.server_name, &a.context_key).cmp(&(&b.server_name, &b.context_key))
        });
        Ok(ListedPage {
            sessions,
            next_cursor: None,
        })
    }

    async fn push(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut queues = self.queues.lock();
        queues.retain(|_, (_, expires)| *expires > now);
        let (queue, expires) = queues
            .entry(key.to_owned())
            .or_insert_with(|| (std::collections::VecDeque::new(), now));
        queue.push_back(value.to_owned());
        *expires = now + ttl;
        Ok(())
    }

    async fn pop(&self, key: &str) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        let mut queues = self.queues.lock();
        Ok(queues
            .get_mut(key)
            .filter(|(_, expires)| *expires > now)
            .and_then(|(queue, _)| queue.pop_front()))
    }

    async fn mark(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        // A marked key is an empty queue that expires.
        let now = Instant::now();
        self.queues
            .lock()
            .entry(key.to_owned())
            .or_insert_with(|| (std::collections::VecDeque::new(), now))
            .1 = now + ttl;
        Ok(())
    }

    async fn marked(&self, key: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        Ok(self
            .queues
            .lock()
            .get(key)
            .is_some_and(|(_, expires)| *expires > now))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str) -> StoredSession {
        StoredSession {
            session_id: id.to_owned(),
            protocol_version: "2025-11-25".to_owned(),
            created_at_ms: 1,
            created_by: "r1".to_owned(),
            capabilities: serde_json::json!({"tools": {}}),
            server_info: serde_json::json!({"name": "calculator", "version": "1"}),
        }
    }

    #[test]
    fn info_of_another_session_is_not_used() {
        let info = serde_json::to_string(&session("old")).unwrap();
        assert_eq!(
            stored_from("old".into(), Some(info.clone())),
            session("old")
        );
        let fresh = stored_from("new".into(), Some(info));
        assert_eq!(fresh.session_id, "new");
        assert_eq!(fresh.protocol_version, "");
        assert_eq!(stored_from("x".into(), Some("{bad".into())).session_id, "x");
    }

    #[tokio::test]
    async fn memory_store_compares_before_deleting() {
        let store = MemoryUpstreamStore::new();
        let key = ContextKey::shared();
        let ttl = Duration::from_secs(60);
        store.put("calc", &key, &session("new"), ttl).await.unwrap();
        assert!(!store.delete_if("calc", &key, "old").await.unwrap());
        assert!(store.get("calc", &key).await.unwrap().is_some());
        assert!(store.delete_if("calc", &key, "new").await.unwrap());
        assert!(store.get("calc", &key).await.unwrap().is_none());
        assert!(store.lock("calc", &key, "a", ttl).await.unwrap());
        assert!(!store.lock("calc", &key, "b", ttl).await.unwrap());
        store.unlock("calc", &key, "b").await.unwrap();
        assert!(!store.lock("calc", &key, "b", ttl).await.unwrap());
        store.unlock("calc", &key, "a").await.unwrap();
        assert!(store.lock("calc", &key, "b", ttl).await.unwrap());
    }
}
