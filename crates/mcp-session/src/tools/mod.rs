//! Tools: helpers for the tools a service defines with rmcp's `#[tool]`
//! macros ([`ServiceTools`], the router a service hands `#[tool_handler]`;
//! [`call_strict`]), and the session tools the library adds to any service
//! through [`ServiceTools`]: `health_check`, `get_user_sessions`,
//! `get_session_analytics`.

pub(crate) mod analytics;
mod router;
pub mod schema;
pub(crate) mod session_tools;
pub(crate) mod views;

pub use router::ServiceTools;
use session_tools::session_tools;

use mcp_session_core::{session::request_extension, trace_context::TraceContext, traced_span};
use rmcp::{
    ErrorData,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext},
    model::CallToolResponse,
};
use tracing::Instrument;

/// Calls the tool named in `context`, reporting arguments that do not match
/// the tool's input schema (wrong types, missing fields) as the JSON-RPC
/// invalid-params error `-32602` (JSON-RPC 2.0 §5.1; MCP 2025-06-18, Server
/// Features §Tools, Error Handling: "Invalid arguments"), where rmcp's
/// router would answer them with a tool result flagged `isError`. When
/// tracing is on, the call is a span (`tools/call <name>`) in the trace of
/// the request that carried it, on whichever replica runs it.
///
/// [`ServiceTools`] calls it for `#[tool_handler(router = self.tools)]`; a
/// handler that keeps a plain `ToolRouter` uses it as the body of
/// `ServerHandler::call_tool` (`#[tool_handler]` keeps generating
/// `list_tools` and `get_tool`):
///
/// ```rust,ignore
/// async fn call_tool(
///     &self,
///     request: CallToolRequestParams,
///     context: RequestContext<RoleServer>,
/// ) -> Result<CallToolResponse, ErrorData> {
///     mcp_session::tools::call_strict(&self.tool_router, ToolCallContext::new(self, request, context)).await
/// }
/// ```
///
/// # Errors
/// `-32602` for an unknown or disabled tool and for invalid arguments; any
/// protocol error the tool itself returns.
pub async fn call_strict<S: Send + Sync + 'static>(
    router: &ToolRouter<S>,
    context: ToolCallContext<'_, S>,
) -> Result<CallToolResponse, ErrorData> {
    let name = context.name().to_owned();
    if router.get(&name).is_none() {
        return Err(ErrorData::invalid_params(
            format!("unknown tool `{name}`: call tools/list for the available tools"),
            None,
        ));
    }
    let route = router
        .map
        .get(name.as_str())
        .ok_or_else(|| ErrorData::invalid_params(format!("unknown tool `{name}`"), None))?;
    let span = traced_span!(
        "tool_call",
        otel.name = format!("tools/call {name}"),
        mcp.method.name = "tools/call",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %name,
    );
    if let Some(trace) = request_extension::<TraceContext>(context.request_context()) {
        trace.adopt(&span);
    }
    (route.call)(context)
        .instrument(span)
        .await
        .map_err(|error| {
            ErrorData::new(
                error.code,
                format!("invalid arguments for tool `{name}`: {}", error.message),
                error.data,
            )
        })
}
