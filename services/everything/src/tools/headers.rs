//! A tool whose arguments a client mirrors into HTTP headers (SEP-2243,
//! MCP 2026-07-28, Transports §Custom Headers): each property annotated
//! with `x-mcp-header: <Name>` is also sent as `Mcp-Param-<Name>`, so that a
//! gateway or load balancer can route on it (a region, a tenant) without
//! parsing the body.
//!
//! The server checks every mirrored header against the body: a header that
//! is missing while its argument is present, a value that differs, or a
//! malformed `=?base64?...?=` value is refused with HTTP 400 and JSON-RPC
//! `-32020` (HeaderMismatch). rmcp's Streamable HTTP transport does this
//! before the tool runs, from the `inputSchema` this module declares (it
//! looks the tool up per request), on every replica alike.

use std::sync::Arc;

use rmcp::{handler::server::wrapper::Parameters, model::JsonObject, tool, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Everything;

/// The `inputSchema` of `test_custom_headers`: `region` (string), `priority`
/// (integer) and `verbose` (boolean) are mirrored as `Mcp-Param-Region`,
/// `Mcp-Param-Priority` and `Mcp-Param-Verbose`; `query` is not mirrored.
pub fn input_schema() -> Arc<JsonObject> {
    let schema = json!({
        "type": "object",
        "properties": {
            "region": {
                "type": "string",
                "description": "Where to run the query; mirrored as Mcp-Param-Region",
                "x-mcp-header": "Region"
            },
            "priority": {
                "type": "integer",
                "description": "Scheduling priority; mirrored as Mcp-Param-Priority",
                "x-mcp-header": "Priority"
            },
            "verbose": {
                "type": "boolean",
                "description": "Whether to explain the answer; mirrored as Mcp-Param-Verbose when given",
                "x-mcp-header": "Verbose"
            },
            "query": {
                "type": "string",
                "description": "The query itself (not mirrored: it may be long or private)"
            }
        },
        "required": ["region", "priority", "query"]
    });
    match schema {
        serde_json::Value::Object(object) => Arc::new(object),
        _ => unreachable!("the schema literal is an object"),
    }
}

/// The arguments of `test_custom_headers`.
#[derive(Debug, Deserialize, Serialize)]
pub struct CustomHeaderArguments {
    /// Mirrored as `Mcp-Param-Region`.
    pub region: String,
    /// Mirrored as `Mcp-Param-Priority`.
    pub priority: i64,
    /// Mirrored as `Mcp-Param-Verbose` when present and not null.
    #[serde(default)]
    pub verbose: Option<bool>,
    /// Not mirrored.
    pub query: String,
}

#[tool_router(router = header_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "test_custom_headers",
        description = "Tool whose region, priority and verbose arguments are mirrored into Mcp-Param-* headers (x-mcp-header, SEP-2243); the server rejects a header that does not match the body. Echoes its arguments.",
        input_schema = input_schema(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn custom_headers_tool(
        &self,
        Parameters(arguments): Parameters<CustomHeaderArguments>,
    ) -> String {
        let echoed = serde_json::to_string(&arguments).unwrap_or_default();
        format!("custom headers tool called with: {echoed}")
    }
}
