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
    /// Client requests handed to the handler and not answered yet (the
    /// stream's writer counts the answers down): a hand-off waits for none.
    pub in_flight: Arc<AtomicUsize>,
}

impl StreamHandle {
    /// Hands `message` to the session's handler, counting a request as in
    /// flight until its answer is written (see [`answered`](Self::answered));
    /// `false` when the handler is gone.
    pub async fn send(&self, message: ClientJsonRpcMessage) -> bool {
        let request = matches!(message, ClientJsonRpcMessage::Request(_));
        if request {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
        }
        let sent = self.inbound.send(message).await.is_ok();
        if request && !sent {
            self.answered();
        }
        sent
    }

    /// One request's answer (a response or an error) was written.
    pub fn answered(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                count.checked_sub(1)
            });
    }

    /// Whether a request is waiting for its answer.
    pub fn is_busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
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
            .filter(|handle| &handle.owner == owner && !handle.closed.is_cancelled())
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
