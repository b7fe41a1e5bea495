//! Tool schemas in the JSON Schema 2020-12 vocabulary only.
//!
//! MCP tools describe their arguments and results with JSON Schema, 2020-12
//! by default (MCP 2025-11-25, Server Features §Tools, Tool: `inputSchema`,
//! `outputSchema`). schemars, which rmcp's `#[tool]` macro uses, annotates
//! numbers with OpenAPI-style formats that JSON Schema does not define
//! (`"uint"`, `"uint64"`, `"int32"`, `"double"`, ...). Validators that do not
//! know a format warn about it: the official TypeScript SDK (Ajv) printed
//! one `unknown format "uint" ignored in schema` line per such place on
//! every connection.
//!
//! [`to_2020_12`] rewrites a schema in place: a `format` that is not one of
//! the formats of JSON Schema 2020-12 (Validation §7.3) is removed, and for
//! the bounded integer formats the bounds it stood for are kept as
//! `minimum`/`maximum` (where the schema has none). [`ServiceTools`] applies
//! it to every tool it serves, once, when it is built.
//!
//! [`ServiceTools`]: super::ServiceTools

use rmcp::model::JsonObject;
use serde_json::Value;

/// The formats JSON Schema 2020-12 defines (Validation §7.3).
pub const FORMATS_2020_12: [&str; 19] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Keywords whose values are data, not subschemas: never rewritten.
const DATA_KEYWORDS: [&str; 5] = ["const", "default", "enum", "examples", "example"];

/// The bounds an integer format stood for: `(minimum, maximum)`. 64-bit
/// formats keep only their sign bound (JSON numbers past 2^53 are not exact).
fn integer_bounds(format: &str) -> Option<(Option<i64>, Option<i64>)> {
    Some(match format {
        "uint8" => (Some(0), Some(i64::from(u8::MAX))),
        "uint16" => (Some(0), Some(i64::from(u16::MAX))),
        "uint32" => (Some(0), Some(i64::from(u32::MAX))),
        "uint" | "uint64" | "uint128" => (Some(0), None),
        "int8" => (Some(i64::from(i8::MIN)), Some(i64::from(i8::MAX))),
        "int16" => (Some(i64::from(i16::MIN)), Some(i64::from(i16::MAX))),
        "int32" => (Some(i64::from(i32::MIN)), Some(i64::from(i32::MAX))),
        _ => return None,
    })
}

/// Rewrites `schema` (a whole schema object) into the 2020-12 vocabulary, in
/// place: see the module docs. Idempotent.
pub fn to_2020_12(schema: &mut JsonObject) {
    if let Some(Value::String(format)) = schema.get("format")
        && !FORMATS_2020_12.contains(&format.as_str())
    {
        let bounds = integer_bounds(format);
        schema.remove("format");
        if let Some((minimum, maximum)) = bounds {
            if let Some(minimum) = minimum {
                schema
                    .entry("minimum")
                    .or_insert_with(|| Value::from(minimum));
            }
            if let Some(maximum) = maximum {
                schema
                    .entry("maximum")
                    .or_insert_with(|| Value::from(maximum));
            }
        }
    }
    for (keyword, value) in schema.iter_mut() {
        if !DATA_KEYWORDS.contains(&keyword.as_str()) {
            rewrite_value(value);
        }
    }
}

/// Rewrites the subschemas found in `value`: an object is a schema, or a map
/// of them (`properties`, `$defs`); an array is a list of them (`allOf`,
/// `prefixItems`, ...).
fn rewrite_value(value: &mut Value) {
    match value {
        Value::Object(object) => to_2020_12(object),
        Value::Array(items) => items.iter_mut().for_each(rewrite_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rewritten(schema: Value) -> Value {
        let Value::Object(mut object) = schema else {
            panic!("not an object")
        };
        to_2020_12(&mut object);
        Value::Object(object)
    }

    #[test]
    fn drops_formats_json_schema_does_not_define_and_keeps_their_bounds() {
        let schema = json!({
            "type": "object",
            "properties": {
                "count": {"type": "integer", "format": "uint", "minimum": 0},
                "small": {"type": "integer", "format": "uint32"},
                "signed": {"type": ["integer", "null"], "format": "int32"},
                "ratio": {"type": "number", "format": "double"},
                "when": {"type": "string", "format": "date-time"},
                "format": {"type": "string", "default": {"format": "uint"}},
                "list": {"type": "array", "items": {"type": "integer", "format": "uint64"}},
            },
            "$defs": {"Id": {"anyOf": [{"type": "integer", "format": "int64"}, {"type": "null"}]}},
        });
        assert_eq!(
            rewritten(schema),
            json!({
                "type": "object",
                "properties": {
                    "count": {"type": "integer", "minimum": 0},
                    "small": {"type": "integer", "minimum": 0, "maximum": 4_294_967_295_u32},
                    "signed": {"type": ["integer", "null"], "minimum": -2_147_483_648_i64, "maximum": 2_147_483_647},
                    "ratio": {"type": "number"},
                    "when": {"type": "string", "format": "date-time"},
                    "format": {"type": "string", "default": {"format": "uint"}},
                    "list": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                },
                "$defs": {"Id": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
            })
        );
    }

    #[test]
    fn is_idempotent_and_keeps_existing_bounds() {
        let once = rewritten(json!({"type": "integer", "format": "uint8", "maximum": 10}));
        assert_eq!(
            once,
            json!({"type": "integer", "minimum": 0, "maximum": 10})
        );
        assert_eq!(rewritten(once.clone()), once);
    }
}
