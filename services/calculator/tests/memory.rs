//! What idle sessions cost a replica, and that the memory comes back.
//!
//! Three calculator replicas on one Redis behind round-robin nginx serve
//! [`SESSIONS`] sessions (`initialize`, `notifications/initialized`, one
//! `tools/call`: three requests, each on the next replica, so every replica
//! has served every session). Then the sessions sit idle: each replica
//! drops their rmcp workers after `SESSION_WORKER_IDLE_SECONDS`, keeps only
//! what it needs between requests (a cached record, the answers kept for
//! `Last-Event-ID`), and its allocator gives the rest back to the system.
//! Then they expire, and each replica's memory returns to where it was
//! before them. The figures go to standard error; the bounds are the
//! project's targets (8 KiB of RSS per idle session per replica; within 20%
//! of the start after expiry). `docs/benchmarks.md` has the 20,000-session
//! run of the same measure.

use std::{sync::Arc, time::Duration};

use mcp_testkit::{Memory, Nginx, RawSession, RedisServer, Replica, ReplicaSet, Scrape};
use serde_json::json;

/// Sessions opened through the fleet.
const SESSIONS: usize = 3000;

/// Requests in flight at once while opening them.
const CONCURRENCY: usize = 32;

/// The target: resident memory per idle session, per replica.
const MAX_KIB_PER_IDLE_SESSION: f64 = 8.0;

/// How far above its start a replica's resident memory may stay once the
/// sessions expired.
const MAX_GROWTH_AFTER_EXPIRY: f64 = 0.2;

/// Session TTL of the run: long enough to measure the idle sessions alive.
const SESSION_TTL_SECONDS: &str = "45";

const BINARY: &str = env!("CARGO_BIN_EXE_calculator");

/// Opens `count` sessions through `url`, each calling `add` once; returns
/// them.
async fn open_sessions(url: &str, count: usize) -> Vec<RawSession> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut opening = tokio::task::JoinSet::new();
    for index in 0..count {
        let (client, url, permits) = (client.clone(), url.to_owned(), permits.clone());
        opening.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let mut session = RawSession::initialize_with(client, &url)
                .await
                .unwrap_or_else(|error| panic!("session {index}: initialize: {error:?}"));
            let result = session
                .call_tool("add", json!({"a": index, "b": 1}))
                .await
                .unwrap_or_else(|error| panic!("session {index}: tools/call: {error:?}"));
            assert_eq!(
                result["structuredContent"]["result"],
                json!((index + 1) as f64),
                "{result}"
            );
            session
        });
    }
    opening.join_all().await
}

/// Waits until no replica holds a worker for any session (each dropped
/// its idle ones), then for the allocator to give the freed memory back
/// (jemalloc's decay: about 10 s).
async fn wait_until_idle(replicas: &ReplicaSet) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut workers = 0.0;
        for replica in &replicas.replicas {
            workers += Scrape::fetch(&replica.url())
                .await
                .value("mcp_sessions_live", &[("transport", "streamable_http")]);
        }
        if workers == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{workers} session workers still held after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
}

/// jemalloc's `allocated`/`active`/`resident` KiB per replica, as a text,
/// when the replicas were built with `mcp-session`'s feature `heap-stats`
/// (`mcp_heap_bytes`); `None` otherwise.
async fn heap(replicas: &ReplicaSet) -> Option<String> {
    let mut figures = Vec::new();
    for replica in &replicas.replicas {
        let scrape = Scrape::fetch(&replica.url()).await;
        if !scrape.has("mcp_heap_bytes") {
            return None;
        }
        let kib = |state| scrape.value("mcp_heap_bytes", &[("state", state)]) / 1024.0;
        figures.push(format!(
            "{:.0}/{:.0}/{:.0}",
            kib("allocated"),
            kib("active"),
            kib("resident")
        ));
    }
    Some(figures.join(", "))
}

fn memory(replicas: &ReplicaSet) -> Vec<Memory> {
    replicas
        .replicas
        .iter()
        .map(|replica: &Replica| replica.memory().expect("the replica runs"))
        .collect()
}

