//! Minimal MCP clients for load: one per mode, each a session that can make
//! one tool call at a time and says why a call failed.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Mode;

/// Why a call failed, by kind (the report counts them separately).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Failure {
    /// HTTP 404: the server lost the session ("Could not find session").
    SessionNotFound,
    /// Another non-success HTTP status.
    HttpStatus(u16),
    /// A JSON-RPC error response, by code.
    JsonRpc(i64),
    /// A tool result flagged `isError`.
    ToolError,
    /// No HTTP answer, a broken stream, or a timeout.
    Transport(String),
}

fn transport(error: impl std::fmt::Display) -> Failure {
    let text = error.to_string();
    Failure::Transport(text.chars().take(80).collect())
}

fn status(status: reqwest::StatusCode) -> Failure {
    if status == reqwest::StatusCode::NOT_FOUND {
        Failure::SessionNotFound
    } else {
        Failure::HttpStatus(status.as_u16())
    }
}

/// Checks a JSON-RPC response message for a successful tool result.
fn check(message: &Value) -> Result<(), Failure> {
    if let Some(code) = message.pointer("/error/code").and_then(Value::as_i64) {
        return Err(Failure::JsonRpc(code));
    }
    match message.pointer("/result/isError") {
        Some(Value::Bool(true)) => Err(Failure::ToolError),
        _ if message.get("result").is_some() => Ok(()),
        _ => Err(Failure::Transport("no result".into())),
    }
}

/// The first JSON-RPC message in an SSE or JSON body.
fn first_message(body: &[u8]) -> Option<Value> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Some(value);
    }
    let text = std::str::from_utf8(body).ok()?;
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .find_map(|data| serde_json::from_str(data).ok())
}

/// One load session.
pub enum Session {
    /// Streamable HTTP, with or without a session id.
    Streamable {
        /// The HTTP client (one connection pool per session).
        http: reqwest::Client,
        /// `.../mcp`.
        url: String,
        /// `None` in stateless mode, or when the server gave none.
        session_id: Option<String>,
        /// Protocol 2025-06-18 (`initialize` done), or 2026-07-28 (per-request `_meta`).
        legacy: bool,
        /// Next JSON-RPC id.
        next_id: u64,
    },
    /// HTTP+SSE: the stream's messages arrive on `events`.
    Sse {
        /// The HTTP client.
        http: reqwest::Client,
        /// `.../messages?session_id=...`.
        messages: String,
        /// Messages from the event stream.
        events: mpsc::Receiver<Value>,
        /// Next JSON-RPC id.
        next_id: u64,
    },
}

const ACCEPT: &str = "application/json, text/event-stream";

