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
//! | `test_input_required_result_prompt` | | asks the user for context first (an `input_required` result for 2026-07-28 clients, `elicitation/create` for sessions), then one text message quoting it |
//!
//! rmcp's prompt router hands a prompt its arguments but not the request's
//! MRTR fields, so the handler puts them in the request's extensions as a
//! [`PromptInput`], which a prompt takes with rmcp's `Extension` extractor.

use rmcp::{
    ErrorData, RoleServer,
    handler::server::{
        prompt::IntoGetPromptResult, router::prompt::PromptRouter, tool::Extension,
        wrapper::Parameters,
    },
    model::{
        ContentBlock, ElicitationAction, GetPromptResponse, GetPromptResult, PromptMessage,
        ResourceContents, Role,
    },
    prompt, prompt_router,
    schemars::{self, JsonSchema},
    service::RequestContext,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Everything, media,
    request::PromptInput,
    tools::{
        elicitation,
        input_required::{self, Answer, Ask, Gathered},
    },
};

/// The `inputRequests` key of `test_input_required_result_prompt`'s form.
pub const USER_CONTEXT_KEY: &str = "user_context";

/// The form of `test_input_required_result_prompt`: one free-text field.
pub fn user_context_form() -> Value {
    json!({
        "type": "object",
        "properties": {
            "context": { "type": "string", "description": "What the prompt should be about" }
        },
        "required": ["context"]
    })
}

/// What a prompt that may ask for input returns: rmcp's prompt router takes
/// a prompt's return value through [`IntoGetPromptResult`].
#[derive(Debug)]
pub struct PromptReply(pub GetPromptResponse);

impl IntoGetPromptResult for PromptReply {
    fn into_get_prompt_result(self) -> Result<GetPromptResponse, ErrorData> {
        Ok(self.0)
    }
}

/// The message of `test_input_required_result_prompt` for the user's answer.
fn context_messages(action: &ElicitationAction, content: Option<&Value>) -> Vec<PromptMessage> {
    let text = match (action, content.and_then(|content| content.get("context"))) {
        (ElicitationAction::Accept, Some(Value::String(context))) => {
            format!("Answer with this context in mind: {context}")
        }
        _ => "The user gave no context: answer in general terms.".to_owned(),
    };
    vec![PromptMessage::new_text(Role::User, text)]
}

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

    /// A prompt that first asks the user for context (MRTR for 2026-07-28 clients)
    #[prompt(
        name = "test_input_required_result_prompt",
        title = "Prompt That Asks For Input"
    )]
    async fn input_required_prompt(
        &self,
        context: RequestContext<RoleServer>,
        Extension(input): Extension<PromptInput>,
    ) -> Result<PromptReply, ErrorData> {
        let message = "What should the prompt be about?".to_owned();
        if !input_required::is_stateless(&context) {
            let answer = elicitation::elicit(&context.peer, message, user_context_form())
                .await
                .map_err(|error| {
                    ErrorData::invalid_request(
                        format!("this prompt asks the user for context, and that failed: {error}"),
                        None,
                    )
                })?;
            let messages = context_messages(&answer.action, answer.content.as_ref());
            return Ok(PromptReply(GetPromptResult::new(messages).into()));
        }
        let asks = [(
            USER_CONTEXT_KEY,
            Ask::Form {
                message,
                form: user_context_form(),
            },
        )];
        match input_required::gather(&context, &asks, input.responses.as_ref(), input.state)? {
            Gathered::Ask(result) => Ok(PromptReply(result.into())),
            Gathered::All(answers) => match answers.get(USER_CONTEXT_KEY) {
                Some(Answer::Form(answer)) => Ok(PromptReply(
                    GetPromptResult::new(context_messages(&answer.action, answer.content.as_ref()))
                        .into(),
                )),
                _ => Err(ErrorData::internal_error(
                    "the form's answer is missing",
                    None,
                )),
            },
        }
    }
}

/// The prompts, for the handler's `prompt_router` field.
pub(crate) fn router() -> PromptRouter<Everything> {
    Everything::prompt_router()
}
