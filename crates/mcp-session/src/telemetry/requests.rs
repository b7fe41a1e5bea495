//! The outermost middleware: every HTTP request gets a request id, a tracing
//! span, one log line, its metrics, and a place among the requests in
//! flight that a shutdown waits for.

use std::{
    borrow::Cow,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::{Frame, SizeHint};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use mcp_session_core::{
    session::HEADER_SESSION_ID,
    trace_context::{self, TraceContext},
};

use super::request_id::{HEADER_REQUEST_ID, RequestId};
use crate::{
    metrics::{Metrics, OTHER_ROUTE, Route, method_of, route_label},
    shutdown::Lifecycle,
    store::TransportKind,
};

/// The session id a request names: `Mcp-Session-Id` on `/mcp`, the
/// `session_id` query parameter on `/messages`.
pub(crate) fn named_session(request: &Request) -> Option<String> {
    session_named_by(request.headers().get(HEADER_SESSION_ID), request.uri())
}

/// [`named_session`] of a request whose `Mcp-Session-Id` is
/// `session_header` and whose URI is `uri`.
pub(crate) fn session_named_by(session_header: Option<&HeaderValue>, uri: &Uri) -> Option<String> {
    if let Some(id) = session_header.and_then(|value| value.to_str().ok()) {
        return Some(id.to_owned());
    }
    uri.query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("session_id="))
            .map(str::to_owned)
    })
}

/// The longest session id a request may name, in bytes. Ours are 32 hex
/// digits; the bound only keeps an attacker's megabyte-long id out of the
/// store lookups and the logs.
pub(crate) const MAX_SESSION_ID_BYTES: usize = 128;

/// Whether `id` could be a session id: at most [`MAX_SESSION_ID_BYTES`]
/// of visible ASCII (MCP 2025-11-25, Transports §Session Management: "The
/// session ID MUST only contain visible ASCII characters (ranging from 0x21
/// to 0x7E)").
fn plausible_session_id(id: &str) -> bool {
    id.len() <= MAX_SESSION_ID_BYTES && id.bytes().all(|byte| (0x21..=0x7e).contains(&byte))
}

/// Whether a request opens a long-lived stream rather than asking for one
/// answer: `GET /sse`, and `GET /mcp` without `Last-Event-ID` (a session's
/// standalone stream; with it, the client resumes a request's answer).
fn opens_stream(method: &Method, route: &str, request: &Request) -> bool {
    *method == Method::GET
        && (route == "/sse"
            || (route == "/mcp" && !request.headers().contains_key("last-event-id")))
}

/// What the outermost middleware records into.
pub(crate) struct RequestObserver {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) lifecycle: Arc<Lifecycle>,
}

/// Ends a request's time in flight when its response body is done (or
/// dropped: the client left): records its duration.
struct Completion {
    observer: Arc<RequestObserver>,
    method: &'static str,
    route: Route,
    started: Instant,
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.observer.lifecycle.request_finished();
        self.observer
            .metrics
            .request_completed(self.method, &self.route, self.started.elapsed());
    }
}

/// A response body that holds its request's [`Completion`].
struct Completing {
    inner: Body,
    _completion: Completion,
}

