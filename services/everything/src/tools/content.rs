//! Tools whose results show each kind of content block (MCP 2025-06-18,
//! Server Features §Tools, Tool Result): text, image, audio, embedded
//! resource, several kinds at once, and a tool error.
//!
//! A tool that returns `String` gets one text block; one that needs other
//! blocks builds a [`CallToolResult`] itself. A failure the model should read
//! is a *tool error* — a result with `isError: true` — not a JSON-RPC error.

use rmcp::{
    model::{CallToolResult, ContentBlock, ResourceContents},
    tool, tool_router,
};
use serde_json::json;

use crate::{Everything, media};

/// The text of `test_simple_text`.
pub const SIMPLE_TEXT: &str = "This is a simple text response for testing.";
/// The message of `test_error_handling`.
pub const ERROR_MESSAGE: &str = "This tool intentionally returns an error for testing";

#[tool_router(router = content_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "test_simple_text",
        description = "Returns one text content block.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn simple_text(&self) -> String {
        SIMPLE_TEXT.to_owned()
    }

    #[tool(
        name = "test_image_content",
        description = "Returns one image content block: a 1x1 red PNG, base64-encoded.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn image_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::image(
            media::red_pixel_png_base64(),
            media::PNG_MIME_TYPE,
        )])
    }

    #[tool(
        name = "test_audio_content",
        description = "Returns one audio content block: a short 440 Hz WAV tone, base64-encoded.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn audio_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::audio(
            media::tone_wav_base64(),
            media::WAV_MIME_TYPE,
        )])
    }

    #[tool(
        name = "test_embedded_resource",
        description = "Returns one embedded resource content block (text/plain).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn embedded_resource(&self) -> CallToolResult {
        let resource = ResourceContents::text(
            "This is an embedded resource content.",
            "test://embedded-resource",
        );
        CallToolResult::success(vec![ContentBlock::resource(resource)])
    }

    #[tool(
        name = "test_multiple_content_types",
        description = "Returns text, image and embedded resource content blocks in one result.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn multiple_content_types(&self) -> CallToolResult {
        let data = json!({ "test": "data", "value": 123 });
        let resource = ResourceContents::text(data.to_string(), "test://mixed-content-resource")
            .with_mime_type("application/json");
        CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(media::red_pixel_png_base64(), media::PNG_MIME_TYPE),
            ContentBlock::resource(resource),
        ])
    }

    #[tool(
        name = "test_error_handling",
        description = "Always fails: returns a tool error (isError: true) with an explanation.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn error_handling(&self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(ERROR_MESSAGE)])
    }
}
