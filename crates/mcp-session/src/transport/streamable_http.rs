//! Streamable HTTP at `/mcp` (MCP 2025-03-26 .. 2025-11-25 with sessions,
//! 2026-07-28 stateless), through rmcp's [`StreamableHttpService`].
//!
//! rmcp does the protocol work: content negotiation, the `initialize`
//! handshake, SSE response streams, `Mcp-Session-Id`, the stateless path. This
//! module puts the session store in front of it and behind it:
//!
//! - **in front**, [`handle`] checks that a request naming a session names one
//!   of the caller's live sessions (renewing its TTL), and answers `404` for any
//!   other id before rmcp sees the request (MCP 2025-06-18, Transports §Session
//!   Management: "the server MUST respond to requests containing that session
//!   ID with HTTP 404 Not Found");
//! - **behind it**, [`StoreBridge`] implements rmcp's
//!   [`SessionStore`](rmcp::transport::streamable_http_server::session::SessionStore):
//!   rmcp hands it the client's `initialize` parameters after the handshake
//!   (we create the [`SessionRecord`] under the caller's user hash), asks it
//!   for them when a request reaches a replica whose memory lacks the session
//!   (rmcp replays the handshake: the session is restored), and tells it when a
//!   `DELETE` ends the session.
//!
//! - **instead of it**, a plain `initialize` and the client's
//!   `notifications/initialized` after it are answered without a session
//!   worker ([`handshake`](super::handshake)); the session's first request on
//!   any replica restores one.
//!
//! rmcp's store interface carries no caller, so [`handle`] runs rmcp inside a
//! task-local [`RequestScope`] that the bridge reads.
//!
//! With Redis, [`handle`] also has the fleet watch SSE response bodies
//! (`mcp_session_fleet`'s response streams): who owns a request's stream,
//! and whether the client left before its end.

use std::{convert::Infallible, marker::PhantomData, sync::Arc};

use tower::{ServiceExt, util::BoxCloneSyncService};

use axum::{
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use parking_lot::Mutex;
use rmcp::{
    ServerHandler,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::{
            SessionState, SessionStore as RmcpSessionStore, SessionStoreError,
        },
    },
};

use http_body_util::BodyExt;
use mcp_session_core::session::HEADER_SESSION_ID;

use super::{
    HEADER_MCP_METHOD, TransportState, body,
    errors::{PARSE_ERROR, jsonrpc_error, session_not_found, store_failure},
    handshake::Handshakes,
    origin_check::OriginPolicy,
};
use crate::{
    fleet::{Fleet, StreamOwner, with_caller},
    identity::Caller,
    listen,
    response_stream::StreamCloser,
    session::SessionContext,
    store::{SessionRecord, SessionStore, StoreError, TransportKind},
};

tokio::task_local! {
    static SCOPE: RequestScope;
}

/// What the [`StoreBridge`] needs to know about the HTTP request being served.
#[derive(Clone)]
struct RequestScope {
    caller: Caller,
    /// Set when creating the session record failed, so [`handle`] can turn
    /// rmcp's successful `initialize` into an error instead of handing out a
    /// session id that no replica will accept.
    create_error: Arc<Mutex<Option<StoreError>>>,
}

fn scoped_caller() -> Result<Caller, SessionStoreError> {
    SCOPE
        .try_with(|scope| scope.caller.clone())
        .map_err(|_| "session store used outside of an HTTP request scope".into())
}

/// rmcp's session store interface, implemented on our [`SessionStore`].
pub struct StoreBridge {
    fleet: Fleet,
    store: Arc<dyn SessionStore>,
    replica_id: String,
}

impl StoreBridge {
    /// Bridges `fleet`'s store; new sessions are recorded as created by this
    /// replica. With Redis, the store announces deletions to every replica
    /// itself (`fleet::FleetStore`).
    pub fn new(fleet: Fleet) -> Self {
        Self {
            store: fleet.store().clone(),
            replica_id: fleet.replica_id().to_owned(),
            fleet,
        }
    }
}

#[async_trait::async_trait]
impl RmcpSessionStore for StoreBridge {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let caller = scoped_caller()?;
        let record = self.store.access(&caller.user_hash, session_id).await?;
        Ok(record
            .and_then(|record| record.initialize_params)
            .map(|params| SessionState::new(Arc::unwrap_or_clone(params))))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        if self.fleet.take_failed_handshake(session_id) {
            // The handler refused the handshake: no session to keep.
            self.fleet.close_worker(session_id).await;
            return Ok(());
        }
        let caller = scoped_caller()?;
        let mut record = SessionRecord::new(
            session_id,
            caller.user_hash,
            TransportKind::StreamableHttp,
            self.replica_id.clone(),
        );
        record.initialize_params = Some(Arc::new(state.initialize_params.clone()));
        if let Err(error) = self.store.create(&record).await {
            let message = error.to_string();
            let _ = SCOPE.try_with(|scope| {
                *scope.create_error.lock() = Some(error);
            });
            return Err(message.into());
        }
        Ok(())
    }

    /// Deletes the record; with a fleet, the store announces the end to
    /// every replica (which drop their workers and streams) before it returns.
    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let caller = scoped_caller()?;
        self.store.delete(&caller.user_hash, session_id).await?;
        Ok(())
    }
}

