//! Logging and tracing: the `tracing` subscriber, the request id, one log
//! line per HTTP request, and OpenTelemetry traces.
//!
//! Traces: OpenTelemetry spans exported over OTLP when the standard `OTEL_*`
//! variables ask for them ([`traces`]); the request's span then carries its
//! `trace_id`, which its log lines show.
//!
//! The level filter comes from `RUST_LOG` (default `info`); the format from
//! [`LogFormat`]: JSON lines ([`format::JsonLines`]) or text. Every line
//! carries the replica id (`replica`), and every line logged while serving a
//! request carries its id (`request_id`, see [`request_id`]). Request lines
//! carry the HTTP method, path, MCP session id, status and latency, never a
//! header value that could hold a credential.

pub mod format;
pub mod request_id;
mod requests;
mod scrape;
pub mod traces;

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, Layer, Registry, filter::LevelFilter, fmt, prelude::*};

pub use format::set_replica_id;
pub use request_id::{RequestId, request_id};
pub(crate) use requests::{RequestObserver, observe, observe_requests, session_named_by};
pub(crate) use scrape::{ScrapeState, routes as metrics_routes};
pub use traces::TracesError;

use crate::config::{Config, LogFormat};

/// The log layer of `format`, filtered by `RUST_LOG` (default `info`).
fn log_layer(format: LogFormat) -> Box<dyn Layer<Registry> + Send + Sync> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(colours_on_stderr())
            .event_format(format::TextLines::default())
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .with_writer(std::io::stderr)
            .fmt_fields(fmt::format::JsonFields::new())
            .event_format(format::JsonLines)
            .with_filter(filter)
            .boxed(),
    }
}

/// Installs the global `tracing` subscriber, once per process (later calls,
/// as when tests start several servers, are ignored): logs of `format` and,
/// when given, the traces layer (spans at `INFO` and above, whatever
/// `RUST_LOG` says of logs).
fn install(format: LogFormat, traces: Option<Box<dyn Layer<Registry> + Send + Sync>>) {
    let mut layers = vec![log_layer(format)];
    if let Some(traces) = traces {
        layers.push(traces.with_filter(LevelFilter::INFO).boxed());
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

/// Whether text lines may carry ANSI colours: only when stderr is a
/// terminal, and `NO_COLOR` (<https://no-color.org>) is unset or empty. A
/// file, a pipe or a container runtime's log collector gets plain text.
fn colours_on_stderr() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// Installs logging in `config`'s format, every line naming `config`'s
/// replica (also set by [`McpServer::bind`](crate::McpServer::bind)), and
/// OpenTelemetry traces when the standard `OTEL_*` variables
/// ask for them ([`traces`]).
///
/// # Errors
/// [`TracesError`] when those variables ask for what this build cannot do.
pub fn init_for(config: &Config) -> Result<(), TracesError> {
    set_replica_id(&config.replica_id);
    let traces = traces::layer::<Registry>(&config.replica_id)?.map(|layer| layer.boxed());
    install(config.log_format, traces);
    Ok(())
}
