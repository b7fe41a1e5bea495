//! The legacy HTTP+SSE transport (MCP 2024-11-05, Transports §HTTP with SSE),
//! which rmcp no longer ships and our users' clients still speak.
//!
//! - `GET /sse` opens a session and its event stream. The first event is
//!   `endpoint`, whose data is the URL to POST messages to
//!   (`/messages?session_id=<id>`); every server message (responses,
//!   notifications, server-to-client requests) follows as a `message` event.
//!   Comment lines (`: keep-alive`) every `SSE_KEEPALIVE_SECONDS` keep load
//!   balancers from closing an idle stream.
//! - `POST /messages?session_id=<id>` takes one JSON-RPC message and answers
//!   `202 Accepted`; the reply, if any, arrives on the stream.
//!
//! The session is served by the same rmcp [`ServerHandler`] as Streamable
//! HTTP, over a pair of channels: [`rmcp::serve_server`] reads client messages
//! from one and writes server messages to the other, which feeds the stream.
//! The session lives as long as its stream: when the client disconnects, the
//! handler is cancelled and the session deleted from the store.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{StreamExt, stream};

use rmcp::{
    ServerHandler,
    model::{
        ClientJsonRpcMessage, ClientNotification, ClientRequest, InitializeRequest,
        InitializedNotification, RequestId, ServerJsonRpcMessage,
    },
    service::serve_server_with_ct,
    transport::streamable_http_server::session::ServerSseMessage,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, PollSender};

use super::{
    TransportState,
    errors::{INVALID_REQUEST, PARSE_ERROR, jsonrpc_error, session_not_found, store_failure},
    sse_lifecycle::UntilInitialized,
    sse_reconnect,
};
use crate::{
    fleet::{Delivery, Fleet, StreamHandle, sse_session_of, sse_stream_id},
    identity::{Caller, UserHash},
    session::SessionContext,
    store::{SessionRecord, SessionStore, TransportKind},
};

/// Messages buffered per direction before a sender waits.
const CHANNEL_CAPACITY: usize = 64;

/// How long a new SSE session may wait for the client's `initialize`.
const INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// State of the SSE routes: the transports' settings and the handler
/// factory.
pub(crate) struct SseTransport<S> {
    pub(crate) state: TransportState,
    pub(crate) factory: Arc<dyn Fn() -> S + Send + Sync>,
}

fn caller_of(request: &Request) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anonymous)
}

/// `GET /sse`: creates a session and streams its server messages; with a
/// `Last-Event-ID` of one of its events (an `EventSource` reconnecting), the
/// same session comes back, on whichever replica the request reached (see
/// `fleet::sse_sessions`): the same `endpoint`, then the messages the client
/// missed, then new ones.
///
/// Answers `503` when the store cannot record the session or the replica is
/// shutting down (the client reconnects, through the load balancer, to a
/// live replica), `429` when the caller has too many sessions, `404` when
/// the session a `Last-Event-ID` names has ended (or is another user's).
pub(crate) async fn open_stream<S: ServerHandler>(
    State(sse): State<Arc<SseTransport<S>>>,
    request: Request,
) -> Response {
    let state = &sse.state;
    if state.lifecycle.is_draining() {
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: this replica is shutting down, retry",
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return response;
    }
    let caller = caller_of(&request);
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| sse_session_of(id).is_some())
        .map(str::to_owned);
    let opened = match last_event_id {
        Some(last_event_id) => match take_over(state, &caller, &last_event_id).await {
            Ok(opened) => opened,
            Err(response) => return response,
        },
        None => match create(state, &caller).await {
            Ok(opened) => opened,
            Err(response) => return response,
        },
    };
    serve_stream(&sse, caller, opened).await
}

/// A session about to get its stream here.
struct Opened {
    record: SessionRecord,
    /// The `endpoint` event's id: what the client's `EventSource` reports
    /// if it reconnects before any message arrives.
    endpoint_event_id: Option<String>,
    /// Messages the client missed, with their ids (a takeover).
    replay: Vec<ServerSseMessage>,
    /// Whether the handler must be given the session's `initialize` again.
    restored: bool,
    /// Whether the record must name this replica as the stream's holder
    /// (once the stream is registered, so that forwarded messages find it).
    claim: bool,
}

