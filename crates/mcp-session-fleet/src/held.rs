//! What this replica holds of sessions between requests: rmcp's workers, the
//! HTTP+SSE streams, the connections of standalone `GET /mcp` streams, the
//! server-to-client requests its handlers wait on, and which workers are
//! being restored. The transports and the fleet bus deliver messages to them.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, OnceLock},
};

use parking_lot::Mutex;
use rmcp::{
    model::{ClientJsonRpcMessage, RequestId},
    transport::streamable_http_server::session::{
        ServerSseMessage, SessionManager, local::LocalSessionManager,
    },
};
use tokio::sync::mpsc;

use crate::{
    SessionCache, SseStreams, listen_streams::ListenStreams, shard_subscriptions::ChannelGuard,
};

type Tails = HashMap<String, Vec<mpsc::Sender<ServerSseMessage>>>;

/// Live SSE connections of standalone streams on this replica, by stream id.
#[derive(Default)]
pub(crate) struct StandaloneStreams {
    tails: Arc<Mutex<Tails>>,
}

impl StandaloneStreams {
    /// Registers a connection for `stream_id`; its events arrive on the
    /// returned stream. `channel` keeps the stream's sharded channel
    /// subscribed for as long as the connection lives.
    pub(crate) fn open(
        &self,
        stream_id: &str,
        channel: Option<ChannelGuard>,
    ) -> StandaloneConnection {
        let (sender, receiver) = mpsc::channel(64);
        self.tails
            .lock()
            .entry(stream_id.to_owned())
            .or_default()
            .push(sender);
        StandaloneConnection {
            events: receiver,
            stream_id: stream_id.to_owned(),
            tails: self.tails.clone(),
            _channel: channel,
        }
    }

    /// Sends `event` to the connections of `stream_id`; returns whether
    /// one took it.
    pub(crate) fn deliver(&self, stream_id: &str, event: &ServerSseMessage) -> bool {
        let mut tails = self.tails.lock();
        let Some(senders) = tails.get_mut(stream_id) else {
            return false;
        };
        // A full or closed connection is dropped: the client resumes with
        // Last-Event-ID and gets the rest from the event store.
        senders.retain(|sender| sender.try_send(event.clone()).is_ok());
        let delivered = !senders.is_empty();
        if !delivered {
            tails.remove(stream_id);
        }
        delivered
    }

    /// Closes every connection of the session's streams.
    pub(crate) fn close_session(&self, session_id: &str) {
        let prefix = format!("{session_id}:");
        self.tails
            .lock()
            .retain(|stream_id, _| !stream_id.starts_with(&prefix));
    }

    /// Streams with a live connection here.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tails.lock().len()
    }
}

/// One `GET /mcp` connection of a standalone stream on this replica: the
/// events that reach it, until the client goes away. Dropping it forgets
/// the connection and, with the stream's last connection here, the
/// subscription to the stream's channel.
pub(crate) struct StandaloneConnection {
    events: mpsc::Receiver<ServerSseMessage>,
    stream_id: String,
    tails: Arc<Mutex<Tails>>,
    _channel: Option<ChannelGuard>,
}

impl futures::Stream for StandaloneConnection {
    type Item = ServerSseMessage;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.events.poll_recv(context)
    }
}

impl Drop for StandaloneConnection {
    fn drop(&mut self) {
        self.events.close();
        let mut tails = self.tails.lock();
        if let Some(senders) = tails.get_mut(&self.stream_id) {
            senders.retain(|sender| !sender.is_closed());
            if senders.is_empty() {
                tails.remove(&self.stream_id);
            }
        }
    }
}

/// Server-to-client requests (sampling, elicitation, roots) that handlers on
/// this replica are waiting on, by session.
#[derive(Default)]
pub(crate) struct PendingRequests {
    pending: Mutex<HashSet<(String, RequestId)>>,
}

impl PendingRequests {
    fn lock(&self) -> parking_lot::MutexGuard<'_, HashSet<(String, RequestId)>> {
        self.pending.lock()
    }

    pub(crate) fn insert(&self, session_id: &str, id: RequestId) {
        self.lock().insert((session_id.to_owned(), id));
    }

    pub(crate) fn remove(&self, session_id: &str, id: &RequestId) -> bool {
        self.lock().remove(&(session_id.to_owned(), id.clone()))
    }

    pub(crate) fn contains(&self, session_id: &str, id: &RequestId) -> bool {
        self.lock().contains(&(session_id.to_owned(), id.clone()))
    }
}

