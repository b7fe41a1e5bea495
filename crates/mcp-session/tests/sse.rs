//! The legacy HTTP+SSE transport (MCP 2024-11-05), driven with raw HTTP:
//! the `endpoint` event, `POST /messages`, keep-alive comments, bad input.

#[path = "../fixture/service.rs"]
mod fixture;

use std::time::Duration;

use fixture::Fixture;
use mcp_testkit::{SseReader, TestServer, post_json};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Opens `/sse` and returns the reader and the absolute messages URL.
async fn open(server: &TestServer) -> (SseReader, String) {
    let response = reqwest::get(server.url("/sse")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut reader = SseReader::new(response);
    let endpoint = reader
        .next_within(Duration::from_secs(5))
        .await
        .expect("endpoint event");
    assert_eq!(endpoint.event.as_deref(), Some("endpoint"));
    assert!(
        endpoint.data.starts_with("/messages?session_id="),
        "{endpoint:?}"
    );
    (reader, server.url(&endpoint.data))
}

async fn initialize(reader: &mut SseReader, messages: &str) -> Value {
    let response = post_json(
        messages,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"}}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let result = reader.next_message().await;
    let response = post_json(
        messages,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    result
}

#[tokio::test]
async fn a_whole_session_runs_over_sse() {
    let server = TestServer::start(Fixture::new).await;
    let (mut reader, messages) = open(&server).await;
    let init = initialize(&mut reader, &messages).await;
    assert_eq!(init["id"], 0);
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(init["result"]["serverInfo"]["name"], fixture::NAME);

    post_json(
        &messages,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    let list = reader.next_message().await;
    let tools = list["result"]["tools"].as_array().unwrap();
    // The fixture's 4 tools and the 3 session tools of mcp-session.
    assert_eq!(tools.len(), 7, "{list}");

    let response = post_json(
        &messages,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "add", "arguments": {"a": 2, "b": 40}}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.text().await.unwrap(), "Accepted");
    let call = reader.next_message().await;
    assert_eq!(call["id"], 2);
    assert_eq!(call["result"]["structuredContent"]["result"], 42.0);
    assert_eq!(call["result"]["isError"], false);

    // An unknown method is answered on the stream with JSON-RPC -32601.
    post_json(
        &messages,
        json!({"jsonrpc": "2.0", "id": 3, "method": "no/such"}),
    )
    .await;
    let unknown = reader.next_message().await;
    assert_eq!(unknown["id"], 3);
    assert_eq!(unknown["error"]["code"], -32601);

    // Wrong argument types: JSON-RPC -32602, the session goes on.
    post_json(
        &messages,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
               "params": {"name": "sqrt", "arguments": {"x": "sixteen"}}}),
    )
    .await;
    let invalid = reader.next_message().await;
    assert_eq!(invalid["error"]["code"], -32602, "{invalid}");
    post_json(
        &messages,
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
               "params": {"name": "sqrt", "arguments": {"x": 16}}}),
    )
    .await;
    assert_eq!(
        reader.next_message().await["result"]["structuredContent"]["result"],
        4.0
    );
    server.stop().await;
}

/// Before `initialize`, a 2024-11-05 client is answered in 2024-11-05
/// terms (not with a 2026-07-28 `_meta` error), and an early notification
/// does not end its session.
#[tokio::test]
async fn messages_before_initialize_get_a_2024_11_05_answer() {
    let server = TestServer::start(Fixture::new).await;
    let (mut reader, messages) = open(&server).await;
    for early in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}),
    ] {
        let response = post_json(&messages, early).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let refusal = reader.next_message().await;
    assert_eq!(refusal["id"], 7, "{refusal}");
    assert_eq!(refusal["error"]["code"], -32600, "{refusal}");
    let text = refusal["error"]["message"].as_str().unwrap();
    assert!(text.contains("send `initialize` first"), "{text}");
    assert!(
        !text.contains("_meta") && !text.contains("protocolVersion"),
        "{text}"
    );

    // The session is still there and initializes normally.
    let init = initialize(&mut reader, &messages).await;
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05", "{init}");
    post_json(
        &messages,
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}),
    )
    .await;
    assert_eq!(reader.next_message().await["id"], 8);
    server.stop().await;
}

