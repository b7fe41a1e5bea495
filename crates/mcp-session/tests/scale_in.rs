//! Scale-in during a client run, the way Kubernetes does it: one of three
//! replicas behind nginx leaves the load balancer (nginx reloads without
//! it, as the ALB deregisters a terminating pod) and gets SIGTERM at the
//! same moment. Streamable HTTP clients must not see one failed request;
//! the replica must fail `/readyz` while draining and exit 0 within its
//! grace period; a legacy SSE client held there must see its stream end and
//! reconnect to the fleet.
//!
//! `SHUTDOWN_DRAIN_SECONDS=2` stands for the `preStop` sleep of the
//! Deployment: in Kubernetes the endpoint removal propagates during it.
//!
//! The clients keep no idle connection to nginx: a reload makes nginx's old
//! worker close its idle keep-alive client connections, and a request sent
//! on one at that moment fails in the harness. The ALB, whose deregistration
//! the reload stands for, does not restart.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use mcp_testkit::{CallError, LegacySseSession, Nginx, RawSession, RedisServer, ReplicaSet};
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, ClientConfig, ProtocolVersion},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;
use tokio::task::JoinSet;

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

const DRAIN_SECONDS: u64 = 2;
const GRACE_SECONDS: u64 = 10;

/// Streamable HTTP clients running through the scale-in.
const CLIENTS: usize = 12;

/// What one client saw.
#[derive(Debug, Default)]
struct Tally {
    ok: u32,
    ok_after_sigterm: u32,
    failures: Vec<String>,
}

