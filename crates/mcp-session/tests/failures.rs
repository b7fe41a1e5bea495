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

use mcp_testkit::{
    CallError, LegacySseSession, Nginx, RawSession, RedisCluster, RedisServer, ReplicaSet,
};
use serde_json::json;
use tokio::task::JoinSet;

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

/// Each test here runs a fleet under load; run together on a small machine
/// they starve each other's probes (a `/readyz` answered after its 500 ms
/// timeout): one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
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
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
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

/// The replica channels (`mcp_replica:*`) and stream flush channels
/// (`mcp_stream_flush:*`) with a subscriber on one Redis node (listed by
/// `PUBSUB SHARDCHANNELS`, each checked with `PUBSUB SHARDNUMSUB`), and the
/// subscribers of the fleet channel there; `cli` runs `redis-cli` on it.
fn subscriptions_on(cli: impl Fn(&[&str]) -> String) -> (usize, usize, usize) {
    let count_of = |answer: String| -> usize {
        answer
            .lines()
            .nth(1)
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0)
    };
    let shard = cli(&["pubsub", "shardchannels"]);
    let subscribed = |prefix: &str| {
        shard
            .lines()
            .filter(|channel| channel.starts_with(prefix))
            .filter(|channel| count_of(cli(&["pubsub", "shardnumsub", channel])) == 1)
            .count()
    };
    let (replica, flush) = (subscribed("mcp_replica:"), subscribed("mcp_stream_flush:"));
    let fleet = cli(&["pubsub", "channels", "mcp_fleet:*"])
        .lines()
        .find(|line| !line.is_empty())
        .map(|channel| count_of(cli(&["pubsub", "numsub", channel])))
        .unwrap_or(0);
    (replica, flush, fleet)
}

/// [`subscriptions_on`] one `redis-server`.
fn subscriptions(redis: &RedisServer) -> (usize, usize, usize) {
    subscriptions_on(|args| redis.cli(args))
}

/// [`subscriptions_on`] every node of `cluster`, added up (each sharded
/// channel lives on one shard; the fleet channel's subscribers are counted
/// where they connected).
fn cluster_subscriptions(cluster: &RedisCluster) -> (usize, usize, usize) {
    (0..cluster.ports().len())
        .map(|node| subscriptions_on(|args| cluster.cli(node, args)))
        .fold((0, 0, 0), |sum, node| {
            (sum.0 + node.0, sum.1 + node.1, sum.2 + node.2)
        })
}

/// Waits (at most 15 s) until `subscriptions` says every replica subscribes
/// its three channels; returns how long that took.
async fn wait_for_subscriptions(
    subscriptions: impl Fn() -> (usize, usize, usize),
    logs: impl Fn() -> String,
) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let now = subscriptions();
        if now == (3, 3, 3) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "subscriptions: {now:?}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (at most `within`) for every replica's `/readyz`.
async fn wait_until_ready(replicas: &ReplicaSet, within: Duration) {
    for replica in &replicas.replicas {
        let readyz = format!("{}/readyz", replica.url());
        if !mcp_testkit::wait_for_http(&readyz, within).await {
            let answer = match reqwest::get(&readyz).await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(error) => error.to_string(),
            };
            panic!(
                "{} not ready again: {answer}\n{}",
                replica.name(),
                replicas.logs()
            );
        }
    }
}

