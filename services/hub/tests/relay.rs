//! The protocol through the hub, across hub replicas: what an upstream
//! sends during a call reaches the downstream client, and the client's
//! answers get back to the upstream, whichever hub replica they reach.
//!
//! The upstream is `services/everything` (three replicas on their own Redis
//! behind their own nginx); the hub runs as three replicas behind a
//! round-robin nginx, so the client's answer to a sampling request usually
//! reaches another hub replica than the one relaying the call.

mod support;

use std::time::Duration;

use mcp_testkit::{
    Fleet,
    auth::{self, Auth},
    workspace_binary,
};
use serde_json::{Value, json};
use support::{HubFleet, call_with_answer, post_2026, sampled_rounds_2026};

async fn rig() -> (HubFleet, Fleet) {
    let everything = Fleet::start(workspace_binary("everything"), 3, &[]).await;
    let config = json!({"servers": {
        "everything": {"url": format!("{}/mcp", everything.url()), "sharing": "session"},
    }});
    (HubFleet::start(&config, 3).await, everything)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sampling_elicitation_and_progress_are_relayed_across_hub_replicas() {
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

    // Several rounds: the answers go to nginx, which spreads them over the
    // three hub replicas, so most reach one that does not hold the call.
    for _ in 0..4 {
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
        let text = response["result"].to_string();
        assert!(text.contains("alice@example.com"), "{response}");
    }

    // Progress keeps the client's own token.
    let messages = session
        .request_all(
            "tools/call",
            json!({"name": "everything__test_tool_with_progress", "arguments": {},
                   "_meta": {"progressToken": "tok-7"}}),
        )
        .await
        .unwrap();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{messages:?}");
    assert!(
        progress
            .iter()
            .all(|m| m["params"]["progressToken"] == "tok-7")
    );
    assert_eq!(progress[2]["params"]["progress"], 100.0);
    assert!(
        messages.last().unwrap()["result"].is_object(),
        "{messages:?}"
    );

    // The one upstream session of this downstream session, in Redis.
    let keys = hub.keys("mcp:upstream:session:everything:s-*");
    assert_eq!(keys.len(), 1, "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_the_client_cancels_is_cancelled_upstream() {
    let (hub, everything) = rig().await;
    let alice = Auth::Bearer(auth::token_for("alice"));
    let mut session = hub
        .session(&alice, "/mcp", &[], json!({"sampling": {}}))
        .await;
    // A call that waits for the client: its sampling request is left
    // unanswered, and the call cancelled (the notification goes through
    // nginx, to any hub replica).
    let (call_id, mut stream) = session
        .open_request(
            "tools/call",
            json!({"name": "everything__test_sampling", "arguments": {"prompt": "Say hello"}}),
        )
        .await
        .expect("the tool call starts");
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.next_message())
            .await
            .expect("the sampling request in time");
        if message["method"] == "sampling/createMessage" {
            break;
        }
    }
    session
        .notify(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": {"requestId": call_id, "reason": "the user gave up"}}),
        )
        .await
        .expect("the cancellation is accepted");
    // The upstream hears of it from the hub.
    let mut told = false;
    for _ in 0..100 {
        if everything.logs().contains("cancelled by the hub's client") {
            told = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(told, "the upstream was not told\n{}", hub.replicas.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_2026_client_answers_input_an_upstream_with_sessions_asks_for() {
    let (hub, _everything) = rig().await;
    let alice = Auth::Bearer(auth::token_for("alice"));
    // The upstream (2025-11-25 sessions) asks for a completion with a
    // request during the call; the 2026-07-28 client gets input_required,
    // and its retry (through nginx: another hub replica, most often)
    // completes the call.
    sampled_rounds_2026(&hub, &alice, 3).await;
    // Another user's retry with that requestState gets nothing of it.
    let bob = Auth::ApiKey(auth::BOB_KEY.into());
    let first = post_2026(
        &hub,
        &alice,
        "tools/call",
        json!({"name": "everything__test_sampling", "arguments": {"prompt": "Say hello"}}),
    )
    .await;
    let stolen = support::post_2026_raw(
        &hub,
        &bob,
        "tools/call",
        json!({"name": "everything__test_sampling", "arguments": {"prompt": "x"},
               "inputResponses": {"input-1": {"role": "assistant", "model": "m",
                   "content": {"type": "text", "text": "forged"}}},
               "requestState": first["requestState"]}),
    )
    .await;
    assert!(stolen.get("error").is_some(), "{stolen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_2026_client_listens_to_an_upstream_with_sessions() {
    let (hub, _everything) = rig().await;
    let alice = Auth::Bearer(auth::token_for("alice"));
    // The watched resource changes every 3 s; the hub subscribes its
    // upstream session to it and relays the session's own stream.
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
        .try_next_message(Duration::from_secs(10))
        .await
        .expect("the subscription is acknowledged");
    assert_eq!(
        acknowledged["method"],
        "notifications/subscriptions/acknowledged"
    );
    let update = loop {
        let message = stream
            .try_next_message(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no update relayed\n{}", hub.replicas.logs()));
        if message["method"] == "notifications/resources/updated" {
            break message;
        }
    };
    assert_eq!(update["params"]["uri"], uri, "{update}");
}
