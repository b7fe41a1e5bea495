//! A raw client of the legacy HTTP+SSE transport (MCP 2024-11-05,
//! Transports §HTTP with SSE): `GET /sse` opens the stream, its first event
//! `endpoint` names the URL to `POST` messages to, and every reply arrives on
//! the stream. The counterpart of [`RawSession`](crate::RawSession) for tests
//! that check a service over both transports.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{CallError, SseReader, raw_client::send_expecting};

/// How long a reply may take to arrive on the stream.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// One initialized HTTP+SSE session.
pub struct LegacySseSession {
    client: reqwest::Client,
    stream: SseReader,
    /// The absolute messages URL, `<base>/messages?session_id=<id>`.
    pub messages_url: String,
    next_id: u64,
}

impl LegacySseSession {
    /// Opens `<base>/sse` (`base` like `http://127.0.0.1:9100`), reads the
    /// `endpoint` event and runs the handshake (`initialize` with protocol
    /// `2024-11-05`, then `notifications/initialized`).
    ///
    /// # Errors
    /// [`CallError::Status`] when `/sse` or a `POST` is not accepted,
    /// [`CallError::Transport`] when the stream ends or names no endpoint,
    /// [`CallError::JsonRpc`] when `initialize` fails.
    pub async fn connect(base: &str) -> Result<Self, CallError> {
        Self::connect_via(base, base).await
    }

    /// [`connect`](Self::connect) with the stream opened at `stream_base`
    /// and the messages posted through `post_base`: a stream held by one
    /// replica, its messages sent through the load balancer (to any).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_via(stream_base: &str, post_base: &str) -> Result<Self, CallError> {
        let client = reqwest::Client::new();
        let response = client
            .get(format!("{stream_base}/sse"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|error| CallError::Transport(error.to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(CallError::Status(
                status,
                response.text().await.unwrap_or_default(),
            ));
        }
        let mut stream = SseReader::new(response);
        let endpoint = stream
            .next_within(REPLY_TIMEOUT)
            .await
            .filter(|event| event.event.as_deref() == Some("endpoint"))
            .ok_or_else(|| CallError::Transport("no `endpoint` event on /sse".into()))?;
        let mut session = Self {
            client,
            stream,
            messages_url: format!("{post_base}{}", endpoint.data),
            next_id: 0,
        };
        session
            .request(
                "initialize",
                json!({"protocolVersion": "2024-11-05", "capabilities": {},
                       "clientInfo": {"name": "mcp-testkit", "version": "1"}}),
            )
            .await?;
        session
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(session)
    }

    /// The session's event stream (to see it end, for instance).
    pub fn stream(&mut self) -> &mut SseReader {
        &mut self.stream
    }

    /// Posts one JSON-RPC message; the server answers `202 Accepted`. (The
    /// future does not borrow the session: a session's calls may run on a
    /// spawned task.)
    fn post(&self, message: &Value) -> impl Future<Output = Result<(), CallError>> + use<> {
        send_expecting(self.client.post(&self.messages_url).json(message), &[202])
    }

    /// Sends a request and returns its JSON-RPC `result`, read from the
    /// stream (notifications in between are skipped). Panics when no reply
    /// arrives within 10 s.
    ///
    /// # Errors
    /// As [`connect`](Self::connect) for the `POST`; [`CallError::JsonRpc`]
    /// with the whole reply when it is an error.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            let message = self.stream.next_message().await;
            if message["id"] != id {
                continue;
            }
            return match message.get("result") {
                Some(result) => Ok(result.clone()),
                None => Err(CallError::JsonRpc(message)),
            };
        }
    }

    /// Calls a tool and returns its result object.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Result<Value, CallError> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }
}
