//! Sharded channels a replica reads only while something it holds wants
//! them, so that what reaches a replica depends on what it serves, not on
//! how many replicas the fleet has.
//!
//! A message every replica reads (classic `PUBLISH` on the fleet channel)
//! costs each replica the whole fleet's traffic: with twice the replicas,
//! each reads twice as much, and on a Redis Cluster every node forwards it
//! to every other. So the messages meant for one connection are sent on a
//! sharded channel of their own (`SPUBLISH`: one shard of the cluster, and
//! only the subscribers of that channel):
//!
//! - a standalone stream's server events (`GET /mcp`) on
//!   `mcp_standalone:<service>:<stream_id>`, read by the replica that holds
//!   a connection of that stream;
//! - change notices (a resource updated, a list changed) on
//!   `mcp_change:<service>:<audience>:<topic>`, read by the replicas whose
//!   listen streams or resource watchers want that topic.
//!
//! [`ShardSubscriptions::want`] returns a [`ChannelGuard`]: the channel is
//! subscribed while at least one guard of it lives, and unsubscribed when
//! the last one drops. [`ChannelGuard::ready`] waits until Redis confirmed the
//! subscription: a reader subscribes first, then reads what it may have
//! missed (from Redis Streams) or answers its client, so that nothing
//! published after that falls between the two.
//!
//! One task applies the changes in order, so that a channel dropped and
//! wanted again at once ends subscribed. After the subscriber reconnects,
//! [`ShardSubscriptions::renew`] subscribes every wanted channel again.
//! Each channel is its own `SSUBSCRIBE` (on a Redis Cluster, channels of
//! different slots live on different nodes).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Weak},
    time::Duration,
};

use fred::prelude::*;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::connection::RedisConnection;

/// Longest wait of [`ChannelGuard::ready`]: with Redis away, a reader goes on
/// without live messages rather than hang (it is resumable, and the
/// subscription follows when Redis is back).
const READY_WAIT: Duration = Duration::from_secs(3);

/// Pause before a failed subscription is tried again.
const RETRY: Duration = Duration::from_millis(500);

#[derive(Default)]
struct State {
    /// Guards alive per channel.
    wanted: HashMap<String, usize>,
    /// Channels Redis confirmed on the current subscriber connection.
    subscribed: HashSet<String>,
    /// Channels whose wanted and subscribed states may differ.
    dirty: HashSet<String>,
}

/// The sharded channels this replica subscribes to on behalf of what it
/// holds (see the module docs).
pub struct ShardSubscriptions {
    redis: RedisConnection,
    state: Mutex<State>,
    work: Arc<Notify>,
    /// Bumped after each round of (un)subscriptions.
    applied: watch::Sender<u64>,
}

impl ShardSubscriptions {
    /// The subscriptions of the replica connected through `redis`; the task
    /// that applies them runs until the last handle drops.
    pub fn start(redis: RedisConnection) -> Arc<Self> {
        let subscriptions = Arc::new(Self {
            redis,
            state: Mutex::default(),
            work: Arc::new(Notify::new()),
            applied: watch::Sender::new(0),
        });
        tokio::spawn(apply_forever(Arc::downgrade(&subscriptions)));
        subscriptions
    }

    /// Keeps `channel` subscribed until the returned guard (and every other
    /// guard of it) drops.
    pub fn want(self: &Arc<Self>, channel: String) -> ChannelGuard {
        let mut state = self.state.lock();
        let count = state.wanted.entry(channel.clone()).or_default();
        *count += 1;
        if *count == 1 {
            state.dirty.insert(channel.clone());
            self.work.notify_one();
        }
        ChannelGuard {
            subscriptions: self.clone(),
            channel,
        }
    }

    /// Whether Redis confirmed `channel` on the current connection.
    fn is_subscribed(&self, channel: &str) -> bool {
        self.state.lock().subscribed.contains(channel)
    }

    /// The subscriber connection was remade (or its subscriptions lost):
    /// subscribes every wanted channel again.
    pub fn renew(&self) {
        let mut state = self.state.lock();
        state.subscribed.clear();
        let wanted: Vec<String> = state.wanted.keys().cloned().collect();
        state.dirty.extend(wanted);
        drop(state);
        self.work.notify_one();
    }