/// After a failure: waits (at most `ready_within`) for every replica's
/// `/readyz`, lets `workload` run 2 s more and stops it; asserts that no
/// Streamable HTTP call failed, that every HTTP+SSE session goes on, and
/// that a `DELETE` is acknowledged by every replica (its latency printed
/// beside `delete_before`). Returns the replicas' logs.
async fn assert_recovered(
    workload: Workload,
    replicas: &ReplicaSet,
    mcp: &str,
    delete_before: Duration,
    failure: &str,
    ready_within: Duration,
) -> String {
    wait_until_ready(replicas, ready_within).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut outcome = workload.stop().await;
    assert!(
        outcome.failures.is_empty(),
        "{:?}\n{}",
        outcome.failures,
        replicas.logs()
    );
    assert!(outcome.ok > 100, "only {} calls", outcome.ok);
    outcome.legacy_sessions_go_on(|| replicas.logs()).await;

    let before = unacknowledged(&replicas.logs());
    let delete_after = delete_latency(mcp).await;
    eprintln!("DELETE: {delete_before:?} before the {failure}, {delete_after:?} after");
    let logs = replicas.logs();
    assert_eq!(
        unacknowledged(&logs),
        before,
        "a deletion waited for a replica: {logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
    logs
}

/// Asserts that session `id` is unknown (`404`) on every replica.
async fn assert_gone_everywhere(replicas: &ReplicaSet, id: &str) {
    for replica in &replicas.replicas {
        let status = reqwest::Client::new()
            .post(format!("{}/mcp", replica.url()))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", id)
            .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "the deleted session on {}", replica.name());
    }
}

fn unacknowledged(logs: &str) -> usize {
    logs.matches("not every replica acknowledged").count()
}

/// Red-team finding 1: Redis restarted with no data (connections dropped,
/// every subscription and every record gone) while 20 Streamable HTTP and
/// 10 HTTP+SSE sessions call through three replicas. Every replica
/// subscribes its three channels again within seconds and is ready again;
/// the replicas notice the loss and write the records of the sessions they
/// serve back (see the fleet's `data_loss`): no call of an established
/// Streamable HTTP session fails, every HTTP+SSE session goes on, and
/// deletions are acknowledged by every replica (no `DELETE` waits for a
/// missing acknowledgement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_empty_every_replica_subscribes_again() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let mut redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    assert_eq!(subscriptions(&redis), (3, 3, 3));
    let mcp = format!("{}/mcp", nginx.url());
    let delete_before = delete_latency(&mcp).await;
    let workload = Workload::start(&nginx.url()).await;
    // A session used on every replica, then deleted: no replica may write
    // it back when Redis loses its data.
    let mut deleted = RawSession::initialize(&mcp).await.expect("initialize");
    for _ in 0..3 {
        deleted
            .call_tool("add", json!({"a": 1, "b": 2}))
            .await
            .expect("a call");
    }
    assert_eq!(deleted.delete().await, Some(204));
    tokio::time::sleep(Duration::from_millis(500)).await;

    redis.stop();
    redis.restart();
    let took = wait_for_subscriptions(|| subscriptions(&redis), || replicas.logs()).await;
    eprintln!("every replica subscribed again {took:?} after the restart");
    let logs = assert_recovered(
        workload,
        &replicas,
        &mcp,
        delete_before,
        "restart",
        Duration::from_secs(10),
    )
    .await;
    assert!(logs.contains("Redis lost its data"), "{logs}");
    assert_gone_everywhere(&replicas, &deleted.id).await;
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

/// Streamable HTTP and HTTP+SSE sessions in a [`Workload`].
const STREAMABLE_SESSIONS: usize = 20;
const LEGACY_SESSIONS: usize = 10;

/// The run the Redis failure tests make through nginx: [`STREAMABLE_SESSIONS`]
/// Streamable HTTP sessions and [`LEGACY_SESSIONS`] HTTP+SSE sessions (their
/// streams spread over the replicas, their messages posted through nginx),
/// each calling `add` until stopped.
struct Workload {
    stop: Arc<AtomicBool>,
    streamable: JoinSet<Tally>,
    legacy: JoinSet<(LegacySseSession, Tally)>,
}

/// What a [`Workload`] saw.
struct Outcome {
    /// Calls of the Streamable HTTP sessions that succeeded, and those that
    /// failed.
    ok: u32,
    failures: Vec<CallError>,
    /// The same for the HTTP+SSE sessions (a message may be refused with
    /// `503` while Redis is away: the session goes on after).
    legacy_ok: u32,
    legacy_failures: Vec<CallError>,
    legacy: Vec<LegacySseSession>,
}

