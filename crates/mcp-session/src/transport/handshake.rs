//! The `initialize` handshake of a Streamable HTTP session, answered without
//! a session worker.
//!
//! rmcp answers `initialize` by starting the session's worker (its
//! `LocalSessionWorker`: six channels, four tasks), which then waits in this
//! replica's memory for the session's next request. Behind a round-robin load
//! balancer that request reaches this replica only one time in N; the others
//! restore a worker of their own from the session's record (rmcp's restore
//! replays the handshake). So the handshake's worker was mostly memory held
//! for nothing, and the most expensive part of a session start.
//!
//! Here a replica answers a plain `initialize` itself: the service's handler
//! answers it on a one-request rmcp service (the one rmcp runs for a
//! stateless request), the record is created with the client's parameters,
//! and the answer goes out with the new `Mcp-Session-Id`. No worker exists
//! until a request needs one; then it is restored from the record, on this
//! replica as on any other. The record says so
//! ([`SessionRecord::workerless_handshake`]), and the client's
//! `notifications/initialized`, which no worker waits for (a restored worker
//! replays its own), is acknowledged with `202` without reaching rmcp.
//!
//! Only the plain case is answered here: a request that any of rmcp's checks
//! could refuse (an `Accept` with weights, a standard header that
//! contradicts the body, a per-request protocol version) goes to rmcp, with
//! its body, and gets rmcp's handshake and rmcp's errors.
//!
//! MCP 2025-11-25, Lifecycle §Initialization; Transports §Session Management.

use std::{
    borrow::Cow,
    sync::{Arc, LazyLock},
    time::Duration,
};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use memchr::memmem;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, Service,
    model::{
        ClientJsonRpcMessage, ClientNotification, ClientRequest, GetExtensions, GetMeta,
        InitializeResult, ProtocolVersion, ServerConfig, ServerJsonRpcMessage, ServerResult,
    },
    service::{NotificationContext, RequestContext, serve_directly_with_ct},
    transport::{
        OneshotTransport,
        common::{
            http_header::{EVENT_STREAM_MIME_TYPE, JSON_MIME_TYPE},
            server_side_http::session_id,
        },
    },
};
use sse_stream::Sse;
use tokio_util::sync::CancellationToken;

use super::{
    HEADER_MCP_METHOD, HEADER_MCP_NAME, HEADER_MCP_PROTOCOL_VERSION, body, errors::store_failure,
};
use crate::{
    fleet::Fleet,
    identity::Caller,
    store::{SessionRecord, TransportKind},
};
use mcp_session_core::session::HEADER_SESSION_ID;

/// The largest body read to tell a `notifications/initialized` (about 60
/// bytes) from another message, in bytes. A larger body goes to rmcp unread.
const INITIALIZED_PEEK_BYTES: u64 = 512;

/// `notifications/initialized`, as it appears in a body.
const INITIALIZED_METHOD: &str = "notifications/initialized";

/// What answering a handshake needs: the service's handlers, the store, and
/// the transport's settings.
pub(crate) struct Handshakes<S> {
    /// Makes the handler that answers one `initialize`.
    pub(super) factory: Arc<dyn Fn() -> S + Send + Sync>,
    /// Its store takes the session's record, created by its replica.
    pub(super) fleet: Fleet,
    /// rmcp's reconnection hint, sent first as its priming event
    /// (`retry:`; SEP-1699); `None` sends none.
    pub(super) sse_retry: Option<Duration>,
    /// Cancelled when the server stops: ends a handler still answering.
    pub(super) stopped: CancellationToken,
}

