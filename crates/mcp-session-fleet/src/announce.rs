//! Announcements of session changes that every replica must have heard
//! before the change is answered: a session deleted, a record rewritten.
//!
//! The announcing replica `PUBLISH`es the [`Envelope`] on the fleet channel
//! with an [`AckRequest`]; Redis answers with the number of subscribers that
//! received it (this replica among them). Every other replica drops what it
//! holds of the session (its cached record, its worker and streams for a
//! deletion) and then answers with an [`Envelope::Ack`] on the announcer's
//! own replica channel (`SPUBLISH`). The announcer waits for as many acks as
//! there were other receivers, at most [`ACK_WAIT`]: when a `DELETE` is
//! answered, no replica serves the session any more, and when a
//! `SessionContext::set_*` returns, no replica serves the old record.
//!
//! A replica that does not answer in time (it is stopping, or its
//! connection is half open) is not waited for longer: its cache is bounded
//! by the refresh interval (see [`cache`](super::cache)). On Redis Cluster,
//! `PUBLISH` counts only the subscribers of the node that took it, so the
//! wait covers those.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use fred::prelude::*;
use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::Instrument;

use crate::envelope::{AckRequest, Envelope};
use crate::{
    connection::{RedisConnection, unavailable},
    metrics::RedisOp,
    store::StoreError,
};

fn encode(envelope: &Envelope) -> Result<String, StoreError> {
    serde_json::to_string(envelope).map_err(|error| StoreError::Corrupt(error.to_string()))
}

/// Longest wait for the other replicas' acks of one announcement.
pub const ACK_WAIT: Duration = Duration::from_millis(500);

/// The acks of one announcement or request so far.
#[derive(Debug, Clone, Copy, Default)]
struct Acks {
    count: usize,
    /// One said it held what was asked for.
    held: bool,
}

/// The answer to [`Announcer::ask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// No replica listens on that channel (it is gone).
    Gone,
    /// The replica answered; `held`: it had what was asked for (and did it).
    Answered {
        /// What the ack said.
        held: bool,
    },
    /// The replica did not answer within [`ACK_WAIT`] (or the request could
    /// not be sent).
    NoAnswer,
}

/// Publishes announcements and counts their acks.
pub struct Announcer {
    redis: RedisConnection,
    fleet_channel: String,
    replica_prefix: String,
    replica_id: String,
    next_token: AtomicU64,
    /// Acks received so far, by token, for the announcements waiting.
    waiting: Mutex<HashMap<u64, watch::Sender<Acks>>>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("replica_id", &self.replica_id)
            .finish_non_exhaustive()
    }
}

impl Announcer {
    /// The announcer of replica `replica_id` of `service`.
    pub fn new(redis: RedisConnection, service: &str, replica_id: &str) -> Self {
        Self {
            redis,
            fleet_channel: format!("mcp_fleet:{service}"),
            replica_prefix: format!("mcp_replica:{service}:"),
            replica_id: replica_id.to_owned(),
            next_token: AtomicU64::new(1),
            waiting: Mutex::default(),
        }
    }