/// A new session of `caller`, recorded in the store.
async fn create(state: &TransportState, caller: &Caller) -> Result<Opened, Response> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let record = SessionRecord::new(
        &id,
        caller.user_hash.clone(),
        TransportKind::Sse,
        state.fleet.replica_id().to_owned(),
    );
    state
        .fleet
        .store()
        .create(&record)
        .await
        .map_err(|error| store_failure(&error))?;
    state.fleet.sse_opened(&caller.user_hash, &id).await;
    tracing::info!(session_id = %id, "sse session opened");
    Ok(Opened {
        endpoint_event_id: state
            .fleet
            .shares_streams()
            .then(|| format!("{}#start", sse_stream_id(&id))),
        record,
        replay: Vec::new(),
        restored: false,
        claim: false,
    })
}

/// The session `last_event_id` names, taken over by this replica from the
/// one that held its stream; `404` when it has ended or is not `caller`'s.
async fn take_over(
    state: &TransportState,
    caller: &Caller,
    last_event_id: &str,
) -> Result<Opened, Response> {
    let store = state.fleet.store();
    let session_id = sse_session_of(last_event_id).unwrap_or_default();
    let mut record = match store.access(&caller.user_hash, session_id).await {
        Ok(Some(record)) if record.transport == TransportKind::Sse => record,
        Ok(_) => {
            tracing::info!(session_id, "reconnection to an unknown sse session");
            return Err(session_not_found());
        }
        Err(error) => return Err(store_failure(&error)),
    };
    let holder = record.replica_id.clone();
    state
        .fleet
        .take_sse_session(&holder, session_id)
        .await
        .map_err(|error| store_failure(&error))?;
    let replay = state.fleet.sse_replay(session_id, last_event_id).await;
    let claim = holder != state.fleet.replica_id() || record.stream_detached_at_ms.is_some();
    record.replica_id = state.fleet.replica_id().to_owned();
    record.stream_detached_at_ms = None;
    state.fleet.sse_opened(&caller.user_hash, session_id).await;
    tracing::info!(
        session_id,
        from = %holder,
        replayed = replay.len(),
        "sse session reconnected"
    );
    Ok(Opened {
        restored: record.initialize_params.is_some(),
        endpoint_event_id: Some(last_event_id.to_owned()),
        record,
        replay,
        claim,
    })
}

/// A session's client messages: the replayed handshake of a taken-over
/// session (else nothing), then what the client sends.
type Inbound = stream::Chain<
    stream::Iter<std::vec::IntoIter<ClientJsonRpcMessage>>,
    ReceiverStream<ClientJsonRpcMessage>,
>;

/// The id of the `initialize` request replayed to a taken-over session's
/// new handler; its answer is not sent to the client, who had it already.
const RESTORED_INITIALIZE: &str = "mcp-session-sse-restore";

/// The `initialize` request and `initialized` notification the client sent
/// when the session began, for a new handler of the same session.
fn replayed_handshake(record: &SessionRecord) -> Vec<ClientJsonRpcMessage> {
    let Some(params) = record.initialize_params.clone() else {
        return Vec::new();
    };
    vec![
        ClientJsonRpcMessage::request(
            ClientRequest::InitializeRequest(InitializeRequest::new(Arc::unwrap_or_clone(params))),
            RequestId::String(RESTORED_INITIALIZE.into()),
        ),
        ClientJsonRpcMessage::notification(ClientNotification::InitializedNotification(
            InitializedNotification::default(),
        )),
    ]
}

fn is_request(message: &ClientJsonRpcMessage) -> bool {
    matches!(message, ClientJsonRpcMessage::Request(_))
}

fn is_restored_initialize_answer(message: &ServerJsonRpcMessage) -> bool {
    matches!(
        message,
        ServerJsonRpcMessage::Response(response)
            if response.id == RequestId::String(RESTORED_INITIALIZE.into())
    )
}

