//! A tool whose `inputSchema` is written by hand in JSON Schema 2020-12
//! (SEP-1613): `$schema`, `$defs` with a `$ref` to it, and
//! `additionalProperties: false`, all of which reach the client unchanged.
//!
//! `#[tool(input_schema = ...)]` replaces the schema rmcp would derive from
//! the [`Parameters`] type; the arguments are still deserialized into that
//! type, which must accept what the schema accepts (here: unknown fields are
//! rejected, like `additionalProperties: false` says).

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
                "type": "object",
                "properties": {
                    "street": { "type": "string" },
                    "city": { "type": "string" }
                }
            }
        },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" }
        },
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

/// The arguments of `json_schema_2020_12_tool`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// A name.
    pub name: Option<String>,
    /// An address.
    pub address: Option<Address>,
}

#[tool_router(router = schema_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "json_schema_2020_12_tool",
        description = "Tool with JSON Schema 2020-12 features ($schema, $defs, additionalProperties) for conformance testing (SEP-1613); echoes its arguments.",
        input_schema = input_schema(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn json_schema_tool(&self, Parameters(person): Parameters<Person>) -> String {
        let echoed = serde_json::to_string(&person).unwrap_or_default();
        format!("JSON Schema 2020-12 tool called with: {echoed}")
    }
}
