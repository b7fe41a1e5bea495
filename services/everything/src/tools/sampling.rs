//! A tool that asks the client's LLM for a message (`sampling/createMessage`,
//! MCP 2025-06-18, Client Features §Sampling) and returns it.
//!
//! A server may send this request only if the client declared the `sampling`
//! capability at `initialize`; the tool checks it and answers with a tool
//! error otherwise. Over Streamable HTTP, rmcp sends the request on the tool
//! call's own response stream, and the client answers with a POST. A
//! stateless (2026-07-28) client is asked with an `InputRequiredResult`
//! (key `sampling`) instead, and answers on its retry.
//!
//! rmcp marks sampling deprecated because SEP-2577 removes it from protocol
//! 2026-07-28; the revisions this service negotiates with sessions
//! (2025-03-26 .. 2025-11-25) define it, hence the `allow`.
#![allow(deprecated)]

use rmcp::{
    ErrorData, Peer, RoleServer,
    handler::server::{tool::InputResponses as ToolInputResponses, wrapper::Parameters},
    model::{
        CallToolResponse, CallToolResult, ContentBlock, CreateMessageRequestParams, Role,
        SamplingMessage, SamplingMessageContentBlock,
    },
    schemars::{self, JsonSchema},
    service::RequestContext,
    tool, tool_router,
};
use serde::Deserialize;

use super::input_required::{self, Answer, Ask, Gathered, sampled_text};
use crate::Everything;

/// The `inputRequests` key of `test_sampling`'s request to a stateless client.
pub const SAMPLING_KEY: &str = "sampling";

/// Arguments of `test_sampling`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SamplingArgs {
    /// The prompt to send to the LLM
    pub prompt: String,
}

/// Most tokens `test_sampling` asks the client's LLM for.
pub const SAMPLING_MAX_TOKENS: u32 = 100;

#[tool_router(router = sampling_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "test_sampling",
        description = "Asks the client's LLM to answer `prompt` (sampling/createMessage, at most 100 tokens) and returns its answer."
    )]
    async fn sampling(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(SamplingArgs { prompt }): Parameters<SamplingArgs>,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        respond(&context, prompt, responses).await
    }
}

/// Answers a tool call that asks the client's model to answer `prompt`
/// (`LLM response: …`): a session client is sent `sampling/createMessage`
/// (a tool error without the `sampling` capability); a stateless
/// (2026-07-28) client gets an `InputRequiredResult` under
/// [`SAMPLING_KEY`] and answers on its retry.
///
/// # Errors
/// `-32021` when a stateless request does not declare `sampling`; `-32602`
/// when its answer is not a sampling result.
pub(crate) async fn respond(
    context: &RequestContext<RoleServer>,
    prompt: String,
    responses: Option<rmcp::model::InputResponses>,
) -> Result<CallToolResponse, ErrorData> {
    if !input_required::is_stateless(context) {
        return Ok(match sample(&context.peer, prompt).await {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(error) => CallToolResult::error(vec![ContentBlock::text(error)]),
        }
        .into());
    }
    let asks = [(
        SAMPLING_KEY,
        Ask::Sampling {
            prompt,
            max_tokens: SAMPLING_MAX_TOKENS,
        },
    )];
    match input_required::gather(context, &asks, responses.as_ref(), None)? {
        Gathered::Ask(result) => Ok(result.into()),
        Gathered::All(answers) => match answers.get(SAMPLING_KEY) {
            Some(Answer::Sampling(result)) => {
                Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                    "LLM response: {}",
                    sampled_text(result)
                ))])
                .into())
            }
            _ => Err(ErrorData::internal_error(
                "the sampling answer is missing",
                None,
            )),
        },
    }
}

/// Asks the session client's model to answer `prompt`: `LLM response: …`.
pub(crate) async fn sample(peer: &Peer<RoleServer>, prompt: String) -> Result<String, String> {
    let supported = peer
        .peer_info()
        .is_some_and(|info| info.capabilities.sampling.is_some());
    if !supported {
        return Err("the client does not support sampling (no `sampling` capability)".to_owned());
    }
    let request = CreateMessageRequestParams::new(
        vec![SamplingMessage::new(
            Role::User,
            SamplingMessageContentBlock::text(prompt),
        )],
        SAMPLING_MAX_TOKENS,
    );
    let result = peer
        .create_message(request)
        .await
        .map_err(|error| format!("sampling failed: {error}"))?;
    let text: Vec<String> = result
        .message
        .content
        .into_vec()
        .into_iter()
        .filter_map(|block| match block {
            SamplingMessageContentBlock::Text(text) => Some(text.text),
            _ => None,
        })
        .collect();
    if text.is_empty() {
        return Err(format!(
            "the client's model ({}) answered without text",
            result.model
        ));
    }
    Ok(format!("LLM response: {}", text.join("\n")))
}
