//! rmcp's `SessionManager` for a fleet of replicas.
//!
//! rmcp's [`LocalSessionManager`] keeps one worker per session in this
//! process; with `mcp-session`'s `StoreBridge` (rmcp's session store over
//! ours), any replica can restore a worker for any session. What a worker cannot see
//! by itself is the rest of the fleet, and [`FleetSessionManager`] adds it:
//!
//! - **standalone streams** (`GET /mcp`) are served from the fleet's events of
//!   the session, not from this replica's worker, so a notification produced
//!   on any replica reaches the client wherever its GET connection is held;
//! - **resumption** (`Last-Event-ID`) replays a request's stream from the
//!   memory of the replica that produced it, or from Redis once that replica
//!   has flushed it there ([`events`](super::events)), and a standalone
//!   stream from Redis, so a reconnection may reach any replica;
//! - **client responses** to server-to-client requests (sampling, elicitation,
//!   roots) go to the replica whose handler is waiting for them, and client
//!   notifications (cancellation, roots changed) to every replica that has a
//!   worker for the session.
//!
//! Without Redis (one replica) it is rmcp's local manager, unchanged.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use rmcp::{
    RoleServer,
    model::{ClientJsonRpcMessage, ClientNotification, ServerJsonRpcMessage},
    transport::{
        Transport, WorkerTransport,
        streamable_http_server::session::{
            EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
            SessionRestoreMarker,
            local::{LocalSessionManagerError, LocalSessionWorker},
        },
    },
};
use tokio_util::sync::CancellationToken;

use crate::{
    Fleet, HeldSessions, StreamOwner,
    events::resume::{self, BoxedEvents},
    events::{is_standalone, stream_of},
    identity::Caller,
    topology::Mode,
};

/// Errors of the fleet session manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetSessionError {
    /// The local worker failed.
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    /// The event store failed.
    #[error("event store: {0}")]
    Events(String),
}

/// rmcp's session manager, aware of the other replicas (see the module docs).
pub struct FleetSessionManager {
    held: Arc<HeldSessions>,
    fleet: Fleet,
    /// Cancelled when this replica hands its clients to the fleet at
    /// shutdown: ends the standalone streams held here.
    handing_off: CancellationToken,
}

impl Fleet {
    /// rmcp's session manager for Streamable HTTP: this replica's workers,
    /// aware of the fleet; standalone streams end when `handing_off` is
    /// cancelled.
    pub fn session_manager(&self, handing_off: CancellationToken) -> FleetSessionManager {
        FleetSessionManager::new(self.clone(), handing_off)
    }
}

impl FleetSessionManager {
    /// A manager over `fleet`'s workers on this replica; standalone streams
    /// end when `handing_off` is cancelled.
    pub(crate) fn new(fleet: Fleet, handing_off: CancellationToken) -> Self {
        Self {
            held: fleet.held_sessions().clone(),
            fleet,
            handing_off,
        }
    }

    fn wrap(&self, id: &SessionId, inner: WorkerTransport<LocalSessionWorker>) -> FleetTransport {
        FleetTransport {
            inner,
            session_id: id.to_string(),
            held: self.held.clone(),
        }
    }
}

fn caller_of(message: &ClientJsonRpcMessage) -> Caller {
    use rmcp::model::GetExtensions;
    let parts = match message {
        ClientJsonRpcMessage::Request(request) => {
            request.request.extensions().get::<http::request::Parts>()
        }
        ClientJsonRpcMessage::Notification(notification) => notification
            .notification
            .extensions()
            .get::<http::request::Parts>(),
        _ => None,
    };
    parts
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .unwrap_or_else(Caller::anonymous)
}