fn kib(figures: &[Memory], field: fn(&Memory) -> u64) -> Vec<u64> {
    figures.iter().map(field).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_cost_a_few_kib_per_replica_and_the_memory_comes_back() {
    let redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(
        BINARY,
        3,
        &[
            ("REDIS_URL", &url),
            ("RUST_LOG", "warn"),
            // One anonymous caller opens them all.
            ("MAX_SESSIONS_PER_USER", "unlimited"),
            ("SESSION_TTL_SECONDS", SESSION_TTL_SECONDS),
            ("SESSION_WORKER_IDLE_SECONDS", "2"),
            // What a replica keeps of ended sessions goes within seconds.
            ("SESSION_CACHE_OUTAGE_SECONDS", "0"),
            ("EVENT_RETENTION_SECONDS", "5"),
        ],
    )
    .await;
    let nginx = Nginx::start(&replicas.ports());
    let mcp = format!("{}/mcp", nginx.url());

    // The start: after a few sessions came and went (the code they run is
    // loaded, the pools are open), as a replica that has served before.
    drop(open_sessions(&mcp, 60).await);
    wait_until_idle(&replicas).await;
    let start = memory(&replicas);
    let heap_start = heap(&replicas).await;

    let mut sessions = open_sessions(&mcp, SESSIONS).await;
    let loaded = memory(&replicas);
    wait_until_idle(&replicas).await;
    let idle = memory(&replicas);
    let heap_idle = heap(&replicas).await;

    // Idle sessions are still served, by any replica.
    for (index, session) in sessions.iter_mut().enumerate().step_by(SESSIONS / 10) {
        let result = session
            .call_tool("add", json!({"a": index, "b": 2}))
            .await
            .expect("an idle session goes on");
        assert_eq!(
            result["structuredContent"]["result"],
            json!((index + 2) as f64)
        );
    }
    drop(sessions);

    // Every session expires; what the replicas kept of them goes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while redis
        .cli(&["--scan", "--pattern", "mcp_user_session:*"])
        .lines()
        .any(|line| !line.is_empty())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sessions did not expire"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The cache's refresh (5 s) and the answers' retention (5 s) pass,
    // then the allocator's decay.
    tokio::time::sleep(Duration::from_secs(10)).await;
    wait_until_idle(&replicas).await;
    let expired = memory(&replicas);
    if let (Some(start), Some(idle), Some(expired)) = (heap_start, heap_idle, heap(&replicas).await)
    {
        eprintln!(
            "jemalloc allocated/active/resident KiB per replica: start [{start}], idle [{idle}], expired [{expired}]"
        );
    }

    let per_session: Vec<f64> = start
        .iter()
        .zip(&idle)
        .map(|(start, idle)| idle.rss_kib.saturating_sub(start.rss_kib) as f64 / SESSIONS as f64)
        .collect();
    let growth: Vec<f64> = start
        .iter()
        .zip(&expired)
        .map(|(start, expired)| expired.rss_kib as f64 / start.rss_kib as f64 - 1.0)
        .collect();
    eprintln!(
        "{SESSIONS} sessions through 3 replicas; RSS KiB per replica: start {:?}, loaded {:?}, idle {:?}, expired {:?} \
         (anonymous: start {:?}, loaded {:?}, idle {:?}, expired {:?}); \
         per idle session per replica: {:?} KiB; after expiry: {:?} of the start",
        kib(&start, |m| m.rss_kib),
        kib(&loaded, |m| m.rss_kib),
        kib(&idle, |m| m.rss_kib),
        kib(&expired, |m| m.rss_kib),
        kib(&start, |m| m.anonymous_kib),
        kib(&loaded, |m| m.anonymous_kib),
        kib(&idle, |m| m.anonymous_kib),
        kib(&expired, |m| m.anonymous_kib),
        per_session
            .iter()
            .map(|kib| format!("{kib:.2}"))
            .collect::<Vec<_>>(),
        growth
            .iter()
            .map(|growth| format!("{:+.1}%", growth * 100.0))
            .collect::<Vec<_>>(),
    );
    for (index, kib) in per_session.iter().enumerate() {
        assert!(
            *kib <= MAX_KIB_PER_IDLE_SESSION,
            "replica {}: {kib:.2} KiB per idle session",
            index + 1
        );
    }
    for (index, growth) in growth.iter().enumerate() {
        assert!(
            *growth <= MAX_GROWTH_AFTER_EXPIRY,
            "replica {}: {:+.1}% of its start after the sessions expired",
            index + 1,
            growth * 100.0
        );
    }
}
