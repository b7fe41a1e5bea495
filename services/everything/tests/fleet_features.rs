//! A session's state and server-initiated messages across replicas: what a
//! client sets through one replica holds on every other, and what a replica
//! sends on its own (resource updates) reaches the client's `GET` stream
//! wherever that stream is held — as from one process.
//!
//! Each test runs three everything processes on one real Redis and sends
//! each request of one session to a chosen replica, so that every
//! cross-replica path is taken for sure; the last test runs the same session
//! through the round-robin nginx with rmcp's client.

use std::time::Duration;

use everything::{
    resources::{WATCH_INTERVAL, WATCHED_URI},
    tools::notifications::LOG_MESSAGES,
};
use mcp_testkit::{Nginx, RawSession, RedisServer, ReplicaSet, SseReader};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_everything");

async fn fleet(redis: &RedisServer) -> ReplicaSet {
    ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &redis.url())]).await
}

fn mcp_url(replicas: &ReplicaSet, index: usize) -> String {
    format!("{}/mcp", replicas.replicas[index].url())
}

/// The log messages that a call of `test_tool_with_logging` through `url`
/// brings on the session's standalone `stream` (held by whichever replica).
async fn logs_of_a_call(
    session: &mut RawSession,
    url: &str,
    stream: &mut SseReader,
) -> Vec<String> {
    session.set_url(url);
    let messages = session
        .request_all(
            "tools/call",
            json!({"name": "test_tool_with_logging", "arguments": {}}),
        )
        .await
        .expect("the tool call");
    let (last, on_the_request) = messages.split_last().expect("a response");
    assert!(last.get("result").is_some(), "{last}");
    let mut logs: Vec<String> = on_the_request
        .iter()
        .filter(|message| message["method"] == "notifications/message")
        .map(|message| {
            message["params"]["data"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    // rmcp sends them on the standalone stream; give them a moment to cross.
    while logs.len() < LOG_MESSAGES.len() {
        let Some(message) = stream.try_next_message(Duration::from_secs(1)).await else {
            break;
        };
        assert_eq!(message["method"], "notifications/message", "{message}");
        logs.push(
            message["params"]["data"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_level_set_through_one_replica_filters_logs_on_every_replica() {
    let redis = RedisServer::start();
    let replicas = fleet(&redis).await;
    let mut session = RawSession::initialize(&mcp_url(&replicas, 0))
        .await
        .expect("initialize on replica 1");
    // The client listens on replica 2.
    session.set_url(&mcp_url(&replicas, 1));
    let stream = &mut session
        .open_stream()
        .await
        .expect("GET stream on replica 2");

    // No level set: every log message passes, on every replica.
    for replica in 0..3 {
        let logs = logs_of_a_call(&mut session, &mcp_url(&replicas, replica), stream).await;
        assert_eq!(logs, LOG_MESSAGES, "replica {}", replica + 1);
    }
    // `warning` set on replica 1 hides the tool's `info` messages on 2 and 3.
    session.set_url(&mcp_url(&replicas, 0));
    session
        .request("logging/setLevel", json!({"level": "warning"}))
        .await
        .expect("set the level");
    for replica in [1, 2] {
        let logs = logs_of_a_call(&mut session, &mcp_url(&replicas, replica), stream).await;
        assert!(logs.is_empty(), "replica {}: {logs:?}", replica + 1);
    }
    // `debug` set on replica 3 lets them through again on 1 and 2.
    session.set_url(&mcp_url(&replicas, 2));
    session
        .request("logging/setLevel", json!({"level": "debug"}))
        .await
        .expect("set the level");
    for replica in [0, 1] {
        let logs = logs_of_a_call(&mut session, &mcp_url(&replicas, replica), stream).await;
        assert_eq!(logs, LOG_MESSAGES, "replica {}", replica + 1);
    }
}

/// The `notifications/resources/updated` of `WATCHED_URI` that arrive on
/// `stream` within `within`.
async fn updates_within(stream: &mut SseReader, within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    let mut updates = 0;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(message) = stream.try_next_message(left).await else {
            return updates;
        };
        assert_eq!(
            message["method"], "notifications/resources/updated",
            "{message}"
        );
        assert_eq!(message["params"]["uri"], WATCHED_URI, "{message}");
        updates += 1;
    }
}

fn subscription(method: &str) -> (String, Value) {
    (method.to_owned(), json!({"uri": WATCHED_URI}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_the_stream_on_another_replica_once_and_stop_on_unsubscribe() {
    let redis = RedisServer::start();
    let replicas = fleet(&redis).await;
    let mut session = RawSession::initialize(&mcp_url(&replicas, 0))
        .await
        .expect("initialize on replica 1");
    // The client listens on replica 2 ...
    session.set_url(&mcp_url(&replicas, 1));
    let mut stream = session
        .open_stream()
        .await
        .expect("GET stream on replica 2");
    // ... and subscribes through replica 3, whose watcher sends the updates.
    session.set_url(&mcp_url(&replicas, 2));
    let (method, params) = subscription("resources/subscribe");
    session.request(&method, params).await.expect("subscribe");
    // Three intervals bring two or three updates (one per change, not one
    // per replica).
    let updates = updates_within(&mut stream, WATCH_INTERVAL * 3).await;
    assert!(
        (2..=3).contains(&updates),
        "{updates} updates in three intervals"
    );

    // Subscribing again through replica 1 moves the watcher there: still
    // one update per change.
    session.set_url(&mcp_url(&replicas, 0));
    let (method, params) = subscription("resources/subscribe");
    session
        .request(&method, params)
        .await
        .expect("subscribe again");
    let updates = updates_within(&mut stream, WATCH_INTERVAL * 3).await;
    assert!(
        (2..=3).contains(&updates),
        "{updates} updates in three intervals"
    );

    // Unsubscribing through replica 2 stops them (one already on its way
    // may still arrive).
    session.set_url(&mcp_url(&replicas, 1));
    let (method, params) = subscription("resources/unsubscribe");
    session.request(&method, params).await.expect("unsubscribe");
    let late = updates_within(&mut stream, Duration::from_millis(500)).await;
    assert!(late <= 1, "{late} updates right after unsubscribing");
    assert_eq!(
        updates_within(&mut stream, WATCH_INTERVAL * 2).await,
        0,
        "no update after unsubscribing through another replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_through_the_round_robin_balancer_gets_its_updates_and_logs() {
    let redis = RedisServer::start();
    let replicas = fleet(&redis).await;
    let nginx = Nginx::start(&replicas.ports());
    let url = format!("{}/mcp", nginx.url());
    let mut session = RawSession::initialize(&url).await.expect("initialize");
    let mut stream = session.open_stream().await.expect("GET stream");
    let (method, params) = subscription("resources/subscribe");
    session.request(&method, params).await.expect("subscribe");
    session
        .request("logging/setLevel", json!({"level": "error"}))
        .await
        .expect("set the level");
    // Six calls: each replica serves two; none logs below `error`.
    for _ in 0..6 {
        let messages = session
            .request_all(
                "tools/call",
                json!({"name": "test_tool_with_logging", "arguments": {}}),
            )
            .await
            .expect("the tool call");
        assert!(
            messages.last().unwrap().get("result").is_some(),
            "{messages:?}"
        );
    }
    // Only resource updates reach the stream: no log message passed.
    let updates = updates_within(&mut stream, WATCH_INTERVAL * 2).await;
    assert!(
        (1..=3).contains(&updates),
        "{updates} updates in two intervals"
    );
    assert_eq!(session.delete().await, Some(204));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_announced_on_one_replica_reaches_a_subscribed_session_once() {
    let redis = RedisServer::start();
    let replicas = fleet(&redis).await;
    let uri = "test://static-text";
    let mut session = RawSession::initialize(&mcp_url(&replicas, 0))
        .await
        .expect("initialize on replica 1");
    // The client listens on replica 2 and subscribes through replica 3.
    session.set_url(&mcp_url(&replicas, 1));
    let mut stream = session
        .open_stream()
        .await
        .expect("GET stream on replica 2");
    session.set_url(&mcp_url(&replicas, 2));
    session
        .request("resources/subscribe", json!({"uri": uri}))
        .await
        .expect("subscribe");
    // Another client announces updates through replica 1, then of a
    // resource the session did not subscribe to.
    let mut announcer = RawSession::initialize(&mcp_url(&replicas, 0))
        .await
        .expect("another session");
    for announced in [uri, uri, "test://static-binary"] {
        let result = announcer
            .call_tool("test_notify_resource_updated", json!({"uri": announced}))
            .await
            .expect("the announcement");
        assert_eq!(result["isError"], json!(false), "{result}");
    }
    let mut updates = Vec::new();
    while let Some(message) = stream.try_next_message(Duration::from_secs(2)).await {
        assert_eq!(
            message["method"], "notifications/resources/updated",
            "{message}"
        );
        updates.push(
            message["params"]["uri"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(
        updates,
        [uri, uri],
        "each announced update of the subscribed URI, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_before_the_first_get_reach_it_and_a_later_get_starts_from_now() {
    let redis = RedisServer::start();
    let replicas = fleet(&redis).await;
    let mut session = RawSession::initialize(&mcp_url(&replicas, 0))
        .await
        .expect("initialize on replica 1");
    // Log messages go to the session's standalone stream, which no GET holds
    // yet (the call runs on replica 2).
    session.set_url(&mcp_url(&replicas, 1));
    session
        .call_tool("test_tool_with_logging", json!({}))
        .await
        .expect("the tool call");
    // The first GET, on replica 3, gets them, as from one process.
    session.set_url(&mcp_url(&replicas, 2));
    let mut first = session.open_stream().await.expect("the first GET");
    let mut logs = Vec::new();
    while let Some(message) = first.try_next_message(Duration::from_secs(2)).await {
        assert_eq!(message["method"], "notifications/message", "{message}");
        logs.push(
            message["params"]["data"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(logs, LOG_MESSAGES);
    drop(first);
    // A later GET without Last-Event-ID is a new stream: nothing old again.
    session.set_url(&mcp_url(&replicas, 0));
    let mut later = session.open_stream().await.expect("a later GET");
    assert!(
        later
            .try_next_message(Duration::from_secs(1))
            .await
            .is_none(),
        "a later GET starts from now"
    );
}
