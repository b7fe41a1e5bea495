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
//! receivers are counted on every primary after it (`PUBSUB NUMSUB`): the
//! wait covers the replicas subscribed on other nodes too.
//!
//! A request to one replica ([`Announcer::ask`] with
//! [`Copies::UntilAnswered`]) is sent
//! again under the same token while it goes unanswered: during a primary
//! failover a `SPUBLISH` can reach the old primary, be counted as received,
//! and die with its connection. The receiver remembers what it answered to
//! each token ([`Announcer::answered_before`]), so that a copy of a request
//! it already did is answered again, not done twice: at least once on the
//! wire, once in effect.

use std::{
    collections::HashMap,
    future::Future,
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

/// How long [`Announcer::ask`] sends a request again while
/// it goes unanswered: longer than a replica takes to subscribe again on a
/// new primary (it checks its subscriptions every 2 s).
pub const RESEND_WITHIN: Duration = Duration::from_secs(5);

/// The pause before a copy is sent again after Redis had no listener on
/// the channel, or could not be reached (an unanswered copy waits
/// [`ACK_WAIT`] by itself).
const RESEND_PAUSE: Duration = Duration::from_millis(100);

/// How many requests a replica remembers its answers to (a resent copy
/// comes within [`RESEND_WITHIN`]; the tokens are a few dozen bytes each).
const REMEMBERED_ANSWERS: usize = 16_384;

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
    /// The replica did not answer within [`ACK_WAIT`] (with
    /// [`Copies::UntilAnswered`]: no copy was answered within
    /// [`RESEND_WITHIN`]).
    NoAnswer,
}

/// How many copies of a request [`Announcer::ask`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copies {
    /// One: a request that may be asked again as a new one (a flush).
    One,
    /// Again while unanswered, for at most [`RESEND_WITHIN`]: a request that
    /// must arrive once, whose receiver remembers its answer
    /// ([`Announcer::remember`]).
    UntilAnswered,
}

/// The acks of one token being counted ([`Announcer::expect_acks`]).
struct AckWait<'a> {
    announcer: &'a Announcer,
    token: u64,
    receiver: watch::Receiver<Acks>,
}

