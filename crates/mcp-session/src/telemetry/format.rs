//! Log line formats that carry the replica id and the request id.
//!
//! - [`JsonLines`]: one flat JSON object per line, for log pipelines
//!   (CloudWatch, Loki, Elasticsearch):
//!   `{"timestamp":"…","level":"INFO","target":"mcp_session::…","replica":"calculator-7d9f-x2","request_id":"…","message":"request","method":"POST",…}`.
//!   The fields of the spans the event happened in (the request's
//!   `request_id`, and its `trace_id` when traces are on) come before the
//!   event's own fields; `otel.*` fields, which name spans for
//!   OpenTelemetry, are left out.
//! - [`TextLines`]: tracing's usual human-readable line, after the replica id.

use std::{fmt, sync::OnceLock};

use serde_json::{Map, Value};
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields,
        format::{self, Writer},
        time::{FormatTime, SystemTime},
    },
    registry::LookupSpan,
};

/// The replica id every line carries, set once per process.
static REPLICA: OnceLock<String> = OnceLock::new();

/// Names this process's replica in every log line from now on; the first
/// call wins (a process serves one replica; tests that start several
/// servers in one process log the first one's id).
pub fn set_replica_id(replica_id: &str) {
    let _ = REPLICA.set(replica_id.to_owned());
}

fn replica_id() -> Option<&'static str> {
    REPLICA.get().map(String::as_str)
}

/// Collects an event's fields into a JSON map.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().to_owned(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

/// One flat JSON object per event (see the module docs). Span fields must
/// be formatted by [`JsonFields`](tracing_subscriber::fmt::format::JsonFields).
#[derive(Debug, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), timestamp.into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(replica) = replica_id() {
            line.insert("replica".into(), replica.into());
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    // `otel.*` fields name spans for OpenTelemetry, not logs.
                    line.extend(
                        fields
                            .into_iter()
                            .filter(|(name, _)| !name.starts_with("otel.")),
                    );
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// tracing's full text format, after the replica id:
/// `replica-1 2025-01-01T00:00:00Z  INFO request{request_id=…}: request method=POST …`.
#[derive(Debug)]
pub struct TextLines {
    inner: format::Format,
}

impl Default for TextLines {
    fn default() -> Self {
        Self {
            inner: format::Format::default().with_target(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Some(replica) = replica_id() {
            write!(writer, "{replica} ")?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}
