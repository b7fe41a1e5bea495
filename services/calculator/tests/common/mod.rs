//! Test support: an in-process calculator server on a free loopback port,
//! and a small reader for `text/event-stream` responses.

#![allow(dead_code, missing_docs)]

use std::time::Duration;

use calculator::Calculator;
use futures::StreamExt;
use mcp_session::{Config, McpServer};
use tokio::{sync::oneshot, task::JoinHandle};

/// A calculator served by `mcp-session` until dropped.
pub struct TestServer {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with the default configuration on 127.0.0.1.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` has edited its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::new(0);
        config.host = "127.0.0.1".into();
        config.shutdown_grace = Duration::from_secs(2);
        adjust(&mut config);
        let bound = McpServer::new("calculator", "test", config, Calculator::new)
            .bind()
            .await
            .expect("bind a free port");
        let base = format!("http://{}", bound.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            bound
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            base,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and waits until it has exited.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops within its grace period")
                .expect("server task does not panic");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One server-sent event; `comment` holds a comment line's text instead.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
    pub comment: Option<String>,
}

/// Parses a `text/event-stream` body incrementally (WHATWG HTML §9.2).
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
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
