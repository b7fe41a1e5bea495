//! Any replica serves any session, as the official MCP clients see it: the
//! Python SDK and the TypeScript SDK each run one session of
//! [`CALLS`] tool calls (plus their usual checks) with zero errors, over
//! Streamable HTTP (`/mcp`) and the legacy HTTP+SSE transport (`/sse`),
//! through three calculator replicas behind a round-robin nginx with no
//! stickiness; the replicas share a standalone `redis-server` or a 3-master
//! Redis Cluster (the `..._on_redis_cluster` tests).
//!
//! nginx's access log then shows that the session's POSTs really were
//! spread over all three replicas, and that every one of them succeeded.
//!
//! The clients are found as in `interop.rs` (see `interop_support`): without
//! them a test says so on stderr and passes, unless `MCP_INTEROP_REQUIRED=1`.
//! Every child process is bounded in time; Redis, the replicas and nginx are
//! killed when a test ends, also on panic.

mod interop_support;

use std::{collections::BTreeMap, io::Write, time::Duration};

use interop_support::{CLIENT_TIMEOUT, Run, SDK_CLIENT_CALLS, Sdk, SdkClient};
use mcp_testkit::{Nginx, RedisCluster, RedisServer, ReplicaSet, Scrape};

const BINARY: &str = env!("CARGO_BIN_EXE_calculator");
/// Tool calls each client makes in its one long session (`--calls`).
const CALLS: u64 = 200;
/// Replicas behind nginx.
const REPLICAS: usize = 3;

// --- the tests: one redis-server ----------------------------------------------

#[tokio::test]
async fn python_sdk_over_streamable_http() {
    long_session(
        "python_sdk_over_streamable_http",
        Sdk::Python,
        Transport::StreamableHttp,
        Store::Standalone,
    )
    .await;
}

#[tokio::test]
async fn python_sdk_over_sse() {
    long_session(
        "python_sdk_over_sse",
        Sdk::Python,
        Transport::Sse,
        Store::Standalone,
    )
    .await;
}

#[tokio::test]
async fn typescript_sdk_over_streamable_http() {
    long_session(
        "typescript_sdk_over_streamable_http",
        Sdk::TypeScript,
        Transport::StreamableHttp,
        Store::Standalone,
    )
    .await;
}

#[tokio::test]
async fn typescript_sdk_over_sse() {
    long_session(
        "typescript_sdk_over_sse",
        Sdk::TypeScript,
        Transport::Sse,
        Store::Standalone,
    )
    .await;
}

// --- the tests: a 3-master Redis Cluster ---------------------------------------

#[tokio::test]
async fn python_sdk_over_streamable_http_on_redis_cluster() {
    long_session(
        "python_sdk_over_streamable_http_on_redis_cluster",
        Sdk::Python,
        Transport::StreamableHttp,
        Store::Cluster,
    )
    .await;
}

#[tokio::test]
async fn python_sdk_over_sse_on_redis_cluster() {
    long_session(
        "python_sdk_over_sse_on_redis_cluster",
        Sdk::Python,
        Transport::Sse,
        Store::Cluster,
    )
    .await;
}

#[tokio::test]
async fn typescript_sdk_over_streamable_http_on_redis_cluster() {
    long_session(
        "typescript_sdk_over_streamable_http_on_redis_cluster",
        Sdk::TypeScript,
        Transport::StreamableHttp,
        Store::Cluster,
    )
    .await;
}

#[tokio::test]
async fn typescript_sdk_over_sse_on_redis_cluster() {
    long_session(
        "typescript_sdk_over_sse_on_redis_cluster",
        Sdk::TypeScript,
        Transport::Sse,
        Store::Cluster,
    )
    .await;
}

// --- the fleet -----------------------------------------------------------------

/// The MCP transport a client uses.
#[derive(Debug, Clone, Copy)]
enum Transport {
    /// `/mcp`; the session's requests are `POST /mcp`.
    StreamableHttp,
    /// `GET /sse`; the session's requests are `POST /messages?session_id=…`.
    Sse,
}

impl Transport {
    /// The client's TRANSPORT argument and its summary's `transport`.
    fn name(self) -> &'static str {
        match self {
            Self::StreamableHttp => "streamable-http",
            Self::Sse => "sse",
        }
    }

    /// The path the client connects to.
    fn path(self) -> &'static str {
        match self {
            Self::StreamableHttp => "/mcp",
            Self::Sse => "/sse",
        }
    }

    /// The path (nginx's `$uri`, without the query) of the session's POSTs.
    fn post_path(self) -> &'static str {
        match self {
            Self::StreamableHttp => "/mcp",
            Self::Sse => "/messages",
        }
    }
}

