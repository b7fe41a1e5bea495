//! The calculator MCP service: arithmetic tools over Streamable HTTP (`/mcp`)
//! and HTTP+SSE (`/sse`), on port 9100 unless `MCP_SERVER_PORT` says otherwise.
//! All settings are read from the environment: see the README.

use std::process::ExitCode;

use calculator::Calculator;

#[tokio::main]
async fn main() -> ExitCode {
    mcp_session::run(9100, Calculator::new).await
}