/// rmcp's Streamable HTTP service behind `dyn`.
///
/// rmcp's request future is large: it holds the session manager's futures
/// inline (11.8 KB in a release build before [`FleetSessionManager`] boxed
/// its largest). Called directly, that future is built inside the
/// handler's and copied with it on every request: 10k to 20k more
/// instructions per request (`scripts/callgrind.sh`). Called through `dyn`,
/// rmcp's own tower service builds it in place.
///
/// [`FleetSessionManager`]: crate::fleet::FleetSessionManager
type RmcpService = BoxCloneSyncService<
    Request,
    Response<http_body_util::combinators::BoxBody<axum::body::Bytes, Infallible>>,
    Infallible,
>;

/// The rmcp service, shared by all requests, and the fleet it serves in.
pub(crate) struct StreamableHttp<S: ServerHandler> {
    service: RmcpService,
    /// The handler type the service makes.
    handler: PhantomData<fn() -> S>,
    fleet: Fleet,
    /// `MAX_REQUEST_BODY_BYTES`.
    max_request_body_bytes: usize,
    /// `ALLOWED_HOSTS` and `ALLOWED_ORIGINS`, checked before anything else.
    policy: Arc<OriginPolicy>,
    /// Answers a plain `initialize` without rmcp's session worker.
    handshakes: Handshakes<S>,
}

impl<S: ServerHandler> StreamableHttp<S> {
    /// Builds the rmcp service for `factory`, with the transports' `state`;
    /// `policy` checks `Host` and `Origin` (rmcp's own check is off: see
    /// [`origin_check`](super::origin_check)).
    pub(crate) fn new(
        factory: Arc<dyn Fn() -> S + Send + Sync>,
        state: &TransportState,
        policy: Arc<OriginPolicy>,
    ) -> Self {
        let mut http_config = StreamableHttpServerConfig::default()
            .with_sse_keep_alive(Some(state.sse_keep_alive))
            .with_max_request_body_bytes(state.max_request_body_bytes)
            .with_cancellation_token(state.lifecycle.stopped().child_token())
            .disable_allowed_hosts();
        http_config.session_store = Some(Arc::new(StoreBridge::new(state.fleet.clone())));
        let handshakes = Handshakes {
            factory: factory.clone(),
            fleet: state.fleet.clone(),
            sse_retry: http_config.sse_retry,
            stopped: state.lifecycle.stopped().child_token(),
        };
        let manager = state
            .fleet
            .session_manager(state.lifecycle.handing_off().clone());
        let service =
            StreamableHttpService::new(move || Ok(factory()), Arc::new(manager), http_config);
        Self {
            service: BoxCloneSyncService::new(service),
            handler: PhantomData,
            fleet: state.fleet.clone(),
            max_request_body_bytes: state.max_request_body_bytes,
            policy,
            handshakes,
        }
    }
}

