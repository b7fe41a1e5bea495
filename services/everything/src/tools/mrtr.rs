//! Tools that show multi round-trip requests (MRTR, SEP-2322, MCP
//! 2026-07-28, Server Features §Multi Round-Trip Requests) one rule at a
//! time: each answers a first call with an `InputRequiredResult` and
//! completes when the client retries with `inputResponses` under the same
//! keys. Any replica serves any round: what a tool must remember between
//! rounds is sealed in `requestState` ([`input_required::gather_sealed`]).
//!
//! | tool | asks for (key → request) | state |
//! |---|---|---|
//! | `test_input_required_result_elicitation` | `user_name` → form with `name` | none: the answer alone completes it |
//! | `test_input_required_result_sampling` | `capital_question` → `sampling/createMessage` | none |
//! | `test_input_required_result_list_roots` | `client_roots` → `roots/list` | none |
//! | `test_input_required_result_request_state` | `confirm` → form with `ok` | sealed, required on the retry |
//! | `test_input_required_result_tampered_state` | `confirm` → form with `ok` | sealed: an altered state is `-32602` |
//! | `test_input_required_result_multiple_inputs` | `user_name`, `greeting`, `client_roots` at once | sealed, carries partial answers |
//! | `test_input_required_result_multi_round` | `step1` (name), then `step2` (colour) | sealed, a new one each round |
//! | `test_input_required_result_capabilities` | whichever of the three the request's capabilities allow | sealed |
//!
//! These tools exist for stateless clients; a client with a session (which
//! has no `inputResponses` to send) gets a tool error that says so.
//!
//! rmcp marks sampling and roots deprecated (SEP-2577); MRTR still carries
//! them, hence the `allow`.
#![allow(deprecated)]

use std::collections::BTreeMap;

use rmcp::{
    ErrorData, RoleServer,
    handler::server::tool::{InputResponses as ToolInputResponses, RequestState},
    model::{
        CallToolResponse, CallToolResult, ContentBlock, ElicitResult, ElicitationAction,
        InputResponses,
    },
    service::RequestContext,
    tool, tool_router,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::input_required::{self, Answer, Ask, Gathered, sampled_text};
use crate::Everything;

/// A form with one required string field `field`, described by `description`.
fn one_string_form(field: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": { field: { "type": "string", "description": description } },
        "required": [field]
    })
}

/// The `confirm` form: one required boolean `ok`.
fn confirm_form() -> Value {
    json!({
        "type": "object",
        "properties": { "ok": { "type": "boolean", "description": "Confirm?" } },
        "required": ["ok"]
    })
}

fn name_ask() -> Ask {
    Ask::Form {
        message: "What is your name?".to_owned(),
        form: one_string_form("name", "Your name"),
    }
}

fn confirm_ask() -> Ask {
    Ask::Form {
        message: "Please confirm".to_owned(),
        form: confirm_form(),
    }
}

fn complete(text: impl Into<String>) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text.into())]).into()
}

/// The answer to a form under `key`, as gathered: `Ok(None)` when the user
/// declined or cancelled, the content's `field` when they accepted.
///
/// # Errors
/// `-32602` when an accepted answer lacks `field` or has the wrong type for it.
fn form_field<'a>(
    answers: &'a BTreeMap<String, Answer>,
    key: &str,
    field: &str,
) -> Result<Option<&'a Value>, ErrorData> {
    let Some(Answer::Form(ElicitResult {
        action, content, ..
    })) = answers.get(key)
    else {
        return Err(ErrorData::internal_error(
            format!("the answer under {key} is missing after gathering it"),
            None,
        ));
    };
    if *action != ElicitationAction::Accept {
        return Ok(None);
    }
    content
        .as_ref()
        .and_then(|content| content.get(field))
        .map(Some)
        .ok_or_else(|| {
            ErrorData::invalid_params(
                format!("inputResponses.{key}: an accepted answer needs content.{field}"),
                None,
            )
        })
}

/// The string in an accepted form's `field`.
///
/// # Errors
/// As [`form_field`], and `-32602` when it is not a string.
fn form_string(
    answers: &BTreeMap<String, Answer>,
    key: &str,
    field: &str,
) -> Result<Option<String>, ErrorData> {
    match form_field(answers, key, field)? {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ErrorData::invalid_params(
            format!("inputResponses.{key}: content.{field} must be a string"),
            None,
        )),
    }
}

/// The URIs of a roots answer under `key`, comma-separated.
fn roots_text(answers: &BTreeMap<String, Answer>, key: &str) -> String {
    match answers.get(key) {
        Some(Answer::Roots(result)) if !result.roots.is_empty() => result
            .roots
            .iter()
            .map(|root| root.uri.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        _ => "(none)".to_owned(),
    }
}

/// The text of a sampling answer under `key`.
fn sampling_text(answers: &BTreeMap<String, Answer>, key: &str) -> String {
    match answers.get(key) {
        Some(Answer::Sampling(result)) => sampled_text(result),
        _ => String::new(),
    }
}

/// A tool error for a session client, which cannot answer an
/// `InputRequiredResult`.
fn needs_stateless(tool: &str) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(format!(
        "{tool} shows multi round-trip requests (MCP 2026-07-28): call it without a session, with io.modelcontextprotocol/protocolVersion 2026-07-28 in _meta"
    ))])
    .into()
}