impl HttpBody for Completing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Makes `span` the server span of an HTTP request in its trace (only when
/// tracing is on): named `<method> <route>` (OpenTelemetry HTTP semantic
/// conventions), a child of the client's W3C `traceparent`, linked to the
/// span an AWS `X-Amzn-Trace-Id` names (its X-Ray trace id kept as
/// `aws.xray.trace_id`), carrying its trace id for log lines (`trace_id`),
/// and its context in the request's extensions for the handler's spans.
fn trace_request(span: &tracing::Span, request: &mut Request, route: &str) {
    span.record("otel.name", format!("{} {route}", request.method()));
    span.record("otel.kind", "server");
    TraceContext::from_headers(request.headers()).adopt(span);
    if let Some(amazon) = request
        .headers()
        .get("x-amzn-trace-id")
        .and_then(|value| value.to_str().ok())
    {
        if let Some(root) = amazon
            .split(';')
            .find_map(|part| part.trim().strip_prefix("Root="))
        {
            span.set_attribute("aws.xray.trace_id", root.to_owned());
        }
        if let Some(link) = trace_context::amazon_trace_link(amazon) {
            span.add_link(link);
        }
    }
    span.set_attribute("http.request.method", request.method().to_string());
    span.set_attribute("http.route", route.to_owned());
    span.set_attribute("url.path", request.uri().path().to_owned());
    // Session ids are ours (32 hex digits); a longer one is not kept.
    if let Some(session_id) = named_session(request).filter(|id| id.len() <= 64) {
        span.set_attribute("mcp.session.id", session_id);
    }
    if let Some(trace_id) = trace_context::trace_id(span) {
        span.record("trace_id", trace_id);
    }
    request.extensions_mut().insert(TraceContext::of(span));
}

/// Middleware: gives the request its [`RequestId`] (in its extensions, its
/// span and the response's `X-Request-Id`), logs one line when the response
/// starts (method, path, session id, status, latency in ms; probes at
/// `debug`), counts it in the metrics, and keeps it among the requests in
/// flight until its response body is complete.
pub(crate) async fn observe_requests(
    State(observer): State<Arc<RequestObserver>>,
    request: Request,
    next: Next,
) -> Response {
    observe(&observer, request, |request| next.run(request)).await
}

/// What [`observe_requests`] does, for a middleware that does more inside
/// it in one future: observes `request` answered by `serve`.
pub(crate) async fn observe<F, Fut>(
    observer: &Arc<RequestObserver>,
    mut request: Request,
    serve: F,
) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let started = Instant::now();
    let method = method_of(request.method());
    let route: Route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(Cow::Borrowed(OTHER_ROUTE), |matched| {
            route_label(matched.as_str())
        });
    // Routes without parameters log their template (the same text).
    let path: Cow<'static, str> = if route == OTHER_ROUTE || route.contains('{') {
        Cow::Owned(request.uri().path().to_owned())
    } else {
        route.clone()
    };
    let request_session = named_session(&request);
    if let Some(id) = request_session
        .as_deref()
        .filter(|id| !plausible_session_id(id))
    {
        let length = id.len();
        tracing::info!(method = %request.method(), path = %path, session_id_bytes = length, status = 400, "request with an invalid session id");
        observer
            .metrics
            .request_answered(method, &route, StatusCode::BAD_REQUEST);
        observer
            .metrics
            .request_completed(method, &route, started.elapsed());
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "Bad Request: the session id ({length} bytes) is not one this server issues: \
                 at most {MAX_SESSION_ID_BYTES} visible ASCII characters"
            ),
        )
            .into_response();
    }
    let request_id = RequestId::of(&request);
    request.extensions_mut().insert(request_id.clone());
    let stream = opens_stream(request.method(), &route, &request);
    let http_method = request.method().clone();
    let completion = (!stream).then(|| {
        observer.lifecycle.request_started();
        Completion {
            observer: observer.clone(),
            method,
            route: route.clone(),
            started,
        }
    });
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
    );
    if trace_context::enabled() {
        trace_request(&span, &mut request, &route);
    }
    let mut response = serve(request).instrument(span.clone()).await;
    let status = response.status();
    if trace_context::enabled() {
        span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.set_status(opentelemetry::trace::Status::error(status.to_string()));
        }
    }
    response
        .headers_mut()
        .insert(HEADER_REQUEST_ID, request_id.header_value());
    observer.metrics.request_answered(method, &route, status);
    if status == StatusCode::NOT_FOUND && request_session.is_some() {
        match &*route {
            "/mcp" => observer
                .metrics
                .session_not_found(TransportKind::StreamableHttp),
            "/messages" | "/messages/" => observer.metrics.session_not_found(TransportKind::Sse),
            _ => {}
        }
    }
    let session_id = request_session.as_deref().or_else(|| {
        response
            .headers()
            .get(HEADER_SESSION_ID)
            .and_then(|value| value.to_str().ok())
    });
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        let status = status.as_u16();
        let session_id = session_id.unwrap_or("-");
        if matches!(&*route, "/healthz" | "/readyz" | "/metrics") {
            tracing::debug!(method = %http_method, path = %path, status, latency_ms, "request");
        } else {
            tracing::info!(method = %http_method, path = %path, session_id, status, latency_ms, "request");
        }
    });
    match completion {
        Some(completion) => response.map(|inner| {
            Body::new(Completing {
                inner,
                _completion: completion,
            })
        }),
        None => {
            observer
                .metrics
                .request_completed(method, &route, started.elapsed());
            response
        }
    }
}