    /// Channels wanted right now.
    pub fn len(&self) -> usize {
        self.state.lock().wanted.len()
    }

    /// Whether no channel is wanted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies the pending changes: `SSUBSCRIBE` what is wanted and not
    /// subscribed, `SUNSUBSCRIBE` what is subscribed and no longer wanted.
    /// Returns whether some failed (they stay pending).
    async fn apply(&self) -> bool {
        let (subscribe, unsubscribe) = {
            let mut state = self.state.lock();
            let dirty: Vec<String> = state.dirty.drain().collect();
            let (mut subscribe, mut unsubscribe) = (Vec::new(), Vec::new());
            for channel in dirty {
                let wanted = state.wanted.contains_key(&channel);
                match (wanted, state.subscribed.contains(&channel)) {
                    (true, false) => subscribe.push(channel),
                    (false, true) => unsubscribe.push(channel),
                    _ => {}
                }
            }
            (subscribe, unsubscribe)
        };
        if subscribe.is_empty() && unsubscribe.is_empty() {
            return false;
        }
        let subscriber = self.redis.subscriber();
        let subscribed = futures::future::join_all(
            subscribe
                .iter()
                .map(|channel| subscriber.ssubscribe(channel.as_str())),
        );
        let unsubscribed = futures::future::join_all(
            unsubscribe
                .iter()
                .map(|channel| subscriber.sunsubscribe(channel.as_str())),
        );
        let (subscribed, unsubscribed) = futures::join!(subscribed, unsubscribed);
        let mut failed = false;
        let mut state = self.state.lock();
        for (channel, result) in subscribe.into_iter().zip(subscribed) {
            match result {
                Ok(()) => {
                    state.subscribed.insert(channel);
                }
                Err(error) => {
                    tracing::debug!(%channel, error = %error.details(), "SSUBSCRIBE failed; retrying");
                    state.dirty.insert(channel);
                    failed = true;
                }
            }
        }
        for (channel, result) in unsubscribe.into_iter().zip(unsubscribed) {
            // A failed SUNSUBSCRIBE leaves a channel nobody here wants: its
            // messages are dropped on arrival, and a reconnection ends it.
            if result.is_ok() || !state.wanted.contains_key(&channel) {
                state.subscribed.remove(&channel);
            }
        }
        drop(state);
        self.applied.send_modify(|round| *round += 1);
        failed
    }
}

/// Applies changes as they come, while the subscriptions are alive.
async fn apply_forever(subscriptions: Weak<ShardSubscriptions>) {
    loop {
        let Some(strong) = subscriptions.upgrade() else {
            return;
        };
        let work = strong.work.clone();
        let failed = strong.apply().await;
        drop(strong);
        if failed {
            tokio::time::sleep(RETRY).await;
            continue;
        }
        // Woken by a change (a permit is kept if it came meanwhile), or now
        // and then to notice that the owner is gone.
        let _ = tokio::time::timeout(Duration::from_secs(5), work.notified()).await;
    }
}

/// Keeps one sharded channel subscribed while it lives (see
/// [`ShardSubscriptions::want`]).
pub struct ChannelGuard {
    subscriptions: Arc<ShardSubscriptions>,
    channel: String,
}

impl ChannelGuard {
    /// Waits until Redis confirmed the subscription, at most [`READY_WAIT`];
    /// returns whether it did.
    pub async fn ready(&self) -> bool {
        let mut applied = self.subscriptions.applied.subscribe();
        let confirmed = tokio::time::timeout(READY_WAIT, async {
            loop {
                if self.subscriptions.is_subscribed(&self.channel) {
                    return;
                }
                if applied.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        })
        .await;
        confirmed.is_ok()
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        let subscriptions = &self.subscriptions;
        let mut state = subscriptions.state.lock();
        let Some(count) = state.wanted.get_mut(&self.channel) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            state.wanted.remove(&self.channel);
            state.dirty.insert(self.channel.clone());
            subscriptions.work.notify_one();
        }
    }
}

impl std::fmt::Debug for ChannelGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelGuard")
            .field("channel", &self.channel)
            .finish()
    }
}