/// Registers the session's stream here, starts its handler and answers with
/// the event stream: `endpoint`, the replayed messages, then the live ones.
async fn serve_stream<S: ServerHandler>(
    sse: &SseTransport<S>,
    caller: Caller,
    opened: Opened,
) -> Response {
    let state = &sse.state;
    let id = opened.record.id.clone();
    let (inbound_tx, inbound_rx) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (outbound_tx, outbound_rx) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    // Ended by the client leaving, by a takeover elsewhere, or by this
    // replica handing off at shutdown (once no request waits for its answer).
    let session_ct = CancellationToken::new();
    let handle = StreamHandle::new(caller.user_hash.clone(), inbound_tx, session_ct.clone());
    let released = handle.released.clone();
    state.fleet.sse_streams().insert(id.clone(), handle.clone());
    tokio::spawn(close_at_hand_off(
        state.lifecycle.handing_off().clone(),
        handle.clone(),
    ));
    if opened.claim
        && let Err(error) = state.fleet.store().update(&opened.record).await
    {
        state.fleet.sse_streams().remove(&id);
        return store_failure(&error);
    }
    let handshake = if opened.restored {
        replayed_handshake(&opened.record)
    } else {
        Vec::new()
    };
    // The replayed `initialize` is in flight until its (unsent) answer, as
    // one a POST hands over is (see `unsent` below).
    for _ in handshake.iter().filter(|message| is_request(message)) {
        handle.expect_answer();
    }
    let inbound: Inbound = stream::iter(handshake).chain(ReceiverStream::new(inbound_rx));
    // A shutdown waits for the session's clean-up.
    state.lifecycle.tasks().spawn(run_session(
        (sse.factory)(),
        (
            PollSender::new(outbound_tx.clone()),
            UntilInitialized::new(inbound, outbound_tx),
        ),
        session_ct.clone(),
        SessionEnd {
            fleet: state.fleet.clone(),
            reconnect_grace: state.sse_reconnect_grace,
            handing_off: state.lifecycle.handing_off().clone(),
            released,
            owner: caller.user_hash,
            id: id.clone(),
        },
    ));

    let mut endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?session_id={id}"))
        .retry(RECONNECT_AFTER);
    if let Some(event_id) = &opened.endpoint_event_id {
        endpoint = endpoint.id(event_id.as_str());
    }
    let replayed = opened.replay.into_iter().filter_map(|event| {
        let message = event.message?;
        let mut replayed = Event::default()
            .event("message")
            .json_data(&*message)
            .ok()?;
        if let Some(event_id) = event.event_id {
            replayed = replayed.id(event_id);
        }
        Some(Ok::<_, axum::Error>(replayed))
    });
    // Dropping the response stream (client gone, or shutdown) ends the
    // stream's handler here.
    let guard = session_ct.clone().drop_guard();
    let fleet = state.fleet.clone();
    // An answer counts as written (see `close_at_hand_off`) once its event
    // is handed to the response body, not before: the stream may end at any
    // point before that.
    let unsent = handle.clone();
    let messages = ReceiverStream::new(outbound_rx)
        .filter(move |message| {
            // The answer to a replayed `initialize` is not sent, but its
            // request was in flight.
            let restored = is_restored_initialize_answer(message);
            if restored {
                unsent.answered();
            }
            std::future::ready(!restored)
        })
        .then(move |message| {
            let (fleet, id) = (fleet.clone(), id.clone());
            async move {
                let answer = matches!(
                    message,
                    ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_)
                );
                let event_id = fleet.sse_event(&id, &message).await;
                let event = Event::default().event("message").json_data(&message)?;
                let event = match event_id {
                    Some(event_id) => event.id(event_id),
                    None => event,
                };
                Ok::<_, axum::Error>((event, answer))
            }
        })
        .map(move |written| {
            let _ = &guard;
            let (event, answer) = written?;
            if answer {
                handle.answered();
            }
            Ok(event)
        });
    let events = stream::once(async move { Ok(endpoint) })
        .chain(stream::iter(replayed))
        .chain(messages)
        .take_until(session_ct.cancelled_owned());
    let mut response = Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(state.sse_keep_alive)
                .text("keep-alive"),
        )
        .into_response();
    // Tell nginx-style proxies not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    response
}

/// Longest wait, at a hand-off, for a session's requests to be answered
/// before its stream is closed anyway.
const HAND_OFF_WAIT: Duration = Duration::from_secs(5);

/// Closes the stream of `handle` when this replica hands off (at shutdown),
/// once no request of it waits for its answer (at most [`HAND_OFF_WAIT`]):
/// an answer written before the stream closes is not lost to the client,
/// who reconnects elsewhere. Returns when the stream ends for any reason.
async fn close_at_hand_off(handing_off: CancellationToken, handle: StreamHandle) {
    tokio::select! {
        () = handle.closed.cancelled() => {}
        () = handing_off.cancelled() => {
            handle.close_when_idle(tokio::time::Instant::now() + HAND_OFF_WAIT).await;
        }
    }
}

