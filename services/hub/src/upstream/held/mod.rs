//! Upstream sessions that live in this process: an HTTP+SSE stream
//! ([`sse`], MCP 2024-11-05) or a child process spoken to over stdin and
//! stdout ([`stdio`]). Such a session cannot be used by another hub
//! replica, so each replica holds its own, per upstream and context key,
//! and none is stored in Redis. That suits upstreams that keep no state per
//! downstream session (`shared`, or `user` for per-user credentials); the
//! configuration refuses the others behind several replicas.
//!
//! Both transports carry JSON-RPC messages with nothing that ties a message
//! to a request but its id, so a [`Connection`] matches answers to the
//! requests waiting for them, and hands everything else (notifications,
//! requests of the upstream) to the request it concerns, which relays it
//! from its own task (where the downstream client's stream for it is known):
//! a progress notification by its progress token, anything else to the most
//! recent request in flight. A request of the upstream with no request in
//! flight is refused.

pub mod sse;
pub mod stdio;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use futures::{StreamExt, stream::FuturesUnordered};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    Route,
    http::{NoRelay, Relay, UpstreamError},
};
use crate::{
    config::UpstreamTransport,
    context_key::ContextKey,
    metrics::{HubMetrics, SessionEvent},
};

/// A request in flight: its id (JSON text), its progress token (JSON text),
/// and where its messages go.
type Inbox = (String, Option<String>, mpsc::UnboundedSender<Value>);

/// An upstream and a context key: one connection each.
type ConnectionKey = (String, ContextKey);

/// How messages reach the upstream.
pub enum Outbound {
    /// POSTed to an HTTP+SSE session's message endpoint.
    Post(Box<sse::MessageEndpoint>),
    /// Written, one line each, to a child process's stdin.
    Stdin(mpsc::UnboundedSender<String>),
}

impl Outbound {
    async fn send(&self, message: &Value) -> Result<(), UpstreamError> {
        match self {
            Self::Post(endpoint) => endpoint.post(message).await,
            Self::Stdin(lines) => lines
                .send(message.to_string())
                .map_err(|_| UpstreamError::Unreachable("the process has exited".to_owned())),
        }
    }
}

/// One session held here: what was sent and awaits an answer, and the
/// requests in flight.
pub struct Connection {
    outbound: Outbound,
    /// Answers awaited, by JSON-RPC id (as JSON text).
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// Where the other messages for each request in flight go, in order.
    inboxes: Mutex<Vec<Inbox>>,
    /// Cancelled when the stream or the process ends.
    closed: CancellationToken,
    /// When a request last used it.
    last_used: Mutex<std::time::Instant>,
}

impl Connection {
    /// A connection sending through `outbound`.
    pub fn new(outbound: Outbound) -> Arc<Self> {
        Arc::new(Self {
            outbound,
            pending: Mutex::default(),
            inboxes: Mutex::default(),
            closed: CancellationToken::new(),
            last_used: Mutex::new(std::time::Instant::now()),
        })
    }

    /// Cancelled when the connection ends.
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// Hands one message from the upstream to whom it concerns: an answer
    /// to its request, anything else to a request's inbox (a request of the
    /// upstream with no request in flight is refused).
    pub async fn dispatch(&self, message: Value) {
        let is_answer = message.get("method").is_none()
            && (message.get("result").is_some() || message.get("error").is_some());
        if is_answer {
            let key = message.get("id").map(Value::to_string).unwrap_or_default();
            if let Some(waiting) = self.pending.lock().remove(&key) {
                let _ = waiting.send(message);
            }
            return;
        }
        match self.inbox_for(&message) {
            Some(inbox) => {
                let _ = inbox.send(message);
            }
            None if message.get("id").is_some() => {
                let refusal = NoRelay.request(message).await;
                if let Err(error) = self.outbound.send(&refusal).await {
                    tracing::debug!(%error, "could not refuse an upstream request");
                }
            }
            None => {}
        }
    }