impl Drop for AckWait<'_> {
    fn drop(&mut self) {
        self.announcer.waiting().remove(&self.token);
    }
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
    /// What this replica answered to other replicas' recent requests, by
    /// asker and token (see [`answered_before`](Self::answered_before)).
    answered: quick_cache::sync::Cache<(String, u64), bool>,
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
            // A random start: a replica restarted under the same id (a
            // StatefulSet's pod name) must not reuse tokens that the others
            // remember answers to.
            next_token: AtomicU64::new(uuid::Uuid::new_v4().as_u64_pair().0),
            waiting: Mutex::default(),
            answered: quick_cache::sync::Cache::new(REMEMBERED_ANSWERS),
        }
    }

    fn waiting(&self) -> parking_lot::MutexGuard<'_, HashMap<u64, watch::Sender<Acks>>> {
        self.waiting.lock()
    }

    /// Counts the acks of `token` from now until the returned wait is
    /// dropped (also when the future waiting on it is cancelled: a client
    /// that went away leaves no entry behind).
    fn expect_acks(&self, token: u64) -> AckWait<'_> {
        let (sender, receiver) = watch::channel(Acks::default());
        self.waiting().insert(token, sender);
        AckWait {
            announcer: self,
            token,
            receiver,
        }
    }

    /// An ack request for a new announcement of this replica.
    pub fn request(&self) -> AckRequest {
        AckRequest {
            replica: self.replica_id.clone(),
            // Wraps at u64::MAX: tokens are only compared for equality.
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
        let mut acks = self.expect_acks(ack.token);
        let published = self.publish(envelope).await;
        match published {
            Ok(receivers) => {
                // This replica hears its own announcement and does not ack.
                let others = usize::try_from(receivers).unwrap_or(0).saturating_sub(1);
                let in_time = matches!(
                    tokio::time::timeout(
                        ACK_WAIT,
                        acks.receiver.wait_for(|acked| acked.count >= others)
                    )
                    .await,
                    Ok(Ok(_))
                );
                let acked = acks.receiver.borrow().count;
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
        }
    }

    /// Publishes `envelope` (made with `ack`, from [`request`](Self::request))
    /// on the fleet channel for the one replica that has what it carries (a
    /// client's response, for the handler waiting for it), and returns
    /// whether one acked that it had it and did it. Every other receiver acks
    /// that it did not. A copy that not every receiver acked within
    /// [`ACK_WAIT`] may have been lost with a failing primary, and the one
    /// that needed it may be among those not counted yet: the copies go on
    /// (the receivers remember their answers, see
    /// [`answered_before`](Self::answered_before)) until one is acked as
    /// held, or [`RESEND_WITHIN`] has passed.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached for the
    /// first copy (nothing was sent).
    pub async fn announce_until_held(
        &self,
        envelope: &Envelope,
        ack: &AckRequest,
    ) -> Result<bool, StoreError> {
        let text = encode(envelope)?;
        let mut wait = self.expect_acks(ack.token);
        let acks = &mut wait.receiver;
        let deadline = tokio::time::Instant::now() + RESEND_WITHIN;
        // A copy went out that not every receiver acked.
        let mut short = false;
        loop {
            let before = acks.borrow().count;
            let mut pause = true;
            match self.publish_text(RedisOp::Announce, &text).await {
                Ok(receivers) => {
                    // This replica hears its own message and does not ack.
                    let others = usize::try_from(receivers).unwrap_or(0).saturating_sub(1);
                    let all_or_held =
                        |acked: &Acks| acked.held || acked.count.saturating_sub(before) >= others;
                    // All answered in time: pause before a copy again;
                    // else the wait was the pause.
                    pause = matches!(
                        tokio::time::timeout(ACK_WAIT, acks.wait_for(all_or_held)).await,
                        Ok(Ok(_))
                    );
                    let acked = *acks.borrow();
                    match (acked.held, all_or_held(&acked)) {
                        (true, _) => break Ok(true),
                        (false, true) if !short => break Ok(false),
                        (false, true) => {}
                        (false, false) => short = true,
                    }
                }
                Err(error) if !short => break Err(error),
                Err(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break Ok(false);
            }
            if pause {
                tokio::time::sleep(RESEND_PAUSE).await;
            }
        }
    }

    /// Sends `envelope` (made with `ack`, from [`request`](Self::request))
    /// to the one replica listening on sharded channel `channel` and waits
    /// for its ack, at most [`ACK_WAIT`] a copy; the `SPUBLISH` is counted
    /// as `op`. With [`Copies::UntilAnswered`], an unanswered copy is sent
    /// again (see the module docs) for at most [`RESEND_WITHIN`]: a copy lost
    /// with a failing primary is then delivered by the next one.
    ///
    /// Returns [`Asked::Answered`] as soon as a copy is answered;
    /// [`Asked::Gone`] when the first copy found no listener (nothing was
    /// delivered); [`Asked::NoAnswer`] when copies went out and none was
    /// answered in time: the receiver may have one (it is slow) or may have
    /// died with it.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached for the
    /// first copy (nothing was sent). After a copy went out unanswered,
    /// errors are what a failover looks like, and the copies go on.
    pub async fn ask(
        &self,
        op: RedisOp,
        channel: &str,
        envelope: &Envelope,
        ack: &AckRequest,
        copies: Copies,
    ) -> Result<Asked, StoreError> {
        let text = encode(envelope)?;
        // Across copies: a late ack of an earlier copy answers a later one.
        let wait = self.expect_acks(ack.token);
        let copy = || self.send_copy(op, channel, &text, wait.receiver.clone());
        match copies {
            Copies::One => copy().await,
            Copies::UntilAnswered => resend(RESEND_WITHIN, copy).await,
        }
    }

    /// One copy of [`ask`](Self::ask)'s request, `text`, and the wait for
    /// its ack on `acks`.
    async fn send_copy(
        &self,
        op: RedisOp,
        channel: &str,
        text: &str,
        mut acks: watch::Receiver<Acks>,
    ) -> Result<Asked, StoreError> {
        self.redis.round_trip(op);
        let sent: i64 = self
            .redis
            .pool()
            .next()
            .spublish(channel, text)
            .instrument(self.redis.span(op, "SPUBLISH"))
            .await
            .map_err(unavailable)?;
        if sent == 0 {
            return Ok(Asked::Gone);
        }
        Ok(
            match tokio::time::timeout(ACK_WAIT, acks.wait_for(|acked| acked.count > 0)).await {
                Ok(Ok(acked)) => Asked::Answered { held: acked.held },
                _ => Asked::NoAnswer,
            },
        )
    }

    /// What this replica answered to an earlier copy of request `ack`, if
    /// it had one ([`remember`](Self::remember)): a copy sent again because
    /// its answer was lost or late is answered the same, and not done again.
    pub fn answered_before(&self, ack: &AckRequest) -> Option<bool> {
        self.answered.get(&(ack.replica.clone(), ack.token))
    }

    /// Records that this replica did request `ack` (`held`: it had what was
    /// asked for), before it answers, so that a copy of the request met
    /// later is answered, not done again. The listener handles one message
    /// at a time, so a copy never meets its original half done.
    pub fn remember(&self, ack: &AckRequest, held: bool) {
        self.answered.insert((ack.replica.clone(), ack.token), held);
    }

    async fn publish(&self, envelope: &Envelope) -> Result<i64, StoreError> {
        self.publish_text(RedisOp::Announce, &encode(envelope)?)
            .await
    }

    /// `PUBLISH`es `text` on the fleet channel, counted as `op`; returns how
    /// many subscribers received it. On a Redis Cluster, whose `PUBLISH`
    /// reply counts only the subscribers of the node that took it, that is
    /// the channel's subscribers on every primary, asked alongside the
    /// `PUBLISH` ([`RedisConnection::cluster_subscribers`], no added round
    /// trip in time): a replica subscribed on another node is waited for
    /// like the others.
    async fn publish_text(&self, op: RedisOp, text: &str) -> Result<i64, StoreError> {
        self.redis.round_trip(op);
        let publish = self
            .redis
            .pool()
            .next()
            .publish::<i64, _, _>(self.fleet_channel.as_str(), text)
            .instrument(self.redis.span(op, "PUBLISH"));
        let (received, subscribers) = futures::join!(
            publish,
            self.redis.cluster_subscribers(op, &self.fleet_channel)
        );
        let received = received.map_err(unavailable)?;
        Ok(subscribers.map_or(received, |subscribers| received.max(subscribers)))
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

/// Runs `ask` until a copy is answered or `within` has passed (see
/// [`Announcer::ask`]).
async fn resend<F, Fut>(within: Duration, mut ask: F) -> Result<Asked, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Asked, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + within;
    // A copy went out and was not answered: the receiver may hold it.
    let mut unanswered = false;
    loop {
        let asked = ask().await;
        match &asked {
            Ok(Asked::Answered { .. }) => return asked,
            // Nothing went out (no listener, or no Redis): the caller decides.
            Ok(Asked::Gone) | Err(_) if !unanswered => return asked,
            Ok(Asked::NoAnswer) => unanswered = true,
            // After an unanswered copy: a failover in progress, where the
            // receiver subscribes again on the new primary.
            Ok(Asked::Gone) | Err(_) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Asked::NoAnswer);
        }
        if !matches!(asked, Ok(Asked::NoAnswer)) {
            tokio::time::sleep(RESEND_PAUSE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// `resend` over the scripted outcomes `script` (each an attempt that
    /// takes `ACK_WAIT` when unanswered, as `ask` does); returns its result
    /// and how many attempts it made.
    async fn run(script: Vec<Result<Asked, StoreError>>) -> (Result<Asked, StoreError>, usize) {
        let mut script = VecDeque::from(script);
        let mut attempts = 0;
        let result = resend(RESEND_WITHIN, || {
            attempts += 1;
            let next = script.pop_front().unwrap_or(Ok(Asked::NoAnswer));
            async move {
                if matches!(next, Ok(Asked::NoAnswer)) {
                    tokio::time::sleep(ACK_WAIT).await;
                }
                next
            }
        })
        .await;
        (result, attempts)
    }

    fn down() -> StoreError {
        StoreError::Unavailable("connection refused".into())
    }

    #[tokio::test(start_paused = true)]
    async fn an_answered_or_undelivered_first_copy_is_not_sent_again() {
        let (result, attempts) = run(vec![Ok(Asked::Answered { held: true })]).await;
        assert_eq!(
            (result.unwrap(), attempts),
            (Asked::Answered { held: true }, 1)
        );
        let (result, attempts) = run(vec![Ok(Asked::Gone)]).await;
        assert_eq!((result.unwrap(), attempts), (Asked::Gone, 1));
        let (result, attempts) = run(vec![Err(down())]).await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_copy_lost_in_a_failover_is_sent_again_until_answered() {
        // The first copy is counted and lost with the old primary; the
        // receiver is not subscribed on the new one yet, then Redis is
        // away a moment, then the receiver is back and answers.
        let (result, attempts) = run(vec![
            Ok(Asked::NoAnswer),
            Ok(Asked::Gone),
            Err(down()),
            Ok(Asked::NoAnswer),
            Ok(Asked::Answered { held: true }),
        ])
        .await;
        assert_eq!(result.unwrap(), Asked::Answered { held: true });
        assert_eq!(attempts, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn copies_stop_after_the_resend_window() {
        let started = tokio::time::Instant::now();
        let (result, attempts) = run(vec![]).await;
        assert_eq!(result.unwrap(), Asked::NoAnswer);
        let took = started.elapsed();
        assert!(
            took >= RESEND_WITHIN && took < RESEND_WITHIN + ACK_WAIT * 2,
            "{took:?}"
        );
        assert_eq!(
            attempts,
            (RESEND_WITHIN.as_millis() / ACK_WAIT.as_millis()) as usize
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_unanswered_copy_no_listener_means_wait_not_gone() {
        let (result, attempts) = run(std::iter::once(Ok(Asked::NoAnswer))
            .chain(std::iter::repeat_with(|| Ok(Asked::Gone)).take(1_000))
            .collect())
        .await;
        // A receiver that never subscribes again: the caller decides, as
        // for a slow one.
        assert_eq!(result.unwrap(), Asked::NoAnswer);
        assert!(attempts > 40, "{attempts}");
    }
}
