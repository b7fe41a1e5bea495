//! The service's tools (MCP 2025-06-18, Server Features §Tools), one module
//! per kind, each an `impl Everything` block with rmcp's `#[tool]` macros.
//!
//! | tool | module | what it shows |
//! |---|---|---|
//! | `test_simple_text` | [`content`] | a text result |
//! | `test_image_content` | [`content`] | an image result (PNG, base64) |
//! | `test_audio_content` | [`content`] | an audio result (WAV, base64) |
//! | `test_embedded_resource` | [`content`] | an embedded text resource |
//! | `test_multiple_content_types` | [`content`] | text, image and resource in one result |
//! | `test_error_handling` | [`content`] | a tool error (`isError: true`) |
//! | `test_tool_with_logging` | [`notifications`] | log notifications during the call |
//! | `test_tool_with_progress` | [`notifications`] | progress notifications for the request's `progressToken` |
//! | `test_notify_resource_updated` | [`notifications`] | a resource update announced to the `subscriptions/listen` streams of every replica |
//! | `test_reconnection` | [`notifications`] | its response stream closed before the result, which arrives on the resumed stream (SEP-1699) |
//! | `test_sampling` | [`sampling`] | `sampling/createMessage` to the client |
//! | `test_elicitation` | [`elicitation`], [`input_required`] | `elicitation/create` to the client; an `input_required` result (MRTR) for 2026-07-28 clients |
//! | `test_elicitation_sep1034_defaults` | [`elicitation`] | elicitation with defaults (SEP-1034) |
//! | `test_elicitation_sep1330_enums` | [`elicitation`] | elicitation with the five enum forms (SEP-1330) |
//! | `json_schema_2020_12_tool` | [`schema`] | a hand-written JSON Schema 2020-12 `inputSchema` (SEP-1613, SEP-2106) |
//! | `test_input_required_result_*` (8 tools) | [`mrtr`] | one rule of multi round-trip requests each: the three input kinds, sealed state, tampering, several inputs, several rounds, capabilities |
//! | `test_missing_capability` | [`stateless`] | `-32021` for a request that does not declare `sampling`; a sampling round otherwise |
//! | `test_streaming_elicitation` | [`stateless`] | progress, then an `input_required` form: no server-to-client request on a 2026-07-28 stream |
//! | `test_logging_tool` | [`stateless`] | log messages only at the level the request (or session) asked for |
//! | `greet`, `slow_compute`, `failing_job`, `protocol_error_job`, `confirm_delete`, `multi_input`, `test_tool_with_task` | [`tasks`] | tasks (SEP-2663) whose state every replica shares: completion, tool errors, failures, input, cancellation |
//! | `test_custom_headers` | [`headers`] | arguments mirrored into `Mcp-Param-*` headers and checked against the body (SEP-2243) |
//!
//! Every module's router is merged into one [`ToolRouter`] by `router()`, which the handler keeps.

pub mod content;
pub mod elicitation;
pub mod headers;
pub mod input_required;
pub mod mrtr;
pub mod notifications;
pub mod sampling;
pub mod schema;
pub mod stateless;
pub mod tasks;

use rmcp::handler::server::router::tool::ToolRouter;

use crate::Everything;

/// All the tools, for the handler's `tools` field.
pub(crate) fn router() -> ToolRouter<Everything> {
    Everything::content_tools()
        + Everything::notification_tools()
        + Everything::sampling_tools()
        + Everything::elicitation_tools()
        + Everything::schema_tools()
        + Everything::header_tools()
        + Everything::stateless_tools()
        + Everything::mrtr_tools()
        + Everything::task_tools()
}
