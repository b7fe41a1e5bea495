//! The 2024-11-05 lifecycle rule for HTTP+SSE sessions, before rmcp sees a
//! message: until the client's `initialize`, only `initialize` and `ping`
//! go through.
//!
//! rmcp's server loop serves every generation on one entry point: before
//! `initialize`, a request that is not `ping` is taken for a 2026-07-28
//! stateless request and refused for lacking
//! `_meta["io.modelcontextprotocol/protocolVersion"]`, an error that means
//! nothing to a 2024-11-05 client; a notification before `initialize` ends
//! the session. HTTP+SSE exists only in 2024-11-05 (MCP 2025-03-26 replaced
//! it; 2026-07-28 has no sessions), so here the answer speaks 2024-11-05:
//! "The client SHOULD NOT send requests other than pings before the server
//! has responded to the initialize request" (MCP 2024-11-05, Lifecycle
//! §Initialization). Such a request gets the JSON-RPC error `-32600`
//! (Invalid Request) on the stream, naming what to do; a notification or a
//! response before `initialize` is dropped with a log line.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures::{Stream, StreamExt};
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, ErrorCode, ErrorData, ServerJsonRpcMessage,
};
use tokio::sync::mpsc;

/// A session's inbound messages with those it may not send before
/// `initialize` taken out; requests among them are answered through the
/// session's event stream (without waiting: a client flooding requests it
/// may not send can lose refusals). Once an `initialize` request has gone
/// through, every message passes unchanged.
pub(super) struct UntilInitialized<S> {
    inbound: S,
    outbound: mpsc::Sender<ServerJsonRpcMessage>,
    initialized: bool,
}

impl<S> UntilInitialized<S> {
    /// Gates `inbound`, answering refused requests on `outbound`.
    pub(super) fn new(inbound: S, outbound: mpsc::Sender<ServerJsonRpcMessage>) -> Self {
        Self {
            inbound,
            outbound,
            initialized: false,
        }
    }
}

impl<S: Stream<Item = ClientJsonRpcMessage> + Unpin> Stream for UntilInitialized<S> {
    type Item = ClientJsonRpcMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let Some(message) = ready!(self.inbound.poll_next_unpin(cx)) else {
                return Poll::Ready(None);
            };
            if self.initialized {
                return Poll::Ready(Some(message));
            }
            match before_initialize(&message) {
                Verdict::Pass => return Poll::Ready(Some(message)),
                Verdict::PassAndOpen => {
                    self.initialized = true;
                    return Poll::Ready(Some(message));
                }
                Verdict::Refuse => {
                    if let ClientJsonRpcMessage::Request(request) = message {
                        let _ = self.outbound.try_send(ServerJsonRpcMessage::error(
                            not_initialized(),
                            Some(request.id),
                        ));
                    }
                }
                Verdict::Drop => {
                    tracing::debug!("sse session: message before initialize dropped");
                }
            }
        }
    }
}

/// What happens to one message before `initialize`.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Goes to the handler.
    Pass,
    /// Goes to the handler, and opens the session to every message.
    PassAndOpen,
    /// A request answered with [`not_initialized`].
    Refuse,
    /// A notification or a response: nothing to answer.
    Drop,
}

fn before_initialize(message: &ClientJsonRpcMessage) -> Verdict {
    match message {
        ClientJsonRpcMessage::Request(request) => match request.request {
            ClientRequest::InitializeRequest(_) => Verdict::PassAndOpen,
            ClientRequest::PingRequest(_) => Verdict::Pass,
            _ => Verdict::Refuse,
        },
        _ => Verdict::Drop,
    }
}

/// The error for a request sent before `initialize`.
fn not_initialized() -> ErrorData {
    ErrorData::new(
        ErrorCode::INVALID_REQUEST,
        "Invalid Request: the session is not initialized; send `initialize` first \
         (MCP 2024-11-05, Lifecycle §Initialization)",
        None,
    )
}

#[cfg(test)]
mod tests {
    use futures::stream;
    use serde_json::{Value, json};

    use super::*;

    fn message(value: Value) -> ClientJsonRpcMessage {
        serde_json::from_value(value).unwrap()
    }

    #[tokio::test]
    async fn refuses_requests_before_initialize_in_the_2024_11_05_terms() {
        let inbound = stream::iter([
            message(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
            message(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
            message(json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})),
            message(
                json!({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}),
            ),
            message(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"})),
        ]);
        let (outbound, mut answers) = mpsc::channel(8);
        let passed: Vec<Value> = UntilInitialized::new(inbound, outbound)
            .map(|message| serde_json::to_value(message).unwrap())
            .collect()
            .await;
        let ids: Vec<&Value> = passed.iter().map(|message| &message["id"]).collect();
        assert_eq!(ids, [&json!(2), &json!(3), &json!(4)]);

        let refusal = serde_json::to_value(answers.recv().await.unwrap()).unwrap();
        assert_eq!(refusal["id"], 1);
        assert_eq!(refusal["error"]["code"], -32600);
        let text = refusal["error"]["message"].as_str().unwrap();
        assert!(text.contains("send `initialize` first"), "{text}");
        assert!(!text.contains("_meta"), "{text}");
        assert!(answers.try_recv().is_err(), "only the request is answered");
    }
}
