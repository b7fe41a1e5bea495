//! Logging: the `tracing` subscriber, the request id, and one log line per
//! HTTP request.
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

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub use format::set_replica_id;
pub use request_id::{RequestId, request_id};
pub(crate) use requests::{RequestObserver, named_session, observe_requests};
pub(crate) use scrape::{ScrapeState, routes as metrics_routes};

use crate::config::{Config, LogFormat};

/// Installs the global `tracing` subscriber, once per process; later calls
/// (tests start several servers) are ignored. Lines carry the replica id
/// once one is set ([`set_replica_id`]; [`init_for`] and
/// [`McpServer::bind`](crate::McpServer::bind) set it).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(colours_on_stderr())
                    .event_format(format::TextLines::default()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .fmt_fields(fmt::format::JsonFields::new())
                    .event_format(format::JsonLines),
            )
            .try_init(),
    };
}

/// Whether text lines may carry ANSI colours: only when stderr is a
/// terminal, and `NO_COLOR` (<https://no-color.org>) is unset or empty. A
/// file, a pipe or a container runtime's log collector gets plain text.
fn colours_on_stderr() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// [`init`] with `config`'s log format, every line naming `config`'s replica.
pub fn init_for(config: &Config) {
    set_replica_id(&config.replica_id);
    init(config.log_format);
}