/// How soon an `EventSource` reconnects after its stream broke (the SSE
/// `retry` field of the `endpoint` event).
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// What ends with a session's stream here, and what may outlive it.
struct SessionEnd {
    fleet: Fleet,
    /// `SSE_RECONNECT_SECONDS`.
    reconnect_grace: Duration,
    handing_off: CancellationToken,
    /// Set when the session moved to another stream (a takeover).
    released: Arc<AtomicBool>,
    owner: UserHash,
    id: String,
}

impl SessionEnd {
    /// The stream and handler here ended. The session ends with them unless
    /// it moved (a takeover), this replica is handing its sessions off (the
    /// clients reconnect elsewhere; what no client takes back is reaped by
    /// the fleet), or, with a fleet, its client reconnects within
    /// `SSE_RECONNECT_SECONDS`.
    async fn finish(self) {
        let Self {
            fleet,
            reconnect_grace,
            handing_off,
            released,
            owner,
            id,
        } = self;
        let handed_off = handing_off.is_cancelled();
        drop(handing_off);
        if released.load(Ordering::Acquire) {
            tracing::info!(session_id = %id, "sse stream closed: the session moved");
            return;
        }
        fleet.sse_streams().remove(&id);
        if handed_off {
            fleet.sse_detached(&owner, &id).await;
            tracing::info!(session_id = %id, "sse stream closed by the hand-off; the client may reconnect elsewhere");
            return;
        }
        if fleet.shares_streams() && !reconnect_grace.is_zero() {
            // Wait for a reconnection; end the session if none took it.
            tokio::spawn(end_unless_taken(fleet, owner, id, reconnect_grace));
            return;
        }
        end_session(&fleet, &owner, &id).await;
    }
}

/// After `grace`, ends session `id` unless its client took it back, here or
/// on another replica.
async fn end_unless_taken(fleet: Fleet, owner: UserHash, id: String, grace: Duration) {
    fleet.sse_detached(&owner, &id).await;
    tokio::time::sleep(grace).await;
    if fleet.sse_streams().get(&id, &owner).is_some() {
        return;
    }
    let stored = fleet.store().peek(&owner, &id).await;
    let moved = match stored {
        Ok(Some(stored)) => stored.record.replica_id != fleet.replica_id(),
        // Already gone, or the store cannot say: nothing to do now (the
        // fleet's reaper, or the TTL, ends it).
        _ => true,
    };
    if !moved {
        end_session(&fleet, &owner, &id).await;
    }
}

async fn end_session(fleet: &Fleet, owner: &UserHash, id: &str) {
    if let Err(error) = fleet.store().delete(owner, id).await {
        tracing::warn!(session_id = %id, %error, "could not delete ended sse session");
    }
    fleet.sse_ended(owner, id).await;
    tracing::info!(session_id = %id, "sse session closed");
}

/// Serves one SSE session's handler until its client leaves, it is
/// cancelled, or the handler stops; then [`SessionEnd::finish`].
async fn run_session<S: ServerHandler>(
    handler: S,
    transport: (PollSender<ServerJsonRpcMessage>, UntilInitialized<Inbound>),
    ct: CancellationToken,
    end: SessionEnd,
) {
    let id = end.id.clone();
    match tokio::time::timeout(
        INIT_TIMEOUT,
        serve_server_with_ct(handler, transport, ct.clone()),
    )
    .await
    {
        Ok(Ok(running)) => {
            let _ = running.waiting().await;
        }
        Ok(Err(error)) => {
            tracing::info!(session_id = %id, %error, "sse session ended before initialization")
        }
        Err(_) => tracing::info!(session_id = %id, "sse session sent no initialize in time"),
    }
    ct.cancel();
    end.finish().await;
}

/// The `session_id` query parameter of `/messages`.
#[derive(serde::Deserialize)]
struct MessagesQuery {
    session_id: Option<String>,
}

fn session_id_of(request: &Request) -> Option<String> {
    axum::extract::Query::<MessagesQuery>::try_from_uri(request.uri())
        .ok()?
        .0
        .session_id
        .filter(|id| !id.is_empty())
}

