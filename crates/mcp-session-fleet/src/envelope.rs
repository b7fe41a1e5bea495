//! What replicas say to each other over Redis pub/sub.

use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage, ServerNotification};
use serde::{Deserialize, Serialize};

use crate::{
    identity::{Caller, UserHash},
    store::SessionRecord,
    trace_context::TraceContext,
};

/// Asks the receivers of an announcement to acknowledge it (see
/// [`Announcer`](crate::Announcer)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    /// The announcing replica (whose replica channel takes the acks).
    pub replica: String,
    /// Names this announcement among the announcer's.
    pub token: u64,
}

/// One message between replicas, serialized as JSON with a `kind` tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Envelope {
    /// A session was deleted: every replica drops what it holds of it
    /// (cached record, rmcp worker, open streams). Sent on the fleet channel.
    SessionClosed {
        /// The W3C trace context of the span that sent it (empty when
        /// tracing is off): the receiver's span is its child.
        #[serde(default, skip_serializing_if = "TraceContext::is_empty")]
        trace: TraceContext,
        /// The session.
        session_id: String,
        /// Set when the sender waits for every replica to be done (see
        /// [`announce`](super::announce)).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<AckRequest>,
    },
    /// A session's record was rewritten: every replica drops its cached
    /// copy and reads the record again. Sent on the fleet channel.
    SessionChanged {
        /// The W3C trace context of the span that sent it (empty when
        /// tracing is off): the receiver's span is its child.
        #[serde(default, skip_serializing_if = "TraceContext::is_empty")]
        trace: TraceContext,
        /// The session.
        session_id: String,
        /// As for [`SessionClosed`](Self::SessionClosed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<AckRequest>,
    },
    /// A replica did what an announcement or a request asked. Sent on the
    /// asking replica's channel.
    Ack {
        /// The announcement's [`AckRequest::token`].
        token: u64,
        /// For a [`FlushStream`](Self::FlushStream): the stream was held
        /// here and is now in Redis.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        held: bool,
    },
    /// Asks the replica that produced a request's response stream to write
    /// it to Redis, for a `Last-Event-ID` resumption on the sender. Sent on
    /// the producer's flush channel (`mcp_stream_flush:<service>:<nonce>`,
    /// see [`events`](super::events)); acknowledged once written, `held`
    /// telling whether there was anything to write.
    FlushStream {
        /// The W3C trace context of the span that sent it (empty when
        /// tracing is off): the receiver's span is its child.
        #[serde(default, skip_serializing_if = "TraceContext::is_empty")]
        trace: TraceContext,
        /// rmcp's stream id (a UUID).
        stream_id: String,
        /// Who resumes: the [`key`](crate::StreamOwner) of the session, or
        /// of the user on the stateless path (`user:<user_hash>`); the
        /// stream is flushed only if it owns it (`None`: nobody).
        #[serde(default, alias = "session_id", skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        /// Where to acknowledge.
        ack: AckRequest,
    },
    /// A client message for a session whose handler runs elsewhere:
    /// - on a replica channel: an HTTP+SSE `POST /messages` that reached a
    ///   replica other than the one holding the stream;
    /// - on the fleet channel: a client's response to a server-to-client
    ///   request (sampling, elicitation, roots), or a client notification,
    ///   for whichever replica's handler is waiting for it.
    ClientMessage {
        /// The W3C trace context of the span that sent it (empty when
        /// tracing is off): the receiver's span is its child.
        #[serde(default, skip_serializing_if = "TraceContext::is_empty")]
        trace: TraceContext,
        /// The replica that sent it (which ignores its own broadcasts).
        origin: String,
        /// The session.
        session_id: String,
        /// Who sent it (the receiving replica checks ownership again and
        /// hands it to tools).
        caller: Caller,
        /// The session's record as the sending replica loaded it, handed to
        /// tools as their [`SessionContext`](mcp_session_core::session::SessionContext).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<Box<SessionRecord>>,
        /// The JSON-RPC message.
        message: ClientJsonRpcMessage,
        /// For an HTTP+SSE message sent to the replica holding the stream:
        /// where to acknowledge, `held` telling whether the stream was there
        /// and took it (it may have moved meanwhile).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<AckRequest>,
    },
    /// Asks the replica holding an HTTP+SSE session's stream to let the
    /// session go: its client reconnected (`GET /sse` with `Last-Event-ID`)
    /// to the sender, which serves it from now on. The holder ends its
    /// stream and handler without ending the session, writes the session's
    /// buffered events to Redis, and acknowledges (`held`: it had either).
    /// Sent on the holder's replica channel.
    SseRelease {
        /// The W3C trace context of the span that sent it (empty when
        /// tracing is off): the receiver's span is its child.
        #[serde(default, skip_serializing_if = "TraceContext::is_empty")]
        trace: TraceContext,
        /// The session.
        session_id: String,
        /// Where to acknowledge.
        ack: AckRequest,
    },
    /// A server message on a session's standalone (GET) stream, already
    /// stored for replay: the replica holding that stream's connection sends
    /// it. Sent on the stream's sharded channel
    /// (`mcp_standalone:<service>:<stream_id>`).
    StreamEvent {
        /// The W3C trace context of the span that sent it (empty when
        /// tracing is off): the receiver's span is its child.
        #[serde(default, skip_serializing_if = "TraceContext::is_empty")]
        trace: TraceContext,
        /// rmcp's stream id (`<session_id>:common`).
        stream_id: String,
        /// The SSE event id (`Last-Event-ID` for resumption).
        event_id: String,
        /// The message, or `None` for a priming event.
        message: Option<ServerJsonRpcMessage>,
        /// The SSE `retry` hint, in milliseconds.
        retry_ms: Option<u64>,
    },
    /// A change for the `subscriptions/listen` streams and resource
    /// watchers that want it, on any replica (see
    /// [`listen_streams`](crate::listen_streams)). Sent on the change's
    /// sharded channel (`mcp_change:<service>:<audience>:<topic>`).
    Change {
        /// The W3C trace context of the span that sent it (empty when
        /// tracing is off): the receiver's span is its child.
        #[serde(default, skip_serializing_if = "TraceContext::is_empty")]
        trace: TraceContext,
        /// Only this user's streams hear of it; `None`: every stream.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<UserHash>,
        /// The notification.
        notification: ServerNotification,
    },
}

impl Envelope {
    /// The message's `kind` tag, as on the wire (`client_message`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SessionClosed { .. } => "session_closed",
            Self::SessionChanged { .. } => "session_changed",
            Self::Ack { .. } => "ack",
            Self::FlushStream { .. } => "flush_stream",
            Self::ClientMessage { .. } => "client_message",
            Self::StreamEvent { .. } => "stream_event",
            Self::SseRelease { .. } => "sse_release",
            Self::Change { .. } => "change",
        }
    }

    /// The trace context the message carries (`None` for an
    /// acknowledgement, which carries none).
    pub fn trace(&self) -> Option<&TraceContext> {
        match self {
            Self::SessionClosed { trace, .. }
            | Self::SessionChanged { trace, .. }
            | Self::FlushStream { trace, .. }
            | Self::ClientMessage { trace, .. }
            | Self::StreamEvent { trace, .. }
            | Self::SseRelease { trace, .. }
            | Self::Change { trace, .. } => Some(trace),
            Self::Ack { .. } => None,
        }
    }
}