    fn waiting(&self) -> parking_lot::MutexGuard<'_, HashMap<u64, watch::Sender<Acks>>> {
        self.waiting.lock()
    }

    /// An ack request for a new announcement of this replica.
    pub fn request(&self) -> AckRequest {
        AckRequest {
            replica: self.replica_id.clone(),
            token: self.next_token.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Publishes `envelope` (made with `ack`, from [`request`](Self::request))
    /// on the fleet channel and waits until every other receiver acked it,
    /// at most [`ACK_WAIT`]. Returns how many acked.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached: the
    /// announcement did not go out.
    pub async fn announce(
        &self,
        envelope: &Envelope,
        ack: &AckRequest,
    ) -> Result<usize, StoreError> {
        let (sender, mut acks) = watch::channel(Acks::default());
        self.waiting().insert(ack.token, sender);
        let published = self.publish(envelope).await;
        let acked = match published {
            Ok(receivers) => {
                // This replica hears its own announcement and does not ack.
                let others = usize::try_from(receivers).unwrap_or(0).saturating_sub(1);
                let in_time = matches!(
                    tokio::time::timeout(ACK_WAIT, acks.wait_for(|acked| acked.count >= others))
                        .await,
                    Ok(Ok(_))
                );
                let acked = acks.borrow().count;
                if !in_time {
                    tracing::info!(
                        acked,
                        expected = others,
                        "not every replica acknowledged a session change in time"
                    );
                }
                Ok(acked)
            }
            Err(error) => Err(error),
        };
        self.waiting().remove(&ack.token);
        acked
    }

    /// Sends `envelope` (made with `ack`, from [`request`](Self::request))
    /// to the one replica listening on sharded channel `channel` and waits
    /// for its ack, at most [`ACK_WAIT`]; the `SPUBLISH` is counted as `op`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn ask(
        &self,
        op: RedisOp,
        channel: &str,
        envelope: &Envelope,
        ack: &AckRequest,
    ) -> Result<Asked, StoreError> {
        let text = encode(envelope)?;
        let (sender, mut acks) = watch::channel(Acks::default());
        self.waiting().insert(ack.token, sender);
        self.redis.round_trip(op);
        let sent: Result<i64, _> = self
            .redis
            .pool()
            .next()
            .spublish(channel, text)
            .instrument(self.redis.span(op, "SPUBLISH"))
            .await
            .map_err(unavailable);
        let asked = match sent {
            Ok(0) => Ok(Asked::Gone),
            Ok(_) => Ok(
                match tokio::time::timeout(ACK_WAIT, acks.wait_for(|acked| acked.count > 0)).await {
                    Ok(Ok(acked)) => Asked::Answered { held: acked.held },
                    _ => Asked::NoAnswer,
                },
            ),
            Err(error) => Err(error),
        };
        self.waiting().remove(&ack.token);
        asked
    }

    async fn publish(&self, envelope: &Envelope) -> Result<i64, StoreError> {
        let text = encode(envelope)?;
        self.redis.round_trip(RedisOp::Announce);
        self.redis
            .pool()
            .next()
            .publish(self.fleet_channel.as_str(), text)
            .instrument(self.redis.span(RedisOp::Announce, "PUBLISH"))
            .await
            .map_err(unavailable)
    }

    /// Counts an ack of announcement `token` (received on this replica's
    /// channel); `held` as the ack says.
    pub fn acked(&self, token: u64, held: bool) {
        if let Some(sender) = self.waiting().get(&token) {
            sender.send_modify(|acked| {
                acked.count += 1;
                acked.held |= held;
            });
        }
    }

    /// Acknowledges an announcement heard from another replica, once what
    /// it asked for is done here. Best effort: an ack that cannot be sent
    /// only makes the announcer wait its [`ACK_WAIT`].
    pub async fn acknowledge(&self, ack: &AckRequest) {
        self.answer(ack, false).await;
    }

    /// Acknowledges a request of another replica ([`ask`](Self::ask));
    /// `held`: this replica had what it asked for, and did it.
    pub async fn answer(&self, ack: &AckRequest, held: bool) {
        if ack.replica == self.replica_id {
            return;
        }
        let envelope = Envelope::Ack {
            token: ack.token,
            held,
        };
        let Ok(text) = serde_json::to_string(&envelope) else {
            return;
        };
        self.redis.round_trip(RedisOp::Ack);
        let sent: Result<i64, _> = self
            .redis
            .pool()
            .next()
            .spublish(format!("{}{}", self.replica_prefix, ack.replica), text)
            .instrument(self.redis.span(RedisOp::Ack, "SPUBLISH"))
            .await;
        if let Err(error) = sent {
            tracing::debug!(error = %error.details(), "could not acknowledge a session change");
        }
    }
}