/// `POST /messages?session_id=<id>`: delivers one client message to its
/// session and answers `202 Accepted`.
///
/// | case | status |
/// |---|---|
/// | no `session_id` | 400 |
/// | unknown, ended or another user's session | 404 |
/// | no replica holds the session's stream within [`REATTACH_WAIT`] (its client has not reconnected) | 503, `Retry-After` |
/// | body over `MAX_REQUEST_BODY_BYTES` | 413 |
/// | invalid JSON | 400, JSON-RPC `-32700` |
/// | JSON that is no JSON-RPC message | 400, JSON-RPC `-32600` |
/// | store unreachable | 503 |
pub(crate) async fn post_message<S: ServerHandler>(
    State(sse): State<Arc<SseTransport<S>>>,
    request: Request,
) -> Response {
    let (store, fleet) = (sse.state.fleet.store(), &sse.state.fleet);
    let Some(id) = session_id_of(&request) else {
        return (
            StatusCode::BAD_REQUEST,
            "Bad Request: the session_id query parameter is required",
        )
            .into_response();
    };
    let caller = caller_of(&request);
    let mut record = match store.access(&caller.user_hash, &id).await {
        Ok(Some(record)) if record.transport == TransportKind::Sse => record,
        Ok(Some(_)) => {
            tracing::info!(session_id = %id, "unknown session id on /messages");
            return session_not_found();
        }
        Ok(None) => match continuing(fleet, &caller, &id).await {
            Ok(record) => record,
            Err(response) => return response,
        },
        Err(error) => return store_failure(&error),
    };

    let (parts, body) = request.into_parts();
    let limit = sse.state.max_request_body_bytes;
    let bytes = match super::body::read_limited(body, limit).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let message: ClientJsonRpcMessage = match serde_json::from_slice(&bytes) {
        Ok(message) => message,
        Err(error) if error.is_syntax() || error.is_eof() => {
            return jsonrpc_error(
                StatusCode::BAD_REQUEST,
                PARSE_ERROR,
                format!("Parse error: {error}"),
            );
        }
        Err(error) => {
            return jsonrpc_error(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                format!("Invalid Request: {error}"),
            );
        }
    };
    if let ClientJsonRpcMessage::Request(request) = &message
        && let ClientRequest::InitializeRequest(initialize) = &request.request
    {
        record.initialize_params = Some(Arc::new(initialize.params.clone()));
        if let Err(error) = store.update(&record).await {
            return store_failure(&error);
        }
    }
    // A request on a session that was never initialized, from a client that
    // lost its session without saying so (see sse_reconnect): the session
    // continues the one it lost, whose `initialize` its handler gets first.
    let mut prelude = Vec::new();
    if record.initialize_params.is_none() && needs_initialized_session(&message) {
        match sse_reconnect::lost_session(fleet, &record).await {
            Ok(Some(lost)) => match sse_reconnect::pair(fleet, &mut record, &lost).await {
                Ok(true) => prelude = replayed_handshake(&record),
                Ok(false) => {}
                Err(error) => return store_failure(&error),
            },
            Ok(None) => {}
            Err(error) => return store_failure(&error),
        }
    }
    // Where the session's stream is: here, on the replica the record names,
    // or, while its client reconnects, on the replica taking it over.
    let mut holder = record.replica_id.clone();
    let deadline = tokio::time::Instant::now() + REATTACH_WAIT;
    loop {
        // Unless the stream closed meanwhile (a hand-off or a takeover):
        // then the message waits for the session's next stream.
        if let Some(handle) = fleet.sse_streams().get(&record.id, &caller.user_hash)
            && deliver_here(&handle, &mut prelude, &message, &parts, &record, store).await
        {
            return (StatusCode::ACCEPTED, "Accepted").into_response();
        }
        if holder != fleet.replica_id() {
            let mut delivery = Ok(Delivery::Delivered);
            for next in prelude.iter().chain(std::iter::once(&message)) {
                delivery = fleet
                    .forward_to_stream(&holder, &caller, record.clone(), next.clone())
                    .await;
                if !matches!(delivery, Ok(Delivery::Delivered)) {
                    break;
                }
            }
            match delivery {
                Ok(Delivery::Delivered) => {
                    return (StatusCode::ACCEPTED, "Accepted").into_response();
                }
                Ok(Delivery::Gone) => {}
                Err(error) => return store_failure(&error),
            }
        }
        // Nobody holds the stream: a client that reconnected without
        // Last-Event-ID may have opened a new session meanwhile.
        if prelude.is_empty() && record.initialize_params.is_some() {
            match sse_reconnect::fresh_session(fleet, &record).await {
                Ok(Some(mut fresh)) => {
                    match sse_reconnect::pair(fleet, &mut fresh, &record).await {
                        Ok(true) => {
                            prelude = replayed_handshake(&fresh);
                            holder = fresh.replica_id.clone();
                            record = fresh;
                            continue;
                        }
                        Ok(false) => {}
                        Err(error) => return store_failure(&error),
                    }
                }
                Ok(None) => {}
                Err(error) => return store_failure(&error),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        match store.peek(&caller.user_hash, &record.id).await {
            Ok(Some(stored)) => holder = stored.record.replica_id,
            // Gone from Redis: ended, or lost with Redis's data, in which
            // case reading it as a request writes it back from this
            // replica's copy (see the fleet's `data_loss`).
            Ok(None) => match store.access(&caller.user_hash, &record.id).await {
                Ok(Some(found)) => holder = found.replica_id,
                // Paired with a fresh session by another message meanwhile.
                Ok(None) if prelude.is_empty() => {
                    match continuing(fleet, &caller, &record.id).await {
                        Ok(next) => {
                            holder = next.replica_id.clone();
                            record = next;
                        }
                        Err(response) => return response,
                    }
                }
                Ok(None) => return session_not_found(),
                Err(error) => return store_failure(&error),
            },
            Err(error) => return store_failure(&error),
        }
    }
    // No replica holds the stream: its client has not reconnected (yet).
    tracing::info!(session_id = %id, %holder, "no replica holds the sse stream");
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        "Service Unavailable: the session's event stream is not connected; reconnect GET /sse \
         with Last-Event-ID, then retry",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// The session continuing `lost_id`, an HTTP+SSE session of `caller`'s
/// whose client reconnected without `Last-Event-ID` and whose new session
/// took it over (see `sse_reconnect`); `404` when there is none.
async fn continuing(
    fleet: &Fleet,
    caller: &Caller,
    lost_id: &str,
) -> Result<SessionRecord, Response> {
    match sse_reconnect::continuation(fleet, &caller.user_hash, lost_id).await {
        Ok(Some(next)) => {
            tracing::info!(
                session_id = %next.id,
                lost = %lost_id,
                "a message for a session whose client reconnected goes to the session continuing it"
            );
            Ok(next)
        }
        Ok(None) => {
            tracing::info!(session_id = %lost_id, "unknown session id on /messages");
            Err(session_not_found())
        }
        Err(error) => Err(store_failure(&error)),
    }
}

/// Hands `prelude` (emptied once taken), then `message` with the request's
/// `parts` and the session's context attached, to the session's stream held
/// here. `false` when the stream closed before taking them all.
async fn deliver_here(
    handle: &StreamHandle,
    prelude: &mut Vec<ClientJsonRpcMessage>,
    message: &ClientJsonRpcMessage,
    parts: &axum::http::request::Parts,
    record: &SessionRecord,
    store: &Arc<dyn SessionStore>,
) -> bool {
    for early in prelude.iter() {
        if !handle.send(early.clone()).await {
            return false;
        }
    }
    prelude.clear();
    let mut parts = parts.clone();
    parts
        .extensions
        .insert(SessionContext::new(record.clone(), store.clone()));
    let mut message = message.clone();
    message.insert_extension(parts);
    handle.send(message).await
}

/// Whether `message` is a request that needs an initialized session (any
/// but `initialize` and `ping`, MCP 2024-11-05, Lifecycle §Initialization).
fn needs_initialized_session(message: &ClientJsonRpcMessage) -> bool {
    matches!(
        message,
        ClientJsonRpcMessage::Request(request)
            if !matches!(
                request.request,
                ClientRequest::InitializeRequest(_) | ClientRequest::PingRequest(_)
            )
    )
}

/// How long a `POST /messages` waits for its session's stream to be
/// connected again (a stream closing at a hand-off, at most
/// [`HAND_OFF_WAIT`], then an `EventSource` reconnecting after its replica
/// went away) before it is refused with `503`.
const REATTACH_WAIT: Duration = Duration::from_secs(HAND_OFF_WAIT.as_secs() + 3);

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> Request {
        Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn session_id_is_read_from_the_query() {
        assert_eq!(
            session_id_of(&request("/messages?a=1&session_id=abc%20d")).as_deref(),
            Some("abc d")
        );
        assert_eq!(session_id_of(&request("/messages?a=1")), None);
        assert_eq!(session_id_of(&request("/messages?session_id=")), None);
        assert_eq!(session_id_of(&request("/messages")), None);
    }
}