impl Session {
    /// Opens a session in `mode` at `url` (for stateless: nothing to open).
    pub async fn open(mode: Mode, url: &str, timeout: Duration) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(4)
            .build()
            .map_err(transport)?;
        match mode {
            Mode::Stateless => Ok(Self::Streamable {
                http,
                url: url.to_owned(),
                session_id: None,
                legacy: false,
                next_id: 1,
            }),
            Mode::Session => {
                let response = http
                    .post(url)
                    .header("accept", ACCEPT)
                    .json(
                        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                        "protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "mcp-load", "version": "1"}}}),
                    )
                    .send()
                    .await
                    .map_err(transport)?;
                if !response.status().is_success() {
                    return Err(status(response.status()));
                }
                // A server in stateless HTTP mode (the Python SDK's
                // `stateless_http=True`) answers `initialize` without a
                // session id; requests then go without one.
                let session_id = response
                    .headers()
                    .get("mcp-session-id")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let _ = response.bytes().await.map_err(transport)?;
                let mut initialized = http
                    .post(url)
                    .header("accept", ACCEPT)
                    .header("mcp-protocol-version", "2025-06-18");
                if let Some(session_id) = &session_id {
                    initialized = initialized.header("mcp-session-id", session_id);
                }
                let initialized = initialized
                    .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                    .send()
                    .await
                    .map_err(transport)?;
                if !initialized.status().is_success() {
                    return Err(status(initialized.status()));
                }
                Ok(Self::Streamable {
                    http,
                    url: url.to_owned(),
                    session_id,
                    legacy: true,
                    next_id: 1,
                })
            }
            Mode::Sse => Self::open_sse(http, url).await,
        }
    }

    async fn open_sse(http: reqwest::Client, url: &str) -> Result<Self, Failure> {
        // The stream lives as long as the session: no overall timeout on it.
        let stream_client = reqwest::Client::new();
        let response = stream_client
            .get(url)
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(status(response.status()));
        }
        let (endpoint_tx, mut endpoint_rx) = mpsc::channel::<String>(1);
        let (events_tx, events) = mpsc::channel::<Value>(64);
        tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut event = "message";
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(value) = line.strip_prefix("event:") {
                            event = if value.trim() == "endpoint" {
                                "endpoint"
                            } else {
                                "message"
                            };
                        } else if let Some(value) = line.strip_prefix("data:") {
                            data.push_str(value.trim());
                        }
                    }
                    if event == "endpoint" {
                        let _ = endpoint_tx.send(data).await;
                    } else if let Ok(message) = serde_json::from_str(&data)
                        && events_tx.send(message).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
        let endpoint = endpoint_rx
            .recv()
            .await
            .ok_or_else(|| Failure::Transport("no endpoint event".into()))?;
        let base = reqwest::Url::parse(url).map_err(transport)?;
        let messages = base.join(&endpoint).map_err(transport)?.to_string();
        let mut session = Self::Sse {
            http,
            messages,
            events,
            next_id: 1,
        };
        session
            .sse_exchange(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {},
                "clientInfo": {"name": "mcp-load", "version": "1"}}}),
            )
            .await?;
        if let Self::Sse { http, messages, .. } = &session {
            let response = http
                .post(messages.as_str())
                .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .send()
                .await
                .map_err(transport)?;
            if !response.status().is_success() {
                return Err(status(response.status()));
            }
        }
        Ok(session)
    }

    /// POSTs a request on the SSE transport and waits for its response on the stream.
    async fn sse_exchange(&mut self, request: Value) -> Result<Value, Failure> {
        let Self::Sse {
            http,
            messages,
            events,
            ..
        } = self
        else {
            unreachable!("sse only");
        };
        let id = request["id"].clone();
        let response = http
            .post(messages.as_str())
            .json(&request)
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(status(response.status()));
        }
        loop {
            let message = events
                .recv()
                .await
                .ok_or_else(|| Failure::Transport("stream closed".into()))?;
            if message.get("id") == Some(&id) {
                return Ok(message);
            }
        }
    }

    /// Calls `tool` with `arguments` once.
    pub async fn call(&mut self, tool: &str, arguments: &Value) -> Result<(), Failure> {
        match self {
            Self::Streamable {
                http,
                url,
                session_id,
                legacy,
                next_id,
            } => {
                let id = *next_id;
                *next_id += 1;
                let mut params = json!({"name": tool, "arguments": arguments});
                let mut request = http.post(url.as_str()).header("accept", ACCEPT);
                if let Some(session_id) = session_id {
                    request = request.header("mcp-session-id", session_id.as_str());
                }
                match legacy {
                    true => {
                        request = request.header("mcp-protocol-version", "2025-06-18");
                    }
                    false => {
                        params["_meta"] = json!({
                            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                            "io.modelcontextprotocol/clientCapabilities": {},
                        });
                        request = request
                            .header("mcp-protocol-version", "2026-07-28")
                            .header("mcp-method", "tools/call")
                            .header("mcp-name", tool);
                    }
                }
                let response = request
                    .json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}))
                    .send()
                    .await
                    .map_err(transport)?;
                if !response.status().is_success() {
                    return Err(status(response.status()));
                }
                let body = response.bytes().await.map_err(transport)?;
                let message = first_message(&body)
                    .ok_or_else(|| Failure::Transport("no message in response".into()))?;
                check(&message)
            }
            Self::Sse { next_id, .. } => {
                let id = *next_id;
                *next_id += 1;
                let message = self
                    .sse_exchange(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                        "params": {"name": tool, "arguments": arguments}}))
                    .await?;
                check(&message)
            }
        }
    }
}
