//! HTTP+SSE sessions (MCP 2024-11-05) that outlive their stream: what lets
//! a client whose `/sse` connection broke, or whose replica stopped or
//! died, reconnect to any replica and find its session there.
//!
//! - **Event ids.** Every `message` event of an `/sse` stream is stored, like
//!   a request's response stream, in the event store under the stream id
//!   `<session_id>:sse` ([`sse_stream_id`]) and sent with its id
//!   (`<session_id>:sse#<nonce>-<sequence>`); an `EventSource` sends the
//!   last one it received as `Last-Event-ID` when it reconnects.
//! - **Takeover.** A `GET /sse` with such a `Last-Event-ID` names its
//!   session ([`sse_session_of`]). The replica it reached asks the one
//!   holding the session ([`SessionRecord::replica_id`]) to let it go
//!   ([`Envelope::SseRelease`]): the holder ends its stream and handler
//!   without deleting the session, and writes the session's buffered
//!   events to Redis. A holder that is gone (killed, or scaled in after
//!   writing its events to Redis) does not answer, and the takeover goes
//!   on.
//! - **Replay.** The new holder reads the events after the client's
//!   `Last-Event-ID` ([`Fleet::sse_replay`]), from its memory or from Redis,
//!   and sends them before anything new.
//!
//! Events a killed replica had not written to Redis are lost, and so are the
//! answers of requests its handler was still working on: a client learns it
//! from the missing answer, as from a dropped connection.

use rmcp::{
    model::ServerJsonRpcMessage, transport::streamable_http_server::session::ServerSseMessage,
};

use futures::StreamExt;

use crate::{
    Envelope, StreamOwner,
    announce::{Asked, Copies},
    identity::UserHash,
    metrics::RedisOp,
    sse_streams::sse_stream_id,
    store::StoreError,
    topology::{Fleet, Mode},
    trace_context::TraceContext,
};

/// Most events one takeover replays (the event store keeps about as many per
/// stream).
const MAX_REPLAY: usize = 1000;

impl Fleet {
    /// This replica now holds the stream of `owner`'s HTTP+SSE session
    /// `session_id`: its `/sse` events are kept for replay, and the session
    /// is listed for the [`sse_reaper`](crate::sse_reaper) (with Redis; a
    /// solo replica does neither).
    pub async fn sse_opened(&self, owner: &UserHash, session_id: &str) {
        if let Mode::Redis { events, sse, .. } = self.mode() {
            events.open_session_stream(&sse_stream_id(session_id), session_id);
            sse.held(owner, session_id).await;
        }
    }

    /// Whether replica `replica_id` is subscribed to its channel (alive);
    /// `None` without Redis or when Redis cannot say.
    pub async fn is_replica_alive(&self, replica_id: &str) -> Option<bool> {
        match self.mode() {
            Mode::Redis { sse, .. } => sse.is_alive(replica_id).await,
            Mode::Solo => None,
        }
    }

    /// Notes in the record of `owner`'s HTTP+SSE session `session_id` that
    /// its stream's client left, unless the session moved to another
    /// replica meanwhile (see `stream_detached_at_ms`).
    pub async fn sse_detached(&self, owner: &UserHash, session_id: &str) {
        crate::sse_reaper::mark_detached(&**self.store(), self.replica_id(), owner, session_id)
            .await;
    }

    /// `owner`'s HTTP+SSE session `session_id` ended here.
    pub async fn sse_ended(&self, owner: &UserHash, session_id: &str) {
        if let Mode::Redis { sse, .. } = self.mode() {
            sse.let_go(owner, session_id).await;
        }
    }

    /// Stores `message`, about to be sent on the `/sse` stream of session
    /// `session_id`, and returns its event id; `None` without Redis (the
    /// event then carries no id) or when it could not be stored.
    pub async fn sse_event(
        &self,
        session_id: &str,
        message: &ServerJsonRpcMessage,
    ) -> Option<String> {
        let Mode::Redis { events, .. } = self.mode() else {
            return None;
        };
        match events
            .append_session_event(&sse_stream_id(session_id), session_id, message)
            .await
        {
            Ok(event_id) => Some(event_id),
            Err(error) => {
                tracing::warn!(session_id, %error, "an /sse event could not be kept for replay");
                None
            }
        }
    }

    /// The events of session `session_id`'s `/sse` stream after
    /// `last_event_id`, wherever they are kept (at most [`MAX_REPLAY`]):
    /// all of them after the `endpoint` event's id (`<stream>#start`, the
    /// client saw no message), those after the id when it is found, none
    /// when it is not (what followed it, if anything, was lost with a
    /// killed replica: replaying from the start would repeat what the client
    /// has).
    pub async fn sse_replay(&self, session_id: &str, last_event_id: &str) -> Vec<ServerSseMessage> {
        let Mode::Redis { events, .. } = self.mode() else {
            return Vec::new();
        };
        let stream_id = sse_stream_id(session_id);
        let owner = StreamOwner::Session(session_id.to_owned());
        let start = format!("{stream_id}#start");
        let all: Vec<ServerSseMessage> = match events.resume_following(&start, &owner, false).await
        {
            Ok(stream) => stream.take(MAX_REPLAY).collect().await,
            Err(error) => {
                tracing::info!(session_id, %error, "nothing to replay for a reconnected /sse stream");
                return Vec::new();
            }
        };
        if last_event_id == start {
            return all;
        }
        match all
            .iter()
            .position(|event| event.event_id.as_deref() == Some(last_event_id))
        {
            Some(seen) => all.into_iter().skip(seen + 1).collect(),
            None => Vec::new(),
        }
    }

    /// Takes HTTP+SSE session `session_id` from `holder`, the replica that
    /// held its stream: ends the stream and handler there (here, if this
    /// replica is the holder) without ending the session, and has the
    /// session's buffered events written where [`sse_replay`](Self::sse_replay)
    /// finds them. Returns once the holder answered, is known to be gone, or
    /// did not answer in time.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn take_sse_session(&self, holder: &str, session_id: &str) -> Result<(), StoreError> {
        if holder == self.replica_id() {
            self.sse_streams().release(session_id);
            return Ok(());
        }
        let Mode::Redis { bus, .. } = self.mode() else {
            return Ok(());
        };
        let announcer = bus.announcer();
        let ack = announcer.request();
        let envelope = Envelope::SseRelease {
            trace: TraceContext::current(),
            session_id: session_id.to_owned(),
            ack: ack.clone(),
        };
        let channel = bus.replica_channel_of(holder);
        match announcer
            .ask(RedisOp::SPublish, &channel, &envelope, &ack, Copies::One)
            .await?
        {
            Asked::Answered { .. } | Asked::Gone => {}
            Asked::NoAnswer => {
                tracing::info!(
                    session_id,
                    holder,
                    "the holder of an /sse session did not let it go in time"
                );
            }
        }
        Ok(())
    }
}
