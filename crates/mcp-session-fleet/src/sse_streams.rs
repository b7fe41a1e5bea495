//! The HTTP+SSE streams (MCP 2024-11-05) this replica holds, by session id:
//! where a `POST /messages` that reached this replica, or that another replica
//! forwarded over the fleet bus, hands its message to the session's handler.
//!
//! Only the stream's owner may reach it: a message whose caller is another
//! user is refused as if the session did not exist.

use std::collections::HashMap;

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

    /// The stream of session `id` if `owner` owns it.
    pub fn get(&self, id: &str, owner: &UserHash) -> Option<StreamHandle> {
        self.lock()
            .get(id)
            .filter(|handle| &handle.owner == owner)
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
        handle.inbound.send(message).await.is_ok()
    }

    /// Ends the session's stream held here, if any.
    pub fn close(&self, id: &str) {
        if let Some(handle) = self.lock().remove(id) {
            handle.closed.cancel();
        }
    }
}
