//! Diagnostic tools for the rules a server must keep with stateless
//! (2026-07-28) clients, which declare their capabilities and log level on
//! every request instead of once per session (SEP-2575, MCP 2026-07-28,
//! Basic §Stateless Operation):
//!
//! - `test_missing_capability` needs the client's `sampling` capability: a
//!   request that does not declare it gets `-32021`
//!   (MissingRequiredClientCapability, HTTP 400) with
//!   `data.requiredCapabilities: {"sampling": {}}`, before any work or
//!   notification; one that does is asked for a sampling answer with an
//!   `InputRequiredResult`. (A session client without `sampling` gets a
//!   tool error: `-32021` belongs to 2026-07-28.)
//! - `test_streaming_elicitation` reports progress on the request's response
//!   stream and then asks for a form with an `InputRequiredResult`: a
//!   2026-07-28 response stream carries notifications and the final
//!   result, never a server-to-client request.
//! - `test_logging_tool` logs through [`LogFilter`](crate::logging::LogFilter),
//!   which sends nothing to a 2026-07-28 request without `_meta` `logLevel`.
//!
//! Clients with a session get the same tools through the session's means:
//! `sampling/createMessage` and `elicitation/create` requests, and the
//! session's log level. Both generations are served by the same code as
//! `test_sampling` (`sampling::respond`) and
//! `test_elicitation` (`elicitation::respond`).

use rmcp::{
    ErrorData, RoleServer,
    handler::server::tool::{InputResponses as ToolInputResponses, RequestState},
    model::{CallToolResponse, ProgressNotificationParam},
    service::RequestContext,
    tool, tool_router,
};
use serde_json::json;

use crate::Everything;

/// What `test_missing_capability` asks the client's model.
pub const SAMPLING_PROMPT: &str = "Reply with one word: ready?";
/// The log messages of `test_logging_tool`, in order, at `info` level.
pub const LOG_MESSAGES: [&str; 2] = ["test_logging_tool started", "test_logging_tool finished"];

/// The one-field form of `test_streaming_elicitation`.
fn confirm_form() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": { "ok": { "type": "boolean", "description": "Go on?" } },
        "required": ["ok"]
    })
}

#[tool_router(router = stateless_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "test_missing_capability",
        description = "Needs the client's `sampling` capability: without it, fails with -32021 (MissingRequiredClientCapability) naming `sampling`; with it, asks the client's model one question (an input_required result for 2026-07-28 clients) and returns the answer."
    )]
    async fn missing_capability(
        &self,
        context: RequestContext<RoleServer>,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        super::sampling::respond(&context, SAMPLING_PROMPT.to_owned(), responses).await
    }

    #[tool(
        name = "test_streaming_elicitation",
        description = "Reports progress on the call's own response stream, then asks the user to confirm (an input_required result for 2026-07-28 clients, elicitation/create for sessions) and returns the answer."
    )]
    async fn streaming_elicitation(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(token) = context.meta.get_progress_token() {
            let progress = ProgressNotificationParam::new(token, 0.0)
                .with_total(1.0)
                .with_message("waiting for the user's confirmation");
            // The client may be gone; the result below tells it nothing new.
            let _ = context.peer.notify_progress(progress).await;
        }
        super::elicitation::respond(
            &context,
            "test_streaming_elicitation",
            "Confirmation",
            "Confirm to go on".to_owned(),
            confirm_form(),
            state,
            responses,
        )
        .await
    }

    #[tool(
        name = "test_logging_tool",
        description = "Sends two info-level log notifications while it runs: to a session at or above its log level, to a 2026-07-28 request only when its _meta names a logLevel at or below info."
    )]
    async fn logging_tool(&self, context: RequestContext<RoleServer>) -> Result<String, String> {
        for message in LOG_MESSAGES {
            self.log
                .info(&context, message)
                .await
                .map_err(|error| format!("could not send a log message: {error}"))?;
        }
        Ok("test_logging_tool done".to_owned())
    }
}
