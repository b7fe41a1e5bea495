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
use support::{HubFleet, call_with_answer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stateless_upstream_with_mrtr_through_the_hub() {
    let key = (
        "MCP_REQUEST_STATE_KEY".to_owned(),
        "hub-test-request-state-key-0123456789abcdef".to_owned(),
    );
    let everything = Fleet::start(workspace_binary("everything"), 3, &[key]).await;
    let config = json!({"servers": {
        "everything": {"url": format!("{}/mcp", everything.url()), "transport": "stateless",
                       "sharing": "shared"},
    }});
    let hub = HubFleet::start(&config, 3).await;
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
