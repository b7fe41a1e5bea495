//! The `initialize` handshake without a session worker: two replicas of the
//! fixture service on one Redis, each request sent to the replica named.
//!
//! A plain `initialize` is answered by the library: the record is created
//! (marked `workerless_handshake`), no replica holds a worker, and the
//! client's `notifications/initialized` is acknowledged wherever it lands.
//! The first request on each replica restores a worker there. A handshake
//! rmcp serves (an `Accept` with weights, which the library leaves to rmcp)
//! keeps rmcp's worker, as before.

use mcp_testkit::{RedisServer, ReplicaSet, Scrape};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");
const PLAIN_ACCEPT: &str = "application/json, text/event-stream";

/// The JSON of each SSE `data:` line of `body` that carries one.
fn messages(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .map(|data| serde_json::from_str(data).expect("a JSON-RPC message"))
        .collect()
}

/// POSTs `body` to `base`'s `/mcp`, in session `session` if given.
async fn post(base: &str, accept: &str, session: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("accept", accept)
        .json(&body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    request.send().await.expect("the replica answers")
}

/// POSTs an `initialize` to `base`.
async fn post_initialize(base: &str, accept: &str) -> reqwest::Response {
    post(
        base,
        accept,
        None,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "handshake-test", "version": "1"}}}),
    )
    .await
}

/// Opens a session on `base`; its id and the answer's messages.
async fn initialize(base: &str, accept: &str) -> (String, Vec<Value>) {
    let response = post_initialize(base, accept).await;
    assert_eq!(response.status().as_u16(), 200);
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|value| value.to_str().ok())
        .expect("Mcp-Session-Id")
        .to_owned();
    (id, messages(&response.text().await.unwrap()))
}

async fn initialized(base: &str, session: &str) -> u16 {
    post(
        base,
        PLAIN_ACCEPT,
        Some(session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await
    .status()
    .as_u16()
}

/// `add(a, b)` in `session` on `base`: the result.
async fn add(base: &str, session: &str, a: i64, b: i64) -> f64 {
    let response = post(
        base,
        PLAIN_ACCEPT,
        Some(session),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "add", "arguments": {"a": a, "b": b}}}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let answers = messages(&response.text().await.unwrap());
    let answer = answers.last().expect("an answer");
    answer["result"]["structuredContent"]["result"]
        .as_f64()
        .unwrap_or_else(|| panic!("{answer}"))
}

/// Workers held and sessions restored by the replica at `base`.
async fn workers_and_restores(base: &str) -> (f64, f64) {
    let scrape = Scrape::fetch(base).await;
    (
        scrape.value("mcp_sessions_live", &[("transport", "streamable_http")]),
        scrape.value("mcp_sessions_restored_total", &[]),
    )
}

/// The stored record of session `id`, as JSON.
fn record(redis: &RedisServer, id: &str) -> Value {
    let json = redis.cli(&["GET", &record_key(redis, id)]);
    serde_json::from_str(json.trim()).unwrap_or_else(|error| panic!("{error}: {json}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_handshake_runs_no_worker_until_a_request_needs_one() {
    let redis = RedisServer::start();
    let replicas = ReplicaSet::start(BINARY, 2, &[("REDIS_URL", &redis.url())]).await;
    let (a, b) = (replicas.replicas[0].url(), replicas.replicas[1].url());

    let (id, answer) = initialize(&a, PLAIN_ACCEPT).await;
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(answer[0]["id"], 0);
    assert_eq!(answer[0]["result"]["protocolVersion"], "2025-06-18");
    assert!(answer[0]["result"]["serverInfo"]["name"].is_string());
    let stored = record(&redis, &id);
    assert_eq!(stored["workerless_handshake"], true, "{stored}");
    assert_eq!(
        stored["initialize_params"]["clientInfo"]["name"],
        "handshake-test"
    );

    // `initialized` on the other replica: acknowledged, nothing restored.
    assert_eq!(initialized(&b, &id).await, 202);
    assert_eq!(workers_and_restores(&a).await, (0.0, 0.0));
    assert_eq!(workers_and_restores(&b).await, (0.0, 0.0));

    // Each replica restores a worker at its first request, the one that
    // answered `initialize` too.
    assert_eq!(add(&a, &id, 2, 3).await, 5.0);
    assert_eq!(workers_and_restores(&a).await, (1.0, 1.0));
    assert_eq!(add(&b, &id, 4, 5).await, 9.0);
    assert_eq!(add(&b, &id, 1, 1).await, 2.0);
    assert_eq!(workers_and_restores(&b).await, (1.0, 1.0));

    // A second `initialized` (a confused client) changes nothing either.
    assert_eq!(initialized(&a, &id).await, 202);
    assert_eq!(add(&a, &id, 1, 2).await, 3.0);
    assert_eq!(workers_and_restores(&a).await, (1.0, 1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_rmcp_serves_keeps_its_worker() {
    let redis = RedisServer::start();
    let replicas = ReplicaSet::start(BINARY, 2, &[("REDIS_URL", &redis.url())]).await;
    let (a, b) = (replicas.replicas[0].url(), replicas.replicas[1].url());

    let (id, answer) = initialize(&a, "application/json;q=1, text/event-stream;q=0.9").await;
    assert_eq!(answer[0]["result"]["protocolVersion"], "2025-06-18");
    let stored = record(&redis, &id);
    assert!(stored.get("workerless_handshake").is_none(), "{stored}");
    assert_eq!(workers_and_restores(&a).await, (1.0, 0.0));

    // Its `initialized` goes to the worker that ran the handshake (from B,
    // over the fleet channel), and that worker serves the session.
    assert_eq!(initialized(&b, &id).await, 202);
    assert_eq!(add(&a, &id, 2, 3).await, 5.0);
    assert_eq!(workers_and_restores(&a).await, (1.0, 0.0));
    assert_eq!(add(&b, &id, 4, 5).await, 9.0);
    assert_eq!(workers_and_restores(&b).await, (1.0, 1.0));
}

/// A handshake the store refuses (the user's session limit) gets `429` and
/// leaves nothing behind, without a worker to close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_gets_429_and_no_session() {
    let redis = RedisServer::start();
    let replicas = ReplicaSet::start(
        BINARY,
        1,
        &[("REDIS_URL", &redis.url()), ("MAX_SESSIONS_PER_USER", "1")],
    )
    .await;
    let a = replicas.replicas[0].url();
    let (first, _) = initialize(&a, PLAIN_ACCEPT).await;
    let refused = post_initialize(&a, PLAIN_ACCEPT).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().get("mcp-session-id").is_none());
    let keys = redis.cli(&["--scan", "--pattern", "mcp_user_session:*"]);
    assert_eq!(keys.trim(), record_key(&redis, &first), "{keys}");
    assert_eq!(workers_and_restores(&a).await, (0.0, 0.0));
}

fn record_key(redis: &RedisServer, id: &str) -> String {
    redis
        .cli(&["--scan", "--pattern", &format!("mcp_user_session:*:{id}")])
        .trim()
        .to_owned()
}
