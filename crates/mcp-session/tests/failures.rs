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
    // Without the outage grace: every request that needs Redis fails fast.
    let replicas = ReplicaSet::start(
        BINARY,
        2,
        &[("REDIS_URL", &url), ("SESSION_CACHE_OUTAGE_SECONDS", "0")],
    )
    .await;
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

/// The sharded channels (`mcp_replica:*`, `mcp_stream_flush:*`) that have a
/// subscriber, and the subscribers of the fleet channel.
fn subscriptions(redis: &RedisServer) -> (usize, usize, usize) {
    let shard = redis.cli(&["pubsub", "shardchannels"]);
    let replica = shard
        .lines()
        .filter(|c| c.starts_with("mcp_replica:"))
        .count();
    let flush = shard
        .lines()
        .filter(|c| c.starts_with("mcp_stream_flush:"))
        .count();
    let fleet = redis
        .cli(&["pubsub", "channels", "mcp_fleet:*"])
        .lines()
        .find(|line| !line.is_empty())
        .map(|channel| {
            redis
                .cli(&["pubsub", "numsub", channel])
                .lines()
                .nth(1)
                .and_then(|count| count.trim().parse().ok())
                .unwrap_or(0)
        })
        .unwrap_or(0);
    (replica, flush, fleet)
}

/// Red-team finding 1: Redis restarted with no data (connections dropped,
/// every subscription gone). Every replica subscribes its three channels
/// again within seconds, is ready again, forwards HTTP+SSE messages across
/// replicas, and acknowledges deletions (no `DELETE` waits for a missing
/// acknowledgement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_empty_every_replica_subscribes_again() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    assert_eq!(subscriptions(&redis), (3, 3, 3));

    redis.stop();
    redis.restart();
    let started = std::time::Instant::now();
    while subscriptions(&redis) != (3, 3, 3) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "subscriptions after the restart: {:?}\n{}",
            subscriptions(&redis),
            replicas.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "every replica subscribed again {:?} after the restart",
        started.elapsed()
    );
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
    let unacknowledged = |logs: &str| logs.matches("not every replica acknowledged").count();
    let before = unacknowledged(&replicas.logs());

    // HTTP+SSE: each stream held by one replica, its messages posted
    // through nginx to all three: forwarded over the replica channels.
    for replica in &replicas.replicas {
        let mut session = mcp_testkit::LegacySseSession::connect_via(&replica.url(), &nginx.url())
            .await
            .expect("an HTTP+SSE session after the restart");
        for index in 0..6 {
            let result = session
                .call_tool("add", json!({"a": index, "b": 1}))
                .await
                .unwrap_or_else(|error| panic!("call {index} via {}: {error:?}", replica.name()));
            assert_eq!(result["structuredContent"]["result"], f64::from(index + 1));
        }
    }
    // Deletions are acknowledged by every replica.
    let mcp = format!("{}/mcp", nginx.url());
    for _ in 0..6 {
        let session = RawSession::initialize(&mcp).await.expect("initialize");
        let started = std::time::Instant::now();
        assert_eq!(session.delete().await, Some(204));
        eprintln!("DELETE after the restart: {:?}", started.elapsed());
    }
    let logs = replicas.logs();
    assert_eq!(
        unacknowledged(&logs),
        before,
        "a deletion waited for a replica: {logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
}

/// Calls `add` on `session` until `stop`, counting what fails.
async fn call_until(mut session: RawSession, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        match session.call_tool("add", json!({"a": 1, "b": 2})).await {
            Ok(result) if result["structuredContent"]["result"] == 3.0 => tally.ok += 1,
            Ok(other) => tally
                .failures
                .push(CallError::Transport(format!("wrong result {other}"))),
            Err(error) => tally.failures.push(error),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tally
}

/// `count` Streamable HTTP sessions through `mcp`, each having made 3 calls
/// (through the round robin, every replica has served and cached it).
async fn warm_sessions(mcp: &str, count: usize) -> Vec<RawSession> {
    let mut sessions = Vec::new();
    for _ in 0..count {
        let mut session = RawSession::initialize(mcp).await.expect("initialize");
        for _ in 0..3 {
            session
                .call_tool("add", json!({"a": 1, "b": 2}))
                .await
                .expect("a call before the failure");
        }
        sessions.push(session);
    }
    sessions
}

/// Each of `sessions` calls `add` until the returned flag is set.
fn keep_calling(sessions: Vec<RawSession>) -> (Arc<AtomicBool>, JoinSet<Tally>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut running = JoinSet::new();
    for session in sessions {
        running.spawn(call_until(session, stop.clone()));
    }
    (stop, running)
}

/// Stops the calls of [`keep_calling`]: the calls that succeeded, and the
/// failures.
async fn stop_calling(stop: &AtomicBool, mut running: JoinSet<Tally>) -> (u32, Vec<CallError>) {
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failures) = (0, Vec::new());
    while let Some(tally) = running.join_next().await {
        let tally = tally.unwrap();
        ok += tally.ok;
        failures.extend(tally.failures);
    }
    (ok, failures)
}

