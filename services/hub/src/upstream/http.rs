//! One JSON-RPC exchange with an upstream over Streamable HTTP (MCP
//! 2025-11-25, Transports §Streamable HTTP), as a client.
//!
//! A request is POSTed with `Accept: application/json, text/event-stream`;
//! the upstream answers with one JSON response, or with an SSE stream that
//! carries the upstream's notifications (progress, log messages,
//! `list_changed`) and requests (sampling, elicitation, roots) before the
//! response. Those are handed to a [`Relay`], which passes them to the
//! downstream client; the answers to the upstream's requests are POSTed
//! back. A stream that ends before the response (the upstream closed it to
//! be resumed, SEP-1699) is resumed with `GET` and `Last-Event-ID`.
//!
//! What can go wrong is an [`UpstreamError`]; above all
//! [`UpstreamError::SessionGone`], the upstream's `404` for a session it no
//! longer knows, which the caller answers by re-establishing the session.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, future::BoxFuture};
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use sse_stream::SseStream;

use crate::{
    config::Upstream,
    egress::{EgressPolicy, GuardedResolver},
};

/// How often a response stream closed before its response is resumed.
const MAX_RESUMPTIONS: usize = 5;
/// The most of an upstream's error body quoted in an error.
const QUOTED_BODY: usize = 300;
/// The most of an error body read (the rest is not read at all).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most an upstream may send for one request (a JSON answer, or the
/// whole SSE stream up to the response): past it the request fails, so an
/// upstream (a URL a user connected, above all) cannot grow the hub's
/// memory at will.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// At most `max` bytes of `response`'s body.
///
/// # Errors
/// [`UpstreamError::Protocol`] past `max` (`None` for `truncate`: the first
/// `max` bytes then), [`UpstreamError::Unreachable`] when it breaks off.
async fn read_body(
    mut response: reqwest::Response,
    max: usize,
    truncate: bool,
) -> Result<Vec<u8>, UpstreamError> {
    if !truncate
        && response
            .content_length()
            .is_some_and(|len| len > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| UpstreamError::Unreachable("the answer broke off".to_owned()))?
    {
        let room = max - body.len();
        if chunk.len() > room {
            if truncate {
                body.extend_from_slice(&chunk[..room]);
                return Ok(body);
            }
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large() -> UpstreamError {
    UpstreamError::Protocol(format!(
        "the upstream's answer is larger than {} MiB",
        MAX_RESPONSE_BYTES / (1024 * 1024)
    ))
}

/// `response`'s body as a stream of at most [`MAX_RESPONSE_BYTES`] in all:
/// past it the stream ends with an error.
fn limited_stream(
    response: reqwest::Response,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    // (bytes seen, ended): after the first error the stream ends.
    response
        .bytes_stream()
        .scan((0usize, false), |(seen, ended), chunk| {
            if *ended {
                return futures::future::ready(None);
            }
            let item = match chunk {
                Ok(chunk) if *seen + chunk.len() <= MAX_RESPONSE_BYTES => {
                    *seen += chunk.len();
                    Ok(chunk)
                }
                Ok(_) => Err(std::io::Error::other(too_large().to_string())),
                Err(error) => Err(std::io::Error::other(error)),
            };
            *ended = item.is_err();
            futures::future::ready(Some(item))
        })
}

/// What went wrong talking to an upstream.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream does not know the session named (`404`, or a `400`
    /// that says so): the session must be re-established.
    #[error("the upstream no longer knows the session (HTTP {status})")]
    SessionGone {
        /// `404` or `400`.
        status: u16,
    },
    /// No connection, or no answer within the upstream's timeout.
    #[error("{0}")]
    Unreachable(String),
    /// The upstream answered with an HTTP error.
    #[error("HTTP {status} from the upstream: {message}")]
    Http {
        /// The status.
        status: u16,
        /// The start of its body.
        message: String,
    },
    /// The upstream answered something that is not MCP.
    #[error("{0}")]
    Protocol(String),
}

/// Passes what an upstream sends during a request to the downstream client.
/// [`NoRelay`] is the relay of requests that have no downstream client
/// (list refreshes, `initialize`).
pub trait Relay: Send + Sync {
    /// A notification (`progress`, `message`, `*/list_changed`, …), as the
    /// upstream sent it; `false` when the client is gone (a stream relaying
    /// to it can stop).
    fn notify(&self, notification: Value) -> BoxFuture<'_, bool>;

    /// A request of the upstream (`sampling/createMessage`,
    /// `elicitation/create`, `roots/list`): the JSON-RPC response to POST
    /// back, with the request's `id`.
    fn request(&self, request: Value) -> BoxFuture<'_, Value>;
}

/// A [`Relay`] with nobody behind it: notifications are dropped, requests
/// refused with a JSON-RPC error.
pub struct NoRelay;

impl Relay for NoRelay {
    fn notify(&self, _notification: Value) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }

    fn request(&self, request: Value) -> BoxFuture<'_, Value> {
        Box::pin(async move {
            json!({
                "jsonrpc": "2.0",
                "id": request.get("id").cloned().unwrap_or(Value::Null),
                "error": {"code": -32601, "message": "no client to relay this request to (the hub made the upstream request on its own)"},
            })
        })
    }
}

