//! The everything MCP service: every feature of the MCP conformance suite over
//! Streamable HTTP (`/mcp`) and HTTP+SSE (`/sse`), on port 9300 unless
//! `MCP_SERVER_PORT` says otherwise. All settings are read from the
//! environment: see the README.

use std::process::ExitCode;

use everything::{DEFAULT_PORT, Everything};

/// The heap allocator: mimalloc rather than the system's. A replica keeps
/// many small, long-lived allocations (response streams held for
/// `Last-Event-ID` resumption, cached session records) among the short-lived
/// ones of each request, which fragments glibc's malloc and made it a tenth
/// of the CPU time of a Redis-backed replica under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    mcp_session::run(DEFAULT_PORT, Everything::new).await
}
