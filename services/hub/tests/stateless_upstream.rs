//! A 2026-07-28 upstream through the hub: `services/everything` (three
//! replicas behind their own nginx, sealing `requestState` with one key)
//! reached without sessions, by a 2025-11-25 client of three hub replicas.
//! Nothing is stored for it in Redis; its `input_required` results (MRTR)
//! become requests to the client during the call, whose answers, POSTed to
//! any hub replica, go back upstream with the `requestState`.

mod support;

use mcp_testkit::{
    Fleet,
    auth::{self, Auth},
    workspace_binary,
};
use serde_json::json;
use support::{HubFleet, call_with_answer, post_2026, sampled_rounds_2026};

/// Three everything replicas (sealing `requestState` with one key) as a
/// stateless upstream of three hub replicas.
async fn rig() -> (HubFleet, Fleet) {
    let key = (
        "MCP_REQUEST_STATE_KEY".to_owned(),
        "hub-test-request-state-key-0123456789abcdef".to_owned(),
    );
    let everything = Fleet::start(workspace_binary("everything"), 3, &[key]).await;
    let config = json!({"servers": {
        "everything": {"url": format!("{}/mcp", everything.url()), "transport": "stateless",
                       "sharing": "shared"},
    }});
    (HubFleet::start(&config, 3).await, everything)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stateless_upstream_with_mrtr_through_the_hub() {
    let (hub, _everything) = rig().await;
    let alice = Auth::Bearer(auth::token_for("alice"));
    let mut session = hub
        .session(
            &alice,
            "/mcp",
            &[],
            json!({"sampling": {}, "elicitation": {}}),
        )
        .await;

    let tools = session.request("tools/list", json!({})).await.unwrap();
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tool| tool["name"] == "everything__test_simple_text"),
        "{tools}"
    );
    for _ in 0..10 {
        let result = session
            .call_tool("everything__test_simple_text", json!({}))
            .await
            .unwrap_or_else(|error| panic!("{error:?}\n{}", hub.replicas.logs()));
        assert_eq!(result["isError"], json!(false), "{result}");
    }
    // MRTR: the upstream's input request reaches the client as a request,
    // and the call completes with its answer.
    for _ in 0..3 {
        let response = call_with_answer(
            &mut session,
            "everything__test_sampling",
            json!({"prompt": "Say hello"}),
        )
        .await;
        let text = response["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(text, "LLM response: hello from the client", "{response}");
        let response = call_with_answer(
            &mut session,
            "everything__test_elicitation",
            json!({"message": "Who are you?"}),
        )
        .await;
        assert!(
            response["result"].to_string().contains("alice@example.com"),
            "{response}"
        );
    }
    assert!(
        hub.keys("mcp:upstream:*").is_empty(),
        "a stateless upstream stores nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_2026_client_answers_the_upstreams_input_requests_itself() {
    let (hub, _everything) = rig().await;
    let alice = Auth::Bearer(auth::token_for("alice"));
    // Several rounds through nginx: the retry reaches another hub replica
    // than the first request, and another upstream replica too.
    sampled_rounds_2026(&hub, &alice, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_2026_client_listens_to_a_stateless_upstream_through_the_hub() {
    let (hub, _everything) = rig().await;
    let alice = Auth::Bearer(auth::token_for("alice"));
    let uri = "test://watched-resource";
    let response = support::post_2026_stream(
        &hub,
        &alice,
        "subscriptions/listen",
        json!({"notifications": {"resourceSubscriptions": [uri]}}),
    )
    .await;
    let mut stream = mcp_testkit::SseReader::new(response);
    let acknowledged = stream
        .try_next_message(std::time::Duration::from_secs(10))
        .await
        .expect("the subscription is acknowledged");
    assert_eq!(
        acknowledged["method"], "notifications/subscriptions/acknowledged",
        "{acknowledged}"
    );
    // Give the hub's own subscription upstream a moment, then announce an
    // update through the hub (any replica; the upstream tells every one of
    // its listen streams).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    post_2026(
        &hub,
        &alice,
        "tools/call",
        json!({"name": "everything__test_notify_resource_updated", "arguments": {"uri": uri}}),
    )
    .await;
    let update = loop {
        let message = stream
            .try_next_message(std::time::Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no update relayed\n{}", hub.replicas.logs()));
        if message["method"] == "notifications/resources/updated" {
            break message;
        }
    };
    assert_eq!(update["params"]["uri"], uri, "{update}");
}
