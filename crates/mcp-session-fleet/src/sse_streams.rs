//! The HTTP+SSE streams (MCP 2024-11-05) this replica holds, by session id:
//! where a `POST /messages` that reached this replica, or that another replica
//! forwarded over the fleet bus, hands its message to the session's handler.
//!
//! Only the stream's owner may reach it: a message whose caller is another
//! user is refused as if the session did not exist.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use parking_lot::Mutex;

use mcp_session_core::identity::UserHash;
use rmcp::model::ClientJsonRpcMessage;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// This replica's open SSE streams, by session id.
#[derive(Default)]
pub struct SseStreams {
    streams: Mutex<HashMap<String, StreamHandle>>,
}

/// One HTTP+SSE stream held here.
#[derive(Clone)]
pub struct StreamHandle {
    /// The user who opened the stream.
    pub owner: UserHash,
    /// Where the session's handler reads client messages from.
    pub inbound: mpsc::Sender<ClientJsonRpcMessage>,
    /// Cancelling it ends the stream and the session's handler.
    pub closed: CancellationToken,
    /// Set when the stream ended because the session moved (its client
    /// reconnected elsewhere, see [`release`](SseStreams::release)): the
    /// session lives on, so its record must stay.
    pub released: Arc<AtomicBool>,
    /// Messages being handed to the handler, and requests not answered yet
    /// (the stream's writer counts the answers down once written): a
    /// hand-off waits for none.
    pub in_flight: Arc<AtomicUsize>,
    /// Set when the stream is about to close (see
    /// [`close_when_idle`](Self::close_when_idle)): it takes no new message.
    pub closing: Arc<AtomicBool>,
}

impl StreamHandle {
    /// A handle for a stream of `owner` whose handler reads `inbound` and
    /// ends with `closed`.
    pub fn new(
        owner: UserHash,
        inbound: mpsc::Sender<ClientJsonRpcMessage>,
        closed: CancellationToken,
    ) -> Self {
        Self {
            owner,
            inbound,
            closed,
            released: Arc::default(),
            in_flight: Arc::default(),
            closing: Arc::default(),
        }
    }
}

impl StreamHandle {
    /// Hands `message` to the session's handler, counting a request as in
    /// flight until its answer is written (see [`answered`](Self::answered));
    /// `false` when the handler is gone or the stream is closing, in which
    /// case the message was not taken (the caller may deliver it to the
    /// session's next stream).
    pub async fn send(&self, message: ClientJsonRpcMessage) -> bool {
        // Counted before the closing flag is read, and `close_when_idle`
        // sets the flag before it reads the count (both sequentially
        // consistent): either this send sees the stream closing and backs
        // out, or the closer sees the message in flight and waits for it.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.closing.load(Ordering::SeqCst) || self.closed.is_cancelled() {
            self.answered();
            return false;
        }
        let request = matches!(message, ClientJsonRpcMessage::Request(_));
        let sent = self.inbound.send(message).await.is_ok();
        if !request || !sent {
            // A notification or a response is done once handed over.
            self.answered();
        }
        sent
    }

    /// Closes the stream once no message is in flight, waiting at most until
    /// `deadline`: a request taken before returns its answer on this stream;
    /// one that comes after is refused by [`send`](Self::send).
    pub async fn close_when_idle(&self, deadline: tokio::time::Instant) {
        self.closing.store(true, Ordering::SeqCst);
        while self.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.closed.cancel();
    }

    /// Counts a request handed to the handler other than by
    /// [`send`](Self::send) as in flight until [`answered`](Self::answered).
    pub fn expect_answer(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// One request's answer (a response or an error) was written.
    pub fn answered(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |count| {
                count.checked_sub(1)
            });
    }

    /// Whether the session moved away rather than ended.
    pub fn was_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }
}

/// The event stream id of HTTP+SSE session `session_id` in the event store
/// (its `/sse` events' ids are `<session_id>:sse#<nonce>-<sequence>`).
pub fn sse_stream_id(session_id: &str) -> String {
    format!("{session_id}:sse")
}