/// The round `test_input_required_result_multi_round` is in, sealed in its
/// `requestState`.
#[derive(Debug, Serialize, Deserialize)]
struct MultiRound {
    /// The name given in step 1; none before.
    name: Option<String>,
}

#[tool_router(router = mrtr_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "test_input_required_result_elicitation",
        description = "Asks the user's name (inputRequests.user_name, an elicitation form) and greets them: \"Hello, <name>!\"."
    )]
    async fn mrtr_elicitation(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        if !input_required::is_stateless(&context) {
            return Ok(needs_stateless("test_input_required_result_elicitation"));
        }
        let asks = [("user_name", name_ask())];
        match input_required::gather(&context, &asks, responses.as_ref(), state)? {
            Gathered::Ask(result) => Ok(result.into()),
            Gathered::All(answers) => Ok(complete(
                match form_string(&answers, "user_name", "name")? {
                    Some(name) => format!("Hello, {name}!"),
                    None => "Hello, whoever you are!".to_owned(),
                },
            )),
        }
    }

    #[tool(
        name = "test_input_required_result_sampling",
        description = "Asks the client's model \"What is the capital of France?\" (inputRequests.capital_question, sampling/createMessage) and returns its answer."
    )]
    async fn mrtr_sampling(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        if !input_required::is_stateless(&context) {
            return Ok(needs_stateless("test_input_required_result_sampling"));
        }
        let asks = [(
            "capital_question",
            Ask::Sampling {
                prompt: "What is the capital of France?".to_owned(),
                max_tokens: 100,
            },
        )];
        match input_required::gather(&context, &asks, responses.as_ref(), state)? {
            Gathered::Ask(result) => Ok(result.into()),
            Gathered::All(answers) => Ok(complete(format!(
                "The model answered: {}",
                sampling_text(&answers, "capital_question")
            ))),
        }
    }

    #[tool(
        name = "test_input_required_result_list_roots",
        description = "Asks for the client's roots (inputRequests.client_roots, roots/list) and lists their URIs."
    )]
    async fn mrtr_list_roots(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        if !input_required::is_stateless(&context) {
            return Ok(needs_stateless("test_input_required_result_list_roots"));
        }
        let asks = [("client_roots", Ask::Roots)];
        match input_required::gather(&context, &asks, responses.as_ref(), state)? {
            Gathered::Ask(result) => Ok(result.into()),
            Gathered::All(answers) => Ok(complete(format!(
                "Client roots: {}",
                roots_text(&answers, "client_roots")
            ))),
        }
    }

    #[tool(
        name = "test_input_required_result_request_state",
        description = "Asks the user to confirm (inputRequests.confirm) with a sealed requestState that the retry must echo; answers \"state-ok\" once the state checks out."
    )]
    async fn mrtr_request_state(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        confirm_round(
            &context,
            "test_input_required_result_request_state",
            state,
            responses,
        )
    }

    #[tool(
        name = "test_input_required_result_tampered_state",
        description = "Like test_input_required_result_request_state: a requestState altered by the client is refused with -32602."
    )]
    async fn mrtr_tampered_state(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        confirm_round(
            &context,
            "test_input_required_result_tampered_state",
            state,
            responses,
        )
    }

    #[tool(
        name = "test_input_required_result_multiple_inputs",
        description = "Asks for three inputs at once: the user's name (user_name, form), a greeting from the client's model (greeting, sampling) and the client's roots (client_roots); answers already given travel in the sealed requestState."
    )]
    async fn mrtr_multiple_inputs(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = "test_input_required_result_multiple_inputs";
        if !input_required::is_stateless(&context) {
            return Ok(needs_stateless(tool));
        }
        let asks = [
            ("user_name", name_ask()),
            (
                "greeting",
                Ask::Sampling {
                    prompt: "Generate a greeting".to_owned(),
                    max_tokens: 50,
                },
            ),
            ("client_roots", Ask::Roots),
        ];
        match input_required::gather_sealed(
            &context,
            tool,
            &asks,
            responses.as_ref(),
            state.as_deref(),
        )? {
            Gathered::Ask(result) => Ok(result.into()),
            Gathered::All(answers) => {
                let name = form_string(&answers, "user_name", "name")?
                    .unwrap_or_else(|| "(declined)".to_owned());
                Ok(complete(format!(
                    "name: {name}; greeting: {}; roots: {}",
                    sampling_text(&answers, "greeting"),
                    roots_text(&answers, "client_roots")
                )))
            }
        }
    }

    #[tool(
        name = "test_input_required_result_multi_round",
        description = "Two rounds: asks the user's name (step1), then their favourite colour (step2), each with a new sealed requestState; answers with both."
    )]
    async fn mrtr_multi_round(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = "test_input_required_result_multi_round";
        if !input_required::is_stateless(&context) {
            return Ok(needs_stateless(tool));
        }
        let round: MultiRound = match &state {
            Some(state) => mcp_session::request_state::open(&context, tool, state)?,
            None => MultiRound { name: None },
        };
        let step1 = Ask::Form {
            message: "Step 1: What is your name?".to_owned(),
            form: one_string_form("name", "Your name"),
        };
        let step2 = Ask::Form {
            message: "Step 2: What is your favorite color?".to_owned(),
            form: one_string_form("color", "Your favourite colour"),
        };
        let seal = |round: &MultiRound| mcp_session::request_state::seal(&context, tool, round);
        match round.name {
            None => {
                let state = Some(seal(&round)?);
                let asks = [("step1", step1)];
                match input_required::gather(&context, &asks, responses.as_ref(), state)? {
                    Gathered::Ask(result) => Ok(result.into()),
                    Gathered::All(answers) => {
                        let name = form_string(&answers, "step1", "name")?
                            .unwrap_or_else(|| "(declined)".to_owned());
                        // Round 2: a new state that remembers the name.
                        let next = seal(&MultiRound { name: Some(name) })?;
                        match input_required::gather(
                            &context,
                            &[("step2", step2)],
                            None,
                            Some(next),
                        )? {
                            Gathered::Ask(result) => Ok(result.into()),
                            Gathered::All(_) => Err(ErrorData::internal_error(
                                "step 2 answered before it was asked",
                                None,
                            )),
                        }
                    }
                }
            }
            Some(name) => {
                let asks = [("step2", step2)];
                match input_required::gather(&context, &asks, responses.as_ref(), state)? {
                    Gathered::Ask(result) => Ok(result.into()),
                    Gathered::All(answers) => {
                        let color = form_string(&answers, "step2", "color")?
                            .unwrap_or_else(|| "(declined)".to_owned());
                        Ok(complete(format!("{name}'s favourite colour is {color}")))
                    }
                }
            }
        }
    }

    #[tool(
        name = "test_input_required_result_capabilities",
        description = "Asks for a form, a sampling answer and the roots, but only for what this request's clientCapabilities declare (none declared: completes at once)."
    )]
    async fn mrtr_capabilities(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = "test_input_required_result_capabilities";
        if !input_required::is_stateless(&context) {
            return Ok(needs_stateless(tool));
        }
        let capabilities = input_required::client_capabilities(&context);
        let asks: Vec<(&str, Ask)> = [
            ("user_name", name_ask()),
            (
                "greeting",
                Ask::Sampling {
                    prompt: "Generate a greeting".to_owned(),
                    max_tokens: 50,
                },
            ),
            ("client_roots", Ask::Roots),
        ]
        .into_iter()
        .filter(|(_, ask)| ask.declared_by(&capabilities))
        .collect();
        match input_required::gather_sealed(
            &context,
            tool,
            &asks,
            responses.as_ref(),
            state.as_deref(),
        )? {
            Gathered::Ask(result) => Ok(result.into()),
            Gathered::All(answers) => {
                let got: Vec<&str> = answers.keys().map(String::as_str).collect();
                Ok(complete(if got.is_empty() {
                    "The client declared none of elicitation, sampling and roots: nothing was asked."
                        .to_owned()
                } else {
                    format!(
                        "Gathered {} (only what the client declared)",
                        got.join(", ")
                    )
                }))
            }
        }
    }
}

