//! What client sessions cost a hub replica's memory: nothing that grows
//! with them once they sit idle. [`USERS`] users each create a client
//! session, connect the calculator (an upstream session per user: `sharing:
//! user`) and call `add`, through three hub replicas behind a round-robin
//! nginx. The records are in Redis; what a replica keeps is bounded caches
//! (upstream sessions in use, lists for `list_ttl_seconds`). The figures
//! (RSS per replica at the start, loaded, idle once the lists expired, and
//! after every client session expired) go to standard error;
//! `docs/benchmarks.md` records a run. The bound checked is the project's
//! target for an idle session (8 KiB of RSS per replica).

mod support;

use std::{sync::Arc, time::Duration};

use mcp_testkit::{Fleet, Memory, ReplicaSet, auth, workspace_binary};
use serde_json::json;
use support::{HubFleet, add_in_client_session, client_session};

/// Users, one client session each.
const USERS: usize = 600;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;
/// The target: resident memory per idle client session, per replica.
const MAX_KIB_PER_IDLE_CLIENT_SESSION: f64 = 8.0;
/// Client sessions' TTL in this run, seconds.
const TTL_SECONDS: u64 = 60;
/// Lists' TTL in this run, seconds.
const LIST_TTL_SECONDS: u64 = 3;

/// Creates a client session for each of `users`, connects the calculator
/// and calls add; returns (client, session path) per user.
async fn open(base: &str, users: std::ops::Range<usize>) -> Vec<(reqwest::Client, String)> {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut opening = tokio::task::JoinSet::new();
    for user in users {
        let (base, permits) = (base.to_owned(), permits.clone());
        opening.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let token = auth::token_for(&format!("web-user-{user}"));
            let client = HubFleet::client(&mcp_testkit::auth::Auth::Bearer(token), &[]);
            let path = client_session(&client, &base, &["calculator"]).await;
            add(&client, &path, user).await;
            (client, path)
        });
    }
    opening.join_all().await
}

async fn add(client: &reqwest::Client, path: &str, a: usize) {
    let sum = add_in_client_session(client, path, "calculator", a as f64, 1.0).await;
    assert_eq!(sum, (a + 1) as f64);
}

fn memory(replicas: &ReplicaSet) -> Vec<Memory> {
    replicas
        .replicas
        .iter()
        .map(|replica| replica.memory().expect("the replica runs"))
        .collect()
}

fn rss(figures: &[Memory]) -> Vec<u64> {
    figures.iter().map(|m| m.rss_kib).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_client_sessions_cost_a_replica_almost_nothing() {
    // The hub reaches it anonymously: one caller to it, with a session per
    // user of the hub.
    let calculator = Fleet::start(
        workspace_binary("calculator"),
        1,
        &[("MAX_SESSIONS_PER_USER".to_owned(), "unlimited".to_owned())],
    )
    .await;
    let config = json!({
        "servers": {"calculator": {"url": format!("{}/mcp", calculator.url()), "sharing": "user"}},
        "list_ttl_seconds": LIST_TTL_SECONDS,
        "client_sessions": {"ttl_seconds": TTL_SECONDS},
    });
    let hub = HubFleet::start_with_env(&config, 3, &[("RUST_LOG", "warn")]).await;
    let base = hub.url();

    // The start: after a few users came (the code is loaded, pools open).
    drop(open(&base, 0..30).await);
    tokio::time::sleep(Duration::from_secs(LIST_TTL_SECONDS + 12)).await;
    let start = memory(&hub.replicas);

    let opening = std::time::Instant::now();
    let users = open(&base, 30..30 + USERS).await;
    let opened_in = opening.elapsed();
    let loaded = memory(&hub.replicas);
    // The lists expire; the client sessions stay (in Redis), idle. The
    // allocator's decay returns freed pages (10 s, gradually).
    tokio::time::sleep(Duration::from_secs(LIST_TTL_SECONDS + 25)).await;
    let idle = memory(&hub.replicas);
    // Idle client sessions go on, on any replica (each request renews one).
    for (i, (client, path)) in users.iter().enumerate().step_by(USERS / 20) {
        add(client, path, i).await;
    }
    drop(users);

    // Every client session expires in Redis.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(TTL_SECONDS + 30);
    while !hub.keys("mcp_client_session:*").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "client sessions did not expire"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(12)).await;
    let expired = memory(&hub.replicas);

    let per_session: Vec<f64> = start
        .iter()
        .zip(&idle)
        .map(|(start, idle)| idle.rss_kib.saturating_sub(start.rss_kib) as f64 / USERS as f64)
        .collect();
    let per_session_loaded: Vec<f64> = start
        .iter()
        .zip(&loaded)
        .map(|(start, loaded)| loaded.rss_kib.saturating_sub(start.rss_kib) as f64 / USERS as f64)
        .collect();
    eprintln!(
        "{USERS} client sessions (one user each, calculator connected, one call; opened in {opened_in:.1?}) through 3 hub replicas; \
         RSS KiB per replica: start {:?}, loaded {:?}, idle {:?}, expired {:?}; \
         per client session per replica: loaded {:?} KiB, idle {:?} KiB",
        rss(&start),
        rss(&loaded),
        rss(&idle),
        rss(&expired),
        per_session_loaded
            .iter()
            .map(|k| format!("{k:.2}"))
            .collect::<Vec<_>>(),
        per_session
            .iter()
            .map(|k| format!("{k:.2}"))
            .collect::<Vec<_>>(),
    );
    for kib in per_session {
        assert!(
            kib <= MAX_KIB_PER_IDLE_CLIENT_SESSION,
            "{kib:.2} KiB per idle client session per replica (target {MAX_KIB_PER_IDLE_CLIENT_SESSION})"
        );
    }
}
