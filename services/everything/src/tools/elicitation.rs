//! Tools that ask the client's user to fill a form (`elicitation/create`,
//! MCP 2025-06-18, Client Features §Elicitation) and return the answer.
//!
//! A server may send this request only if the client declared the
//! `elicitation` capability at `initialize`; the tools check it and answer
//! with a tool error otherwise. Over Streamable HTTP, rmcp sends the request
//! on the tool call's own response stream, and the client answers with a POST.
//!
//! The elicitation forms are written as plain JSON Schema and checked by
//! [`ElicitationSchema::from_json_schema`], which accepts only what MCP
//! allows in a form: an object of primitive properties (string, number,
//! integer, boolean) and the enum forms of SEP-1330.

use rmcp::{
    Peer, RoleServer,
    handler::server::wrapper::Parameters,
    model::{ElicitRequestParams, ElicitResult, ElicitationSchema},
    schemars::{self, JsonSchema},
    service::ElicitationMode,
    tool, tool_router,
};
use serde::Deserialize;
use serde_json::{Value, json};

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

/// Checks that `form` is a valid MCP elicitation form.
///
/// # Errors
/// Why it is not.
pub fn elicitation_schema(form: Value) -> Result<ElicitationSchema, String> {
    let Value::Object(object) = form else {
        return Err("an elicitation form must be a JSON object".to_owned());
    };
    ElicitationSchema::from_json_schema(object)
        .map_err(|error| format!("invalid elicitation form: {error}"))
}

/// Asks the client's user to fill `form`, after checking that the client
/// supports form elicitation.
async fn elicit(
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

#[tool_router(router = elicitation_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "test_elicitation",
        description = "Shows `message` to the client's user with a form asking for a user name and an e-mail address (elicitation/create) and returns the answer."
    )]
    async fn elicitation(
        &self,
        peer: Peer<RoleServer>,
        Parameters(ElicitationArgs { message }): Parameters<ElicitationArgs>,
    ) -> Result<String, String> {
        let result = elicit(&peer, message, user_form()).await?;
        Ok(format!("User response: {}", describe(&result)))
    }

    #[tool(
        name = "test_elicitation_sep1034_defaults",
        description = "Asks the client's user to fill a form whose string, integer, number, enum and boolean fields have default values (SEP-1034)."
    )]
    async fn elicitation_with_defaults(&self, peer: Peer<RoleServer>) -> Result<String, String> {
        let message = "Please review and update the form fields with defaults".to_owned();
        let result = elicit(&peer, message, form_with_defaults()).await?;
        Ok(format!("Elicitation completed: {}", describe(&result)))
    }

    #[tool(
        name = "test_elicitation_sep1330_enums",
        description = "Asks the client's user to fill a form with the five enum forms of SEP-1330: untitled and titled single-select, legacy enumNames, untitled and titled multi-select."
    )]
    async fn elicitation_with_enums(&self, peer: Peer<RoleServer>) -> Result<String, String> {
        let message = "Please select options from the enum fields".to_owned();
        let result = elicit(&peer, message, form_with_enums()).await?;
        Ok(format!("Elicitation completed: {}", describe(&result)))
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