/// Which Redis the replicas share.
#[derive(Debug, Clone, Copy)]
enum Store {
    Standalone,
    Cluster,
}

/// The Redis the replicas share; stopped when dropped.
enum Redis {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

impl Redis {
    fn url(&self) -> String {
        match self {
            Self::Standalone(server) => server.url(),
            Self::Cluster(cluster) => cluster.url(),
        }
    }
}

/// Redis, [`REPLICAS`] calculator replicas on it, and nginx in front of them.
/// Dropped in declaration order: nginx, then the replicas, then Redis.
struct Fleet {
    nginx: Nginx,
    replicas: ReplicaSet,
    redis: Redis,
}

impl Fleet {
    async fn start(store: Store) -> Self {
        let redis = match store {
            Store::Standalone => Redis::Standalone(RedisServer::start()),
            Store::Cluster => Redis::Cluster(RedisCluster::start()),
        };
        let url = redis.url();
        let replicas = ReplicaSet::start(BINARY, REPLICAS, &[("REDIS_URL", &url)]).await;
        let nginx = Nginx::start(&replicas.ports());
        Self {
            nginx,
            replicas,
            redis,
        }
    }

    /// Everything a failure message needs: which replica got which request
    /// (nginx's access log, with the replicas' names) and the replicas' logs.
    fn diagnostics(&self) -> String {
        let names: Vec<(String, &str)> = self
            .replicas
            .replicas
            .iter()
            .map(|replica| (format!("127.0.0.1:{}", replica.port()), replica.name()))
            .collect();
        let upstreams = names
            .iter()
            .map(|(address, name)| format!("{name} = {address}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "--- Redis: {} ---\n--- nginx access log (METHOD URI STATUS UPSTREAM; {upstreams}) ---\n{}\n--- nginx error log ---\n{}\n--- replica logs ---\n{}",
            self.redis.url(),
            collapse_successes(&self.nginx.access_log()),
            self.nginx.error_log().trim_end(),
            self.replicas.logs()
        )
    }
}

/// `access_log` (lines `METHOD URI STATUS UPSTREAM`) with each run of
/// successful (2xx) requests in one line, so that a failure's report keeps
/// the order of events and room for the replicas' logs.
fn collapse_successes(access_log: &str) -> String {
    let mut collapsed = Vec::new();
    let mut successes = 0usize;
    for line in access_log.lines() {
        let status = line.split_whitespace().nth(2).unwrap_or_default();
        if status.starts_with('2') && !line.starts_with("GET") {
            successes += 1;
            continue;
        }
        if successes > 0 {
            collapsed.push(format!("({successes} requests answered 2xx)"));
            successes = 0;
        }
        collapsed.push(line.to_owned());
    }
    if successes > 0 {
        collapsed.push(format!("({successes} requests answered 2xx)"));
    }
    collapsed.join("\n")
}

// --- the test ------------------------------------------------------------------

/// Runs `sdk`'s calculator client with `--calls` [`CALLS`] through nginx in
/// front of a fresh fleet on `store`, and checks its summary and how nginx
/// spread the session's POSTs.
async fn long_session(test: &str, sdk: Sdk, transport: Transport, store: Store) {
    let Some(client) = sdk.client(test) else {
        return;
    };
    let fleet = Fleet::start(store).await;
    let url = format!("{}{}", fleet.nginx.url(), transport.path());
    let scratch = interop_support::scratch_dir("interop_replicas", test);
    // The checks, plus a generous half second per call (they take a few ms).
    let limit = CLIENT_TIMEOUT + Duration::from_millis(500 * CALLS);
    let run = run_client(client, url, transport, scratch, limit).await;

    let diagnostics = || fleet.diagnostics();
    run.assert_success(sdk.what(), &diagnostics);
    let summary = interop_support::summary(&run, sdk, transport.name(), &diagnostics);
    let failure = || format!("summary {summary}\n{}", run.report(&diagnostics()));
    assert_eq!(summary["calls"].as_u64(), Some(CALLS), "{}", failure());
    assert_eq!(summary["errors"].as_u64(), Some(0), "{}", failure());
    assert_eq!(
        summary["checks"].as_u64(),
        Some(SDK_CLIENT_CALLS),
        "{}",
        failure()
    );

    // nginx's view: the session's POSTs, by upstream, all successful.
    let log = fleet.nginx.access_log();
    let posts = Posts::read(&log, transport.post_path());
    assert!(
        posts.failed.is_empty(),
        "{test}: {} POST {} failed at nginx (the client reported no error):\n{}\n{}",
        posts.failed.len(),
        transport.post_path(),
        posts.failed.join("\n"),
        run.report(&diagnostics())
    );
    let total: u64 = posts.by_upstream.values().sum();
    assert!(
        total >= CALLS,
        "{test}: only {total} POST {} in nginx's access log for {CALLS} calls:\n{}",
        transport.post_path(),
        run.report(&diagnostics())
    );
    // Round robin over 3 replicas gives each about a third; at least a sixth
    // each proves the session really moved between all of them.
    let floor = CALLS / (2 * REPLICAS as u64);
    let mut spread = Vec::new();
    for replica in &fleet.replicas.replicas {
        let upstream = format!("127.0.0.1:{}", replica.port());
        let served = posts.by_upstream.get(&upstream).copied().unwrap_or(0);
        assert!(
            served >= floor,
            "{test}: {} ({upstream}) served {served} of {total} POST {}, expected at least {floor}:\n{}",
            replica.name(),
            transport.post_path(),
            run.report(&diagnostics())
        );
        spread.push(format!("{} {served}", replica.name()));
    }
    // One line past the harness's capture: the proof, with its numbers.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {} over {} via nginx: {CALLS} calls + {SDK_CLIENT_CALLS} checks, 0 errors, in {:.1?}; POST {} by replica: {}",
        sdk.name(),
        transport.name(),
        run.elapsed,
        transport.post_path(),
        spread.join(", ")
    );
}

/// Runs the client off the async runtime (it blocks until the process ends).
async fn run_client(
    client: SdkClient,
    url: String,
    transport: Transport,
    scratch: std::path::PathBuf,
    limit: Duration,
) -> Run {
    tokio::task::spawn_blocking(move || {
        let calls = CALLS.to_string();
        let mut command = client.command(&url, transport.name(), &["--calls", &calls]);
        Run::bounded(&mut command, &scratch, limit)
    })
    .await
    .expect("the client runner")
}

/// The POSTs to one path in nginx's access log (`METHOD URI STATUS UPSTREAM`).
struct Posts {
    /// How many went to each upstream (`127.0.0.1:<port>`; for a request
    /// nginx retried on another upstream, the last one).
    by_upstream: BTreeMap<String, u64>,
    /// The lines of those that did not succeed (status not 2xx).
    failed: Vec<String>,
}

impl Posts {
    fn read(log: &str, path: &str) -> Self {
        let mut posts = Self {
            by_upstream: BTreeMap::new(),
            failed: Vec::new(),
        };
        let mut last = None;
        for line in log.lines() {
            let mut fields = line.splitn(4, ' ');
            let (Some("POST"), Some(uri), Some(status), upstreams) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if uri != path {
                continue;
            }
            let upstream = upstreams
                .and_then(|upstreams| upstreams.rsplit(", ").next())
                .unwrap_or("-")
                .trim()
                .to_owned();
            *posts.by_upstream.entry(upstream).or_default() += 1;
            if !status.starts_with('2') {
                posts.failed.push(line.to_owned());
            }
            last = Some(line);
        }
        // Over HTTP+SSE the answer to the last call can reach the client on
        // its stream before the `202` of the POST that carried it; the
        // client then exits and closes that POST, which nginx logs as `499`
        // (client closed request). That one is the client leaving, not a
        // failure.
        if let Some(last) = last
            && last.split(' ').nth(2) == Some("499")
            && posts.failed.last().map(String::as_str) == Some(last)
        {
            posts.failed.pop();
        }
        posts
    }
}

// --- HTTP+SSE through a rolling restart -----------------------------------------

/// Calls of the rolling-restart run, and the pause between them: the
/// session lasts about 13 s, through three replica restarts.
const RESTART_CALLS: u64 = 200;
const RESTART_PAUSE_MS: u64 = 60;

/// The official TypeScript SDK over HTTP+SSE through nginx while every
/// replica is restarted in turn (SIGTERM, as a rollout does, then started
/// again): its `EventSource` reconnects each time its stream's replica
/// stops, and its session goes on on another one; the 200 calls all
/// succeed. A replica handing off closes each stream once no request on it
/// waits for its answer, and takes no message meanwhile (the POST waits for
/// the session's next stream).
#[tokio::test]
async fn typescript_sdk_over_sse_through_a_rolling_restart() {
    let test = "typescript_sdk_over_sse_through_a_rolling_restart";
    let Some(mut run) = SseUnderFailures::start(test).await else {
        return;
    };
    // The rollout, once the session is under way: each replica in turn gets
    // SIGTERM, stops and starts again; nginx takes a stopped replica out by
    // itself (a refused connection goes to the next upstream) and back once
    // its fail_timeout has passed, before the next one stops.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for replica in &mut run.fleet.replicas.replicas {
        replica.send_sigterm();
        let code = replica.wait_for_exit(Duration::from_secs(30)).await;
        assert_eq!(code, Some(0), "{} did not stop cleanly", replica.name());
        replica.restart().await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let reconnections = run.finish().await;
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {RESTART_CALLS} calls, 0 errors, through 3 replica restarts; the stream reconnected {reconnections} times"
    );
}