impl<S: ServerHandler> Handshakes<S> {
    /// Answers `request`, a `POST` without `Mcp-Session-Id`, if it is a plain
    /// `initialize` (see the module docs).
    ///
    /// # Errors
    /// The request itself, its body restored, when rmcp is to serve it: not
    /// an `initialize`, or one whose headers rmcp may refuse.
    /// `limit` is `MAX_REQUEST_BODY_BYTES`.
    pub(crate) async fn initialize(
        &self,
        caller: &Caller,
        request: Request,
        limit: usize,
    ) -> Result<Response, Request> {
        if !plain_headers(request.headers(), "initialize") {
            return Err(request);
        }
        let (parts, body) = request.into_parts();
        let bytes = match body::read_limited(body, limit).await {
            Ok(bytes) => bytes,
            Err(refusal) => return Ok(refusal),
        };
        let pass = |parts, bytes| Request::from_parts(parts, Body::from(bytes));
        let Ok(ClientJsonRpcMessage::Request(mut request)) = serde_json::from_slice(&bytes) else {
            return Err(pass(parts, bytes));
        };
        let ClientRequest::InitializeRequest(initialize) = &request.request else {
            return Err(pass(parts, bytes));
        };
        let version_header = parts.headers.get(HEADER_MCP_PROTOCOL_VERSION);
        if version_header.is_some_and(|header| {
            header.as_bytes() != initialize.params.protocol_version.as_str().as_bytes()
        }) || request.request.get_meta().protocol_version().is_some()
        {
            return Err(pass(parts, bytes));
        }
        drop(bytes);
        let params = initialize.params.clone();
        request.request.extensions_mut().insert(parts);
        let messages = match self.answer(ClientJsonRpcMessage::Request(request)).await {
            Some(messages) => messages,
            None => {
                return Ok((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error: the handler gave no answer to `initialize`",
                )
                    .into_response());
            }
        };
        let accepted = matches!(messages.last(), Some(ServerJsonRpcMessage::Response(_)));
        let session = if accepted {
            let id = session_id();
            let mut record = SessionRecord::new(
                id.as_ref(),
                caller.user_hash.clone(),
                TransportKind::StreamableHttp,
                self.fleet.replica_id(),
            );
            record.initialize_params = Some(Arc::new(params));
            record.workerless_handshake = true;
            if let Err(error) = self.fleet.store().create(&record).await {
                return Ok(store_failure(&error));
            }
            Some(id)
        } else {
            // A refused handshake leaves no session: the client gets the
            // handler's error and no id.
            None
        };
        Ok(self.sse_response(&messages, session.as_deref()))
    }

    /// The handler's answer to `message`, an `initialize` request, with
    /// whatever it sent before it (notifications); `None` if it ended without
    /// answering.
    async fn answer(&self, message: ClientJsonRpcMessage) -> Option<Vec<ServerJsonRpcMessage>> {
        let (transport, mut receiver) = OneshotTransport::<RoleServer>::new(message);
        // Kept until the answer is in: dropping it cancels the service.
        let _service = serve_directly_with_ct(
            Negotiating((self.factory)()),
            transport,
            None,
            self.stopped.child_token(),
        );
        let mut messages = Vec::with_capacity(1);
        while let Some(message) = receiver.recv().await {
            let last = matches!(
                message,
                ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_)
            );
            messages.push(message);
            if last {
                return Some(messages);
            }
        }
        None
    }

    /// `messages` as rmcp frames a handshake's answer: its priming event
    /// (event id `0`, with the reconnection hint), then one event per
    /// message; `Mcp-Session-Id` when a session was created.
    fn sse_response(&self, messages: &[ServerJsonRpcMessage], session: Option<&str>) -> Response {
        let mut events = Vec::with_capacity(512);
        if let Some(retry) = self.sse_retry {
            let priming = Sse::default()
                .data("")
                .id("0")
                .retry(retry.as_millis() as u64);
            events.extend_from_slice(&Bytes::from(priming));
        }
        for message in messages {
            let data = serde_json::to_string(message).expect("a JSON-RPC message serializes");
            events.extend_from_slice(&Bytes::from(Sse::default().data(data)));
        }
        let mut response = Response::new(Body::from(events));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(EVENT_STREAM_MIME_TYPE),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        if let Some(id) = session
            && let Ok(value) = HeaderValue::from_str(id)
        {
            headers.insert(HEADER_SESSION_ID, value);
        }
        response
    }

    /// Acknowledges `request`, a `POST` naming a session whose handshake was
    /// answered here or on another replica without a worker
    /// ([`SessionRecord::workerless_handshake`]), if it is the client's
    /// `notifications/initialized`: `202 Accepted`, as rmcp answers a
    /// notification, with nothing for a worker to do.
    ///
    /// # Errors
    /// The request itself, its body restored, when rmcp is to serve it: any
    /// other message, a body over 512 bytes or of unknown length, or headers
    /// rmcp may refuse.
    pub(crate) async fn initialized(&self, request: Request) -> Result<Response, Request> {
        // Every small POST of such a session comes here, tool calls too:
        // what can be told without the body is told first, and the body is
        // parsed only when it names the method.
        let headers = request.headers();
        let small = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|length| std::str::from_utf8(length.as_bytes()).ok())
            .and_then(|length| length.parse::<u64>().ok())
            .is_some_and(|length| length <= INITIALIZED_PEEK_BYTES);
        let other_method = headers
            .get(HEADER_MCP_METHOD)
            .is_some_and(|method| method.as_bytes() != INITIALIZED_METHOD.as_bytes());
        if !small || other_method {
            return Err(request);
        }
        let (parts, body) = request.into_parts();
        let bytes = match body::read_limited(body, INITIALIZED_PEEK_BYTES as usize).await {
            Ok(bytes) => bytes,
            Err(refusal) => return Ok(refusal),
        };
        static FINDER: LazyLock<memmem::Finder<'static>> =
            LazyLock::new(|| memmem::Finder::new(INITIALIZED_METHOD));
        let initialized = FINDER.find(&bytes).is_some()
            && plain_headers(&parts.headers, INITIALIZED_METHOD)
            && known_version(&parts.headers)
            && matches!(
                serde_json::from_slice(&bytes),
                Ok(ClientJsonRpcMessage::Notification(notification))
                    if matches!(notification.notification, ClientNotification::InitializedNotification(_))
            );
        if initialized {
            Ok(StatusCode::ACCEPTED.into_response())
        } else {
            Err(Request::from_parts(parts, Body::from(bytes)))
        }
    }
}