/// An HTTP client that opens a connection per request (see the module docs).
fn unpooled() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// Calls `add` in a loop over one raw session until `stop`.
async fn raw_client(url: String, scaled: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    let mut session = match RawSession::initialize_with(unpooled(), &url).await {
        Ok(session) => session,
        Err(error) => {
            tally.failures.push(format!("initialize: {error:?}"));
            return tally;
        }
    };
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let after = scaled.load(Ordering::Relaxed);
        match session.call_tool("add", json!({"a": i, "b": 1})).await {
            Ok(result) if result["structuredContent"]["result"] == f64::from(i + 1) => {
                tally.ok += 1;
                tally.ok_after_sigterm += u32::from(after);
            }
            Ok(result) => tally.failures.push(format!("wrong result {result}")),
            Err(error) => tally.failures.push(format!("call {i}: {error:?}")),
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    tally
}

/// The same loop through the official Rust SDK's client (rmcp), which also
/// holds a standalone `GET /mcp` stream and reconnects it when it ends.
async fn sdk_client(url: String, scaled: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    let transport = StreamableHttpClientTransport::with_client(
        unpooled(),
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    let client = match ClientConfig::default()
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
        .serve(transport)
        .await
    {
        Ok(client) => client,
        Err(error) => {
            tally.failures.push(format!("initialize: {error}"));
            return tally;
        }
    };
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let after = scaled.load(Ordering::Relaxed);
        let arguments = json!({"a": i, "b": 2}).as_object().unwrap().clone();
        match client
            .call_tool(CallToolRequestParams::new("add").with_arguments(arguments))
            .await
        {
            Ok(result)
                if result.structured_content.as_ref().map(|c| &c["result"])
                    == Some(&json!(f64::from(i + 2))) =>
            {
                tally.ok += 1;
                tally.ok_after_sigterm += u32::from(after);
            }
            Ok(result) => tally.failures.push(format!("wrong result {result:?}")),
            Err(error) => tally.failures.push(format!("sdk call {i}: {error}")),
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let _ = client.cancel().await;
    tally
}

/// Calls `multiply` over a legacy session and checks the answer.
async fn sse_call(session: &mut LegacySseSession, id: u64) {
    let result = session
        .call_tool("multiply", json!({"a": id, "b": 3}))
        .await
        .expect("a legacy call");
    assert_eq!(result["structuredContent"]["result"], (id * 3) as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_scales_in_without_failing_a_streamable_http_request() {
    let redis = RedisServer::start();
    let url = redis.url();
    let (drain, grace) = (DRAIN_SECONDS.to_string(), GRACE_SECONDS.to_string());
    let mut replicas = ReplicaSet::start(
        BINARY,
        3,
        &[
            ("REDIS_URL", &url),
            ("SHUTDOWN_DRAIN_SECONDS", &drain),
            ("SHUTDOWN_GRACE_SECONDS", &grace),
            // A handed-off HTTP+SSE session waits this long for its client.
            ("SSE_RECONNECT_SECONDS", "2"),
        ],
    )
    .await;
    let mut nginx = Nginx::start(&replicas.ports());
    let leaving = replicas.replicas[1].url();
    let leaving_upstream = format!("127.0.0.1:{}", replicas.replicas[1].port());

    // A legacy SSE client whose stream the leaving replica holds.
    let mut legacy = LegacySseSession::connect_via(&leaving, &nginx.url())
        .await
        .expect("a legacy session held by the leaving replica");
    sse_call(&mut legacy, 1).await;

    let scaled = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mcp = format!("{}/mcp", nginx.url());
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        clients.spawn(raw_client(mcp.clone(), scaled.clone(), stop.clone()));
    }
    clients.spawn(sdk_client(mcp.clone(), scaled.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Scale in: out of the load balancer and SIGTERM at the same moment.
    let remaining = [replicas.replicas[0].port(), replicas.replicas[2].port()];
    replicas.replicas[1].send_sigterm();
    let terminated = Instant::now();
    nginx.set_upstreams(&remaining);
    scaled.store(true, Ordering::Relaxed);
    let served_before = nginx
        .access_log()
        .lines()
        .filter(|line| line.starts_with("POST /mcp 200") && line.ends_with(&leaving_upstream))
        .count();

    // While draining, the replica still answers, and says it is not ready.
    let readyz = reqwest::get(format!("{leaving}/readyz"))
        .await
        .expect("the draining replica still answers");
    assert_eq!(readyz.status().as_u16(), 503);
    assert!(readyz.text().await.unwrap().contains("shutting_down"));

    // Its legacy SSE stream ends at the hand-off; this client (which does
    // not reconnect with Last-Event-ID) opens a new session and goes on.
    let mut ended = false;
    for _ in 0..100 {
        match legacy
            .stream()
            .next_within(Duration::from_secs(GRACE_SECONDS))
            .await
        {
            None => {
                ended = true;
                break;
            }
            Some(event) => assert!(event.comment.is_some(), "unexpected {event:?}"),
        }
    }
    assert!(ended, "the legacy stream did not end");
    let mut again = LegacySseSession::connect(&nginx.url())
        .await
        .expect("a new legacy session on a live replica");
    for id in 2..5 {
        sse_call(&mut again, id).await;
    }
    // The session whose stream ended waits for its client to reconnect
    // with Last-Event-ID: a message meanwhile is refused for now (503), or,
    // once the fleet has ended the session, for good (404); never taken.
    let waiting = legacy.request("ping", json!({})).await;
    assert!(
        matches!(waiting, Err(CallError::Status(503 | 404, _))),
        "{waiting:?}"
    );

    let code = replicas.replicas[1]
        .wait_for_exit(Duration::from_secs(DRAIN_SECONDS + GRACE_SECONDS + 5))
        .await;
    let exited_after = terminated.elapsed();
    assert_eq!(
        code,
        Some(0),
        "the replica did not exit cleanly within its grace period:\n{}",
        replicas.replicas[1].log()
    );
    // Nobody took the session back: once the replica is gone for
    // SSE_RECONNECT_SECONDS, the fleet ends it.
    let reaped = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Err(CallError::Status(404, _)) = legacy.request("ping", json!({})).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        reaped.is_ok(),
        "the abandoned HTTP+SSE session was not ended"
    );
    // The run goes on without it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);

    let mut failures = Vec::new();
    let mut ok = 0;
    while let Some(tally) = clients.join_next().await {
        let tally = tally.expect("client task");
        assert!(
            tally.ok_after_sigterm > 10,
            "a client stalled after the scale-in: {tally:?}"
        );
        ok += tally.ok;
        failures.extend(tally.failures);
    }
    assert!(
        failures.is_empty(),
        "{} failed requests: {failures:#?}\n{}",
        failures.len(),
        replicas.logs()
    );
    assert!(
        served_before >= CLIENTS,
        "the leaving replica served {served_before} calls before it left"
    );
    // Streamable HTTP sessions were not deleted: every client's is in Redis.
    let sessions = redis.cli(&["--scan", "--pattern", "mcp_user_session:*"]);
    assert!(
        sessions.lines().count() > CLIENTS,
        "sessions left in Redis:\n{sessions}"
    );
    let log = replicas.replicas[1].log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("shut down"), "{log}");
    eprintln!(
        "{ok} calls succeeded, none failed; the replica exited {:.1} s after SIGTERM, having served {served_before} calls",
        exited_after.as_secs_f64()
    );
}
