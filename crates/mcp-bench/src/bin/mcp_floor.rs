//! The floor: the least an MCP server over Streamable HTTP can do for the
//! `add` tool, written by hand on axum: JSON-RPC parsed into
//! `serde_json::Value`, sessions in one in-memory set, answers as JSON
//! bodies (no SSE, no resumability, no schema checks, no store). It is what
//! `scripts/callgrind.sh` measures an MCP layer's cost above: no real
//! service should be this bare.
//!
//! Serves `initialize` (a session id in `Mcp-Session-Id`, MCP 2025-06-18),
//! notifications (`202`), `tools/list`, `tools/call` of `add`, `DELETE`, and
//! requests without a session when `MCP-Protocol-Version` is `2026-07-28`.
//! A request naming an unknown session gets `404`, one with neither a
//! session nor protocol 2026-07-28 `400`, an unknown method `-32601`.
//!
//! `mcp-floor [PORT]` (default 9701) serves `http://127.0.0.1:PORT/mcp`.

mod serve;

use std::{collections::HashSet, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// The live sessions.
type Sessions = Arc<Mutex<HashSet<String>>>;

const SESSION_HEADER: &str = "mcp-session-id";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn answer(id: &Value, result: Value) -> Response {
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn error(status: StatusCode, id: &Value, code: i64, message: &str) -> Response {
    (
        status,
        Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn add(id: &Value, arguments: &Value) -> Response {
    let (Some(a), Some(b)) = (
        arguments.get("a").and_then(Value::as_f64),
        arguments.get("b").and_then(Value::as_f64),
    ) else {
        return error(StatusCode::OK, id, -32602, "add takes numbers a and b");
    };
    let calculation = json!({
        "operation": "add",
        "expression": format!("{a} + {b} = {}", a + b),
        "result": a + b,
    });
    answer(
        id,
        json!({
            "content": [{"type": "text", "text": calculation.to_string()}],
            "structuredContent": calculation,
            "isError": false,
        }),
    )
}

async fn post_mcp(
    State(sessions): State<Sessions>,
    headers: HeaderMap,
    Json(message): Json<Value>,
) -> Response {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    if method == "initialize" {
        let session = uuid::Uuid::new_v4().to_string();
        sessions.lock().insert(session.clone());
        let version = message["params"]["protocolVersion"]
            .as_str()
            .unwrap_or("2025-06-18");
        let mut response = answer(
            &id,
            json!({
                "protocolVersion": version,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": serve::SERVER_NAME, "version": serve::SERVER_VERSION},
                "instructions": serve::INSTRUCTIONS,
            }),
        );
        if let Ok(value) = session.parse() {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
        return response;
    }
    match header(&headers, SESSION_HEADER) {
        Some(session) if !sessions.lock().contains(session) => {
            return error(StatusCode::NOT_FOUND, &id, -32001, "Session not found");
        }
        Some(_) => {}
        None if header(&headers, "mcp-protocol-version") == Some("2026-07-28") => {}
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                &id,
                -32600,
                "Mcp-Session-Id required",
            );
        }
    }
    if message.get("id").is_none() {
        return StatusCode::ACCEPTED.into_response();
    }
    match method {
        "tools/list" => answer(
            &id,
            json!({"tools": [{
                "name": "add",
                "description": "Add two numbers: returns a + b.",
                "inputSchema": {
                    "type": "object",
                    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                    "required": ["a", "b"],
                },
            }]}),
        ),
        "tools/call" if message["params"]["name"] == "add" => {
            add(&id, &message["params"]["arguments"])
        }
        "tools/call" => error(StatusCode::OK, &id, -32602, "unknown tool"),
        _ => error(StatusCode::OK, &id, -32601, "Method not found"),
    }
}

async fn delete_mcp(State(sessions): State<Sessions>, headers: HeaderMap) -> StatusCode {
    match header(&headers, SESSION_HEADER) {
        Some(session) if sessions.lock().remove(session) => StatusCode::NO_CONTENT,
        _ => StatusCode::NOT_FOUND,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let router = Router::new()
        .route("/mcp", post(post_mcp).delete(delete_mcp))
        .with_state(Sessions::default());
    serve::serve(router, 9701).await
}