    /// Ends the connection: what waits fails.
    pub fn close(&self) {
        self.closed.cancel();
        self.pending.lock().clear();
    }

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

/// Most sessions one replica holds: past it, the least recently used is
/// closed (the next request of its context opens one again).
const MAX_HELD: usize = 10_000;

/// The sessions this replica holds, by upstream and context key. Memory is
/// bounded whatever the number of users: a session unused for `idle` is
/// closed when the next one is opened, and at most 10,000 are held.
pub struct HeldSessions {
    client: reqwest::Client,
    connections: Mutex<HashMap<ConnectionKey, Arc<Connection>>>,
    idle: std::time::Duration,
    /// Serializes connecting, per context.
    connecting: Mutex<HashMap<ConnectionKey, Arc<tokio::sync::Mutex<()>>>>,
    next_id: AtomicU64,
    metrics: HubMetrics,
}

impl HeldSessions {
    /// No session yet; a session unused for `idle` is closed; sessions
    /// made and reused are counted in `metrics`.
    pub fn new(metrics: HubMetrics, idle: std::time::Duration) -> Self {
        Self {
            client: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("reqwest client"),
            connections: Mutex::default(),
            idle,
            connecting: Mutex::default(),
            next_id: AtomicU64::new(1),
            metrics,
        }
    }

