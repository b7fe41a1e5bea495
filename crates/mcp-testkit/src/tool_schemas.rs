//! Checks of the tool schemas a service serves, as two kinds of client see
//! them.
//!
//! - [`assert_json_schema_2020_12`]: every `inputSchema` and `outputSchema`
//!   of a `tools/list` result is a valid JSON Schema 2020-12 document (the
//!   meta-schema, via the `jsonschema` crate), compiles, and uses only the
//!   `format`s that 2020-12 defines (MCP 2025-11-25, Server Features §Tools:
//!   schemas default to 2020-12; JSON Schema Validation 2020-12 §7.3).
//! - [`typescript_tools`]: the official TypeScript SDK's client lists the
//!   tools of a Streamable HTTP endpoint (compiling every output schema with
//!   Ajv, as it does on connection) and must print no warning
//!   (`tests/interop/typescript/list_tools.mjs`).

use std::{path::PathBuf, process::Command};

use serde_json::Value;

/// The formats JSON Schema 2020-12 defines (Validation §7.3).
const FORMATS_2020_12: [&str; 19] = [
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

/// Keywords whose values are data, not subschemas.
const DATA_KEYWORDS: [&str; 5] = ["const", "default", "enum", "examples", "example"];

/// Panics, naming the tool and the place, unless every schema of `tools`
/// (the `tools` array of a `tools/list` result) validates against the JSON
/// Schema 2020-12 meta-schema, compiles, and names only 2020-12 formats.
pub fn assert_json_schema_2020_12(tools: &[Value]) {
    assert!(!tools.is_empty(), "no tools to check");
    for tool in tools {
        let name = tool["name"].as_str().unwrap_or("<unnamed>");
        for key in ["inputSchema", "outputSchema"] {
            let Some(schema) = tool.get(key) else {
                assert_eq!(key, "outputSchema", "tool {name} has no inputSchema");
                continue;
            };
            if let Err(error) = jsonschema::draft202012::meta::validate(schema) {
                panic!("{name}.{key} is not JSON Schema 2020-12: {error}\n{schema:#}");
            }
            if let Err(error) = jsonschema::draft202012::new(schema) {
                panic!("{name}.{key} does not compile: {error}\n{schema:#}");
            }
            let mut unknown = Vec::new();
            unknown_formats(schema, &mut String::from("#"), &mut unknown);
            assert!(
                unknown.is_empty(),
                "{name}.{key} uses formats JSON Schema 2020-12 does not define: {unknown:?}"
            );
        }
    }
}

/// Collects `<pointer>: <format>` for each format of `schema` outside the
/// 2020-12 vocabulary.
fn unknown_formats(schema: &Value, pointer: &mut String, found: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::String(format)) = object.get("format")
                && !FORMATS_2020_12.contains(&format.as_str())
            {
                found.push(format!("{pointer}: {format}"));
            }
            for (keyword, value) in object {
                if DATA_KEYWORDS.contains(&keyword.as_str()) {
                    continue;
                }
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(keyword);
                unknown_formats(value, pointer, found);
                pointer.truncate(length);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let length = pointer.len();
                pointer.push_str(&format!("/{index}"));
                unknown_formats(item, pointer, found);
                pointer.truncate(length);
            }
        }
        _ => {}
    }
}

/// The tools of the Streamable HTTP endpoint `url` (`http://…/mcp`) as the
/// official TypeScript SDK lists them, after checking that the SDK printed
/// nothing on stderr (Ajv's `unknown format "uint" ignored in schema` is
/// printed there) and exited with success. `headers` are sent with every
/// request (e.g. `("authorization", "Bearer …")`).
///
/// `None` when the SDK is not installed (`MCP_TEST_NODE_DIR` unset or
/// without `node_modules`): the test should then return, after this has
/// said so on stderr. With `MCP_INTEROP_REQUIRED=1` (as `scripts/test.sh`
/// runs) a missing SDK panics instead.
pub fn typescript_tools(url: &str, headers: &[(&str, &str)]) -> Option<Vec<Value>> {
    let dir = match std::env::var_os("MCP_TEST_NODE_DIR").map(PathBuf::from) {
        Some(dir) if dir.join("node_modules/@modelcontextprotocol/sdk").is_dir() => dir,
        _ => {
            let why = "the TypeScript SDK is not installed (MCP_TEST_NODE_DIR; scripts/install-test-deps.sh)";
            assert!(
                std::env::var("MCP_INTEROP_REQUIRED").as_deref() != Ok("1"),
                "{why}"
            );
            eprintln!("skipped: {why}");
            return None;
        }
    };
    let mut command = Command::new("node");
    command.arg(dir.join("list_tools.mjs")).arg(url);
    for (name, value) in headers {
        command.arg(format!("{name}: {value}"));
    }
    let output = command.output().expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "list_tools.mjs failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    assert!(
        stderr.trim().is_empty(),
        "the TypeScript SDK printed warnings for {url}:\n{stderr}"
    );
    let listed: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("list_tools.mjs printed no JSON ({error}): {stdout}"));
    Some(listed["tools"].as_array().cloned().unwrap_or_default())
}

/// Both checks of this module on the Streamable HTTP endpoint `url`: lists
/// the tools with a raw client and checks their schemas
/// ([`assert_json_schema_2020_12`]), then lists them with the official
/// TypeScript SDK ([`typescript_tools`], skipped when it is not installed),
/// which must see the same tools and print no warning. Returns how many
/// tools were checked.
pub async fn assert_tool_schemas(url: &str) -> usize {
    let mut session = crate::RawSession::initialize(url)
        .await
        .unwrap_or_else(|error| panic!("initialize {url}: {error:?}"));
    let listed = session
        .request("tools/list", serde_json::json!({}))
        .await
        .unwrap_or_else(|error| panic!("tools/list: {error:?}"));
    let tools = listed["tools"].as_array().cloned().unwrap_or_default();
    assert_json_schema_2020_12(&tools);
    let owned = url.to_owned();
    let seen = tokio::task::spawn_blocking(move || typescript_tools(&owned, &[]))
        .await
        .expect("the TypeScript SDK check panicked");
    if let Some(seen) = seen {
        let names = |tools: &[Value]| {
            let mut names: Vec<String> = tools
                .iter()
                .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&seen), names(&tools), "the TypeScript SDK's list");
    }
    tools.len()
}
