//! A raw Streamable HTTP client that reports every HTTP status: the tests
//! that kill replicas or Redis must tell a `404` (session lost: a bug) from a
//! `502` (the request was in flight on a dying replica) or a `503` (Redis away).

use std::time::Duration;

use serde_json::{Value, json};

use crate::SseReader;

/// Why a request did not produce a JSON-RPC result.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The HTTP status was not 200/202; the body says why.
    Status(u16, String),
    /// The request never got an HTTP answer.
    Transport(String),
    /// A JSON-RPC error object came back.
    JsonRpc(Value),
}

impl CallError {
    /// The HTTP status, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status(status, _) => Some(*status),
            _ => None,
        }
    }
}

/// Sends `request` and expects one of the `accepted` statuses, with a body
/// nobody reads (a notification's or a legacy `POST /messages`' answer).
///
/// # Errors
/// [`CallError::Transport`] without an answer, [`CallError::Status`] with
/// the body for any other status.
pub(crate) async fn send_expecting(
    request: reqwest::RequestBuilder,
    accepted: &[u16],
) -> Result<(), CallError> {
    let response = request
        .send()
        .await
        .map_err(|error| CallError::Transport(error.to_string()))?;
    let status = response.status().as_u16();
    if accepted.contains(&status) {
        return Ok(());
    }
    Err(CallError::Status(
        status,
        response.text().await.unwrap_or_default(),
    ))
}

/// One MCP session over Streamable HTTP (protocol 2025-06-18).
pub struct RawSession {
    client: reqwest::Client,
    url: String,
    /// The `Mcp-Session-Id` the server assigned.
    pub id: String,
    next_id: u64,
}

/// The JSON-RPC messages of an SSE or JSON response body, in order.
fn messages(body: &str) -> Vec<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        return vec![value];
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .filter_map(|data| serde_json::from_str(data).ok())
        .collect()
}

