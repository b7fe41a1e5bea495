//! Upstreams over HTTP+SSE (MCP 2024-11-05, Transports §HTTP with SSE): the
//! generation many servers still speak (`npx server-everything sse`).
//!
//! An HTTP+SSE session *is* an open stream: the client `GET`s the SSE
//! endpoint, the server names a message endpoint in its first event
//! (`endpoint`), the client POSTs every message there, and every answer
//! comes back on the stream. So the session lives in the process that holds
//! the stream, and no other hub replica can use it: each hub replica opens
//! its own connection per context key, kept here, and none is stored in
//! Redis. That is fine for upstreams that keep no state per session
//! (`shared`, or `user` for per-user credentials); an upstream with state
//! per downstream session (`"sharing": "session"`) cannot be served so
//! behind several replicas, and the configuration refuses it.
//!
//! What the upstream sends besides answers is relayed to the client of the
//! request it concerns, from that request's task (where the downstream
//! client's stream for it is known): a progress notification by its
//! progress token, any other notification or request to the most recent
//! request in flight on the connection (HTTP+SSE says no more). A request of
//! the upstream with no request in flight is refused.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use http::header;
use parking_lot::Mutex;
use serde_json::{Value, json};
use sse_stream::SseStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    PROTOCOL_VERSION_2024, Route,
    http::{NoRelay, Relay, UpstreamError},
};
use crate::{
    config::Upstream,
    context_key::ContextKey,
    metrics::{HubMetrics, SessionEvent},
};

/// The events of an SSE stream.
type Events = futures::stream::BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>;

/// A request in flight: its id (JSON text), its progress token (JSON text),
/// and where its messages go.
type Inbox = (String, Option<String>, mpsc::UnboundedSender<Value>);

/// An upstream and a context key: one connection each.
type ConnectionKey = (String, ContextKey);

/// One HTTP+SSE session: its stream's reader runs in a task; requests wait
/// for their answers here.
struct Connection {
    /// Where messages are POSTed (the `endpoint` event's URL).
    post_url: url::Url,
    /// Answers awaited, by JSON-RPC id (as JSON text).
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// Where the messages for each request in flight go (its id, its
    /// progress token), in order: the request relays them from its own
    /// task, where the downstream client's stream for it is known.
    inboxes: Mutex<Vec<Inbox>>,
    /// Cancelled when the stream ends.
    closed: CancellationToken,
}

impl Connection {
    /// The inbox for a message that is not an answer: by progress token,
    /// else the latest request's.
    fn inbox_for(&self, message: &Value) -> Option<mpsc::UnboundedSender<Value>> {
        let inboxes = self.inboxes.lock();
        let token = message
            .pointer("/params/progressToken")
            .map(Value::to_string);
        token
            .and_then(|token| {
                inboxes
                    .iter()
                    .find(|(_, progress, _)| progress.as_deref() == Some(token.as_str()))
            })
            .or_else(|| inboxes.last())
            .map(|(_, _, inbox)| inbox.clone())
    }
}

/// The HTTP+SSE sessions this replica holds.
pub struct LegacySessions {
    client: reqwest::Client,
    connections: Mutex<HashMap<ConnectionKey, Arc<Connection>>>,
    /// Serializes connecting, per context.
    connecting: Mutex<HashMap<ConnectionKey, Arc<tokio::sync::Mutex<()>>>>,
    next_id: AtomicU64,
    metrics: HubMetrics,
}

impl LegacySessions {
    /// No connection yet; sessions made and reused are counted in
    /// `metrics`.
    pub fn new(metrics: HubMetrics) -> Self {
        Self {
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("reqwest client"),
            connections: Mutex::default(),
            connecting: Mutex::default(),
            next_id: AtomicU64::new(1),
            metrics,
        }
    }
}

fn with_headers(
    mut request: reqwest::RequestBuilder,
    route: &Route<'_>,
) -> reqwest::RequestBuilder {
    for (name, value) in route.upstream.headers.iter().chain(route.forwarded.iter()) {
        request = request.header(name, value);
    }
    request
}

fn unreachable(upstream: &Upstream, error: &reqwest::Error) -> UpstreamError {
    UpstreamError::Unreachable(if error.is_timeout() {
        format!("no answer within {} ms", upstream.timeout.as_millis())
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the connection failed".to_owned()
    })
}

