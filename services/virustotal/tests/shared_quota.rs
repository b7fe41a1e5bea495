//! The quota and the cache in a real Redis (`redis-server`, and a 3-master
//! Redis Cluster), shared by several service instances as replicas share
//! them: the budget holds across instances under concurrency, the wait is
//! exact, a 429 pauses every instance, a report cached by one is a hit for
//! the others, and Redis going away gives a clear tool error (no API call,
//! no panic) until it is back.

mod stub;

use std::time::Duration;

use fred::{clients::Pool, prelude::*};
use mcp_session::RedisConnection;
use mcp_testkit::{RedisCluster, RedisServer};
use stub::{EICAR_SHA256, Scripted, Stub};
use virustotal::{
    Settings, VirusTotal,
    config::{RateLimits, key_id},
    errors::ToolError,
    quota::{Window, redis::QuotaKeys},
};

const KEY: &str = "shared-quota-test-key";

fn pool(url: &str) -> Pool {
    RedisConnection::connect(url, 2, Duration::from_millis(1500))
        .expect("redis connection")
        .pool()
        .clone()
}

/// Waits (bounded) until every connection of `pool` routes keyed commands:
/// a cluster client answers PING before it has the cluster's slot map.
async fn wait_for_redis(pool: &Pool) {
    for _ in 0..100 {
        let mut ready = true;
        for client in pool.clients() {
            ready &= client
                .get::<Option<String>, _>("mcp_vt_test:ready")
                .await
                .is_ok();
        }
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis did not answer");
}

fn settings(stub: &Stub, per_minute: u32) -> Settings {
    let mut settings = Settings::new(Some(KEY), &stub.base_url()).expect("settings");
    settings.rate_limits = RateLimits {
        per_minute: Some(per_minute),
        per_day: Some(500),
    };
    settings.retry.initial_backoff = Duration::from_millis(20);
    settings
}

/// `count` instances ("replicas") on one Redis, each with its own pool.
async fn replicas(url: &str, settings: &Settings, count: usize) -> Vec<VirusTotal> {
    let mut replicas = Vec::new();
    for _ in 0..count {
        let pool = pool(url);
        wait_for_redis(&pool).await;
        replicas.push(VirusTotal::new(settings.clone(), Some(pool)).expect("service"));
    }
    replicas
}

/// Runs 20 concurrent lookups of distinct hashes over `replicas` at 4 a
/// minute: 4 are granted (one API request each), 16 told when to retry;
/// returns the indices of the granted.
async fn four_of_twenty_lookups(replicas: &[VirusTotal], stub: &Stub) -> Vec<usize> {
    let (granted, waits) = twenty_lookups(replicas).await;
    assert_eq!(granted.len(), 4, "{granted:?}");
    assert_eq!(stub.call_count(), 4);
    assert_eq!(waits.len(), 16);
    assert!(
        waits.iter().all(|wait| (1..=60).contains(wait)),
        "{waits:?}"
    );
    granted
}

/// Runs 20 concurrent lookups of distinct hashes over `replicas`; returns
/// the indices of the granted ones and the waits of the refused.
async fn twenty_lookups(replicas: &[VirusTotal]) -> (Vec<usize>, Vec<u64>) {
    let lookups = (0..20).map(|index| {
        let vt = &replicas[index % replicas.len()];
        async move { (index, vt.file_report(&format!("{index:064x}")).await) }
    });
    let mut granted = Vec::new();
    let mut waits = Vec::new();
    for (index, result) in futures::future::join_all(lookups).await {
        match result {
            Ok(_) => granted.push(index),
            Err(ToolError::RateLimited(denial)) => {
                assert_eq!(denial.window, Window::Minute);
                waits.push(denial.retry_after_seconds());
            }
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    (granted, waits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_budget_for_every_instance_on_one_redis() {
    let redis = RedisServer::start();
    let stub = Stub::start(&[KEY]).await;
    let replicas = replicas(&redis.url(), &settings(&stub, 4), 3).await;
    let granted = four_of_twenty_lookups(&replicas, &stub).await;

    // The keys: named by the key's id, never the key; the minute window
    // holds the 4 grants and expires by itself.
    let keys = QuotaKeys::new(&key_id(KEY));
    assert_eq!(redis.cli(&["zcard", &keys.minute]).trim(), "4");
    let ttl: i64 = redis.cli(&["pttl", &keys.minute]).trim().parse().unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
    assert_eq!(redis.cli(&["hget", &keys.day, "count"]).trim(), "4");
    let all_keys = redis.cli(&["keys", "*"]);
    assert!(!all_keys.contains(KEY), "{all_keys}");

    // An answer one instance fetched is a hit on every other.
    for index in &granted {
        for (other, vt) in replicas.iter().enumerate() {
            if other == index % replicas.len() {
                continue;
            }
            let answer = vt.file_report(&format!("{index:064x}")).await.unwrap();
            assert!(answer.cached && !answer.found, "{answer:?}");
        }
    }
    assert_eq!(stub.call_count(), 4);
    let cached = redis.cli(&["keys", "mcp_vt_cache:file:*"]);
    assert_eq!(cached.lines().count(), 4, "{cached}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_budget_holds_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let stub = Stub::start(&[KEY]).await;
    let replicas = replicas(&cluster.url(), &settings(&stub, 4), 2).await;
    four_of_twenty_lookups(&replicas, &stub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_pauses_every_instance() {
    let redis = RedisServer::start();
    let stub = Stub::start(&[KEY]).await;
    let replicas = replicas(&redis.url(), &settings(&stub, 100), 2).await;
    stub.script(Scripted::Error {
        code: "QuotaExceededError",
        retry_after: Some(30),
    });
    let error = replicas[0].file_report(EICAR_SHA256).await.unwrap_err();
    assert_eq!(error.code(), "QuotaExceededError");
    assert_eq!(error.retry_after_seconds(), Some(30));
    // The other instance has not sent anything yet, and waits too.
    match replicas[1].domain_report("google.com").await {
        Err(ToolError::RateLimited(denial)) => {
            assert_eq!(denial.window, Window::Backoff);
            assert!(
                (29..=30).contains(&denial.retry_after_seconds()),
                "{denial:?}"
            );
        }
        other => panic!("expected the fleet back-off, got {other:?}"),
    }
    assert_eq!(stub.call_count(), 1);
    let keys = QuotaKeys::new(&key_id(KEY));
    let ttl: i64 = redis.cli(&["pttl", &keys.backoff]).trim().parse().unwrap();
    assert!(ttl > 28_000 && ttl <= 30_000, "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_away_is_a_clear_tool_error_until_it_is_back() {
    let mut redis = RedisServer::start();
    let stub = Stub::start(&[KEY]).await;
    let replicas = replicas(&redis.url(), &settings(&stub, 100), 1).await;
    let vt = &replicas[0];
    assert!(vt.domain_report("google.com").await.unwrap().found);
    redis.stop();
    for lookup in [
        vt.file_report(EICAR_SHA256).await.map(drop),
        vt.ip_report("8.8.8.8").await.map(drop),
        vt.scan_url("https://example.com/").await.map(drop),
    ] {
        let error = lookup.expect_err("no quota without Redis");
        assert_eq!(error.code(), "QuotaStoreUnavailable");
        let message = error.to_string();
        assert!(message.contains("no API call was made"), "{message}");
    }
    assert_eq!(
        stub.call_count(),
        1,
        "nothing sent while the quota is unknown"
    );
    redis.restart();
    // The connections come back by themselves (bounded wait).
    let mut recovered = false;
    for _ in 0..100 {
        if vt.file_report(EICAR_SHA256).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "lookups did not recover after Redis came back");
    assert_eq!(stub.call_count(), 2);
}