/// The HTTP+SSE session an `/sse` event id names (a `Last-Event-ID`).
pub fn sse_session_of(event_id: &str) -> Option<&str> {
    let (stream, _) = event_id.rsplit_once('#')?;
    stream
        .strip_suffix(":sse")
        .filter(|session| !session.is_empty())
}

impl SseStreams {
    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<String, StreamHandle>> {
        self.streams.lock()
    }

    /// Registers the stream of session `id`.
    pub fn insert(&self, id: String, handle: StreamHandle) {
        self.lock().insert(id, handle);
    }

    /// Forgets the stream of session `id` (it ended).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The stream of session `id` if `owner` owns it and it is still open
    /// (a stream ended by a hand-off or a takeover takes no more messages,
    /// even before its handler has stopped).
    pub fn get(&self, id: &str, owner: &UserHash) -> Option<StreamHandle> {
        self.lock()
            .get(id)
            .filter(|handle| {
                &handle.owner == owner
                    && !handle.closed.is_cancelled()
                    && !handle.closing.load(Ordering::SeqCst)
            })
            .cloned()
    }

    /// Number of SSE streams open on this replica.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no SSE stream is open on this replica.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Hands a message that reached another replica (its request parts
    /// attached) to the session's stream held here, if `owner` owns it.
    /// Returns whether it did.
    pub(crate) async fn deliver(
        &self,
        id: &str,
        owner: &UserHash,
        message: ClientJsonRpcMessage,
    ) -> bool {
        let Some(handle) = self.get(id, owner) else {
            return false;
        };
        handle.send(message).await
    }

    /// Ends the stream and handler of session `id` held here, if any,
    /// without ending the session (it moves to another stream); returns
    /// whether there was one.
    pub fn release(&self, id: &str) -> bool {
        let Some(handle) = self.lock().remove(id) else {
            return false;
        };
        handle.released.store(true, Ordering::Release);
        handle.closed.cancel();
        true
    }

    /// Ends the session's stream held here, if any.
    pub fn close(&self, id: &str) {
        if let Some(handle) = self.lock().remove(id) {
            handle.closed.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn handle() -> (StreamHandle, mpsc::Receiver<ClientJsonRpcMessage>) {
        let (inbound, received) = mpsc::channel(8);
        let owner = UserHash::parse(&"a".repeat(64)).expect("a user hash");
        (
            StreamHandle::new(owner, inbound, CancellationToken::new()),
            received,
        )
    }

    fn request(id: u64) -> ClientJsonRpcMessage {
        serde_json::from_value(json!({"jsonrpc": "2.0", "id": id, "method": "ping"})).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_closing_stream_waits_for_the_answer_in_flight_and_takes_nothing_new() {
        let (handle, mut received) = handle();
        assert!(handle.send(request(1)).await);
        assert!(received.recv().await.is_some());

        let closing = tokio::spawn({
            let handle = handle.clone();
            async move {
                handle
                    .close_when_idle(tokio::time::Instant::now() + Duration::from_secs(5))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!handle.closed.is_cancelled(), "closed with an answer owed");
        assert!(
            !handle.send(request(2)).await,
            "a closing stream took a message"
        );
        assert!(received.try_recv().is_err());

        handle.answered();
        closing.await.unwrap();
        assert!(handle.closed.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_closing_stream_closes_at_the_deadline_whatever_is_owed() {
        let (handle, _received) = handle();
        assert!(handle.send(request(1)).await);
        let started = tokio::time::Instant::now();
        handle
            .close_when_idle(started + Duration::from_secs(5))
            .await;
        assert!(handle.closed.is_cancelled());
        assert!(started.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test]
    async fn notifications_are_not_owed_an_answer() {
        let (handle, _received) = handle();
        let notification: ClientJsonRpcMessage = serde_json::from_value(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .unwrap();
        assert!(handle.send(notification).await);
        assert_eq!(handle.in_flight.load(Ordering::SeqCst), 0);
    }
}
