//! Ending the HTTP+SSE sessions of replicas that are gone, within seconds
//! instead of the session TTL.
//!
//! An HTTP+SSE session's record names the replica that holds its stream.
//! When that replica is killed, or scales in and hands its streams off, the
//! record stays (its client may reconnect elsewhere with `Last-Event-ID`,
//! see [`sse_sessions`](crate::sse_sessions)); a client that never comes
//! back would leave it counted as a live session (against the user's limit,
//! in `get_user_sessions` and the admin API) for the whole TTL.
//!
//! So each replica lists the HTTP+SSE sessions it holds in the set
//! `mcp_sse_sessions:<service>:<replica_id>` (members
//! `<user_hash>:<session_id>`), and its id in `mcp_sse_replicas:<service>`.
//! Every [`CHECK`], each replica looks at the others in that list: one with
//! no subscriber on its replica channel (`PUBSUB SHARDNUMSUB`) for longer
//! than the reconnection grace (`SSE_RECONNECT_SECONDS`) is gone. The first
//! replica to take the lock `mcp_sse_reap:<service>:<replica_id>` ends the
//! sessions of its set that no other replica took over meanwhile (their
//! record still names it), announced like any deletion, then forgets the
//! set and the replica.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use fred::{
    prelude::*,
    types::{Expiration, SetOptions},
};

use crate::{connection::RedisConnection, identity::UserHash, store::SessionStore};

/// How often a replica looks for gone replicas.
const CHECK: Duration = Duration::from_secs(2);

/// How long one replica holds the lock of a reaping.
const LOCK: Duration = Duration::from_secs(30);

/// The keys of one service's HTTP+SSE bookkeeping.
#[derive(Clone)]
pub(crate) struct SseRegistry {
    redis: RedisConnection,
    service: String,
    replica_id: String,
}

impl SseRegistry {
    /// The registry of `service`'s replicas, as `replica_id`.
    pub(crate) fn new(redis: RedisConnection, service: &str, replica_id: &str) -> Self {
        Self {
            redis,
            service: service.to_owned(),
            replica_id: replica_id.to_owned(),
        }
    }

    fn sessions_key(&self, replica_id: &str) -> String {
        format!("mcp_sse_sessions:{}:{replica_id}", self.service)
    }

    fn replicas_key(&self) -> String {
        format!("mcp_sse_replicas:{}", self.service)
    }

    fn member(owner: &UserHash, session_id: &str) -> String {
        format!("{owner}:{session_id}")
    }

    /// Lists session `session_id` of `owner` as held by this replica.
    pub(crate) async fn held(&self, owner: &UserHash, session_id: &str) {
        let pipeline = self.redis.pool().next().pipeline();
        let _: Result<(), _> = pipeline
            .sadd(
                self.sessions_key(&self.replica_id),
                Self::member(owner, session_id),
            )
            .await;
        let _: Result<(), _> = pipeline
            .sadd(self.replicas_key(), self.replica_id.as_str())
            .await;
        if let Err(error) = pipeline.all::<Value>().await {
            tracing::info!(session_id, error = %error.details(), "an /sse session could not be listed for the reaper");
        }
    }

    /// This replica no longer holds session `session_id` of `owner`.
    pub(crate) async fn let_go(&self, owner: &UserHash, session_id: &str) {
        let removed: Result<i64, _> = self
            .redis
            .pool()
            .srem(
                self.sessions_key(&self.replica_id),
                Self::member(owner, session_id),
            )
            .await;
        if let Err(error) = removed {
            tracing::debug!(session_id, error = %error.details(), "an /sse session stays listed; the reaper checks its record");
        }
    }

    /// Whether replica `replica_id` has a subscriber on its channel; `None`
    /// when Redis cannot say.
    pub(crate) async fn is_alive(&self, replica_id: &str) -> Option<bool> {
        let channel = format!("mcp_replica:{}:{replica_id}", self.service);
        Some(self.redis.shard_subscribers(&channel).await? > 0)
    }

    /// Looks for gone replicas every [`CHECK`] and reaps those gone for
    /// longer than `grace` (see the module docs), for as long as the
    /// process runs.
    pub(crate) async fn reap_forever(self, store: Arc<dyn SessionStore>, grace: Duration) {
        tokio::spawn(self.clone().end_previous_run(store.clone(), grace));
        let mut gone_since: HashMap<String, Instant> = HashMap::new();
        let mut check = tokio::time::interval(CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            check.tick().await;
            let replicas: Vec<String> = match self.redis.pool().smembers(self.replicas_key()).await
            {
                Ok(replicas) => replicas,
                Err(_) => continue,
            };
            gone_since.retain(|replica, _| replicas.contains(replica));
            for replica in replicas {
                if replica == self.replica_id {
                    continue;
                }
                match self.is_alive(&replica).await {
                    Some(true) => {
                        gone_since.remove(&replica);
                    }
                    Some(false) => {
                        let since = *gone_since
                            .entry(replica.clone())
                            .or_insert_with(Instant::now);
                        if since.elapsed() >= grace && self.reap(&replica, &*store).await {
                            gone_since.remove(&replica);
                        }
                    }
                    None => {}
                }
            }
        }
    }

