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

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{StreamExt, stream};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rmcp::{
    ServerHandler,
    model::{ClientJsonRpcMessage, ClientRequest, ServerJsonRpcMessage},
    service::serve_server_with_ct,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::PollSender;

use super::{
    TransportState,
    errors::{INVALID_REQUEST, PARSE_ERROR, jsonrpc_error, session_not_found, store_failure},
    sse_lifecycle::UntilInitialized,
};
use crate::{
    fleet::{Delivery, Fleet, StreamHandle},
    identity::{Caller, UserHash},
    session::SessionContext,
    store::{SessionRecord, TransportKind},
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

/// `GET /sse`: creates a session and streams its server messages.
///
/// Answers `503` when the store cannot record the session or the replica is
/// shutting down (the client reconnects, through the load balancer, to a
/// live replica), `429` when the caller has too many sessions.
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
    let id = uuid::Uuid::new_v4().simple().to_string();
    let record = SessionRecord::new(
        &id,
        caller.user_hash.clone(),
        TransportKind::Sse,
        state.fleet.replica_id().to_owned(),
    );
    if let Err(error) = state.fleet.store().create(&record).await {
        return store_failure(&error);
    }

    let (inbound_tx, inbound_rx) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (outbound_tx, outbound_rx) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    // Ended by the client leaving, or by this replica handing off at shutdown.
    let session_ct = state.lifecycle.handing_off().child_token();
    state.fleet.sse_streams().insert(
        id.clone(),
        StreamHandle {
            owner: caller.user_hash.clone(),
            inbound: inbound_tx,
            closed: session_ct.clone(),
        },
    );
    // A shutdown waits for the session's clean-up (its record's deletion).
    state.lifecycle.tasks().spawn(run_session(
        (sse.factory)(),
        (
            PollSender::new(outbound_tx.clone()),
            UntilInitialized::new(ReceiverStream::new(inbound_rx), outbound_tx),
        ),
        session_ct.clone(),
        state.fleet.clone(),
        caller.user_hash,
        id.clone(),
    ));
    tracing::info!(session_id = %id, "sse session opened");

    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?session_id={id}"));
    // Dropping the response stream (client gone, or shutdown) ends the session.
    let guard = session_ct.clone().drop_guard();
    let messages = ReceiverStream::new(outbound_rx).map(move |message| {
        let _ = &guard;
        Event::default().event("message").json_data(&message)
    });
    let events = stream::once(async move { Ok(endpoint) })
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

/// Serves one SSE session until its client leaves, it is cancelled, or the
/// handler stops; then forgets it here and in the store.
async fn run_session<S: ServerHandler>(
    handler: S,
    transport: (
        PollSender<ServerJsonRpcMessage>,
        UntilInitialized<ReceiverStream<ClientJsonRpcMessage>>,
    ),
    ct: tokio_util::sync::CancellationToken,
    fleet: Fleet,
    owner: UserHash,
    id: String,
) {
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
    fleet.sse_streams().remove(&id);
    if let Err(error) = fleet.store().delete(&owner, &id).await {
        tracing::warn!(session_id = %id, %error, "could not delete ended sse session");
    }
    tracing::info!(session_id = %id, "sse session closed");
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
/// | unknown, ended or another user's session, or its stream's replica gone | 404 |
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
        Ok(_) => {
            tracing::info!(session_id = %id, "unknown session id on /messages");
            return session_not_found();
        }
        Err(error) => return store_failure(&error),
    };

    let (parts, body) = request.into_parts();
    let limit = sse.state.max_request_body_bytes;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload Too Large: the limit is {limit} bytes"),
            )
                .into_response();
        }
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("Bad Request: {error}")).into_response();
        }
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&bytes) {
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
        record.initialize_params = Some(initialize.params.clone());
        if let Err(error) = store.update(&record).await {
            return store_failure(&error);
        }
    }
    if let Some(handle) = fleet.sse_streams().get(&id, &caller.user_hash) {
        let mut parts = parts;
        parts
            .extensions
            .insert(SessionContext::new(record, store.clone()));
        message.insert_extension(parts);
        if handle.inbound.send(message).await.is_err() {
            return session_not_found();
        }
        return (StatusCode::ACCEPTED, "Accepted").into_response();
    }
    // The stream is held by another replica: send the message there.
    let holder = record.replica_id.clone();
    match fleet
        .forward_to_stream(&holder, &caller, record, message)
        .await
    {
        Ok(Delivery::Delivered) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Ok(Delivery::Gone) => {
            tracing::info!(session_id = %id, %holder, "sse stream holder is gone");
            if let Err(error) = store.delete(&caller.user_hash, &id).await {
                tracing::warn!(session_id = %id, %error, "could not delete orphaned sse session");
            }
            session_not_found()
        }
        Err(error) => store_failure(&error),
    }
}

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