/// The rounds of the `confirm` tools: the first call gets the form and a
/// sealed state; a retry must echo that state (checked: altered, expired,
/// another user's or another tool's is `-32602`) and answer the form.
fn confirm_round(
    context: &RequestContext<RoleServer>,
    tool: &str,
    state: Option<String>,
    responses: Option<InputResponses>,
) -> Result<CallToolResponse, ErrorData> {
    if !input_required::is_stateless(context) {
        return Ok(needs_stateless(tool));
    }
    // Without a state (a first call, or a retry that dropped it) the form is
    // asked again: the state is what this tool shows.
    let responses = if state.is_some() { responses } else { None };
    let asks = [("confirm", confirm_ask())];
    match input_required::gather_sealed(context, tool, &asks, responses.as_ref(), state.as_deref())?
    {
        Gathered::Ask(result) => Ok(result.into()),
        Gathered::All(answers) => {
            let confirmed = match form_field(&answers, "confirm", "ok")? {
                None => "declined".to_owned(),
                Some(Value::Bool(ok)) => format!("ok={ok}"),
                Some(_) => {
                    return Err(ErrorData::invalid_params(
                        "inputResponses.confirm: content.ok must be a boolean",
                        None,
                    ));
                }
            };
            Ok(complete(format!(
                "state-ok: the sealed requestState checked out; {confirmed}"
            )))
        }
    }
}
