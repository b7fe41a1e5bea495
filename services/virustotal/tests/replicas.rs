//! The fleet: three processes of the real `virustotal` binary on one
//! `redis-server`, behind a round-robin nginx with no stickiness, pointed
//! at the local v3 stub, with the public key's limit of 4 requests a
//! minute. Twenty lookups of distinct hashes from five concurrent
//! Streamable HTTP sessions make at most 4 calls to the stub; the other 16
//! are told when to retry; the answers fetched are cache hits on every
//! replica; a 429 from the API pauses the whole fleet.

mod stub;

use std::time::{Duration, Instant};

use mcp_testkit::{Nginx, RawSession, RedisServer, ReplicaSet};
use serde_json::{Value, json};
use stub::{EICAR_SHA256, Scripted, Stub};
use virustotal::errors::META_KEY;

const BINARY: &str = env!("CARGO_BIN_EXE_virustotal");
const KEY: &str = "fleet-key-5d2c8e1f9a3b7c4d6e0f2a8b1c3d5e7f9a0b2c4d6e8f1a3b5c7d9e0f2a4b6c8d";
/// Longest run of the lookups: well within the minute the limit counts.
const LOOKUPS_TIMEOUT: Duration = Duration::from_secs(45);

/// Redis, three replicas and nginx; stopped when dropped.
struct Fleet {
    _redis: RedisServer,
    replicas: ReplicaSet,
    nginx: Nginx,
}

impl Fleet {
    async fn start(stub: &Stub, per_minute: &str) -> Self {
        let redis = RedisServer::start();
        let redis_url = redis.url();
        let base_url = stub.base_url();
        let replicas = ReplicaSet::start(
            BINARY,
            3,
            &[
                ("REDIS_URL", &redis_url),
                ("VIRUSTOTAL_API_KEY", KEY),
                ("VIRUSTOTAL_BASE_URL", &base_url),
                ("VIRUSTOTAL_RATE_LIMIT_PER_MINUTE", per_minute),
                ("VIRUSTOTAL_RATE_LIMIT_PER_DAY", "500"),
                ("NO_COLOR", "1"),
            ],
        )
        .await;
        let nginx = Nginx::start(&replicas.ports());
        Self {
            _redis: redis,
            replicas,
            nginx,
        }
    }

    fn mcp_url(&self) -> String {
        format!("{}/mcp", self.nginx.url())
    }

    /// Upstreams that served a `POST /mcp`, from nginx's access log.
    fn upstreams(&self) -> std::collections::BTreeSet<String> {
        self.nginx
            .access_log()
            .lines()
            .filter(|line| line.starts_with("POST /mcp "))
            .filter_map(|line| line.split_whitespace().nth(3).map(str::to_owned))
            .collect()
    }
}

fn hash(index: usize) -> String {
    format!("{:064x}", 0xfeed_0000_usize + index)
}

