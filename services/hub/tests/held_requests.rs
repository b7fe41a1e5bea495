//! Requests an upstream asks of the client during a call, on a session the
//! hub replica holds itself (a stdio child process): a request for a
//! capability the hub's client did not declare is refused at once (roots of
//! a client that has none; the hub does not even declare roots to a shared
//! upstream), and a client that never answers a sampling request does not
//! hold the call past the upstream's timeout. Two hub replicas behind a
//! round-robin nginx, each with its own child process.

#[path = "../../calculator/tests/interop_support/mod.rs"]
mod interop_support;
mod support;

use std::time::{Duration, Instant};

use mcp_testkit::auth::{self, Auth};
use serde_json::{Value, json};
use support::HubFleet;

/// The text of a tool call's first content item, parsed as JSON.
fn quoted_answer(result: &Value) -> Value {
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    serde_json::from_str(text).unwrap_or_else(|_| panic!("a JSON answer in {result}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_the_client_cannot_or_does_not_answer_end_in_time() {
    let python = interop_support::on_path("python3").expect("python3 for the stdio fixture");
    let script = interop_support::workspace_root()
        .join("services/hub/tests/fixtures/asking_stdio_server.py");
    let config = json!({"servers": {
        "shared": {"transport": "stdio", "sharing": "shared", "timeout_ms": 3000,
                   "command": python.display().to_string(),
                   "args": [script.display().to_string()]},
    }});
    let hub = HubFleet::start(&config, 2).await;
    let alice = Auth::Bearer(auth::token_for("alice"));

    // A client without roots: the upstream's roots/list is refused by the
    // hub, the call ends with the refusal on every replica.
    let mut session = hub
        .session(&alice, "/mcp", &[], json!({"sampling": {}}))
        .await;
    for _ in 0..4 {
        let started = Instant::now();
        let result = session
            .call_tool("shared__ask-roots", json!({}))
            .await
            .unwrap_or_else(|error| panic!("{error:?}\n{}", hub.replicas.logs()));
        let answer = quoted_answer(&result);
        assert_eq!(answer["code"], -32601, "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains("roots"),
            "{answer}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "{result}");
    }

    // A client that declares sampling and never answers: the call fails at
    // the upstream's timeout (3 s), naming it, well before the client's own.
    let started = Instant::now();
    let (_, mut stream) = session
        .open_request(
            "tools/call",
            json!({"name": "shared__ask-sampling", "arguments": {}}),
        )
        .await
        .expect("the call starts");
    let mut asked = false;
    let response = loop {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.next_message())
            .await
            .expect("the call ends within 20 s");
        if message["method"] == "sampling/createMessage" {
            asked = true; // and not answered
        } else if message.get("result").is_some() || message.get("error").is_some() {
            break message;
        }
    };
    let elapsed = started.elapsed();
    assert!(asked, "the sampling request reached the client");
    assert!(
        response.to_string().contains("no answer within 3000 ms"),
        "{response}"
    );
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
}
