//! A small `text/event-stream` reader for raw HTTP tests.

use std::time::Duration;

use futures::StreamExt;

/// One server-sent event; `comment` holds a comment line's text instead.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseEvent {
    /// The `event:` field (`None`: the default, `message`).
    pub event: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
    /// The `id:` field.
    pub id: Option<String>,
    /// A comment line's text (`: keep-alive` gives `keep-alive`).
    pub comment: Option<String>,
}

/// Parses a `text/event-stream` body incrementally (WHATWG HTML §9.2).
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    /// Reads the body of `response`.
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event or comment, or `None` when the stream ends; panics
    /// after `within` without one.
    pub async fn next_within(&mut self, within: Duration) -> Option<SseEvent> {
        tokio::time::timeout(within, self.next())
            .await
            .expect("an SSE event in time")
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.take_event() {
                return Some(event);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n")),
                _ => return None,
            }
        }
    }

    fn take_event(&mut self) -> Option<SseEvent> {
        let end = self.buffer.find("\n\n")?;
        let block: String = self.buffer.drain(..end + 2).collect();
        let mut event = SseEvent::default();
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                event.comment = Some(comment.trim().to_owned());
            } else if let Some((field, value)) = line.split_once(':') {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event.event = Some(value.to_owned()),
                    "data" => data.push(value.to_owned()),
                    "id" => event.id = Some(value.to_owned()),
                    _ => {}
                }
            }
        }
        event.data = data.join("\n");
        Some(event)
    }

    /// The next `message` event's JSON, skipping comments and other events.
    pub async fn next_message(&mut self) -> serde_json::Value {
        loop {
            let event = self
                .next_within(Duration::from_secs(10))
                .await
                .expect("stream still open");
            if event.event.as_deref().unwrap_or("message") == "message" && !event.data.is_empty() {
                return serde_json::from_str(&event.data).expect("message data is JSON");
            }
        }
    }
}

/// A legacy HTTP+SSE (MCP 2024-11-05) session over raw HTTP: its stream
/// and the URL its messages are posted to.
pub struct SseSession {
    /// The session's event stream.
    pub reader: SseReader,
    /// `<post base>/messages?session_id=<id>`.
    pub messages: String,
    client: reqwest::Client,
}

impl SseSession {
    /// Opens `GET <stream_base>/sse` and initializes the session, posting
    /// its messages through `post_base` (a replica, or nginx). Panics with
    /// the reason when a step fails.
    pub async fn open(stream_base: &str, post_base: &str) -> Self {
        let client = reqwest::Client::new();
        let response = client
            .get(format!("{stream_base}/sse"))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {stream_base}/sse: {error}"));
        assert_eq!(response.status().as_u16(), 200, "GET {stream_base}/sse");
        let mut reader = SseReader::new(response);
        let endpoint = reader
            .next_within(Duration::from_secs(5))
            .await
            .expect("the endpoint event");
        assert_eq!(endpoint.event.as_deref(), Some("endpoint"), "{endpoint:?}");
        let mut session = Self {
            reader,
            messages: format!("{post_base}{}", endpoint.data),
            client,
        };
        let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                       "clientInfo": {"name": "mcp-testkit", "version": "1"}}});
        assert_eq!(session.post(&initialize).await, 202, "initialize");
        assert_eq!(session.reader.next_message().await["id"], 0);
        let initialized =
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(session.post(&initialized).await, 202, "initialized");
        session
    }

    /// Posts one JSON-RPC message; returns the HTTP status (0 when the
    /// request got no answer).
    pub async fn post(&self, message: &serde_json::Value) -> u16 {
        self.client
            .post(&self.messages)
            .json(message)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .unwrap_or(0)
    }

    /// Calls tool `name` as request `id` and returns the reply message from
    /// the stream; panics unless the POST is accepted.
    pub async fn call_tool(
        &mut self,
        id: u64,
        name: &str,
        arguments: serde_json::Value,
    ) -> serde_json::Value {
        let call = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}});
        assert_eq!(self.post(&call).await, 202, "POST {}", self.messages);
        let reply = self.reader.next_message().await;
        assert_eq!(reply["id"], id, "{reply}");
        reply
    }
}