impl Workload {
    /// Opens the sessions through `base` (nginx), each making 3 calls first
    /// (through the round robin, every replica has served and cached each
    /// Streamable HTTP session), then keeps them calling.
    async fn start(base: &str) -> Self {
        let mcp = format!("{base}/mcp");
        let stop = Arc::new(AtomicBool::new(false));
        let mut streamable = JoinSet::new();
        for _ in 0..STREAMABLE_SESSIONS {
            let mut session = RawSession::initialize(&mcp).await.expect("initialize");
            for _ in 0..3 {
                session
                    .call_tool("add", json!({"a": 1, "b": 2}))
                    .await
                    .expect("a call before the failure");
            }
            streamable.spawn(call_until(session, stop.clone()));
        }
        let mut legacy = JoinSet::new();
        for _ in 0..LEGACY_SESSIONS {
            let mut session = LegacySseSession::connect(base)
                .await
                .expect("an HTTP+SSE session");
            for _ in 0..3 {
                session
                    .call_tool("add", json!({"a": 1, "b": 2}))
                    .await
                    .expect("an HTTP+SSE call before the failure");
            }
            legacy.spawn(legacy_call_until(session, stop.clone()));
        }
        Self {
            stop,
            streamable,
            legacy,
        }
    }

    /// Stops the calls and tells what they saw.
    async fn stop(mut self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let (mut ok, mut failures) = (0, Vec::new());
        while let Some(tally) = self.streamable.join_next().await {
            let tally = tally.unwrap();
            ok += tally.ok;
            failures.extend(tally.failures);
        }
        let (mut legacy_ok, mut legacy_failures, mut legacy) = (0, Vec::new(), Vec::new());
        while let Some(done) = self.legacy.join_next().await {
            let (session, tally) = done.unwrap();
            legacy_ok += tally.ok;
            legacy_failures.extend(tally.failures);
            legacy.push(session);
        }
        eprintln!(
            "Streamable HTTP: {ok} calls, {} failed; HTTP+SSE: {legacy_ok} calls, {} refused",
            failures.len(),
            legacy_failures.len()
        );
        Outcome {
            ok,
            failures,
            legacy_ok,
            legacy_failures,
            legacy,
        }
    }
}

impl Outcome {
    /// Every HTTP+SSE session called during the run, was at worst refused
    /// with `503` meanwhile (never "not found"), and goes on: one more call
    /// each succeeds.
    async fn legacy_sessions_go_on(&mut self, logs: impl Fn() -> String) {
        assert!(self.legacy_ok > 0, "no HTTP+SSE call succeeded");
        for failure in &self.legacy_failures {
            assert_eq!(failure.status(), Some(503), "{failure:?}\n{}", logs());
        }
        for (index, session) in self.legacy.iter_mut().enumerate() {
            let result = session
                .call_tool("add", json!({"a": index, "b": 1}))
                .await
                .unwrap_or_else(|error| {
                    panic!(
                        "HTTP+SSE session {index} after the failure: {error:?}\n{}",
                        logs()
                    )
                });
            assert_eq!(result["structuredContent"]["result"], (index + 1) as f64);
        }
    }
}

/// Calls `add` on HTTP+SSE `session` until `stop`, counting what fails; the
/// session comes back for more calls.
async fn legacy_call_until(
    mut session: LegacySseSession,
    stop: Arc<AtomicBool>,
) -> (LegacySseSession, Tally) {
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
    (session, tally)
}

/// How long `DELETE` of a fresh session takes through `mcp`, the median of
/// 5 (printed: a benchmark figure, not asserted).
async fn delete_latency(mcp: &str) -> Duration {
    let mut taken = Vec::new();
    for _ in 0..5 {
        let session = RawSession::initialize(mcp).await.expect("initialize");
        let started = std::time::Instant::now();
        assert_eq!(session.delete().await, Some(204));
        taken.push(started.elapsed());
    }
    taken.sort();
    taken[2]
}

