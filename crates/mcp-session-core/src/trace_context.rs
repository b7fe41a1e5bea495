//! Trace context that follows a request from replica to replica.
//!
//! A request to one replica often does its work on another: an HTTP+SSE
//! `POST /messages` is forwarded through Redis to the replica that holds the
//! stream, a `Last-Event-ID` resumption asks the replica that produced the
//! stream to flush it. For an OpenTelemetry trace to show that as one
//! request, the W3C Trace Context of the span that sends a fleet message
//! travels inside it ([`TraceContext`], the `traceparent` and `tracestate`
//! of W3C Trace Context Level 1 §3), and the receiving replica's span names
//! it as its parent.
//!
//! Tracing is on when the process installed an OpenTelemetry exporter and
//! called [`set_enabled`] (`mcp-session` does both when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set). Off, every function here returns at
//! once: no context is captured, no field is added to a fleet message, and
//! [`traced_span`] gives a disabled span.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Marks tracing as on for this process: from now on [`TraceContext::current`]
/// captures the current span's context and [`traced_span`] makes spans. Call
/// it once the OpenTelemetry layer is part of the global subscriber.
pub fn set_enabled() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether this process exports traces (see [`set_enabled`]).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A span at `INFO` when tracing is on, else a disabled span (free to make
/// and to enter): `traced_span!("session_store", op = "access")`. For spans
/// that exist for traces only; a request's span, whose fields log lines
/// carry, is made whatever the setting.
#[macro_export]
macro_rules! traced_span {
    ($($span:tt)+) => {
        if $crate::trace_context::enabled() {
            ::tracing::info_span!($($span)+)
        } else {
            ::tracing::Span::none()
        }
    };
}
pub use traced_span;

/// The W3C Trace Context of a span, as carried in a fleet message (JSON:
/// `{"traceparent": "00-<trace id>-<span id>-<flags>", "tracestate": "…"}`;
/// both absent when there is none). Empty when tracing is off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// `traceparent` (W3C Trace Context Level 1 §3.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// `tracestate` (W3C Trace Context Level 1 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context of the current `tracing` span; empty when tracing is off
    /// or the span is not traced.
    pub fn current() -> Self {
        if !enabled() {
            return Self::default();
        }
        Self::of(&tracing::Span::current())
    }

    /// The context of `span`; empty when tracing is off or `span` is not
    /// traced.
    pub fn of(span: &tracing::Span) -> Self {
        let mut carried = Self::default();
        if enabled() {
            let context = span.context();
            if context.span().span_context().is_valid() {
                propagator().inject_context(&context, &mut carried);
            }
        }
        carried
    }

    /// Whether there is no context to carry.
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none()
    }

    /// Makes `span` a child of this context (no effect when it is empty or
    /// not a valid `traceparent`, or `span` was entered already).
    pub fn adopt(&self, span: &tracing::Span) {
        if self.is_empty() || !enabled() {
            return;
        }
        let parent = propagator().extract(self);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }

    /// The context of an HTTP request's `traceparent` and `tracestate`
    /// headers (empty when tracing is off or there are none).
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let mut carried = Self::default();
        if !enabled() {
            return carried;
        }
        let value = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        carried.traceparent = value("traceparent");
        carried.tracestate = value("tracestate").filter(|_| carried.traceparent.is_some());
        carried
    }
}

/// The propagator of W3C Trace Context (the SDK's). Fixed rather than
/// taken from `OTEL_PROPAGATORS`: replicas must agree on what a fleet
/// message carries.
fn propagator() -> TraceContextPropagator {
    TraceContextPropagator::new()
}

impl Injector for TraceContext {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "traceparent" => self.traceparent = Some(value),
            "tracestate" if !value.is_empty() => self.tracestate = Some(value),
            _ => {}
        }
    }
}

impl Extractor for TraceContext {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent.as_deref(),
            "tracestate" => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The span context an AWS `X-Amzn-Trace-Id` header names
/// (`Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`, as an
/// Application Load Balancer adds it), for a span link; `None` without a
/// `Parent` (an ALB adds only `Root`) or when malformed. The X-Ray trace id
/// maps to the OpenTelemetry one by dropping the version and the dashes.
pub fn amazon_trace_link(header: &str) -> Option<SpanContext> {
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", value)) => root = Some(value),
            Some(("Parent", value)) => parent = Some(value),
            Some(("Sampled", value)) => sampled = value == "1",
            _ => {}
        }
    }
    let root = root?.strip_prefix("1-")?;
    let (epoch, random) = root.split_once('-')?;
    if epoch.len() != 8 || random.len() != 24 {
        return None;
    }
    let trace_id = TraceId::from_hex(&format!("{epoch}{random}")).ok()?;
    let span_id = SpanId::from_hex(parent?).ok()?;
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let context = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    context.is_valid().then_some(context)
}

/// The trace id of `span` as 32 lowercase hex digits, for log lines; `None`
/// when tracing is off or the span is not traced.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let context: Context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amazon_trace_header_with_a_parent_names_a_span_to_link() {
        let link = amazon_trace_link(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .expect("a link");
        assert_eq!(
            link.trace_id().to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(link.span_id().to_string(), "53995c3f42cd8ad8");
        assert!(link.is_sampled() && link.is_remote());
        // An ALB adds only the root: nothing to link to.
        assert!(amazon_trace_link("Root=1-67891233-abcdef012345678912345678").is_none());
        for malformed in [
            "",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e98-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=zz995c3f42cd8ad8",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
        ] {
            assert!(amazon_trace_link(malformed).is_none(), "{malformed}");
        }
    }

    #[test]
    fn off_nothing_is_captured_or_carried() {
        // Tracing is not enabled in this test process.
        assert!(TraceContext::current().is_empty());
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert!(TraceContext::from_headers(&headers).is_empty());
        assert_eq!(
            serde_json::to_string(&TraceContext::default()).unwrap(),
            "{}"
        );
    }
}
