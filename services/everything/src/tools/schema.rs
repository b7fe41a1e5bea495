//! A tool whose `inputSchema` is written by hand in JSON Schema 2020-12,
//! the default dialect of MCP (SEP-1613, MCP 2025-11-25, Basic §JSON Schema
//! Usage): `$schema`, `$defs` with an `$anchor` and a `$ref` to it,
//! `additionalProperties: false`, composition (`allOf` / `anyOf`) and
//! conditional (`if` / `then` / `else`) keywords, all of which reach the
//! client unchanged (SEP-2106, MCP 2026-07-28).
//!
//! `#[tool(input_schema = ...)]` replaces the schema rmcp would derive from
//! the [`Parameters`] type; the arguments are still deserialized into that
//! type, which must accept what the schema accepts: unknown fields are
//! rejected (`additionalProperties: false`), and [`Person::check`] applies
//! the composition and conditional rules, so that the tool refuses what the
//! schema forbids instead of trusting the client to have validated.

use std::sync::Arc;

use rmcp::{handler::server::wrapper::Parameters, model::JsonObject, tool, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Everything;

/// The JSON Schema dialect of [`input_schema`].
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The `inputSchema` of `json_schema_2020_12_tool`.
pub fn input_schema() -> Arc<JsonObject> {
    let schema = json!({
        "$schema": DIALECT,
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {
                    "street": { "type": "string" },
                    "city": { "type": "string" }
                }
            }
        },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" },
            "contactMethod": { "type": "string", "enum": ["phone", "email"] },
            "phone": { "type": "string" },
            "email": { "type": "string" }
        },
        "allOf": [
            { "anyOf": [ { "required": ["phone"] }, { "required": ["email"] } ] }
        ],
        "if": {
            "properties": { "contactMethod": { "const": "phone" } },
            "required": ["contactMethod"]
        },
        "then": { "required": ["phone"] },
        "else": { "required": ["email"] },
        "additionalProperties": false
    });
    match schema {
        serde_json::Value::Object(object) => Arc::new(object),
        _ => unreachable!("the schema literal is an object"),
    }
}

/// An address, `$defs/address` of [`input_schema`].
#[derive(Debug, Deserialize, Serialize)]
pub struct Address {
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
}

/// How to reach a [`Person`]: `contactMethod` of [`input_schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactMethod {
    /// By `phone`.
    Phone,
    /// By `email`.
    Email,
}

/// The arguments of `json_schema_2020_12_tool`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Person {
    /// A name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// The preferred way to reach the person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_method: Option<ContactMethod>,
    /// A phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// An email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Person {
    /// Applies the rules of [`input_schema`] that a Rust type cannot
    /// express: `allOf[anyOf]` (a phone or an email is given) and
    /// `if`/`then`/`else` (`contactMethod: "phone"` needs a phone, anything
    /// else, an absent method included, needs an email).
    ///
    /// # Errors
    /// The rule that does not hold, in words.
    pub fn check(&self) -> Result<(), String> {
        if self.phone.is_none() && self.email.is_none() {
            return Err("give a phone or an email (allOf/anyOf)".to_owned());
        }
        match self.contact_method {
            Some(ContactMethod::Phone) if self.phone.is_none() => {
                Err("contactMethod is \"phone\": phone is required (if/then)".to_owned())
            }
            Some(ContactMethod::Phone) => Ok(()),
            _ if self.email.is_none() => {
                Err("contactMethod is not \"phone\": email is required (if/else)".to_owned())
            }
            _ => Ok(()),
        }
    }
}

#[tool_router(router = schema_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "json_schema_2020_12_tool",
        description = "Tool with JSON Schema 2020-12 features ($schema, $defs, $anchor, additionalProperties, allOf/anyOf, if/then/else) for conformance testing (SEP-1613, SEP-2106); checks and echoes its arguments.",
        input_schema = input_schema(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn json_schema_tool(
        &self,
        Parameters(person): Parameters<Person>,
    ) -> Result<String, rmcp::ErrorData> {
        person.check().map_err(|rule| {
            rmcp::ErrorData::invalid_params(format!("invalid arguments: {rule}"), None)
        })?;
        let echoed = serde_json::to_string(&person).unwrap_or_default();
        Ok(format!("JSON Schema 2020-12 tool called with: {echoed}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(arguments: serde_json::Value) -> Result<Person, String> {
        let person: Person =
            serde_json::from_value(arguments).map_err(|error| error.to_string())?;
        person.check().map(|()| person)
    }

    #[test]
    fn the_schema_keeps_its_2020_12_keywords() {
        let schema = input_schema();
        for keyword in ["$schema", "$defs", "allOf", "if", "then", "else"] {
            assert!(schema.contains_key(keyword), "{keyword} is missing");
        }
        assert_eq!(schema["$defs"]["address"]["$anchor"], "addressDef");
        assert_eq!(schema["additionalProperties"], false);
    }

    #[test]
    fn the_arguments_obey_the_composition_and_conditional_rules() {
        assert!(person(json!({ "email": "a@example.com" })).is_ok());
        assert!(person(json!({ "contactMethod": "phone", "phone": "+1 555" })).is_ok());
        assert!(
            person(json!({ "contactMethod": "email", "email": "a@example.com", "phone": "1" }))
                .is_ok()
        );
        let no_contact = person(json!({ "name": "Ada" })).unwrap_err();
        assert!(no_contact.contains("phone or an email"), "{no_contact}");
        let phone_missing =
            person(json!({ "contactMethod": "phone", "email": "a@b" })).unwrap_err();
        assert!(
            phone_missing.contains("phone is required"),
            "{phone_missing}"
        );
        let email_missing = person(json!({ "phone": "1" })).unwrap_err();
        assert!(
            email_missing.contains("email is required"),
            "{email_missing}"
        );
        assert!(person(json!({ "email": "a@b", "fax": "1" })).is_err());
        assert!(person(json!({ "email": "a@b", "contactMethod": "fax" })).is_err());
    }
}
