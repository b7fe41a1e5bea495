//! A handler that refuses `initialize` (a JSON-RPC error) leaves no session
//! behind. A plain handshake, which the library answers itself, names no
//! session; one that rmcp serves names one (rmcp hands the session to the
//! store after any answer to the handshake), which the library does not
//! keep, so the client's next request naming the id gets `404` (MCP
//! 2025-11-25, Transports §Session Management), not an error from a session
//! that never was.

use mcp_session::rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{InitializeRequestParams, InitializeResult},
    service::RequestContext,
};
use mcp_testkit::TestServer;
use serde_json::json;

/// A server that serves nobody.
#[derive(Clone)]
struct Refusing;

impl ServerHandler for Refusing {
    async fn initialize(
        &self,
        _request: InitializeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        Err(ErrorData::invalid_request(
            "this endpoint serves nobody",
            None,
        ))
    }
}

/// The client's `initialize`, with `accept` as its `Accept` header.
async fn initialize(url: &str, accept: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("accept", accept)
        .header("content-type", "application/json")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}))
        .send()
        .await
        .unwrap()
}

fn session_id(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// A plain handshake, answered by the library without a session worker:
/// the refusal names no session at all.
#[tokio::test]
async fn a_refused_plain_initialize_names_no_session() {
    let server = TestServer::start(|| Refusing).await;
    let response = initialize(&server.url("/mcp"), "application/json, text/event-stream").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(session_id(&response), None);
    let body = response.text().await.unwrap();
    assert!(body.contains("this endpoint serves nobody"), "{body}");
    server.stop().await;
}

/// A handshake that rmcp serves (an `Accept` with weights, which the library
/// leaves to rmcp) names a session all the same, which is then unknown.
#[tokio::test]
async fn a_refused_initialize_leaves_no_session() {
    let server = TestServer::start(|| Refusing).await;
    let url = server.url("/mcp");
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        http.post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .json(&body)
    };
    let response = initialize(&url, "application/json;q=1, text/event-stream;q=0.9").await;
    let session = session_id(&response);
    let body = response.text().await.unwrap();
    assert!(body.contains("this endpoint serves nobody"), "{body}");
    // rmcp names the session in its answer all the same.
    let id = session.expect("an Mcp-Session-Id with the refusal");
    for body in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ] {
        let next = post(body)
            .header("mcp-session-id", &id)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert_eq!(
            next.status().as_u16(),
            404,
            "{}",
            next.text().await.unwrap()
        );
    }
    server.stop().await;
}
