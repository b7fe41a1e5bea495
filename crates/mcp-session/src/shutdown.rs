//! Graceful scale-in: what a replica does between SIGTERM and its exit.
//!
//! Kubernetes stops a pod by taking it out of the Service endpoints (the ALB
//! deregisters it) and, after the `preStop` hook, sending SIGTERM; SIGKILL
//! follows `terminationGracePeriodSeconds` after the start. The replica's
//! part, run by [`BoundServer::run`](crate::BoundServer::run):
//!
//! 1. **Draining** (at the signal): `/readyz` answers `503` and new HTTP+SSE
//!    streams (`GET /sse`) are refused with `503`; everything else is served
//!    as usual for `SHUTDOWN_DRAIN_SECONDS` (default 0: the `preStop` sleep
//!    has already covered the load balancer's deregistration). A Streamable
//!    HTTP session created meanwhile lives in the store and continues on the
//!    other replicas, so it is not refused.
//! 2. **Hand-off**: the listener stops accepting; idle connections close;
//!    every stream that would keep a client here ends: standalone `GET /mcp`
//!    streams (the client reconnects through the load balancer, with
//!    `Last-Event-ID`, to a live replica) and HTTP+SSE streams (the client
//!    opens a new session elsewhere; the ended sessions are deleted from the
//!    store, their stream being gone). Streamable HTTP sessions stay in the
//!    store: their next request restores them on another replica.
//! 3. **Finishing**: requests in flight, including tool calls whose answer
//!    is still to come on their SSE response stream, run to their end, for
//!    at most `SHUTDOWN_GRACE_SECONDS`.
//! 4. **Stop**: rmcp's session workers end; the process exits `0`.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use tokio::time::Instant;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// How often the finishing step looks at the requests in flight.
const POLL: Duration = Duration::from_millis(20);

/// The shutdown state of one server, shared by its routes.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// Cancelled at the shutdown signal.
    draining: CancellationToken,
    /// Cancelled at the hand-off: ends HTTP+SSE streams (their sessions'
    /// tokens are its children) and the listener.
    handing_off: CancellationToken,
    /// Cancelled last: rmcp's token, ending its workers and any stream left.
    stopped: CancellationToken,
    /// Requests whose response is not complete, streams excluded.
    in_flight: AtomicUsize,
    /// Tasks that must finish before exit: HTTP+SSE sessions deleting their
    /// record once their stream is gone.
    tasks: TaskTracker,
}

impl Lifecycle {
    /// Whether the shutdown signal has come (`/readyz` fails).
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Step 1: the signal came.
    pub(crate) fn start_draining(&self) {
        self.draining.cancel();
    }

    /// The token cancelled at the hand-off (step 2).
    pub(crate) fn handing_off(&self) -> &CancellationToken {
        &self.handing_off
    }

    /// Step 2.
    pub(crate) fn hand_off(&self) {
        self.handing_off.cancel();
    }

    /// The token cancelled when the server stops (step 4).
    pub(crate) fn stopped(&self) -> &CancellationToken {
        &self.stopped
    }

    /// Step 4.
    pub(crate) fn stop(&self) {
        self.stopped.cancel();
        self.tasks.close();
    }

    /// The tracker of tasks a shutdown waits for.
    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Counts a request in flight, until [`request_finished`](Self::request_finished).
    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// The end of a request counted by [`request_started`](Self::request_started).
    pub(crate) fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Number of requests in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Step 3: waits until no request is in flight, or `deadline`. Returns
    /// the number still in flight (0 unless the deadline passed).
    pub(crate) async fn finish_requests(&self, deadline: Instant) -> usize {
        loop {
            let left = self.in_flight();
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep_until((Instant::now() + POLL).min(deadline)).await;
        }
    }

    /// Waits for the tracked tasks, or `deadline`; returns whether they ended.
    pub(crate) async fn finish_tasks(&self, deadline: Instant) -> bool {
        tokio::time::timeout_at(deadline, self.tasks.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn finishing_waits_for_requests_until_the_deadline() {
        let lifecycle = std::sync::Arc::new(Lifecycle::default());
        lifecycle.request_started();
        lifecycle.request_started();
        let deadline = Instant::now() + Duration::from_secs(5);
        let waiter = {
            let lifecycle = lifecycle.clone();
            tokio::spawn(async move { lifecycle.finish_requests(deadline).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        lifecycle.request_finished();
        lifecycle.request_finished();
        assert_eq!(waiter.await.unwrap(), 0);

        lifecycle.request_started();
        let deadline = Instant::now() + Duration::from_secs(2);
        assert_eq!(lifecycle.finish_requests(deadline).await, 1);
        assert!(Instant::now() >= deadline);
    }
}