impl LegacySessions {
    /// Sends `method` with `params` to the route's upstream on this
    /// replica's connection of the route's context (opened, and
    /// initialized, if there is none), relaying through `relay`; the
    /// `result`, or the upstream's `error` object as `Err(Ok(error))`.
    ///
    /// # Errors
    /// `Err(Err(_))`: the upstream could not be reached, or the stream ended
    /// before the answer.
    pub async fn request(
        &self,
        route: &Route<'_>,
        method: &str,
        params: Value,
        relay: Arc<dyn Relay>,
        cancel: &CancellationToken,
    ) -> Result<Value, Result<Value, UpstreamError>> {
        let (connection, fresh) = self.connection(route).await.map_err(Err)?;
        let outcome = self
            .exchange(
                route,
                &connection,
                method,
                params.clone(),
                relay.clone(),
                cancel,
            )
            .await;
        match outcome {
            // The upstream forgot the session (it restarted): once more on a
            // new connection, unless this one was new.
            Err(Err(UpstreamError::SessionGone { .. })) if !fresh => {
                self.forget(route, &connection);
                let (connection, _) = self.connection(route).await.map_err(Err)?;
                self.exchange(route, &connection, method, params, relay, cancel)
                    .await
            }
            other => other,
        }
    }

    fn key(route: &Route<'_>) -> (String, ContextKey) {
        (route.upstream.name.clone(), route.context.clone())
    }

    fn forget(&self, route: &Route<'_>, connection: &Arc<Connection>) {
        let mut connections = self.connections.lock();
        let key = Self::key(route);
        if connections
            .get(&key)
            .is_some_and(|held| Arc::ptr_eq(held, connection))
        {
            connections.remove(&key);
        }
        connection.closed.cancel();
    }

    /// The live connection of the route's context, or a new one (`true`).
    async fn connection(
        &self,
        route: &Route<'_>,
    ) -> Result<(Arc<Connection>, bool), UpstreamError> {
        let key = Self::key(route);
        let live = |this: &Self| {
            this.connections
                .lock()
                .get(&key)
                .filter(|connection| !connection.closed.is_cancelled())
                .cloned()
        };
        let server = &route.upstream.name;
        if let Some(connection) = live(self) {
            self.metrics.session(server, SessionEvent::Reused);
            return Ok((connection, false));
        }
        let gate = self
            .connecting
            .lock()
            .entry(key.clone())
            .or_default()
            .clone();
        let _one_at_a_time = gate.lock().await;
        if let Some(connection) = live(self) {
            self.metrics.session(server, SessionEvent::Reused);
            return Ok((connection, false));
        }
        let connection = self.connect(route).await?;
        self.metrics.session(server, SessionEvent::Created);
        self.connections.lock().insert(key, connection.clone());
        Ok((connection, true))
    }