/// Where one exchange goes: the upstream, its session, and the headers of
/// the caller's credential to send on.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// The upstream.
    pub upstream: &'a Upstream,
    /// Its session (`None` before `initialize`, or when it keeps none).
    pub session_id: Option<&'a str>,
    /// The negotiated protocol version (`None` before `initialize`).
    pub protocol_version: Option<&'a str>,
    /// The caller's headers sent on (the upstream's `forward_headers`).
    pub forwarded: &'a [(HeaderName, HeaderValue)],
}

/// The upstream's answer to a request.
#[derive(Debug)]
pub struct Reply {
    /// The JSON-RPC response: an object with `result` or `error`.
    pub message: Value,
    /// The `Mcp-Session-Id` header of the answer (set by `initialize`).
    pub session_id: Option<String>,
}

/// Whether an upstream answers, as the admin API shows it.
#[derive(Debug, Clone)]
pub struct Health {
    /// Whether it answered over HTTP at all (any status).
    pub reachable: bool,
    /// The HTTP status of its answer to a `ping` without a session.
    pub status: Option<u16>,
    /// How long it took.
    pub latency: Duration,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// How an upstream session's own stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenEnd {
    /// The upstream closed it (or the session ended).
    Closed,
    /// The client it relayed to is gone.
    ClientGone,
    /// Another client (a hub replica) holds the session's stream (`409`).
    HeldElsewhere,
    /// The upstream offers no such stream (`405`).
    Unsupported,
    /// It could not be opened.
    Failed(String),
}

/// The hub's HTTP client of its upstreams: one connection pool for the
/// configured upstreams, and one for the URLs users connected, which
/// resolves names through the [egress guard](crate::egress::GuardedResolver).
#[derive(Clone)]
pub struct UpstreamHttp {
    client: reqwest::Client,
    guarded: reqwest::Client,
}

fn unreachable(upstream: &Upstream, error: &reqwest::Error) -> UpstreamError {
    let reason = if error.is_timeout() {
        format!("no answer within {} ms", upstream.timeout.as_millis())
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the connection failed".to_owned()
    };
    // reqwest's message may hold the URL; the upstream's name says enough.
    UpstreamError::Unreachable(reason)
}

fn is_response_to(message: &Value, id: &Value) -> bool {
    message.get("id") == Some(id)
        && message.get("method").is_none()
        && (message.get("result").is_some() || message.get("error").is_some())
}

