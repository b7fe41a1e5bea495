//! Streamable HTTP at `/mcp`, driven by rmcp's own client (session mode for
//! 2025-11-25, stateless for 2026-07-28) and by raw HTTP for the error cases.

use calculator::Calculator;
use mcp_testkit::TestServer;
use reqwest::StatusCode;
use rmcp::{
    ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt,
    model::{CallToolRequestParams, ClientConfig, ErrorCode, ProtocolVersion},
    service::{RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Map, Value, json};

type Client = RunningService<RoleClient, ClientConfig>;

fn transport(server: &TestServer) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(StreamableHttpClientTransportConfig::with_uri(
        server.url("/mcp"),
    ))
}

async fn session_client(server: &TestServer) -> Client {
    ClientConfig::default()
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
        .serve(transport(server))
        .await
        .expect("initialize")
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

async fn call(client: &Client, tool: &'static str, arguments: Value) -> Value {
    let result = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args(arguments)))
        .await
        .unwrap_or_else(|error| panic!("{tool}: {error}"));
    serde_json::to_value(result).unwrap()
}

/// Every tool, its arguments, and the expected result.
fn cases() -> Vec<(&'static str, Value, f64)> {
    vec![
        ("add", json!({"a": 2, "b": 40}), 42.0),
        ("subtract", json!({"a": 50, "b": 8}), 42.0),
        ("multiply", json!({"a": 6, "b": 7}), 42.0),
        ("divide", json!({"a": 84, "b": 2}), 42.0),
        ("modulo", json!({"a": 17, "b": 5}), 2.0),
        ("power", json!({"base": 2, "exponent": 10}), 1024.0),
        ("sqrt", json!({"x": 1764}), 42.0),
        ("absolute", json!({"x": -42}), 42.0),
        ("round", json!({"x": 41.987, "decimals": 1}), 42.0),
        ("sum", json!({"values": [40, 1.5, 0.5]}), 42.0),
        ("average", json!({"values": [40, 44]}), 42.0),
    ]
}

/// Every tool's schemas are JSON Schema 2020-12 (no `"uint"` formats from
/// schemars), and the official TypeScript SDK lists them without a warning.
/// The `/metrics` scrape after those requests passes `promtool check metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_schemas_and_the_metrics_scrape_are_clean() {
    let server = TestServer::start(Calculator::new).await;
    let checked = mcp_testkit::tool_schemas::assert_tool_schemas(&server.url("/mcp")).await;
    // 11 calculator tools and the 3 session tools.
    assert_eq!(checked, 14);
    // The scrape after those requests passes Prometheus' own check.
    let scrape = mcp_testkit::Scrape::fetch_text(&server.url("")).await;
    mcp_testkit::promtool_check_metrics(&scrape);
    server.stop().await;
}