/// Whether `headers` leave nothing for rmcp to refuse in a `POST` of
/// `method`: a JSON body, an `Accept` of both JSON and SSE without weights,
/// and no standard header (MCP 2026-07-28, SEP-2243) but an `Mcp-Method` of
/// `method`. Anything else goes to rmcp, which decides.
fn plain_headers(headers: &HeaderMap, method: &str) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
            essence.trim().eq_ignore_ascii_case(JSON_MIME_TYPE)
        });
    let method_header = headers.get_all(HEADER_MCP_METHOD);
    let mut methods = method_header.iter();
    let method_ok = match (methods.next(), methods.next()) {
        (None, _) => true,
        (Some(value), None) => value.as_bytes() == method.as_bytes(),
        _ => false,
    };
    json && method_ok && !headers.contains_key(HEADER_MCP_NAME) && accepts_json_and_sse(headers)
}

/// Whether `Accept` names both `application/json` and `text/event-stream`
/// (MCP 2025-11-25, Transports §Sending Messages to the Server), without
/// parameters: a weight (`q=0`) could exclude one, and rmcp weighs those.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for range in value.split(',') {
            if range.contains(';') {
                return false;
            }
            let range = range.trim();
            json |= range.eq_ignore_ascii_case(JSON_MIME_TYPE);
            sse |= range.eq_ignore_ascii_case(EVENT_STREAM_MIME_TYPE);
        }
    }
    json && sse
}

/// Whether `MCP-Protocol-Version`, if present, names a version rmcp knows:
/// rmcp refuses a notification under any other.
fn known_version(headers: &HeaderMap) -> bool {
    headers
        .get(HEADER_MCP_PROTOCOL_VERSION)
        .is_none_or(|value| {
            ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .any(|known| known.as_str().as_bytes() == value.as_bytes())
        })
}

/// The service's handler, with rmcp's protocol-version negotiation applied to
/// its `initialize` answer, as rmcp's handshake applies it after the
/// handler's: a handler that overrides `initialize` may answer with any
/// version, and the client must get one it asked for or one both support.
struct Negotiating<S>(S);