/// `Ok(structuredContent)` or `Err((code, retry_after_seconds))`.
fn outcome(result: &Value) -> Result<Value, (String, Option<u64>)> {
    if result["isError"] == true {
        let error = &result["_meta"][META_KEY];
        return Err((
            error["code"].as_str().unwrap_or("?").to_owned(),
            error["retry_after_seconds"].as_u64(),
        ));
    }
    Ok(result["structuredContent"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_lookups_over_three_replicas_make_at_most_four_api_calls() {
    let stub = Stub::start(&[KEY]).await;
    for index in 0..20 {
        stub.add_file(Stub::file_like_eicar(&hash(index)));
    }
    let fleet = Fleet::start(&stub, "4").await;
    let url = fleet.mcp_url();
    let started = Instant::now();
    // Five sessions, four lookups each, all at once.
    let sessions = (0..5).map(|session| {
        let url = url.clone();
        async move {
            let mut client = RawSession::initialize(&url).await.expect("initialize");
            let mut results = Vec::new();
            for call in 0..4 {
                let hash = hash(session * 4 + call);
                let result = client
                    .call_tool("get_file_report", json!({"hash": hash}))
                    .await
                    .unwrap_or_else(|error| panic!("{hash}: {error:?}"));
                results.push((hash, result));
            }
            results
        }
    });
    let results: Vec<(String, Value)> =
        tokio::time::timeout(LOOKUPS_TIMEOUT, futures::future::join_all(sessions))
            .await
            .expect("the lookups finished in time")
            .into_iter()
            .flatten()
            .collect();
    let elapsed = started.elapsed();
    assert_eq!(results.len(), 20);
    assert!(
        elapsed < Duration::from_secs(60),
        "all within the minute: {elapsed:?}"
    );

    let mut found = Vec::new();
    let mut waits = Vec::new();
    for (hash, result) in &results {
        match outcome(result) {
            Ok(answer) => {
                assert_eq!(answer["found"], true, "{answer}");
                assert_eq!(answer["cached"], false);
                assert_eq!(answer["report"]["sha256"], hash.as_str());
                found.push(hash.clone());
            }
            Err((code, wait)) => {
                assert_eq!(code, "RateLimited", "{result}");
                let wait = wait.expect("a retry-after");
                assert!(wait > 0 && wait <= 60, "retry after {wait} s");
                let text = result["content"][0]["text"].as_str().unwrap();
                assert!(
                    text.contains(&format!("Retry after {wait} seconds")),
                    "{text}"
                );
                waits.push(wait);
            }
        }
    }
    let report = || format!("stub calls: {:?}\n{}", stub.calls(), fleet.replicas.logs());
    assert!(stub.call_count() <= 4, "{}", report());
    assert_eq!(found.len(), 4, "{}", report());
    assert_eq!(waits.len(), 16, "{}", report());
    assert_eq!(stub.call_count(), 4);

    // Requests were spread over all three replicas.
    let upstreams = fleet.upstreams();
    assert_eq!(
        upstreams.len(),
        3,
        "{upstreams:?}\n{}",
        fleet.nginx.access_log()
    );

    // The four reports are cache hits now, whichever replica answers.
    let mut client = RawSession::initialize(&url).await.expect("initialize");
    for hash in found.iter().chain(found.iter()).chain(found.iter()) {
        let result = client
            .call_tool("get_file_report", json!({"hash": hash}))
            .await
            .expect("a result");
        let answer = outcome(&result).expect("a cache hit needs no quota");
        assert_eq!(answer["cached"], true, "{answer}");
    }
    assert_eq!(stub.call_count(), 4);

    let logs = fleet.replicas.logs();
    assert!(
        !logs.contains(KEY),
        "the API key appears in a replica's log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_from_the_api_pauses_the_whole_fleet() {
    let stub = Stub::start(&[KEY]).await;
    let fleet = Fleet::start(&stub, "100").await;
    stub.script(Scripted::Error {
        code: "QuotaExceededError",
        retry_after: Some(40),
    });
    let mut client = RawSession::initialize(&fleet.mcp_url())
        .await
        .expect("initialize");
    let first = client
        .call_tool("get_file_report", json!({"hash": EICAR_SHA256}))
        .await
        .expect("a result");
    assert_eq!(
        outcome(&first),
        Err(("QuotaExceededError".to_owned(), Some(40)))
    );
    // Six more lookups, two per replica: none reaches the API.
    for ip in [
        "8.8.8.8",
        "2001:4860:4860::8888",
        "192.0.2.10",
        "192.0.2.11",
        "192.0.2.12",
        "192.0.2.13",
    ] {
        let result = client
            .call_tool("get_ip_report", json!({"ip": ip}))
            .await
            .expect("a result");
        match outcome(&result) {
            Err((code, Some(wait))) => {
                assert_eq!(code, "RateLimited");
                assert!((35..=40).contains(&wait), "{wait}");
            }
            other => panic!("{ip}: expected the fleet back-off, got {other:?}"),
        }
    }
    assert_eq!(stub.call_count(), 1, "{:?}", stub.calls());
    assert_eq!(fleet.upstreams().len(), 3);
}