#[tokio::test]
async fn every_tool_works_in_a_session() {
    let server = TestServer::start(Calculator::new).await;
    let client = session_client(&server).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().unwrap().name, "calculator");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);

    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "absolute",
            "add",
            "average",
            "divide",
            "get_session_analytics",
            "get_user_sessions",
            "health_check",
            "modulo",
            "multiply",
            "power",
            "round",
            "sqrt",
            "subtract",
            "sum"
        ]
    );
    for tool in &tools {
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(description.len() > 40, "{}: {description}", tool.name);
        assert!(
            tool.output_schema.is_some(),
            "{} has no outputSchema",
            tool.name
        );
        let properties = tool.input_schema["properties"].as_object().unwrap();
        for (name, property) in properties {
            assert!(
                property.get("description").is_some(),
                "{}.{name} has no description",
                tool.name
            );
        }
    }

    for (tool, arguments, expected) in cases() {
        let result = call(&client, tool, arguments).await;
        assert_eq!(result["isError"], false, "{tool}: {result}");
        let structured = &result["structuredContent"];
        assert_eq!(structured["result"], expected, "{tool}: {result}");
        assert_eq!(structured["operation"], tool);
        assert!(structured["expression"].as_str().unwrap().ends_with("42") || expected != 42.0);
    }
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn undefined_results_are_tool_errors_and_bad_types_invalid_params() {
    let server = TestServer::start(Calculator::new).await;
    let client = session_client(&server).await;
    for (tool, arguments, message) in [
        ("divide", json!({"a": 1, "b": 0}), "division by zero"),
        ("sqrt", json!({"x": -1}), "not a real number"),
        ("multiply", json!({"a": 1e308, "b": 10}), "infinity"),
        (
            "power",
            json!({"base": -8, "exponent": 0.5}),
            "no real value",
        ),
    ] {
        let result = call(&client, tool, arguments).await;
        assert_eq!(result["isError"], true, "{tool}: {result}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(message), "{tool}: {text}");
    }
    for (tool, arguments) in [
        ("add", json!({"a": "two", "b": 40})),
        ("add", json!({"a": 2})),
        ("sum", json!({"values": "1,2,3"})),
    ] {
        let error = client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(args(arguments)))
            .await
            .expect_err("invalid params");
        match error {
            ServiceError::McpError(error) => assert_eq!(error.code, ErrorCode::INVALID_PARAMS),
            other => panic!("{tool}: expected -32602, got {other}"),
        }
    }
    // The session survives its errors.
    assert_eq!(
        call(&client, "add", json!({"a": 1, "b": 1})).await["structuredContent"]["result"],
        2.0
    );
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn stateless_2026_07_28_clients_are_served() {
    let server = TestServer::start(Calculator::new).await;
    let client = ClientConfig::default()
        .serve_with_lifecycle(
            transport(&server),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("discover");
    assert_eq!(client.list_all_tools().await.unwrap().len(), 14);
    let result = call(&client, "add", json!({"a": 2, "b": 40})).await;
    assert_eq!(result["structuredContent"]["result"], 42.0);
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_service_can_leave_the_session_tools_out() {
    let server = TestServer::start(|| Calculator::new().without_session_tools()).await;
    let client = session_client(&server).await;
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "absolute", "add", "average", "divide", "modulo", "multiply", "power", "round", "sqrt",
            "subtract", "sum"
        ]
    );
    let error = client
        .call_tool(CallToolRequestParams::new("health_check"))
        .await
        .unwrap_err();
    let ServiceError::McpError(error) = error else {
        panic!("expected a JSON-RPC error, got {error:?}");
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert!(
        error.message.contains("unknown tool `health_check`"),
        "{error:?}"
    );
    client.cancel().await.unwrap();
    server.stop().await;
}

fn mcp_post(server: &TestServer) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
}

/// Initializes over raw HTTP and returns the session id.
async fn raw_initialize(server: &TestServer) -> String {
    let response = mcp_post(server)
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.text().await;
    let initialized = mcp_post(server)
        .header("mcp-session-id", &id)
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert_eq!(initialized.status(), StatusCode::ACCEPTED);
    id
}

/// The first JSON-RPC message of an SSE or JSON response body.
async fn first_message(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    if let Ok(value) = serde_json::from_str(&text) {
        return value;
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| !data.is_empty())
        .map(|data| serde_json::from_str(data).unwrap())
        .unwrap_or_else(|| panic!("no message in {text:?}"))
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let server = TestServer::start_with(
        |config| config.max_request_body_bytes = 4096,
        Calculator::new,
    )
    .await;
    let id = raw_initialize(&server).await;

    // Malformed JSON.
    let malformed = mcp_post(&server)
        .header("mcp-session-id", &id)
        .body("{\"jsonrpc\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");

    // A request with an unknown method: JSON-RPC -32601 in a 200 response.
    let unknown = mcp_post(&server)
        .header("mcp-session-id", &id)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "no/such/method"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(first_message(unknown).await["error"]["code"], -32601);

    // No session id on a request that needs one.
    let missing = mcp_post(&server)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    // An unknown session id.
    let unknown_session = mcp_post(&server)
        .header("mcp-session-id", "00000000-0000-4000-8000-000000000000")
        .json(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_session.status(), StatusCode::NOT_FOUND);

    // A body over MAX_REQUEST_BODY_BYTES.
    let oversized = mcp_post(&server)
        .header("mcp-session-id", &id)
        .json(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "sum", "arguments": {"values": vec![1.25; 3000]}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A Host that is not allowed (DNS rebinding protection).
    let foreign_host = mcp_post(&server)
        .header("host", "evil.example.com")
        .header("mcp-session-id", &id)
        .json(&json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign_host.status(), StatusCode::FORBIDDEN);

    // After all that, the session still answers.
    let list = mcp_post(&server)
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    assert_eq!(
        first_message(list).await["result"]["tools"]
            .as_array()
            .unwrap()
            .len(),
        14,
        "11 calculator tools and 3 session tools"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_session_is_gone() {
    let server = TestServer::start(Calculator::new).await;
    let id = raw_initialize(&server).await;
    let deleted = reqwest::Client::new()
        .delete(server.url("/mcp"))
        .header("mcp-session-id", &id)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let after = mcp_post(&server)
        .header("mcp-session-id", &id)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
    let again = reqwest::Client::new()
        .delete(server.url("/mcp"))
        .header("mcp-session-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn a_foreign_origin_and_a_malformed_host_are_refused_before_the_session_store() {
    let server = TestServer::start_with(
        |config| config.allowed_origins = vec!["https://app.example.com".into()],
        Calculator::new,
    )
    .await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let from_app = mcp_post(&server)
        .header("origin", "https://app.example.com")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(from_app.status(), StatusCode::OK);
    let _ = from_app.text().await;
    let id = raw_initialize(&server).await;
    // A page elsewhere, even naming a live session: 403, not 404 or 200.
    let foreign = mcp_post(&server)
        .header("origin", "https://evil.example")
        .header("mcp-session-id", &id)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        foreign.text().await.unwrap(),
        "Forbidden: Origin header is not allowed"
    );
    let malformed_host = mcp_post(&server)
        .header("host", "localhost:http")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(malformed_host.status(), StatusCode::FORBIDDEN);
    // Not from a browser (no Origin): served.
    let list = mcp_post(&server)
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn an_allowed_public_host_is_accepted() {
    let server = TestServer::start_with(
        |config| config.allowed_hosts = vec!["mcp.example.com".into()],
        Calculator::new,
    )
    .await;
    let response = mcp_post(&server)
        .header("host", "mcp.example.com")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}