    /// Opens the stream, reads the message endpoint, starts the reader and
    /// initializes the session.
    async fn connect(&self, route: &Route<'_>) -> Result<Arc<Connection>, UpstreamError> {
        let upstream = route.upstream;
        let request = self
            .client
            .get(upstream.url.clone())
            .header(header::ACCEPT, "text/event-stream");
        let response = tokio::time::timeout(upstream.timeout, with_headers(request, route).send())
            .await
            .map_err(|_| {
                UpstreamError::Unreachable(format!(
                    "no answer within {} ms",
                    upstream.timeout.as_millis()
                ))
            })?
            .map_err(|error| unreachable(upstream, &error))?;
        if !response.status().is_success() {
            return Err(UpstreamError::Http {
                status: response.status().as_u16(),
                message: "the SSE endpoint refused the stream".to_owned(),
            });
        }
        let mut events: Events = SseStream::from_bytes_stream(response.bytes_stream()).boxed();
        let endpoint = tokio::time::timeout(upstream.timeout, async {
            while let Some(Ok(event)) = events.next().await {
                if event.event.as_deref() == Some("endpoint") {
                    return event.data;
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            UpstreamError::Protocol("the SSE stream named no message endpoint".to_owned())
        })?;
        let post_url = upstream.url.join(endpoint.trim()).map_err(|_| {
            UpstreamError::Protocol("the SSE stream named an unusable message endpoint".to_owned())
        })?;
        if post_url.origin() != upstream.url.origin() {
            // Credentials would go to another host.
            return Err(UpstreamError::Protocol(
                "the SSE stream named a message endpoint on another origin".to_owned(),
            ));
        }
        let connection = Arc::new(Connection {
            post_url,
            pending: Mutex::default(),
            inboxes: Mutex::default(),
            closed: CancellationToken::new(),
        });
        tokio::spawn(read(
            events,
            connection.clone(),
            self.client.clone(),
            route_headers(route),
        ));
        let initialize = json!({
            "protocolVersion": PROTOCOL_VERSION_2024,
            "capabilities": {"sampling": {}, "elicitation": {}, "roots": {}},
            "clientInfo": {"name": "mcp-hub", "version": env!("CARGO_PKG_VERSION")},
        });
        let never = CancellationToken::new();
        match self
            .exchange(
                route,
                &connection,
                "initialize",
                initialize,
                Arc::new(NoRelay),
                &never,
            )
            .await
        {
            Ok(_) => {}
            Err(Ok(error)) => {
                connection.closed.cancel();
                return Err(UpstreamError::Protocol(format!(
                    "initialize refused: {error}"
                )));
            }
            Err(Err(error)) => {
                connection.closed.cancel();
                return Err(error);
            }
        }
        self.post(
            route,
            &connection,
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await?;
        tracing::info!(upstream = %upstream.name, context_key = %route.context, "upstream HTTP+SSE session established on this replica");
        Ok(connection)
    }

    async fn post(
        &self,
        route: &Route<'_>,
        connection: &Connection,
        message: &Value,
    ) -> Result<(), UpstreamError> {
        let request = self
            .client
            .post(connection.post_url.clone())
            .timeout(route.upstream.timeout)
            .json(message);
        let response = with_headers(request, route)
            .send()
            .await
            .map_err(|error| unreachable(route.upstream, &error))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            404 => Err(UpstreamError::SessionGone { status: 404 }),
            status => Err(UpstreamError::Http {
                status,
                message: response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            }),
        }
    }

    /// One request on `connection`: POSTed, its answer awaited on the
    /// stream.
    async fn exchange(
        &self,
        route: &Route<'_>,
        connection: &Connection,
        method: &str,
        params: Value,
        relay: Arc<dyn Relay>,
        cancel: &CancellationToken,
    ) -> Result<Value, Result<Value, UpstreamError>> {
        let id = json!(format!(
            "hub-sse-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        ));
        let key = id.to_string();
        let progress = params.pointer("/_meta/progressToken").map(Value::to_string);
        let (answer, mut answered) = oneshot::channel();
        let (inbox, mut messages) = mpsc::unbounded_channel();
        connection.pending.lock().insert(key.clone(), answer);
        connection
            .inboxes
            .lock()
            .push((key.clone(), progress, inbox));
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let deadline = tokio::time::sleep(route.upstream.timeout);
        tokio::pin!(deadline);
        let outcome = async {
            self.post(route, connection, &message).await.map_err(Err)?;
            loop {
                tokio::select! {
                    // What came before the answer is relayed before it.
                    biased;
                    Some(message) = messages.recv() => {
                        // Relayed from this request's task, like a call's
                        // own stream over Streamable HTTP.
                        if message.get("id").is_some() {
                            let answer = relay.request(message).await;
                            if let Err(error) = self.post(route, connection, &answer).await {
                                tracing::warn!(upstream = %route.upstream.name, %error, "could not send the client's answer to the upstream");
                            }
                        } else {
                            relay.notify(message).await;
                        }
                    }
                    answer = &mut answered => {
                        return answer.map_err(|_| Err(UpstreamError::Unreachable(
                            "the SSE stream ended before the answer".to_owned())));
                    }
                    () = &mut deadline => {
                        return Err(Err(UpstreamError::Unreachable(format!(
                            "no answer within {} ms", route.upstream.timeout.as_millis()))));
                    }
                    () = cancel.cancelled() => {
                        let notice = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": id, "reason": "cancelled by the hub's client"}});
                        let _ = self.post(route, connection, &notice).await;
                        return Err(Err(UpstreamError::Unreachable("cancelled".to_owned())));
                    }
                }
            }
        }
        .await;
        connection.pending.lock().remove(&key);
        connection
            .inboxes
            .lock()
            .retain(|(held, _, _)| *held != key);
        let mut answer = outcome?;
        if let Some(result) = answer.get_mut("result") {
            return Ok(result.take());
        }
        Err(Ok(answer
            .get_mut("error")
            .map(Value::take)
            .unwrap_or(Value::Null)))
    }
}

/// The headers a connection's reader POSTs answers with.
fn route_headers(route: &Route<'_>) -> Vec<(http::HeaderName, http::HeaderValue)> {
    route
        .upstream
        .headers
        .iter()
        .chain(route.forwarded.iter())
        .cloned()
        .collect()
}

/// Reads the stream until it ends: answers to their requests, the rest to
/// the inboxes of the requests in flight; then fails what still waits.
async fn read(
    mut events: Events,
    connection: Arc<Connection>,
    client: reqwest::Client,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
) {
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = connection.closed.cancelled() => None,
        };
        let Some(Ok(event)) = event else { break };
        let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
            continue;
        };
        let Ok(message) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        let is_answer = message.get("method").is_none()
            && (message.get("result").is_some() || message.get("error").is_some());
        if is_answer {
            let key = message.get("id").map(Value::to_string).unwrap_or_default();
            if let Some(waiting) = connection.pending.lock().remove(&key) {
                let _ = waiting.send(message);
            }
            continue;
        }
        match connection.inbox_for(&message) {
            Some(inbox) => {
                let _ = inbox.send(message);
            }
            // Nobody to relay to: a request is refused, so that the
            // upstream does not wait for it.
            None if message.get("id").is_some() => {
                let answer = NoRelay.request(message).await;
                let mut request = client.post(connection.post_url.clone()).json(&answer);
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                if let Err(error) = request.send().await {
                    tracing::debug!(error = %error.without_url(), "could not refuse an upstream request");
                }
            }
            None => {}
        }
    }
    connection.closed.cancel();
    connection.pending.lock().clear();
}