/// What this replica holds of sessions, shared by the transports and the bus.
pub(crate) struct HeldSessions {
    pub(crate) workers: Arc<LocalSessionManager>,
    /// Sessions whose worker here was restored: their handshake was
    /// replayed, so the client's own `initialized` is not for them.
    replayed: Mutex<HashSet<String>>,
    /// Sessions whose worker here is being restored: until the replayed
    /// handshake is over, nothing else may reach the worker (a message
    /// before its `initialize` kills it).
    restoring: Mutex<HashSet<String>>,
    /// Sessions whose `initialize` the handler refused: rmcp hands them to
    /// the store anyway, which must not keep them.
    failed_handshakes: Mutex<HashSet<String>>,
    pub(crate) sse: Arc<SseStreams>,
    pub(crate) standalone: StandaloneStreams,
    pub(crate) pending: PendingRequests,
    /// The `subscriptions/listen` streams held here (see [`listen_streams`](crate::listen_streams)).
    pub(crate) listen: ListenStreams,
    /// The session records this replica serves (see [`cache`](crate::cache)).
    pub(crate) cache: Arc<SessionCache>,
    /// What every message forwarded from another replica carries in its
    /// request parts (see [`Fleet::set_forwarded_extensions`](crate::Fleet::set_forwarded_extensions)).
    extensions: OnceLock<http::Extensions>,
}

impl HeldSessions {
    /// Notes that the handler refused session `id`'s `initialize`.
    pub(crate) fn handshake_failed(&self, id: &str) {
        self.failed_handshakes.lock().insert(id.to_owned());
    }

    /// Whether session `id`'s `initialize` was refused here (told once).
    pub(crate) fn take_failed_handshake(&self, id: &str) -> bool {
        self.failed_handshakes.lock().remove(id)
    }
    pub(crate) fn new(workers: LocalSessionManager, cache: Arc<SessionCache>) -> Self {
        Self {
            workers: Arc::new(workers),
            replayed: Mutex::default(),
            restoring: Mutex::default(),
            failed_handshakes: Mutex::default(),
            sse: Arc::default(),
            standalone: StandaloneStreams::default(),
            pending: PendingRequests::default(),
            listen: ListenStreams::default(),
            cache,
            extensions: OnceLock::new(),
        }
    }

    pub(crate) fn set_extensions(&self, extensions: http::Extensions) {
        if self.extensions.set(extensions).is_err() {
            tracing::warn!("forwarded extensions were set already; kept the first");
        }
    }

    /// The extensions of forwarded messages (empty until set).
    pub(crate) fn extensions(&self) -> &http::Extensions {
        static NONE: OnceLock<http::Extensions> = OnceLock::new();
        self.extensions
            .get()
            .unwrap_or_else(|| NONE.get_or_init(http::Extensions::new))
    }

    fn replayed(&self) -> parking_lot::MutexGuard<'_, HashSet<String>> {
        self.replayed.lock()
    }

    pub(crate) fn mark_replayed(&self, session_id: &str) {
        self.replayed().insert(session_id.to_owned());
    }

    pub(crate) fn was_replayed(&self, session_id: &str) -> bool {
        self.replayed().contains(session_id)
    }

    pub(crate) fn forget_replayed(&self, session_id: &str) {
        remove_and_shrink(&mut self.replayed(), session_id);
    }

    fn restoring(&self) -> parking_lot::MutexGuard<'_, HashSet<String>> {
        self.restoring.lock()
    }

    /// Marks `session_id` as being restored here (before its worker exists).
    pub(crate) fn begin_restore(&self, session_id: &str) {
        self.restoring().insert(session_id.to_owned());
    }

    /// The restore of `session_id` is over (done, failed or not needed).
    pub(crate) fn end_restore(&self, session_id: &str) {
        remove_and_shrink(&mut self.restoring(), session_id);
    }

    /// Whether `session_id`'s worker here is still replaying its handshake.
    pub(crate) fn is_restoring(&self, session_id: &str) -> bool {
        self.restoring().contains(session_id)
    }

    /// Whether `message` is a client's response (or error) to a
    /// server-to-client request of session `session_id` that a handler
    /// here is waiting for.
    pub(crate) fn waits_for(&self, session_id: &str, message: &ClientJsonRpcMessage) -> bool {
        response_id(message).is_some_and(|id| self.pending.contains(session_id, id))
    }

    /// Hands `message` to this replica's rmcp worker of `session_id`, if it
    /// has one whose handshake is over (a worker being restored has had no
    /// request yet, so nothing forwarded is for it). Returns whether it did.
    pub(crate) async fn deliver_to_worker(
        &self,
        session_id: &str,
        message: ClientJsonRpcMessage,
    ) -> bool {
        let id: Arc<str> = session_id.into();
        if self.is_restoring(session_id) || !self.workers.has_session(&id).await.unwrap_or(false) {
            return false;
        }
        self.workers.accept_message(&id, message).await.is_ok()
    }

    /// Drops everything this replica holds of `session_id`.
    pub(crate) async fn close_session(&self, session_id: &str) {
        self.cache.invalidate(session_id);
        let id: Arc<str> = session_id.into();
        if let Err(error) = self.workers.close_session(&id).await {
            tracing::debug!(session_id, %error, "closing local worker");
        }
        self.standalone.close_session(session_id);
        self.sse.close(session_id);
        self.forget_replayed(session_id);
    }
}