/// DNS-rebinding protection on the legacy routes, as rmcp gives `/mcp`: a
/// `Host` outside `ALLOWED_HOSTS` (by default the loopback names) and an
/// `Origin` outside `ALLOWED_ORIGINS` are refused with 403, before any
/// session is made or any message delivered.
#[tokio::test]
async fn foreign_hosts_and_origins_are_refused_on_sse_and_messages() {
    let server = TestServer::start_with(
        |config| config.allowed_origins = vec!["https://app.example.com".into()],
        Fixture::new,
    )
    .await;
    let client = reqwest::Client::new();
    let (mut reader, messages) = open(&server).await;
    for (name, value) in [("host", "evil.example"), ("origin", "https://evil.example")] {
        let stream = client
            .get(server.url("/sse"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        let post = client
            .post(&messages)
            .header(name, value)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        let text = post.text().await.unwrap();
        assert!(text.contains("Forbidden"), "{text}");
    }
    // The allowed origin, and the session untouched by the refusals.
    let allowed = client
        .post(&messages)
        .header("origin", "https://app.example.com")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::ACCEPTED);
    let pong = reader.next_message().await;
    assert_eq!(pong["id"], 2, "{pong}");
    server.stop().await;
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let server = TestServer::start_with(
        |config| config.sse_keep_alive = Duration::from_millis(300),
        Fixture::new,
    )
    .await;
    let (mut reader, _) = open(&server).await;
    let event = reader
        .next_within(Duration::from_secs(5))
        .await
        .expect("stream open");
    assert_eq!(event.comment.as_deref(), Some("keep-alive"), "{event:?}");
    server.stop().await;
}

#[tokio::test]
async fn bad_posts_get_clear_errors_and_lose_nothing() {
    let server =
        TestServer::start_with(|config| config.max_request_body_bytes = 4096, Fixture::new).await;
    let (mut reader, messages) = open(&server).await;
    initialize(&mut reader, &messages).await;
    let client = reqwest::Client::new();

    let missing = client
        .post(server.url("/messages"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(missing.text().await.unwrap().contains("session_id"));

    let unknown = client
        .post(server.url("/messages?session_id=0123456789abcdef0123456789abcdef"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let malformed = client
        .post(&messages)
        .header("content-type", "application/json")
        .body("{\"jsonrpc\": \"2.0\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);

    let not_jsonrpc = post_json(&messages, json!({"hello": "world"})).await;
    assert_eq!(not_jsonrpc.status(), StatusCode::BAD_REQUEST);
    let body: Value = not_jsonrpc.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);

    let oversized = post_json(
        &messages,
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
               "params": {"name": "sum", "arguments": {"values": vec![1.5; 2000]}}}),
    )
    .await;
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // The session still works after all of that.
    post_json(
        &messages,
        json!({"jsonrpc": "2.0", "id": 10, "method": "tools/call",
               "params": {"name": "multiply", "arguments": {"a": 6, "b": 7}}}),
    )
    .await;
    let call = reader.next_message().await;
    assert_eq!(call["id"], 10);
    assert_eq!(call["result"]["structuredContent"]["result"], 42.0);
    server.stop().await;
}

#[tokio::test]
async fn closing_the_stream_ends_the_session() {
    let server = TestServer::start(Fixture::new).await;
    let (mut reader, messages) = open(&server).await;
    initialize(&mut reader, &messages).await;
    drop(reader);
    let mut status = StatusCode::ACCEPTED;
    for _ in 0..50 {
        status = post_json(
            &messages,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await
        .status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_open_streams() {
    let server = TestServer::start(Fixture::new).await;
    let (mut reader, messages) = open(&server).await;
    initialize(&mut reader, &messages).await;
    server.stop().await;
    // The stream ends instead of hanging until the grace period is over.
    while let Some(event) = reader.next_within(Duration::from_secs(5)).await {
        assert!(event.comment.is_some() || event.event.is_some());
    }
}
