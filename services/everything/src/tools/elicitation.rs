//! Tools that ask the client's user to fill a form (`elicitation/create`,
//! MCP 2025-06-18, Client Features §Elicitation) and return the answer.
//!
//! A server may send this request only if the client declared the
//! `elicitation` capability at `initialize`; the tools check it and answer
//! with a tool error otherwise. Over Streamable HTTP, rmcp sends the request
//! on the tool call's own response stream, and the client answers with a POST.
//! Stateless (2026-07-28) clients are asked with an `InputRequiredResult`
//! instead ([`input_required`]).
//!
//! The elicitation forms are written as plain JSON Schema and checked by
//! `ElicitationSchema::from_json_schema` (see
//! [`input_required::elicitation_schema`]), which accepts only what MCP
//! allows in a form: an object of primitive properties (string, number,
//! integer, boolean) and the enum forms of SEP-1330.

use rmcp::{
    ErrorData, Peer, RoleServer,
    handler::server::{
        tool::{InputResponses as ToolInputResponses, RequestState},
        wrapper::Parameters,
    },
    model::{
        CallToolResponse, CallToolResult, ContentBlock, ElicitRequestParams, ElicitResult,
        InputResponses,
    },
    schemars::{self, JsonSchema},
    service::{ElicitationMode, RequestContext},
    tool, tool_router,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::input_required::{self, Round, elicitation_schema};
use crate::Everything;

/// Arguments of `test_elicitation`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ElicitationArgs {
    /// The message to show the user
    pub message: String,
}

/// The form of `test_elicitation`: a user name and an e-mail address.
pub fn user_form() -> Value {
    json!({
        "type": "object",
        "properties": {
            "username": { "type": "string", "description": "User's response" },
            "email": { "type": "string", "description": "User's email address" }
        },
        "required": ["username", "email"]
    })
}

/// The form of `test_elicitation_sep1034_defaults`: one field of each
/// primitive type, each with a default value (SEP-1034).
pub fn form_with_defaults() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "User name", "default": "John Doe" },
            "age": { "type": "integer", "description": "User age", "default": 30 },
            "score": { "type": "number", "description": "User score", "default": 95.5 },
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active"
            },
            "verified": { "type": "boolean", "description": "Verification status", "default": true }
        },
        "required": []
    })
}

/// The form of `test_elicitation_sep1330_enums`: the five enum forms of
/// SEP-1330 — untitled and titled single-select, the legacy `enumNames`
/// form, untitled and titled multi-select.
pub fn form_with_enums() -> Value {
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Select one option",
                "enum": ["option1", "option2", "option3"]
            },
            "titledSingle": {
                "type": "string",
                "description": "Select one option with titles",
                "oneOf": [
                    { "const": "value1", "title": "First Option" },
                    { "const": "value2", "title": "Second Option" },
                    { "const": "value3", "title": "Third Option" }
                ]
            },
            "legacyEnum": {
                "type": "string",
                "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "description": "Select multiple options",
                "minItems": 1,
                "maxItems": 3,
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
            },
            "titledMulti": {
                "type": "array",
                "description": "Select multiple options with titles",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "anyOf": [
                        { "const": "value1", "title": "First Choice" },
                        { "const": "value2", "title": "Second Choice" },
                        { "const": "value3", "title": "Third Choice" }
                    ]
                }
            }
        },
        "required": []
    })
}

/// Asks the client's user to fill `form`, after checking that the client
/// supports form elicitation.
pub(crate) async fn elicit(
    peer: &Peer<RoleServer>,
    message: String,
    form: Value,
) -> Result<ElicitResult, String> {
    if !peer
        .supported_elicitation_modes()
        .contains(&ElicitationMode::Form)
    {
        return Err(
            "the client does not support form elicitation (no `elicitation` capability)".to_owned(),
        );
    }
    let requested_schema = elicitation_schema(form)?;
    peer.create_elicitation(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema,
    })
    .await
    .map_err(|error| format!("elicitation failed: {error}"))
}

/// `action=<accept|decline|cancel>, content=<JSON>` for an elicitation result.
fn describe(result: &ElicitResult) -> String {
    let action = serde_json::to_value(&result.action).unwrap_or_default();
    let content = result.content.clone().unwrap_or_else(|| json!({}));
    format!(
        "action={}, content={content}",
        action.as_str().unwrap_or("unknown")
    )
}

/// Answers a call of `tool`: asks the client's user to fill `form` (shown
/// with `message`) and returns `"<label>: action=…, content=…"`. A session
/// client is sent `elicitation/create`; a stateless (2026-07-28) client gets
/// an `InputRequiredResult` and answers on its retry
/// ([`input_required`](super::input_required)), which any replica serves.
pub(crate) async fn respond(
    context: &RequestContext<RoleServer>,
    tool: &str,
    label: &str,
    message: String,
    form: Value,
    state: Option<String>,
    responses: Option<InputResponses>,
) -> Result<CallToolResponse, ErrorData> {
    let outcome = if input_required::is_stateless(context) {
        match input_required::elicit(context, tool, message, form, state, responses)? {
            Round::Ask(result) => return Ok(result.into()),
            Round::Answered(result) => Ok(result),
        }
    } else {
        elicit(&context.peer, message, form).await
    };
    Ok(match outcome {
        Ok(result) => CallToolResult::success(vec![ContentBlock::text(format!(
            "{label}: {}",
            describe(&result)
        ))]),
        Err(error) => CallToolResult::error(vec![ContentBlock::text(error)]),
    }
    .into())
}

#[tool_router(router = elicitation_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "test_elicitation",
        description = "Shows `message` to the client's user with a form asking for a user name and an e-mail address (elicitation/create; for 2026-07-28 clients an input_required result) and returns the answer."
    )]
    async fn elicitation(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(ElicitationArgs { message }): Parameters<ElicitationArgs>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = "test_elicitation";
        respond(
            &context,
            tool,
            "User response",
            message,
            user_form(),
            state,
            responses,
        )
        .await
    }

    #[tool(
        name = "test_elicitation_sep1034_defaults",
        description = "Asks the client's user to fill a form whose string, integer, number, enum and boolean fields have default values (SEP-1034)."
    )]
    async fn elicitation_with_defaults(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let message = "Please review and update the form fields with defaults".to_owned();
        let tool = "test_elicitation_sep1034_defaults";
        let form = form_with_defaults();
        respond(
            &context,
            tool,
            "Elicitation completed",
            message,
            form,
            state,
            responses,
        )
        .await
    }

    #[tool(
        name = "test_elicitation_sep1330_enums",
        description = "Asks the client's user to fill a form with the five enum forms of SEP-1330: untitled and titled single-select, legacy enumNames, untitled and titled multi-select."
    )]
    async fn elicitation_with_enums(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let message = "Please select options from the enum fields".to_owned();
        let tool = "test_elicitation_sep1330_enums";
        let form = form_with_enums();
        respond(
            &context,
            tool,
            "Elicitation completed",
            message,
            form,
            state,
            responses,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forms survive rmcp's typed model unchanged: what the client
    /// receives is what is written above.
    #[test]
    fn forms_round_trip_through_the_typed_schema() {
        for form in [user_form(), form_with_defaults(), form_with_enums()] {
            let schema = elicitation_schema(form.clone()).unwrap();
            let wire = serde_json::to_value(&schema).unwrap();
            assert_eq!(wire["properties"], form["properties"], "{wire:#}");
        }
    }

    #[test]
    fn non_forms_are_rejected() {
        assert!(elicitation_schema(json!([1, 2])).is_err());
    }
}