/// Removes `id` from `set`, then gives back the set's memory once a burst
/// of sessions is gone ([`shrink::target`](crate::shrink::target)).
fn remove_and_shrink(set: &mut HashSet<String>, id: &str) {
    set.remove(id);
    if let Some(capacity) = crate::shrink::target(set.len(), set.capacity()) {
        set.shrink_to(capacity);
    }
}

/// The id of the server-to-client request that `message` answers, when it
/// is a client's response or error (an error without an id answers none).
pub(crate) fn response_id(message: &ClientJsonRpcMessage) -> Option<&RequestId> {
    match message {
        ClientJsonRpcMessage::Response(response) => Some(&response.id),
        ClientJsonRpcMessage::Error(error) => error.id.as_ref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, sync::Arc, time::Duration};

    use super::remove_and_shrink;

    use rmcp::{
        model::{ClientJsonRpcMessage, ClientNotification, InitializedNotification},
        transport::streamable_http_server::{
            SessionManager,
            session::{RestoreOutcome, local::LocalSessionManager},
        },
    };

    use crate::{HeldSessions, SessionCache};

    fn initialized() -> ClientJsonRpcMessage {
        ClientJsonRpcMessage::notification(ClientNotification::InitializedNotification(
            InitializedNotification::default(),
        ))
    }

    #[test]
    fn sets_shrink_once_a_burst_is_gone() {
        let mut set: HashSet<String> = (0..3000).map(|id| id.to_string()).collect();
        let grown = set.capacity();
        for id in 0..2999 {
            remove_and_shrink(&mut set, &id.to_string());
        }
        assert_eq!(set.len(), 1);
        assert!(set.contains("2999"));
        assert!(
            set.capacity() <= 64,
            "{grown} slots, then {}",
            set.capacity()
        );
    }

    /// A client's `initialized` forwarded from another replica while this
    /// one replays the handshake of the same session must not reach the new
    /// worker before its `initialize`: that ends the worker (and the
    /// request being served gets `500`).
    #[tokio::test]
    async fn a_worker_being_restored_gets_no_forwarded_message() {
        let held = HeldSessions::new(
            LocalSessionManager::default(),
            Arc::new(SessionCache::new(Duration::from_secs(5), Duration::ZERO)),
        );
        let id: Arc<str> = "session-r".into();
        held.begin_restore(&id);
        let outcome = held.workers.restore_session(id.clone()).await.unwrap();
        assert!(matches!(outcome, RestoreOutcome::Restored(_)));
        assert!(held.workers.has_session(&id).await.unwrap());
        assert!(!held.deliver_to_worker(&id, initialized()).await);
        assert!(held.is_restoring(&id));
        held.end_restore(&id);
        assert!(!held.is_restoring(&id));
    }

    #[tokio::test]
    async fn a_standalone_stream_is_forgotten_with_its_last_connection() {
        use futures::StreamExt;

        let streams = super::StandaloneStreams::default();
        let first = streams.open("s:common", None);
        let mut second = streams.open("s:common", None);
        let event = crate::events::sse_message("e1".into(), None, Some(Duration::from_secs(1)));
        drop(first);
        assert_eq!(streams.len(), 1, "the other connection keeps the stream");
        assert!(streams.deliver("s:common", &event));
        assert_eq!(
            second.next().await.and_then(|event| event.event_id),
            Some("e1".into())
        );
        drop(second);
        assert_eq!(
            streams.len(),
            0,
            "no connection left: nothing kept for the stream, even with no event delivered after"
        );
        assert!(!streams.deliver("s:common", &event));
    }
}