    /// Sends `method` with `params` on this replica's session of the
    /// route's context (made, and initialized, if there is none), relaying
    /// through `relay`; the `result`, or the upstream's `error` object as
    /// `Err(Ok(error))`.
    ///
    /// # Errors
    /// `Err(Err(_))`: the upstream could not be reached, or the session
    /// ended before the answer.
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
            // The upstream forgot the session (an HTTP+SSE server that
            // restarted): once more on a new one, unless this one was new.
            Err(Err(UpstreamError::SessionGone { .. })) if !fresh => {
                self.forget(route, &connection);
                let (connection, _) = self.connection(route).await.map_err(Err)?;
                self.exchange(route, &connection, method, params, relay, cancel)
                    .await
            }
            other => other,
        }
    }

    fn key(route: &Route<'_>) -> ConnectionKey {
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
        connection.close();
    }

    /// The live session of the route's context, or a new one (`true`).
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
            self.metrics.session(route.upstream, SessionEvent::Reused);
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
            self.metrics.session(route.upstream, SessionEvent::Reused);
            return Ok((connection, false));
        }
        let (connection, protocol_version) = match route.upstream.transport {
            UpstreamTransport::Stdio => (stdio::spawn(route)?, super::PROTOCOL_VERSION),
            _ => (
                sse::open(&self.client, route).await?,
                super::PROTOCOL_VERSION_2024,
            ),
        };
        if let Err(error) = self.initialize(route, &connection, protocol_version).await {
            connection.close();
            return Err(error);
        }
        tracing::info!(upstream = %server, context_key = %route.context, transport = route.upstream.transport.as_str(), "upstream session established on this replica");
        self.metrics.session(route.upstream, SessionEvent::Created);
        let mut connections = self.connections.lock();
        Self::evict(&mut connections, self.idle);
        connections.insert(key, connection.clone());
        Ok((connection, true))
    }

    /// Closes and forgets the sessions closed already, those unused for
    /// `idle`, and the least recently used beyond [`MAX_HELD`] - 1.
    fn evict(connections: &mut HashMap<ConnectionKey, Arc<Connection>>, idle: std::time::Duration) {
        connections.retain(|_, connection| {
            let keep =
                !connection.closed.is_cancelled() && connection.last_used.lock().elapsed() < idle;
            if !keep {
                connection.close();
            }
            keep
        });
        while connections.len() >= MAX_HELD {
            let Some(oldest) = connections
                .iter()
                .min_by_key(|(_, connection)| *connection.last_used.lock())
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(connection) = connections.remove(&oldest) {
                connection.close();
            }
        }
    }

    /// `initialize` and `notifications/initialized` on a new connection.
    async fn initialize(
        &self,
        route: &Route<'_>,
        connection: &Connection,
        protocol_version: &str,
    ) -> Result<(), UpstreamError> {
        let initialize = json!({
            "protocolVersion": protocol_version,
            "capabilities": super::client_capabilities(route.upstream),
            "clientInfo": {"name": "mcp-hub", "version": env!("CARGO_PKG_VERSION")},
        });
        let never = CancellationToken::new();
        match self
            .exchange(
                route,
                connection,
                "initialize",
                initialize,
                Arc::new(NoRelay),
                &never,
            )
            .await
        {
            Ok(_) => {}
            Err(Ok(error)) => {
                return Err(UpstreamError::Protocol(format!(
                    "initialize refused: {error}"
                )));
            }
            Err(Err(error)) => return Err(error),
        }
        connection
            .outbound
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
    }

    /// One request on `connection`: sent, its answer awaited, and what
    /// comes for it meanwhile relayed from this task.
    async fn exchange(
        &self,
        route: &Route<'_>,
        connection: &Connection,
        method: &str,
        params: Value,
        relay: Arc<dyn Relay>,
        cancel: &CancellationToken,
    ) -> Result<Value, Result<Value, UpstreamError>> {
        *connection.last_used.lock() = std::time::Instant::now();
        let id = json!(format!(
            "hub-held-{}",
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
        // Requests of the upstream being asked of the client: awaited
        // alongside the answer, so that the deadline and a cancellation
        // still hold while the client takes its time (or never answers).
        let mut asking = FuturesUnordered::new();
        let outcome = async {
            connection.outbound.send(&message).await.map_err(Err)?;
            loop {
                tokio::select! {
                    // What came before the answer is relayed before it.
                    biased;
                    Some(message) = messages.recv() => {
                        if message.get("id").is_some() {
                            let relay = relay.clone();
                            asking.push(async move { relay.request(message).await });
                        } else {
                            relay.notify(message).await;
                        }
                    }
                    Some(answer) = asking.next() => {
                        if let Err(error) = connection.outbound.send(&answer).await {
                            tracing::warn!(upstream = %route.upstream.name, %error, "could not send the client's answer to the upstream");
                        }
                    }
                    answer = &mut answered => {
                        return answer.map_err(|_| Err(UpstreamError::Unreachable(
                            "the session ended before the answer".to_owned())));
                    }
                    () = &mut deadline => {
                        return Err(Err(UpstreamError::Unreachable(format!(
                            "no answer within {} ms", route.upstream.timeout.as_millis()))));
                    }
                    () = cancel.cancelled() => {
                        let notice = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": id, "reason": "cancelled by the hub's client"}});
                        let _ = connection.outbound.send(&notice).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(idle_for: std::time::Duration) -> Arc<Connection> {
        let (lines, _) = mpsc::unbounded_channel();
        let connection = Connection::new(Outbound::Stdin(lines));
        *connection.last_used.lock() = std::time::Instant::now() - idle_for;
        connection
    }

    #[test]
    fn idle_and_closed_sessions_are_closed_when_another_is_opened() {
        let idle = std::time::Duration::from_secs(60);
        let key = |n: &str| (n.to_owned(), ContextKey::shared());
        let (fresh, stale, closed) = (
            connection(std::time::Duration::ZERO),
            connection(std::time::Duration::from_secs(120)),
            connection(std::time::Duration::ZERO),
        );
        closed.close();
        let mut held = HashMap::from([
            (key("fresh"), fresh.clone()),
            (key("stale"), stale.clone()),
            (key("closed"), closed),
        ]);
        HeldSessions::evict(&mut held, idle);
        assert_eq!(held.len(), 1);
        assert!(held.contains_key(&key("fresh")));
        assert!(
            stale.closed().is_cancelled(),
            "an evicted session is closed"
        );
        assert!(!fresh.closed().is_cancelled());
    }
}
