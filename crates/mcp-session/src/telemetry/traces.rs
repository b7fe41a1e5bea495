//! OpenTelemetry traces, exported over OTLP/HTTP when the standard
//! variables ask for it, and nothing otherwise.
//!
//! On when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, unless `OTEL_SDK_DISABLED`
//! is `true` or `OTEL_TRACES_EXPORTER` is `none`. Everything else comes from
//! the standard `OTEL_*` variables, read by the OpenTelemetry SDK and its
//! OTLP exporter: `OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`,
//! `OTEL_TRACES_SAMPLER` / `..._ARG` (default: parent-based, always on),
//! `OTEL_BSP_*` (batching), `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES`. The protocol is OTLP/HTTP with protobuf
//! (`http/protobuf`, port 4318 on a collector); another
//! `OTEL_EXPORTER_OTLP_PROTOCOL` is refused at start-up with a message.
//!
//! The resource names the service (`service.name`: `OTEL_SERVICE_NAME`,
//! else the executable's name) and the replica (`service.instance.id`: the
//! `REPLICA_ID`, the pod name on Kubernetes), so a trace shows which
//! replica did what. Trace context crosses replicas inside fleet messages
//! ([`mcp_session_core::trace_context`]).

use std::{env, sync::OnceLock};

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::{Layer, registry::LookupSpan};

use mcp_session_core::trace_context;

/// The provider, kept to flush its batch at shutdown ([`shutdown`]).
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether the standard variables ask for traces (see the module docs).
pub fn requested() -> bool {
    let set = |name: &str| env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let disabled = env::var("OTEL_SDK_DISABLED")
        .is_ok_and(|value| value.eq_ignore_ascii_case("true"))
        || env::var("OTEL_TRACES_EXPORTER").is_ok_and(|value| value.trim() == "none");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Why traces could not be set up: a message for standard error, naming the
/// variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (or `..._TRACES_PROTOCOL`) names a
    /// protocol this build does not speak.
    #[error("{variable}={value}: only http/protobuf (OTLP over HTTP, port 4318) is supported")]
    Protocol {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// The exporter refused its configuration (e.g. a malformed endpoint).
    #[error("OTLP trace exporter: {0}")]
    Exporter(String),
}

/// The `tracing` layer that turns spans into OpenTelemetry spans exported
/// over OTLP, for the replica `replica_id`; `Ok(None)` when traces are not
/// [`requested`]. Installs the W3C Trace Context propagator and marks
/// tracing as on ([`trace_context::set_enabled`]).
///
/// # Errors
/// [`TracesError`] when the variables ask for something this build cannot do.
pub fn layer<S>(replica_id: &str) -> Result<Option<impl Layer<S> + use<S>>, TracesError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    if !requested() {
        return Ok(None);
    }
    for variable in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Ok(value) = env::var(variable)
            && value.trim() != "http/protobuf"
        {
            return Err(TracesError::Protocol { variable, value });
        }
    }
    let exporter = SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|error| TracesError::Exporter(error.to_string()))?;
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.instance.id", replica_id.to_owned()));
    if env::var_os("OTEL_SERVICE_NAME").is_none()
        && !env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|value| value.contains("service.name="))
    {
        resource = resource.with_service_name(executable_name());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("mcp-session");
    let _ = PROVIDER.set(provider);
    trace_context::set_enabled();
    Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
}

/// The executable's file name (`calculator`), the default `service.name`.
fn executable_name() -> String {
    env::current_exe()
        .ok()
        .and_then(|path| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "mcp-service".to_owned())
}

/// Exports the spans still batched and stops the exporter; a no-op when
/// traces are off. Called once the server has stopped.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        eprintln!("traces: {error}");
    }
}