impl<S: ServerHandler> Service<RoleServer> for Negotiating<S> {
    async fn handle_request(
        &self,
        request: ClientRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let requested = match &request {
            ClientRequest::InitializeRequest(initialize) => Some(initialize.params.clone()),
            _ => None,
        };
        let response = Service::handle_request(&self.0, request, context).await?;
        match (requested, response) {
            (Some(requested), ServerResult::InitializeResult(result)) => {
                let negotiation = Negotiation {
                    result,
                    versions: self.0.supported_protocol_versions(),
                };
                Ok(ServerResult::InitializeResult(
                    negotiation.negotiate_initialize(&requested)?,
                ))
            }
            (_, response) => Ok(response),
        }
    }

    async fn handle_notification(
        &self,
        notification: ClientNotification,
        context: NotificationContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Service::handle_notification(&self.0, notification, context).await
    }

    fn get_info(&self) -> ServerConfig {
        self.0.get_info()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.0.supported_protocol_versions()
    }
}

/// A handler's `initialize` answer and the versions it supports, so that
/// rmcp's own negotiation ([`ServerHandler::negotiate_initialize`]) picks
/// the version of the answer.
struct Negotiation {
    result: InitializeResult,
    versions: Cow<'static, [ProtocolVersion]>,
}

impl ServerHandler for Negotiation {
    fn get_info(&self) -> ServerConfig {
        self.result.clone()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.versions.clone()
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::InitializeRequestParams;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const PLAIN: [(&str, &str); 2] = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];

    #[test]
    fn a_plain_post_is_answered_here() {
        assert!(plain_headers(&headers(&PLAIN), "initialize"));
        let mut named = PLAIN.to_vec();
        named.push(("mcp-method", "initialize"));
        assert!(plain_headers(&headers(&named), "initialize"));
        let split = [
            ("content-type", "application/json; charset=utf-8"),
            ("accept", "text/event-stream"),
            ("accept", "application/json"),
        ];
        assert!(plain_headers(&headers(&split), "initialize"));
    }

    #[test]
    fn anything_rmcp_may_refuse_goes_to_rmcp() {
        let cases: [&[(&str, &str)]; 6] = [
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            &[
                ("content-type", "text/plain"),
                ("accept", "application/json, text/event-stream"),
            ],
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream;q=0"),
            ],
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("mcp-method", "tools/list"),
            ],
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("mcp-method", "initialize"),
                ("mcp-method", "initialize"),
            ],
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("mcp-name", "add"),
            ],
        ];
        for case in cases {
            assert!(!plain_headers(&headers(case), "initialize"), "{case:?}");
        }
    }

    #[test]
    fn only_known_protocol_versions_are_acknowledged_here() {
        assert!(known_version(&headers(&[])));
        assert!(known_version(&headers(&[(
            "mcp-protocol-version",
            "2025-06-18"
        )])));
        assert!(!known_version(&headers(&[(
            "mcp-protocol-version",
            "1999-01-01"
        )])));
    }

    #[test]
    fn the_answer_gets_a_version_the_client_asked_for_or_both_support() {
        // As rmcp's handshake does: an answer naming another version than the
        // client's is negotiated again against what the server supports.
        let answer = |answered: ProtocolVersion, supported: &'static [ProtocolVersion], asked| {
            let mut result = InitializeResult::default();
            result.protocol_version = answered;
            let negotiation = Negotiation {
                result,
                versions: Cow::Borrowed(supported),
            };
            let mut params = InitializeRequestParams::default();
            params.protocol_version = asked;
            negotiation
                .negotiate_initialize(&params)
                .map(|result| result.protocol_version)
        };
        let known = ProtocolVersion::KNOWN_VERSIONS;
        assert_eq!(
            answer(
                ProtocolVersion::V_2025_03_26,
                known,
                ProtocolVersion::V_2025_06_18
            ),
            Ok(ProtocolVersion::V_2025_06_18)
        );
        // A version the server does not support: the handler's own answer.
        const OLD: &[ProtocolVersion] = &[ProtocolVersion::V_2025_03_26];
        assert_eq!(
            answer(
                ProtocolVersion::V_2025_03_26,
                OLD,
                ProtocolVersion::V_2025_06_18
            ),
            Ok(ProtocolVersion::V_2025_03_26)
        );
    }
}
