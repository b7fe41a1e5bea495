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

    /// The next `message` event's JSON within `within`, skipping comments,
    /// other events and events without data; `None` when none arrives in
    /// time or the stream ends.
    pub async fn try_next_message(&mut self, within: Duration) -> Option<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let event = tokio::time::timeout_at(deadline, self.next())
                .await
                .ok()??;
            if event.event.as_deref().unwrap_or("message") == "message" && !event.data.is_empty() {
                return Some(serde_json::from_str(&event.data).expect("message data is JSON"));
            }
        }
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
