//! The everything MCP service: every feature of the MCP conformance suite over
//! Streamable HTTP (`/mcp`) and HTTP+SSE (`/sse`), on port 9300 unless
//! `MCP_SERVER_PORT` says otherwise. All settings are read from the
//! environment: see the README.

use std::process::ExitCode;

use everything::{DEFAULT_PORT, Everything};

#[tokio::main]
async fn main() -> ExitCode {
    mcp_session::run(DEFAULT_PORT, Everything::new).await
}