/// A `POST` whose `Mcp-Method` is `subscriptions/listen` (MCP 2026-07-28):
/// its body is read here, and the change channels its filter names are
/// subscribed before rmcp acknowledges the subscription
/// ([`listen::prepare`]). Other requests pass untouched.
///
/// # Errors
/// The response to send instead: `413` for a body over
/// `MAX_REQUEST_BODY_BYTES`, `400` for a body that could not be read.
async fn prepare_listen<S: ServerHandler>(
    http: &StreamableHttp<S>,
    caller: &Caller,
    request: Request,
) -> Result<Request, Response> {
    let is_listen = request.method() == axum::http::Method::POST
        && request
            .headers()
            .get(HEADER_MCP_METHOD)
            .is_some_and(|method| method.as_bytes() == listen::LISTEN_METHOD.as_bytes());
    if !is_listen {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let bytes = body::read_limited(body, http.max_request_body_bytes).await?;
    if let Some(prepared) = listen::prepare(&http.fleet, caller.user_hash.clone(), &bytes).await {
        parts.extensions.insert(prepared);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// rmcp answers a JSON body that is no JSON-RPC message with `415`; the
/// media type was right, so we answer `400` with the JSON-RPC parse error
/// (JSON-RPC 2.0 §5.1, `-32700`) and rmcp's explanation.
async fn undecodable_body(response: Response<Body>) -> Response {
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let detail = text
        .strip_prefix("fail to deserialize request body")
        .unwrap_or(&text)
        .trim();
    jsonrpc_error(
        StatusCode::BAD_REQUEST,
        PARSE_ERROR,
        format!("Parse error: the body is not a JSON-RPC message: {detail}"),
    )
}

fn header_session_id(request: &Request) -> Option<String> {
    request
        .headers()
        .get(HEADER_SESSION_ID)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Serves one `/mcp` request (POST, GET or DELETE).
///
/// 0. A `Host` outside `ALLOWED_HOSTS`, or a browser `Origin` outside a set
///    `ALLOWED_ORIGINS`, gets `403` (DNS rebinding; MCP 2025-11-25,
///    Transports §Security Warning).
/// 1. A request that carries `Mcp-Session-Id` must name a live session of the
///    caller: otherwise `404 Not Found` (unknown, expired, deleted and foreign
///    ids alike), or `503` when the store cannot be reached.
/// 2. A plain `initialize` (no session id), and the `initialized` of a session
///    whose handshake was answered so, are answered here
///    ([`handshake`](super::handshake)).
/// 3. rmcp serves the request, with the caller in scope for [`StoreBridge`].
/// 4. If rmcp created a session but the store refused it, the session is
///    closed and the client gets `503` (store down) or `429` (per-user limit).
pub(crate) async fn handle<S: ServerHandler>(
    State(http): State<Arc<StreamableHttp<S>>>,
    request: Request,
) -> Result<Response, Infallible> {
    if let Some(refused) = http.policy.refusal(request.uri(), request.headers()) {
        return Ok(refused);
    }
    // A body over the limit is drained before its `413` (see `body`).
    let mut request =
        match Box::pin(body::refuse_oversized(request, http.max_request_body_bytes)).await {
            Ok(request) => request,
            Err(response) => return Ok(response),
        };
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anonymous);
    let session_id = header_session_id(&request);
    let mut workerless_handshake = false;
    if let Some(id) = &session_id {
        let store = http.fleet.store();
        match store.access(&caller.user_hash, id).await {
            Ok(Some(record)) => {
                workerless_handshake = record.workerless_handshake;
                request
                    .extensions_mut()
                    .insert(SessionContext::new(record, store.clone()));
            }
            Ok(None) => {
                tracing::info!(session_id = %id, "unknown session id on /mcp");
                return Ok(session_not_found());
            }
            Err(error) => return Ok(store_failure(&error)),
        }
    }
    // A plain handshake is answered without a session worker, and so is
    // the `initialized` that follows it.
    if request.method() == axum::http::Method::POST {
        let answered = match &session_id {
            // Boxed: held inline, these would grow every request's future.
            None => {
                Box::pin(
                    http.handshakes
                        .initialize(&caller, request, http.max_request_body_bytes),
                )
                .await
            }
            Some(_) if workerless_handshake => Box::pin(http.handshakes.initialized(request)).await,
            Some(_) => Err(request),
        };
        request = match answered {
            Ok(response) => return Ok(response),
            Err(request) => request,
        };
    }
    // A listen request follows its changes before rmcp acknowledges it.
    let mut request = match prepare_listen(&http, &caller, request).await {
        Ok(request) => request,
        Err(response) => return Ok(response),
    };
    let is_delete = request.method() == axum::http::Method::DELETE;
    let closer = (request.method() == axum::http::Method::POST).then(StreamCloser::default);
    if let Some(closer) = &closer {
        request.extensions_mut().insert(closer.clone());
    }
    // A POST's response stream belongs to its (checked) session or, on the
    // stateless path, to the caller.
    let owner = (request.method() == axum::http::Method::POST).then(|| match session_id {
        Some(id) => StreamOwner::Session(id),
        None => StreamOwner::User(caller.user_hash.clone()),
    });
    let json_post = request.method() == axum::http::Method::POST
        && request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("application/json"));
    let user_hash = caller.user_hash.clone();
    let scope = RequestScope {
        caller,
        create_error: Arc::default(),
    };
    let create_error = scope.create_error.clone();
    let served = http.service.clone().oneshot(request);
    let Ok(response) = SCOPE.scope(scope, with_caller(user_hash, served)).await;
    let response = response.map(Body::new);
    let failed = create_error.lock().take();
    if let Some(error) = failed {
        if let Some(id) = response
            .headers()
            .get(HEADER_SESSION_ID)
            .and_then(|value| value.to_str().ok())
        {
            http.fleet.close_worker(id).await;
        }
        return Ok(store_failure(&error));
    }
    if json_post && response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return Ok(undecodable_body(response).await);
    }
    if is_delete && response.status() == StatusCode::ACCEPTED {
        // rmcp answers a DELETE with 202; the session is gone at once, and
        // clients (the Python SDK) expect 200 or 204 for a termination.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let close = closer.map(|StreamCloser(token)| token);
    Ok(http
        .fleet
        .watch_response(response, owner, close)
        .map(Body::new))
}