/// rmcp holds these futures inline in the future of every request, so the
/// largest of them sets what every request moves: the Redis paths of
/// `accept_message`, `create_standalone_stream` and `resume` (7 to 8 KB
/// each) are boxed, which made a tool call 10k instructions cheaper
/// (`scripts/callgrind.sh`).
impl SessionManager for FleetSessionManager {
    type Error = FleetSessionError;
    type Transport = FleetTransport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, inner) = self.held.workers.create_session().await?;
        let transport = self.wrap(&id, inner);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        let response = self.held.workers.initialize_session(id, message).await?;
        if matches!(response, ServerJsonRpcMessage::Error(_)) {
            self.held.handshake_failed(id);
        }
        Ok(response)
    }

    /// A session whose worker is still replaying the `initialize` handshake
    /// is reported absent, so that a concurrent request waits for the restore
    /// in progress (rmcp serializes restores per session) instead of sending
    /// the worker a request before its handshake, which kills it.
    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        if self.held.is_restoring(id) {
            return Ok(false);
        }
        Ok(self.held.workers.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.held.end_restore(id);
        self.held.forget_replayed(id);
        self.held.standalone.close_session(id);
        Ok(self.held.workers.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        // Who may resume the stream is set by the transport from its first
        // event id ([`Fleet::watch_response`]).
        Ok(self.held.workers.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        if let ClientJsonRpcMessage::Notification(notification) = &message
            && matches!(
                notification.notification,
                ClientNotification::InitializedNotification(_)
            )
        {
            // The end of a handshake: the client's own, or a restore's replay
            // (marked). A client's `initialized` that reaches a replica which
            // restored the session already had its replay: not twice.
            use rmcp::model::GetExtensions;
            let replay = notification
                .notification
                .extensions()
                .get::<SessionRestoreMarker>()
                .is_some();
            if replay {
                self.held.mark_replayed(id);
            } else {
                // The worker that ran the handshake is here (one not
                // replayed, nor being replayed, here), or on another replica:
                // there the fleet forwards the message. A worker restored
                // elsewhere replayed its own `initialized`.
                let ran_handshake = !self.held.was_replayed(id)
                    && !self.held.is_restoring(id)
                    && self.held.workers.has_session(id).await?;
                if !ran_handshake {
                    if let Mode::Redis { bus, .. } = self.fleet.mode() {
                        let envelope = bus.client_message(
                            id,
                            caller_of(&message),
                            None,
                            message.clone(),
                            None,
                        );
                        if let Err(error) = Box::pin(bus.broadcast(&envelope)).await {
                            tracing::warn!(session_id = %id, %error, "could not forward `initialized` to the fleet");
                        }
                    }
                    return Ok(());
                }
            }
            self.held.workers.accept_message(id, message).await?;
            self.held.end_restore(id);
            return Ok(());
        }
        let Mode::Redis { bus, .. } = self.fleet.mode() else {
            return Ok(self.held.workers.accept_message(id, message).await?);
        };
        // A response for a handler elsewhere, or a notification for all.
        let response = crate::held::response_id(&message).is_some();
        let broadcast = if response {
            !self.held.waits_for(id, &message)
        } else {
            matches!(message, ClientJsonRpcMessage::Notification(_))
        };
        if broadcast {
            let caller = caller_of(&message);
            // A response, for the one handler waiting for it: sent until
            // taken. If no replica took it, once more without an ack, as a
            // replica of an earlier version (during a rolling update) takes
            // it only so; a replica that took it already has no request
            // pending under its id any more.
            if response {
                match Box::pin(bus.send_client_response(id, caller.clone(), message.clone())).await
                {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(session_id = %id, %error, "could not forward a client response to the fleet");
                        return Ok(());
                    }
                }
            }
            let envelope = bus.client_message(id, caller, None, message.clone(), None);
            if let Err(error) = Box::pin(bus.broadcast(&envelope)).await {
                tracing::warn!(session_id = %id, %error, "could not forward a client message to the fleet");
            }
            if response {
                return Ok(());
            }
        }
        // Notifications also reach this replica's worker, if it has one.
        if self.held.workers.has_session(id).await? {
            self.held.workers.accept_message(id, message).await?;
        }
        Ok(())
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Box::pin(async move {
            let stream: BoxedEvents = match self.fleet.mode() {
                // The session's first GET gets what was sent before it (as
                // rmcp's channel buffers it in one process); a later one starts
                // from now.
                Mode::Redis { events, bus, .. } => {
                    let stream_id = format!("{id}:common");
                    let subscriptions = bus.subscriptions();
                    let replayed = if events.first_attach(&stream_id).await {
                        resume::standalone(&self.held, subscriptions, events, &stream_id, None)
                            .await
                            .ok()
                    } else {
                        None
                    };
                    match replayed {
                        Some(replayed) => replayed,
                        None => Box::pin(
                            resume::follow_standalone(
                                &self.held,
                                subscriptions,
                                events,
                                &stream_id,
                            )
                            .await,
                        ),
                    }
                }
                Mode::Solo => Box::pin(self.held.workers.create_standalone_stream(id).await?),
            };
            // At shutdown the client reconnects (with Last-Event-ID) elsewhere.
            Ok(stream.take_until(self.handing_off.clone().cancelled_owned()))
        })
        .await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Box::pin(async move {
            let Mode::Redis { events, bus, .. } = self.fleet.mode() else {
                let stream: BoxedEvents =
                    Box::pin(self.held.workers.resume(id, last_event_id).await?);
                return Ok(stream);
            };
            let stream_id = stream_of(&last_event_id)
                .ok_or_else(|| FleetSessionError::Events("malformed Last-Event-ID".into()))?
                .to_owned();
            if is_standalone(&stream_id) {
                if stream_id != format!("{id}:common") {
                    return Err(FleetSessionError::Events(
                        "Last-Event-ID belongs to another session".into(),
                    ));
                }
                let stream = resume::standalone(
                    &self.held,
                    bus.subscriptions(),
                    events,
                    &stream_id,
                    Some(&last_event_id),
                )
                .await
                .map_err(FleetSessionError::Events)?;
                Ok(Box::pin(
                    stream.take_until(self.handing_off.clone().cancelled_owned()),
                ))
            } else {
                events
                    .resume(&last_event_id, &StreamOwner::Session(id.to_string()))
                    .await
                    .map_err(|error| FleetSessionError::Events(error.to_string()))
            }
        })
        .await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        // Mark the session before its worker exists: another thread must not
        // see the worker and use it before its handshake is replayed.
        self.held.begin_restore(&id);
        let outcome = self.held.workers.restore_session(id.clone()).await;
        Ok(match outcome {
            Ok(RestoreOutcome::Restored(inner)) => {
                self.fleet.metrics().session_restored();
                RestoreOutcome::Restored(self.wrap(&id, inner))
            }
            other => {
                self.held.end_restore(&id);
                match other? {
                    RestoreOutcome::AlreadyPresent => RestoreOutcome::AlreadyPresent,
                    _ => RestoreOutcome::NotSupported,
                }
            }
        })
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        match self.fleet.mode() {
            Mode::Solo => None,
            Mode::Redis { events, .. } => Some(events.clone() as Arc<dyn EventStore>),
        }
    }
}

/// A session worker's transport that records the server-to-client requests
/// its handler sends, so that the client's responses find their way back.
pub struct FleetTransport {
    inner: WorkerTransport<LocalSessionWorker>,
    session_id: String,
    held: Arc<HeldSessions>,
}

impl Transport<RoleServer> for FleetTransport {
    type Error = <WorkerTransport<LocalSessionWorker> as Transport<RoleServer>>::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let ServerJsonRpcMessage::Request(request) = &item {
            self.held
                .pending
                .insert(&self.session_id, request.id.clone());
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        let message = self.inner.receive().await?;
        match &message {
            ClientJsonRpcMessage::Response(response) => {
                self.held.pending.remove(&self.session_id, &response.id);
            }
            ClientJsonRpcMessage::Error(error) => {
                if let Some(id) = &error.id {
                    self.held.pending.remove(&self.session_id, id);
                }
            }
            _ => {}
        }
        Some(message)
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inner.close().await
    }
}