/// Redis outages cost no tool call of a live session: 12 Streamable HTTP
/// sessions call through three replicas while Redis is down for 3 s (its
/// data kept, as a managed Redis keeps it through a failover). Every call
/// succeeds, served from each replica's last known records; a new session
/// is refused with `503` and `Retry-After` meanwhile; afterwards everything
/// is read from Redis again and a deletion is honoured everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_costs_no_call_of_a_live_session() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    let mcp = format!("{}/mcp", nginx.url());
    let sessions = warm_sessions(&mcp, 12).await;
    let kept = RawSession::initialize(&mcp).await.expect("initialize");
    let (stop, running) = keep_calling(sessions);
    tokio::time::sleep(Duration::from_millis(500)).await;

    redis.stop_saving();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let refused = reqwest::Client::new()
        .post(&mcp)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                      "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                 "clientInfo": {"name": "outage", "version": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503, "a new session during the outage");
    assert!(refused.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (ok, failures) = stop_calling(&stop, running).await;
    eprintln!("{ok} calls through the outage, {} failed", failures.len());
    assert!(ok > 100, "only {ok} calls");
    assert!(failures.is_empty(), "{failures:?}\n{}", replicas.logs());

    // Back to Redis: a deletion through one replica is honoured by all.
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
    assert_eq!(kept.delete().await, Some(204));
    for replica in &replicas.replicas {
        let status = reqwest::Client::new()
            .post(format!("{}/mcp", replica.url()))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &kept.id)
            .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "the deleted session on {}", replica.name());
    }
    let logs = replicas.logs();
    assert!(logs.contains("Redis unreachable: serving the sessions cached here"));
    assert!(!logs.contains("panicked"), "{logs}");
}

/// A Redis Cluster master killed (ElastiCache cluster mode: its replica is
/// promoted after the node timeout) while 12 Streamable HTTP sessions call
/// through three replicas: no call fails (the sessions whose keys lived on
/// the failed shard are served from the replicas' last known records until
/// the failover), and every replica is ready again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_kill_costs_no_call_of_a_live_session() {
    let mut cluster = mcp_testkit::RedisCluster::start_with_replicas();
    let url = cluster.url();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    let mcp = format!("{}/mcp", nginx.url());
    let sessions = warm_sessions(&mcp, 12).await;
    let (stop, running) = keep_calling(sessions);
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.kill(0);
    let killed = std::time::Instant::now();
    let failed_over = tokio::task::spawn_blocking(move || {
        let ok = cluster.wait_for_failover(0, Duration::from_secs(30));
        (cluster, ok)
    })
    .await
    .unwrap();
    let (_cluster, ok) = failed_over;
    assert!(ok, "the cluster did not fail over");
    eprintln!(
        "the cluster failed over {:?} after the kill",
        killed.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ok, failures) = stop_calling(&stop, running).await;
    eprintln!(
        "{ok} calls through the master kill, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:?}\n{}", replicas.logs());
    for replica in &replicas.replicas {
        assert!(
            mcp_testkit::wait_for_http(
                &format!("{}/readyz", replica.url()),
                Duration::from_secs(15)
            )
            .await,
            "{} not ready again:\n{}",
            replica.name(),
            replicas.logs()
        );
    }
    assert!(!replicas.logs().contains("panicked"));
}

/// A primary failover behind one endpoint, as ElastiCache does it: the
/// replica is promoted, the endpoint moves to it, every open connection
/// breaks, the old primary is gone. 12 Streamable HTTP sessions calling
/// through three replicas lose no call; every replica subscribes its
/// channels again on the new primary, is ready again, 10 HTTP+SSE sessions
/// opened before go on, and a deletion is acknowledged by all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_failover_behind_one_endpoint_costs_no_call() {
    let mut primary = RedisServer::start();
    let replica = RedisServer::start_replica_of(primary.port());
    let endpoint = mcp_testkit::TcpProxy::start(primary.port()).await;
    let url = format!("redis://127.0.0.1:{}", endpoint.port());
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    let mcp = format!("{}/mcp", nginx.url());
    let sessions = warm_sessions(&mcp, 12).await;
    let kept = RawSession::initialize(&mcp).await.expect("initialize");
    // 10 HTTP+SSE sessions too, their messages posted through nginx (so
    // most are forwarded to the replica holding the stream).
    let mut legacy = Vec::new();
    for _ in 0..10 {
        let mut session = mcp_testkit::LegacySseSession::connect(&nginx.url())
            .await
            .expect("an HTTP+SSE session");
        session
            .call_tool("add", json!({"a": 1, "b": 2}))
            .await
            .expect("an HTTP+SSE call before the failover");
        legacy.push(session);
    }
    let (stop, running) = keep_calling(sessions);
    tokio::time::sleep(Duration::from_millis(500)).await;

    replica.cli(&["replicaof", "no", "one"]);
    endpoint.fail_over_to(replica.port());
    primary.stop();
    let started = std::time::Instant::now();
    while subscriptions(&replica) != (3, 3, 3) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "subscriptions on the new primary: {:?}\n{}",
            subscriptions(&replica),
            replicas.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "every replica subscribed on the new primary {:?} after the failover",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ok, failures) = stop_calling(&stop, running).await;
    eprintln!("{ok} calls through the failover, {} failed", failures.len());
    assert!(failures.is_empty(), "{failures:?}\n{}", replicas.logs());
    for server in &replicas.replicas {
        assert!(
            mcp_testkit::wait_for_http(
                &format!("{}/readyz", server.url()),
                Duration::from_secs(10)
            )
            .await,
            "{} not ready again",
            server.name()
        );
    }
    // The HTTP+SSE sessions go on on the new primary.
    for (index, session) in legacy.iter_mut().enumerate() {
        let result = session
            .call_tool("add", json!({"a": index, "b": 1}))
            .await
            .unwrap_or_else(|error| {
                panic!("HTTP+SSE session {index} after the failover: {error:?}")
            });
        assert_eq!(result["structuredContent"]["result"], (index + 1) as f64);
    }
    let unacknowledged = |logs: &str| logs.matches("not every replica acknowledged").count();
    let before = unacknowledged(&replicas.logs());
    let deleted = std::time::Instant::now();
    assert_eq!(kept.delete().await, Some(204));
    eprintln!("DELETE after the failover: {:?}", deleted.elapsed());
    let logs = replicas.logs();
    assert_eq!(unacknowledged(&logs), before, "a deletion waited: {logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}
