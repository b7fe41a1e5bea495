//! The service's prompts (MCP 2025-06-18, Server Features §Prompts), declared
//! with rmcp's `#[prompt]` macros: each function is a prompt, its doc line or
//! `description` the prompt's description, and the fields of its
//! [`Parameters`] type the prompt's arguments (required unless `Option`).
//!
//! | prompt | arguments | messages |
//! |---|---|---|
//! | `test_simple_prompt` | | one text message |
//! | `test_prompt_with_arguments` | `arg1`, `arg2` | one text message quoting both |
//! | `test_prompt_with_embedded_resource` | `resourceUri` | an embedded text resource, then text |
//! | `test_prompt_with_image` | | a PNG image, then text |

use rmcp::{
    handler::server::{router::prompt::PromptRouter, wrapper::Parameters},
    model::{ContentBlock, PromptMessage, ResourceContents, Role},
    prompt, prompt_router,
    schemars::{self, JsonSchema},
};
use serde::Deserialize;

use crate::{Everything, media};

/// Arguments of `test_prompt_with_arguments`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TwoArguments {
    /// First test argument
    pub arg1: String,
    /// Second test argument
    pub arg2: String,
}

/// Arguments of `test_prompt_with_embedded_resource`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResourceToEmbed {
    /// URI of the resource to embed
    #[serde(rename = "resourceUri")]
    pub resource_uri: String,
}

// `#[prompt]` adds an undocumented `pub fn <name>_prompt_attr()` per prompt.
#[allow(missing_docs)]
#[prompt_router(router = "prompt_router", vis = "pub(crate)")]
impl Everything {
    /// A simple prompt without arguments
    #[prompt(name = "test_simple_prompt", title = "Simple Test Prompt")]
    async fn simple_prompt(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )]
    }

    /// A prompt with two required arguments, both quoted in its message
    #[prompt(name = "test_prompt_with_arguments", title = "Prompt With Arguments")]
    async fn prompt_with_arguments(
        &self,
        Parameters(TwoArguments { arg1, arg2 }): Parameters<TwoArguments>,
    ) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"),
        )]
    }

    /// A prompt that embeds a text resource at the URI it is given
    #[prompt(
        name = "test_prompt_with_embedded_resource",
        title = "Prompt With Embedded Resource"
    )]
    async fn prompt_with_embedded_resource(
        &self,
        Parameters(ResourceToEmbed { resource_uri }): Parameters<ResourceToEmbed>,
    ) -> Vec<PromptMessage> {
        let resource =
            ResourceContents::text("Embedded resource content for testing.", resource_uri);
        vec![
            PromptMessage::new(Role::User, ContentBlock::resource(resource)),
            PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
        ]
    }

    /// A prompt that includes an image
    #[prompt(name = "test_prompt_with_image", title = "Prompt With Image")]
    async fn prompt_with_image(&self) -> Vec<PromptMessage> {
        vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::image(media::red_pixel_png_base64(), media::PNG_MIME_TYPE),
            ),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ]
    }
}

/// The prompts, for the handler's `prompt_router` field.
pub(crate) fn router() -> PromptRouter<Everything> {
    Everything::prompt_router()
}
