//! Failures in a fleet: a replica killed mid-run, Redis going away. Sessions
//! must survive both; only requests in flight on a dying replica may fail,
//! and never with "session not found".

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use mcp_testkit::{CallError, Nginx, RawSession, RedisServer, ReplicaSet};
use serde_json::json;
use tokio::task::JoinSet;

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

/// What one session saw during a run.
#[derive(Debug, Default)]
struct Tally {
    ok: u32,
    failures: Vec<CallError>,
}

async fn run_session(url: String, stop: Arc<AtomicBool>, pause: Duration) -> Tally {
    let mut session = RawSession::initialize(&url).await.expect("initialize");
    let mut tally = Tally::default();
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        match session.call_tool("add", json!({"a": i, "b": 1})).await {
            Ok(result) => {
                assert_eq!(result["structuredContent"]["result"], f64::from(i + 1));
                tally.ok += 1;
            }
            Err(error) => tally.failures.push(error),
        }
        tokio::time::sleep(pause).await;
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_killed_replica() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    let stop = Arc::new(AtomicBool::new(false));
    let mut sessions = JoinSet::new();
    for _ in 0..20 {
        sessions.spawn(run_session(
            format!("{}/mcp", nginx.url()),
            stop.clone(),
            Duration::from_millis(20),
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    replicas.replicas[1].kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    replicas.replicas[1].restart().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);

    let mut failures = Vec::new();
    let mut ok = 0;
    while let Some(tally) = sessions.join_next().await {
        let tally = tally.expect("session task");
        assert!(tally.ok > 20, "a session stalled: {tally:?}");
        ok += tally.ok;
        failures.extend(tally.failures);
    }
    let lost: Vec<_> = failures
        .iter()
        .filter(|failure| failure.status() == Some(404))
        .collect();
    assert!(
        lost.is_empty(),
        "sessions lost: {lost:?}\n{}",
        replicas.logs()
    );
    // Only what was in flight on the killed replica may fail, at most about
    // one request per session: a gateway error from nginx, or a response
    // cut short (an SSE response's status and priming event leave before
    // the result, so the kill can land between them).
    for failure in &failures {
        let cut_short = matches!(failure, CallError::Transport(message) if message.contains("error decoding response body"));
        assert!(
            matches!(failure.status(), Some(502 | 504)) || cut_short,
            "unexpected failure {failure:?}\n{}",
            replicas.logs()
        );
    }
    assert!(
        failures.len() <= 20,
        "{} failures: {failures:?}",
        failures.len()
    );
    eprintln!("{ok} calls succeeded, {} failed in flight", failures.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_fails_fast_and_recovers() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(BINARY, 2, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    let mcp = format!("{}/mcp", nginx.url());
    let mut session = RawSession::initialize(&mcp).await.expect("initialize");
    session
        .call_tool("add", json!({"a": 1, "b": 1}))
        .await
        .expect("a call before the outage");

    redis.stop_saving();
    // Requests that need Redis fail fast with 503 and a JSON-RPC error that
    // names the cause; nothing hangs, nothing panics.
    for _ in 0..4 {
        let started = std::time::Instant::now();
        let error = session
            .call_tool("add", json!({"a": 1, "b": 1}))
            .await
            .expect_err("Redis is down");
        assert!(started.elapsed() < Duration::from_secs(5), "slow failure");
        match &error {
            CallError::Status(503, body) => {
                assert!(body.contains("session store unavailable"), "{body}");
                assert!(body.contains("\"code\":-32001"), "{body}");
            }
            other => panic!("expected 503, got {other:?}"),
        }
    }
    let fresh = RawSession::initialize(&mcp)
        .await
        .err()
        .expect("no new session");
    assert_eq!(fresh.status(), Some(503));
    for replica in &replicas.replicas {
        let ready = reqwest::get(format!("{}/readyz", replica.url()))
            .await
            .unwrap();
        assert_eq!(ready.status().as_u16(), 503);
        let body = ready.text().await.unwrap();
        assert!(body.contains("unavailable"), "{body}");
        let alive = reqwest::get(format!("{}/healthz", replica.url()))
            .await
            .unwrap();
        assert_eq!(alive.status().as_u16(), 200);
    }

    redis.restart();
    // Service recovers by itself: the session goes on.
    let mut recovered = false;
    for _ in 0..100 {
        if session
            .call_tool("add", json!({"a": 2, "b": 2}))
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "no recovery:\n{}", replicas.logs());
    for replica in &replicas.replicas {
        assert!(
            mcp_testkit::wait_for_http(
                &format!("{}/readyz", replica.url()),
                Duration::from_secs(10)
            )
            .await,
            "{} not ready again",
            replica.name()
        );
    }
    for _ in 0..10 {
        let result = session
            .call_tool("multiply", json!({"a": 6, "b": 7}))
            .await
            .expect("calls after recovery");
        assert_eq!(result["structuredContent"]["result"], 42.0);
    }
    let logs = replicas.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}