/// Redis outages cost no tool call of a live session: 20 Streamable HTTP
/// (and 10 HTTP+SSE) sessions call through three replicas while Redis is down for 3 s (its
/// data kept, as a managed Redis keeps it through a failover). Every call
/// succeeds, served from each replica's last known records; a new session
/// is refused with `503` and `Retry-After` meanwhile; afterwards everything
/// is read from Redis again and a deletion is honoured everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_costs_no_call_of_a_live_session() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let mut redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    let mcp = format!("{}/mcp", nginx.url());
    let workload = Workload::start(&nginx.url()).await;
    let kept = RawSession::initialize(&mcp).await.expect("initialize");
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
    let mut outcome = workload.stop().await;
    assert!(outcome.ok > 100, "only {} calls", outcome.ok);
    assert!(
        outcome.failures.is_empty(),
        "{:?}\n{}",
        outcome.failures,
        replicas.logs()
    );

    // Back to Redis: the HTTP+SSE sessions go on, and a deletion through
    // one replica is honoured by all.
    wait_until_ready(&replicas, Duration::from_secs(10)).await;
    outcome.legacy_sessions_go_on(|| replicas.logs()).await;
    assert_eq!(kept.delete().await, Some(204));
    assert_gone_everywhere(&replicas, &kept.id).await;
    let logs = replicas.logs();
    assert!(logs.contains("Redis unreachable: serving the sessions cached here"));
    assert!(!logs.contains("panicked"), "{logs}");
}

/// A Redis Cluster master killed (ElastiCache cluster mode: its replica is
/// promoted after the node timeout) while 20 Streamable HTTP and 10
/// HTTP+SSE sessions call through three replicas: no call of a Streamable
/// HTTP session fails (the sessions whose keys lived on the failed shard
/// are served from the replicas' last known records until the failover),
/// every replica subscribes its channels again (on the promoted node where
/// they lived on the failed one) and is ready again, every HTTP+SSE session
/// goes on, and deletions are acknowledged by every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_kill_costs_no_call_of_a_live_session() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let mut cluster = RedisCluster::start_with_replicas();
    let url = cluster.url();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    let mcp = format!("{}/mcp", nginx.url());
    assert_eq!(cluster_subscriptions(&cluster), (3, 3, 3));
    let delete_before = delete_latency(&mcp).await;
    let workload = Workload::start(&nginx.url()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    cluster.kill(0);
    let killed = std::time::Instant::now();
    let (cluster, failed_over) = tokio::task::spawn_blocking(move || {
        let ok = cluster.wait_for_failover(0, Duration::from_secs(30));
        (cluster, ok)
    })
    .await
    .unwrap();
    assert!(failed_over, "the cluster did not fail over");
    eprintln!(
        "the cluster failed over {:?} after the kill",
        killed.elapsed()
    );
    let took = wait_for_subscriptions(|| cluster_subscriptions(&cluster), || replicas.logs()).await;
    eprintln!("every replica subscribed again {took:?} after the failover");
    assert_recovered(
        workload,
        &replicas,
        &mcp,
        delete_before,
        "master kill",
        Duration::from_secs(15),
    )
    .await;
}

/// A primary failover behind one endpoint, as ElastiCache does it: the
/// replica is promoted, the endpoint moves to it, every open connection
/// breaks, the old primary is gone. 20 Streamable HTTP sessions calling
/// through three replicas lose no call; every replica subscribes its
/// channels again on the new primary and is ready again, the 10 HTTP+SSE
/// sessions calling meanwhile go on, and deletions are acknowledged by all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_failover_behind_one_endpoint_costs_no_call() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let mut primary = RedisServer::start();
    let replica = RedisServer::start_replica_of(primary.port());
    let endpoint = mcp_testkit::TcpProxy::start(primary.port()).await;
    let url = format!("redis://127.0.0.1:{}", endpoint.port());
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    let mcp = format!("{}/mcp", nginx.url());
    let delete_before = delete_latency(&mcp).await;
    let workload = Workload::start(&nginx.url()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    replica.cli(&["replicaof", "no", "one"]);
    endpoint.fail_over_to(replica.port());
    primary.stop();
    let took = wait_for_subscriptions(|| subscriptions(&replica), || replicas.logs()).await;
    eprintln!("every replica subscribed on the new primary {took:?} after the failover");
    assert_recovered(
        workload,
        &replicas,
        &mcp,
        delete_before,
        "failover",
        Duration::from_secs(10),
    )
    .await;
}