/// The official TypeScript SDK over HTTP+SSE through nginx while the replica
/// holding its stream is killed (SIGKILL, as a crashed pod), twice, and
/// started again: its `EventSource` reconnects to another replica, whose new
/// session continues the lost one; the 200 calls all succeed.
#[tokio::test]
async fn typescript_sdk_over_sse_through_killed_stream_holders() {
    let test = "typescript_sdk_over_sse_through_killed_stream_holders";
    let Some(mut run) = SseUnderFailures::start(test).await else {
        return;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut killed = Vec::new();
    for _ in 0..2 {
        let holder = run.stream_holder().await;
        let replica = &mut run.fleet.replicas.replicas[holder];
        killed.push(replica.name().to_owned());
        replica.kill();
        tokio::time::sleep(Duration::from_secs(1)).await;
        replica.restart().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let reconnections = run.finish().await;
    assert!(
        reconnections >= 2,
        "{reconnections} reconnections for 2 kills"
    );
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {RESTART_CALLS} calls, 0 errors; stream holders killed: {killed:?}; the stream reconnected {reconnections} times"
    );
}

/// One run of the TypeScript SDK's long HTTP+SSE session ([`RESTART_CALLS`]
/// calls, [`RESTART_PAUSE_MS`] apart) through a fleet that the test breaks
/// meanwhile.
struct SseUnderFailures {
    test: &'static str,
    fleet: Fleet,
    running: tokio::task::JoinHandle<Run>,
}

impl SseUnderFailures {
    /// Starts the fleet and the client; `None` when the client is missing.
    async fn start(test: &'static str) -> Option<Self> {
        let client = Sdk::TypeScript.client(test)?;
        let mut fleet = Fleet::start(Store::Standalone).await;
        // Nothing deregisters a replica before it stops here: a POST that
        // meets a pooled connection closing at that instant, or a replica
        // that died with it, goes to the next replica instead of failing at
        // nginx (as an ALB's target deregistration spares clients).
        fleet.nginx = Nginx::start_retrying_posts(&fleet.replicas.ports());
        let url = format!("{}/sse", fleet.nginx.url());
        let scratch = interop_support::scratch_dir("interop_replicas", test);
        let limit =
            CLIENT_TIMEOUT + Duration::from_millis((500 + RESTART_PAUSE_MS) * RESTART_CALLS);
        let running = tokio::task::spawn_blocking(move || {
            let (calls, pause) = (RESTART_CALLS.to_string(), RESTART_PAUSE_MS.to_string());
            let mut command =
                client.command(&url, "sse", &["--calls", &calls, "--pause-ms", &pause]);
            Run::bounded(&mut command, &scratch, limit)
        });
        Some(Self {
            test,
            fleet,
            running,
        })
    }

    /// The index of the replica holding the client's stream, from the
    /// replicas' `mcp_sessions_live{transport="sse"}` (waits for one).
    async fn stream_holder(&self) -> usize {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            for (index, replica) in self.fleet.replicas.replicas.iter().enumerate() {
                let scrape = Scrape::fetch(&replica.url()).await;
                if scrape.value("mcp_sessions_live", &[("transport", "sse")]) > 0.0 {
                    return index;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: no replica holds the stream:\n{}",
                self.test,
                self.fleet.diagnostics()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the client; asserts its [`RESTART_CALLS`] calls succeeded
    /// and returns how many times its stream reconnected.
    async fn finish(self) -> usize {
        let run = self.running.await.expect("the client runner");
        let diagnostics = || self.fleet.diagnostics();
        run.assert_success("the TypeScript SDK", &diagnostics);
        let summary = interop_support::summary(&run, Sdk::TypeScript, "sse", &diagnostics);
        assert_eq!(summary["calls"].as_u64(), Some(RESTART_CALLS), "{summary}");
        assert_eq!(summary["errors"].as_u64(), Some(0), "{summary}");
        let logs = self.fleet.replicas.logs();
        // The SDK's EventSource drops Last-Event-ID (see the library's
        // transport/sse_reconnect.rs): its new session continues the lost one.
        let reconnections = logs.matches("sse session reconnected").count()
            + logs
                .matches("its new session continues the lost one")
                .count();
        assert!(reconnections >= 1, "no reconnection:\n{}", diagnostics());
        reconnections
    }
}
