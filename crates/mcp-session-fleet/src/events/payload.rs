//! A stored event's content: the message rmcp sent, kept as it is and
//! encoded as JSON only when it is written to Redis.
//!
//! rmcp hands the event store each event as an `Arc` of its message, the
//! same `Arc` the response body then writes out. Keeping that `Arc` costs
//! nothing; encoding the message for the store cost as much as writing the
//! response itself, for events that almost never leave this replica's
//! memory ([`buffer`](super::buffer)). So a [`Payload`] keeps the message
//! and its weight ([`json_length`]), and the
//! [writer](super::writer) encodes it on its way to Redis.

use std::{sync::Arc, time::Duration};

use rmcp::{
    model::ServerJsonRpcMessage, transport::streamable_http_server::session::ServerSseMessage,
};
use serde::Serialize;

use super::json_length::json_length;

/// Bytes a kept message takes beyond its JSON's length: its `Arc`'s
/// counters and the message's own struct, in one allocation with the
/// allocator's header (an estimate).
const MESSAGE_OVERHEAD: usize =
    2 * std::mem::size_of::<usize>() + std::mem::size_of::<ServerJsonRpcMessage>() + 16;

/// A stored event as written to Redis (field `d` of its Redis Stream
/// entry), read back by [`decode`](super::decode).
#[derive(Serialize)]
struct StoredEventRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a ServerJsonRpcMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_ms: Option<u64>,
}

/// One event's message (`None` for a retry hint alone) and retry hint.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    message: Option<Arc<ServerJsonRpcMessage>>,
    retry: Option<Duration>,
    /// The message's weight in bytes (see [`weight`](Self::weight)).
    weight: usize,
}

impl Payload {
    /// The payload of `message` with the retry hint `retry`.
    pub(crate) fn new(message: Option<Arc<ServerJsonRpcMessage>>, retry: Option<Duration>) -> Self {
        let weight = message
            .as_deref()
            .map_or(0, |message| json_length(message) + MESSAGE_OVERHEAD);
        Self {
            message,
            retry,
            weight,
        }
    }

    /// The payload of `event` (its message shared, not copied).
    pub(crate) fn of(event: &ServerSseMessage) -> Self {
        Self::new(event.message.clone(), event.retry)
    }

    /// Bytes counted for the kept message: its JSON's length (escapes not
    /// counted) and a fixed overhead; 0 without a message.
    pub(crate) fn weight(&self) -> usize {
        self.weight
    }

    /// The JSON stored in Redis.
    ///
    /// # Errors
    /// The message cannot be encoded (a tool's result that `serde_json`
    /// refuses, such as a map with non-string keys).
    pub(crate) fn encode(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&StoredEventRef {
            message: self.message.as_deref(),
            retry_ms: self
                .retry
                .map(|retry| u64::try_from(retry.as_millis()).unwrap_or(u64::MAX)),
        })
    }

    /// The SSE event `event_id` carrying this payload, as rmcp sends it.
    pub(crate) fn event(&self, event_id: String) -> ServerSseMessage {
        let mut event = ServerSseMessage::default();
        event.event_id = Some(event_id);
        event.message = self.message.clone();
        event.retry = self.retry;
        event
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{
        CallToolResult, ContentBlock, JsonRpcResponse, JsonRpcVersion2_0, NumberOrString,
        ServerResult,
    };

    use super::*;

    fn answer() -> Arc<ServerJsonRpcMessage> {
        Arc::new(ServerJsonRpcMessage::Response(JsonRpcResponse {
            jsonrpc: JsonRpcVersion2_0,
            id: NumberOrString::Number(3),
            result: ServerResult::CallToolResult(CallToolResult::success(vec![
                ContentBlock::text("8"),
            ])),
        }))
    }

    #[test]
    fn an_event_goes_back_as_it_came_sharing_its_message() {
        let message = answer();
        let payload = Payload::new(Some(message.clone()), Some(Duration::from_millis(1500)));
        let event = payload.event("stream#n-1".into());
        assert_eq!(event.event_id.as_deref(), Some("stream#n-1"));
        assert!(Arc::ptr_eq(
            event.message.as_ref().expect("a message"),
            &message
        ));
        assert_eq!(event.retry, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn encodes_what_decode_reads() {
        let payload = Payload::new(Some(answer()), Some(Duration::from_millis(250)));
        let json = payload.encode().expect("encodes");
        let decoded = super::super::decode("stream#n-2".into(), &json).expect("decodes");
        assert_eq!(decoded.retry, Some(Duration::from_millis(250)));
        assert_eq!(
            serde_json::to_value(decoded.message.as_deref()).expect("encodes"),
            serde_json::to_value(Some(&*answer())).expect("encodes"),
        );
    }

    #[test]
    fn weighs_the_json_of_its_message() {
        let message = answer();
        let json = serde_json::to_string(&*message).expect("encodes");
        let payload = Payload::new(Some(message), None);
        assert_eq!(payload.weight(), json.len() + MESSAGE_OVERHEAD);
        assert_eq!(Payload::new(None, Some(Duration::from_secs(1))).weight(), 0);
    }
}