impl UpstreamHttp {
    /// A client with a connection pool; `connect_timeout` bounds each new
    /// connection.
    ///
    /// # Panics
    /// If the TLS backend cannot be initialized (as reqwest does).
    pub fn new(connect_timeout: Duration, egress: Arc<EgressPolicy>) -> Self {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                // A redirect would send the caller's credential elsewhere
                // (and a user's URL somewhere the guard did not check).
                .redirect(reqwest::redirect::Policy::none())
        };
        Self {
            client: builder().build().expect("reqwest client"),
            guarded: builder()
                .dns_resolver(Arc::new(GuardedResolver(egress)))
                .no_proxy()
                .build()
                .expect("reqwest client"),
        }
    }

    /// The client `upstream` is reached with.
    fn client(&self, upstream: &Upstream) -> &reqwest::Client {
        if upstream.guarded {
            &self.guarded
        } else {
            &self.client
        }
    }

    fn post(&self, target: Target<'_>, body: &Value) -> reqwest::RequestBuilder {
        let upstream = target.upstream;
        let mut request = self
            .client(upstream)
            .post(upstream.url.clone())
            .timeout(upstream.timeout)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(body);
        request = self.common_headers(request, target);
        request
    }

    fn common_headers(
        &self,
        mut request: reqwest::RequestBuilder,
        target: Target<'_>,
    ) -> reqwest::RequestBuilder {
        for (name, value) in target
            .upstream
            .headers
            .iter()
            .chain(target.forwarded.iter())
        {
            request = request.header(name, value);
        }
        if let Some(session) = target.session_id.filter(|id| !id.is_empty()) {
            request = request.header("mcp-session-id", session);
        }
        if let Some(version) = target.protocol_version.filter(|v| !v.is_empty()) {
            request = request.header("mcp-protocol-version", version);
        }
        request
    }

    /// Checks the status of an answer: the session is gone, or an HTTP
    /// error.
    async fn check_status(
        target: Target<'_>,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, UpstreamError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_body(response, MAX_ERROR_BODY, true)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let named_session = target.session_id.is_some_and(|id| !id.is_empty());
        if named_session
            && (status == StatusCode::NOT_FOUND
                || (status == StatusCode::BAD_REQUEST
                    && body.to_ascii_lowercase().contains("session")))
        {
            return Err(UpstreamError::SessionGone {
                status: status.as_u16(),
            });
        }
        let mut message: String = body.chars().take(QUOTED_BODY).collect();
        if message.is_empty() {
            message = status.canonical_reason().unwrap_or("").to_owned();
        }
        Err(UpstreamError::Http {
            status: status.as_u16(),
            message,
        })
    }

    /// Sends the JSON-RPC request `message` (with an `id`) and waits for its
    /// response, relaying what comes before it through `relay`.
    ///
    /// # Errors
    /// See [`UpstreamError`].
    pub async fn request(
        &self,
        target: Target<'_>,
        message: &Value,
        relay: &dyn Relay,
    ) -> Result<Reply, UpstreamError> {
        let upstream = target.upstream;
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let response = self
            .post(target, message)
            .send()
            .await
            .map_err(|e| unreachable(upstream, &e))?;
        let response = Self::check_status(target, response).await?;
        let session_id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let is_sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let message = if is_sse {
            self.read_stream(target, response, &id, relay).await?
        } else {
            let body = read_body(response, MAX_RESPONSE_BYTES, false).await?;
            let answer: Value = serde_json::from_slice(&body).map_err(|_| {
                UpstreamError::Protocol("the upstream's answer is not JSON".to_owned())
            })?;
            if !is_response_to(&answer, &id) {
                return Err(UpstreamError::Protocol(
                    "the upstream answered with something other than the response".to_owned(),
                ));
            }
            answer
        };
        Ok(Reply {
            message,
            session_id,
        })
    }

    /// Reads an SSE response stream until the response to `id`, resuming it
    /// when the upstream closes it early.
    async fn read_stream(
        &self,
        target: Target<'_>,
        mut response: reqwest::Response,
        id: &Value,
        relay: &dyn Relay,
    ) -> Result<Value, UpstreamError> {
        let upstream = target.upstream;
        let mut last_event_id: Option<String> = None;
        for _ in 0..=MAX_RESUMPTIONS {
            let mut events = SseStream::from_bytes_stream(limited_stream(response));
            while let Some(event) = events.next().await {
                let event = event.map_err(|_| {
                    UpstreamError::Unreachable(
                        "the response stream broke off (or the timeout ended it)".to_owned(),
                    )
                })?;
                if let Some(event_id) = event.id.filter(|id| !id.is_empty()) {
                    last_event_id = Some(event_id);
                }
                let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
                    continue; // a priming event or a comment
                };
                let Ok(message) = serde_json::from_str::<Value>(&data) else {
                    continue;
                };
                if is_response_to(&message, id) {
                    return Ok(message);
                }
                self.relay_message(target, message, relay).await;
            }
            // Closed before the response: resume where it stopped.
            let Some(resume_from) = last_event_id.clone() else {
                break;
            };
            let request = self
                .client(upstream)
                .get(upstream.url.clone())
                .timeout(upstream.timeout)
                .header(header::ACCEPT, "text/event-stream")
                .header("last-event-id", resume_from);
            let resumed = self
                .common_headers(request, target)
                .send()
                .await
                .map_err(|e| unreachable(upstream, &e))?;
            response = Self::check_status(target, resumed).await?;
        }
        Err(UpstreamError::Protocol(
            "the upstream closed the response stream before answering".to_owned(),
        ))
    }

    /// Hands a message of a stream to `relay`: a notification, or a request
    /// whose answer is POSTed back; `false` when the client is gone.
    async fn relay_message(&self, target: Target<'_>, message: Value, relay: &dyn Relay) -> bool {
        match (message.get("method"), message.get("id")) {
            (Some(_), None) => relay.notify(message).await,
            (Some(_), Some(_)) => {
                let answer = relay.request(message).await;
                if let Err(error) = self.notify(target, &answer).await {
                    tracing::warn!(upstream = %target.upstream.name, %error, "could not send the client's answer to the upstream");
                }
                true
            }
            _ => true,
        }
    }

    /// POSTs `message` (a request whose answer is a long stream, as
    /// `subscriptions/listen`) and returns the messages of its stream, with
    /// no timeout but the connection's: the stream lasts until the upstream
    /// ends it or the caller drops it.
    ///
    /// # Errors
    /// See [`UpstreamError`]; a JSON answer (the upstream refused the
    /// request) is a [`UpstreamError::Protocol`] carrying it.
    pub async fn open_stream(
        &self,
        target: Target<'_>,
        message: &Value,
    ) -> Result<futures::stream::BoxStream<'static, Value>, UpstreamError> {
        let request = self
            .client(target.upstream)
            .post(target.upstream.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(message);
        let response = self
            .common_headers(request, target)
            .send()
            .await
            .map_err(|e| unreachable(target.upstream, &e))?;
        let response = Self::check_status(target, response).await?;
        let is_sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            let body = response.text().await.unwrap_or_default();
            return Err(UpstreamError::Protocol(
                body.chars().take(QUOTED_BODY).collect(),
            ));
        }
        Ok(SseStream::from_bytes_stream(response.bytes_stream())
            .take_while(|event| futures::future::ready(event.is_ok()))
            .filter_map(|event| {
                futures::future::ready(
                    event
                        .ok()
                        .and_then(|event| event.data)
                        .filter(|data| !data.trim().is_empty())
                        .and_then(|data| serde_json::from_str::<Value>(&data).ok()),
                )
            })
            .boxed())
    }

    /// Opens the upstream session's own stream (`GET`, MCP 2025-11-25,
    /// Transports §Listening for Messages from the Server) and relays what
    /// comes on it (log messages, `list_changed`, `resources/updated`,
    /// requests not tied to a call) until it ends; `ready` is sent once the
    /// upstream answered.
    pub async fn listen(
        &self,
        target: Target<'_>,
        relay: &dyn Relay,
        ready: tokio::sync::oneshot::Sender<()>,
    ) -> ListenEnd {
        let request = self
            .client(target.upstream)
            .get(target.upstream.url.clone())
            .header(header::ACCEPT, "text/event-stream");
        let response = match self.common_headers(request, target).send().await {
            Ok(response) => response,
            Err(error) => {
                return ListenEnd::Failed(unreachable(target.upstream, &error).to_string());
            }
        };
        match response.status() {
            StatusCode::CONFLICT => return ListenEnd::HeldElsewhere,
            StatusCode::METHOD_NOT_ALLOWED => return ListenEnd::Unsupported,
            status if !status.is_success() => {
                return ListenEnd::Failed(format!("HTTP {}", status.as_u16()));
            }
            _ => {}
        }
        let _ = ready.send(());
        let mut events = SseStream::from_bytes_stream(response.bytes_stream());
        while let Some(Ok(event)) = events.next().await {
            let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
                continue;
            };
            let Ok(message) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            if !self.relay_message(target, message, relay).await {
                return ListenEnd::ClientGone;
            }
        }
        ListenEnd::Closed
    }

    /// Sends a notification or a response (no answer expected: `202`).
    ///
    /// # Errors
    /// See [`UpstreamError`].
    pub async fn notify(&self, target: Target<'_>, message: &Value) -> Result<(), UpstreamError> {
        let response = self
            .post(target, message)
            .send()
            .await
            .map_err(|e| unreachable(target.upstream, &e))?;
        Self::check_status(target, response).await.map(drop)
    }

    /// POSTs a `ping` without a session and reports whether, how and how
    /// fast the upstream answers (any HTTP status counts as reachable: a
    /// server may refuse requests without a session).
    pub async fn probe(&self, upstream: &Upstream) -> Health {
        let started = std::time::Instant::now();
        let target = Target {
            upstream,
            session_id: None,
            protocol_version: None,
            forwarded: &[],
        };
        let ping = json!({"jsonrpc": "2.0", "id": "hub-health", "method": "ping"});
        match self.post(target, &ping).send().await {
            Ok(response) => Health {
                reachable: true,
                status: Some(response.status().as_u16()),
                latency: started.elapsed(),
                error: None,
            },
            Err(error) => Health {
                reachable: false,
                status: None,
                latency: started.elapsed(),
                error: Some(unreachable(upstream, &error).to_string()),
            },
        }
    }

    /// Ends an upstream session (`DELETE`, MCP 2025-11-25, Transports
    /// §Session Management); an upstream that refuses it (`405`) or no
    /// longer knows it is fine.
    ///
    /// # Errors
    /// See [`UpstreamError`].
    pub async fn delete_session(&self, target: Target<'_>) -> Result<(), UpstreamError> {
        let request = self
            .client(target.upstream)
            .delete(target.upstream.url.clone())
            .timeout(target.upstream.timeout);
        let response = self
            .common_headers(request, target)
            .send()
            .await
            .map_err(|e| unreachable(target.upstream, &e))?;
        match Self::check_status(target, response).await {
            Ok(_) | Err(UpstreamError::SessionGone { .. }) => Ok(()),
            Err(UpstreamError::Http { status: 405, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}