    /// The HTTP+SSE sessions this replica's id held before the process
    /// started (it restarted under the same `REPLICA_ID`, as a container
    /// restarted in its pod does): their streams died with the previous
    /// process, yet the replica they name is alive, so no other replica
    /// would take them for lost. Each one still named by its record is
    /// marked as left by its client (a reconnecting client takes it back,
    /// see `sse_reconnect` in the library's transport), and ended after
    /// `grace` unless a client took it back meanwhile.
    async fn end_previous_run(self, store: Arc<dyn SessionStore>, grace: Duration) {
        let key = self.sessions_key(&self.replica_id);
        // A replica may start while Redis is down: wait for it.
        let members: Vec<String> = loop {
            match self.redis.pool().smembers(&key).await {
                Ok(members) => break members,
                Err(_) => tokio::time::sleep(CHECK).await,
            }
        };
        if members.is_empty() {
            return;
        }
        // Streams opened from now on list themselves again.
        let _: Result<i64, _> = self.redis.pool().srem(&key, members.clone()).await;
        let mut left = Vec::new();
        for member in &members {
            let Some((owner, session_id)) = parse_member(member) else {
                continue;
            };
            if mark_detached(&*store, &self.replica_id, &owner, session_id).await {
                left.push((owner, session_id.to_owned()));
            }
        }
        tracing::info!(
            sessions = left.len(),
            "HTTP+SSE sessions of this replica's previous run wait for their clients"
        );
        tokio::time::sleep(grace).await;
        let mut ended = 0usize;
        for (owner, session_id) in left {
            let abandoned = matches!(
                store.peek(&owner, &session_id).await,
                Ok(Some(stored)) if stored.record.replica_id == self.replica_id
                    && stored.record.stream_detached_at_ms.is_some()
            );
            if abandoned && matches!(store.delete(&owner, &session_id).await, Ok(true)) {
                ended += 1;
            }
        }
        tracing::info!(
            sessions = ended,
            "ended the HTTP+SSE sessions of this replica's previous run that no client took back"
        );
    }

    /// Ends the sessions gone replica `replica` left behind, unless another
    /// replica reaps it now; returns whether it is done.
    async fn reap(&self, replica: &str, store: &dyn SessionStore) -> bool {
        let lock = format!("mcp_sse_reap:{}:{replica}", self.service);
        let locked: Result<Option<String>, _> = self
            .redis
            .pool()
            .set(
                &lock,
                self.replica_id.as_str(),
                Some(Expiration::EX(LOCK.as_secs() as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await;
        if !matches!(locked, Ok(Some(_))) {
            return false;
        }
        let key = self.sessions_key(replica);
        let members: Vec<String> = match self.redis.pool().smembers(&key).await {
            Ok(members) => members,
            Err(_) => return false,
        };
        let mut ended = 0usize;
        for member in &members {
            let Some((owner, session_id)) = parse_member(member) else {
                continue;
            };
            // Taken over by a live replica meanwhile: not ours to end.
            let abandoned = matches!(
                store.peek(&owner, session_id).await,
                Ok(Some(stored)) if stored.record.replica_id == replica
            );
            if abandoned && matches!(store.delete(&owner, session_id).await, Ok(true)) {
                ended += 1;
            }
        }
        let pipeline = self.redis.pool().next().pipeline();
        let _: Result<(), _> = pipeline.del(&key).await;
        let _: Result<(), _> = pipeline.srem(self.replicas_key(), replica).await;
        let _: Result<Value, _> = pipeline.all().await;
        tracing::info!(
            replica,
            sessions = ended,
            "ended the HTTP+SSE sessions a gone replica left behind"
        );
        true
    }
}

/// The user and session of a member of a replica's session set
/// (`<user_hash>:<session_id>`).
fn parse_member(member: &str) -> Option<(UserHash, &str)> {
    let (owner, id) = member.split_once(':')?;
    Some((UserHash::parse(owner)?, id))
}

/// Notes in the record of `owner`'s HTTP+SSE session `session_id` that its
/// stream's client left (`stream_detached_at_ms`), unless the record names a
/// replica other than `replica_id` (the session moved meanwhile). Returns
/// whether the record names `replica_id` and says so now.
pub(crate) async fn mark_detached(
    store: &dyn SessionStore,
    replica_id: &str,
    owner: &UserHash,
    session_id: &str,
) -> bool {
    let Ok(Some(stored)) = store.peek(owner, session_id).await else {
        return false;
    };
    let mut record = stored.record;
    if record.replica_id != replica_id {
        return false;
    }
    if record.stream_detached_at_ms.is_some() {
        return true;
    }
    record.stream_detached_at_ms = Some(crate::store::now_ms());
    match store.update(&record).await {
        Ok(_) => true,
        Err(error) => {
            tracing::debug!(session_id, %error, "could not note that an sse stream's client left");
            false
        }
    }
}