impl RawSession {
    /// Initializes a session at `url` (`http://host:port/mcp`).
    ///
    /// # Errors
    /// The [`CallError`] of the `initialize` request or of the
    /// `notifications/initialized` that follows.
    pub async fn initialize(url: &str) -> Result<Self, CallError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| CallError::Transport(error.to_string()))?;
        Self::initialize_with(client, url).await
    }

    /// [`initialize`](Self::initialize) with `client` for every request of
    /// the session (e.g. one that keeps no idle connections).
    ///
    /// # Errors
    /// As [`initialize`](Self::initialize).
    pub async fn initialize_with(client: reqwest::Client, url: &str) -> Result<Self, CallError> {
        Self::initialize_declaring(client, url, json!({})).await
    }

    /// [`initialize_with`](Self::initialize_with), declaring the client
    /// `capabilities` (e.g. `{"sampling": {}}`, so that tools may ask the
    /// client for a message).
    ///
    /// # Errors
    /// As [`initialize`](Self::initialize).
    pub async fn initialize_declaring(
        client: reqwest::Client,
        url: &str,
        capabilities: Value,
    ) -> Result<Self, CallError> {
        let response = client
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": capabilities,
                "clientInfo": {"name": "mcp-testkit", "version": "1"}}}),
            )
            .send()
            .await
            .map_err(|error| CallError::Transport(error.to_string()))?;
        let status = response.status().as_u16();
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response
            .text()
            .await
            .map_err(|error| CallError::Transport(error.to_string()))?;
        let Some(id) = id.filter(|_| status == 200) else {
            return Err(CallError::Status(status, body));
        };
        let mut session = Self {
            client,
            url: url.to_owned(),
            id,
            next_id: 1,
        };
        session
            .notify(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(session)
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", "2025-06-18")
            .json(body)
    }

    /// Sends the session's next requests to `url` instead, e.g. one replica
    /// directly rather than the load balancer.
    pub fn set_url(&mut self, url: &str) {
        url.clone_into(&mut self.url);
    }

    /// Opens the session's standalone stream (`GET`, MCP 2025-06-18,
    /// Transports §Listening for Messages from the Server), on which the
    /// server sends what is not the answer to a request.
    ///
    /// # Errors
    /// A status other than 200, or a transport error.
    pub async fn open_stream(&self) -> Result<SseReader, CallError> {
        self.get_stream(None).await
    }

    /// `GET` of the session's endpoint as an SSE stream, with
    /// `Last-Event-ID` when given.
    async fn get_stream(&self, last_event_id: Option<&str>) -> Result<SseReader, CallError> {
        let mut request = self
            .client
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", "2025-06-18")
            .timeout(Duration::from_secs(3600));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request
            .send()
            .await
            .map_err(|error| CallError::Transport(error.to_string()))?;
        match response.status().as_u16() {
            200 => Ok(SseReader::new(response)),
            status => Err(CallError::Status(
                status,
                response.text().await.unwrap_or_default(),
            )),
        }
    }

    /// Sends a request and returns its SSE response stream unread, for a
    /// test that reads part of it (and may drop it before its end, as a
    /// client whose connection breaks); the request's JSON-RPC id is
    /// returned too.
    ///
    /// # Errors
    /// A status other than 200 (or an answer that is not an SSE stream),
    /// or a transport error.
    pub async fn open_request(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<(u64, SseReader), CallError> {
        let id = self.next_id;
        self.next_id += 1;
        let response = self
            .post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .map_err(|error| CallError::Transport(error.to_string()))?;
        let sse = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        match response.status().as_u16() {
            200 if sse => Ok((id, SseReader::new(response))),
            status => Err(CallError::Status(
                status,
                response.text().await.unwrap_or_default(),
            )),
        }
    }

    /// Resumes a stream of the session after `last_event_id` (`GET` with
    /// `Last-Event-ID`, MCP 2025-06-18, Transports §Resumability and
    /// Redelivery).
    ///
    /// # Errors
    /// A status other than 200, or a transport error.
    pub async fn resume(&self, last_event_id: &str) -> Result<SseReader, CallError> {
        self.get_stream(Some(last_event_id)).await
    }

    /// Sends a notification (expects `202`).
    ///
    /// # Errors
    /// The status or transport error.
    pub async fn notify(&mut self, body: Value) -> Result<(), CallError> {
        send_expecting(self.post(&body), &[202, 200]).await
    }

    /// Sends a request and returns its JSON-RPC `result` (the response that
    /// ends its answer, after any notifications sent on the request's stream).
    ///
    /// # Errors
    /// A non-200 status, a transport error, an answer without a response,
    /// or a JSON-RPC error.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        let messages = self.request_all(method, params).await?;
        let response = messages
            .into_iter()
            .rfind(|message| message.get("result").is_some() || message.get("error").is_some())
            .ok_or_else(|| CallError::Transport("no response in the answer".into()))?;
        match response.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(CallError::JsonRpc(response)),
        }
    }

    /// Sends a request and returns every JSON-RPC message of its answer, in
    /// order: the notifications sent on the request's stream (log messages,
    /// progress), then the response.
    ///
    /// # Errors
    /// A non-200 status or a transport error (a JSON-RPC error is the last
    /// message, not an error here).
    pub async fn request_all(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<Vec<Value>, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        let response = self
            .post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .send()
            .await
            .map_err(|error| CallError::Transport(error.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|error| CallError::Transport(error.to_string()))?;
        if status != 200 {
            return Err(CallError::Status(status, body));
        }
        Ok(messages(&body))
    }

    /// Calls a tool and returns its result object.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Result<Value, CallError> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }

    /// Ends the session with `DELETE`; returns the status.
    pub async fn delete(&self) -> Option<u16> {
        self.client
            .delete(&self.url)
            .header("mcp-session-id", &self.id)
            .send()
            .await
            .ok()
            .map(|response| response.status().as_u16())
    }
}
