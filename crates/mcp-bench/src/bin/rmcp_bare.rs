//! rmcp bare: the `add` tool, under the calculator's name and instructions,
//! served the way rmcp's own example servers serve a tool (a
//! `#[tool_router]` built in `new()` for every session, `StreamableHttpService`
//! with rmcp's `LocalSessionManager`, nothing else), as the reference
//! `scripts/callgrind.sh` compares the calculator with.
//!
//! `rmcp-bare [PORT]` (default 9700) serves `http://127.0.0.1:PORT/mcp`.

mod serve;

use rmcp::{
    ServerHandler,
    handler::server::{
        router::tool::ToolRouter,
        wrapper::{Json, Parameters},
    },
    model::{Implementation, ServerCapabilities, ServerConfig},
    schemars::{self, JsonSchema},
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde::{Deserialize, Serialize};

/// The operands of `add`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Operands {
    /// The first operand.
    pub a: f64,
    /// The second operand.
    pub b: f64,
}

/// What `add` returns: the calculator's shape.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Calculation {
    /// The operation performed.
    pub operation: String,
    /// The calculation written out.
    pub expression: String,
    /// The result.
    pub result: f64,
}

/// The server: one tool, shaped as rmcp's `Counter` example (a router
/// built in `new()`, which `#[tool_handler]`'s default then does not read:
/// it calls `Self::tool_router()` for each `tools/list` and `tools/call`).
#[derive(Clone)]
struct Bare {
    #[expect(
        dead_code,
        reason = "as in rmcp's example; #[tool_handler] builds its own"
    )]
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Bare {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Add two numbers: returns a + b.")]
    fn add(&self, Parameters(Operands { a, b }): Parameters<Operands>) -> Json<Calculation> {
        Json(Calculation {
            operation: "add".to_owned(),
            expression: format!("{a} + {b} = {}", a + b),
            result: a + b,
        })
    }
}

#[tool_handler]
impl ServerHandler for Bare {
    /// The calculator's identity and instructions, so that both servers
    /// send the same `initialize` answer.
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                serve::SERVER_NAME,
                serve::SERVER_VERSION,
            ))
            .with_instructions(serve::INSTRUCTIONS)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let service = StreamableHttpService::new(
        || Ok(Bare::new()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    serve::serve(axum::Router::new().nest_service("/mcp", service), 9700).await
}
