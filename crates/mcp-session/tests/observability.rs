//! Observability of a fleet: three replicas of the fixture service on one Redis behind
//! round-robin nginx. Each replica's `/metrics` is scraped before and after
//! a run of both transports, and the counters must have moved by what the
//! run did; every JSON log line names its replica, and every line of a
//! request its request id.

use std::collections::BTreeSet;

use mcp_testkit::{LegacySseSession, Nginx, RawSession, RedisServer, ReplicaSet, Scrape};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

/// Streamable HTTP sessions of the run, and calls in each.
const SESSIONS: usize = 3;
const CALLS: usize = 6;

struct Fleet {
    _redis: RedisServer,
    replicas: ReplicaSet,
    nginx: Nginx,
}

async fn fleet(log_format: &str) -> Fleet {
    let redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(
        BINARY,
        3,
        &[("REDIS_URL", &url), ("LOG_FORMAT", log_format)],
    )
    .await;
    let nginx = Nginx::start(&replicas.ports());
    Fleet {
        _redis: redis,
        replicas,
        nginx,
    }
}

async fn scrape_all(fleet: &Fleet) -> Vec<Scrape> {
    let mut scrapes = Vec::new();
    for replica in &fleet.replicas.replicas {
        scrapes.push(Scrape::fetch(&replica.url()).await);
    }
    scrapes
}

/// How much `name{labels}` grew over the fleet between two scrapes.
fn delta(before: &[Scrape], after: &[Scrape], name: &str, labels: &[(&str, &str)]) -> f64 {
    let total = |scrapes: &[Scrape]| -> f64 {
        scrapes
            .iter()
            .map(|scrape| scrape.value(name, labels))
            .sum()
    };
    total(after) - total(before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_a_fleet_run() {
    let fleet = fleet("text").await;
    let base = fleet.nginx.url();
    let mcp = format!("{base}/mcp");
    let before = scrape_all(&fleet).await;

    // Streamable HTTP, one request at a time: round robin takes every
    // session to every replica, and each restores it at its first request
    // (the replica that answered `initialize` ran no worker for it).
    for _ in 0..SESSIONS {
        let mut session = RawSession::initialize(&mcp).await.expect("initialize");
        for i in 0..CALLS {
            let result = session
                .call_tool("add", json!({"a": i, "b": 1}))
                .await
                .expect("call");
            assert_eq!(result["structuredContent"]["result"], (i + 1) as f64);
        }
    }
    // An unknown session is a 404 on either transport.
    let unknown = reqwest::Client::new()
        .post(&mcp)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "0123456789abcdef")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let unknown = reqwest::Client::new()
        .post(format!("{base}/messages?session_id=feedface"))
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);

    // HTTP+SSE: the stream is held by one replica; POSTs reaching the
    // others cross the fleet bus.
    let mut legacy = LegacySseSession::connect(&base).await.expect("connect");
    for i in 1..=CALLS {
        let result = legacy
            .call_tool("multiply", json!({"a": i, "b": 2}))
            .await
            .expect("a legacy call");
        assert_eq!(result["structuredContent"]["result"], (i * 2) as f64);
    }

    let after = scrape_all(&fleet).await;
    let logs = fleet.replicas.logs();
    let requests = "mcp_http_requests_total";
    let posts = |status| [("method", "POST"), ("route", "/mcp"), ("status", status)];
    // initialize and every call: 200; each `initialized` notification: 202.
    assert_eq!(
        delta(&before, &after, requests, &posts("200")),
        (SESSIONS * (1 + CALLS)) as f64,
        "{logs}"
    );
    assert_eq!(
        delta(&before, &after, requests, &posts("202")),
        SESSIONS as f64
    );
    assert_eq!(
        delta(
            &before,
            &after,
            requests,
            &[("route", "/mcp"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "mcp_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/mcp")]
        ),
        (SESSIONS * (2 + CALLS) + 1) as f64
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "mcp_sessions_created_total",
            &[("transport", "streamable_http")]
        ),
        SESSIONS as f64
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "mcp_sessions_created_total",
            &[("transport", "sse")]
        ),
        1.0
    );
    assert_eq!(
        delta(&before, &after, "mcp_sessions_restored_total", &[]),
        (3 * SESSIONS) as f64,
        "{logs}"
    );
    for transport in ["streamable_http", "sse"] {
        assert_eq!(
            delta(
                &before,
                &after,
                "mcp_session_not_found_total",
                &[("transport", transport)]
            ),
            1.0,
            "{transport}"
        );
    }
    // The replica holding the SSE stream (the one live SSE session), and
    // what the others forwarded to it.
    let holders: Vec<_> = fleet
        .replicas
        .replicas
        .iter()
        .zip(&after)
        .filter(|(_, scrape)| scrape.value("mcp_sessions_live", &[("transport", "sse")]) == 1.0)
        .map(|(replica, _)| format!("127.0.0.1:{}", replica.port()))
        .collect();
    assert_eq!(holders.len(), 1, "SSE stream holders: {holders:?}");
    let holder = &holders[0];
    let access = fleet.nginx.access_log();
    let forwarded = access
        .lines()
        .filter(|line| line.starts_with("POST /messages 202") && !line.ends_with(holder.as_str()))
        .count();
    assert!(forwarded > 0, "{access}");
    assert_eq!(
        delta(
            &before,
            &after,
            "mcp_fleet_deliveries_total",
            &[("kind", "sse_message")]
        ),
        forwarded as f64
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "mcp_redis_round_trips_total",
            &[("op", "spublish")]
        ),
        forwarded as f64
    );
    assert!(
        delta(
            &before,
            &after,
            "mcp_redis_round_trips_total",
            &[("op", "access")]
        ) > 0.0
    );
    assert_eq!(delta(&before, &after, "mcp_store_errors_total", &[]), 0.0);
    // Every tool call's answer reached its client: none of their SSE events
    // was written to Redis or read back; each replica holds the response
    // streams it produced in its memory, for a resumption that did not come.
    for op in [
        "events_write",
        "events_read",
        "stream_session",
        "flush_request",
    ] {
        assert_eq!(
            delta(
                &before,
                &after,
                "mcp_redis_round_trips_total",
                &[("op", op)]
            ),
            0.0,
            "{op}"
        );
    }
    assert_eq!(delta(&before, &after, "mcp_event_flushes_total", &[]), 0.0);
    let buffered: f64 = after
        .iter()
        .map(|scrape| scrape.value("mcp_event_buffer_streams", &[]))
        .sum();
    // One per answered request stream, plus the HTTP+SSE session's event
    // stream (kept for a reconnection with Last-Event-ID).
    assert_eq!(buffered, (SESSIONS * CALLS + 1) as f64);
    assert!(
        after
            .iter()
            .map(|scrape| scrape.value("mcp_event_buffer_bytes", &[]))
            .sum::<f64>()
            > 0.0
    );
    // Every replica holds a worker of each Streamable HTTP session.
    for (replica, scrape) in fleet.replicas.replicas.iter().zip(&after) {
        assert_eq!(
            scrape.value("mcp_sessions_live", &[("transport", "streamable_http")]),
            SESSIONS as f64
        );
        assert_eq!(
            scrape.value(
                "mcp_replica_info",
                &[("service", "fixture"), ("replica", replica.name())]
            ),
            1.0
        );
    }
    // Bounded labels: route templates only, never ids.
    let routes: BTreeSet<&str> = after
        .iter()
        .flat_map(|scrape| &scrape.samples)
        .filter_map(|sample| sample.labels.get("route").map(String::as_str))
        .collect();
    for route in &routes {
        assert!(
            [
                "/mcp",
                "/sse",
                "/messages",
                "/metrics",
                "/readyz",
                "/healthz"
            ]
            .contains(route),
            "route label {route}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_name_the_replica_and_the_request() {
    let fleet = fleet("json").await;
    let mcp = format!("{}/mcp", fleet.nginx.url());
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let client = reqwest::Client::new();
    let send = |headers: &[(&str, &str)]| {
        let mut request = client
            .post(&mcp)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    // The client's id comes back; so does an ALB trace id; else one is made.
    let mine = send(&[("x-request-id", "obs-req-0001")]).await.unwrap();
    assert_eq!(mine.headers()["x-request-id"], "obs-req-0001");
    let trace = "Root=1-67891233-abcdef012345678912345678";
    let alb = send(&[("x-amzn-trace-id", trace)]).await.unwrap();
    assert_eq!(alb.headers()["x-request-id"], trace);
    let made = send(&[]).await.unwrap();
    let made_id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!made_id.is_empty());

    // health_check names the replica that answered.
    let mut session = RawSession::initialize(&mcp).await.expect("initialize");
    let mut answered = BTreeSet::new();
    for _ in 0..3 {
        let health = session.call_tool("health_check", json!({})).await.unwrap();
        answered.insert(
            health["structuredContent"]["replica"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let names: BTreeSet<String> = fleet
        .replicas
        .replicas
        .iter()
        .map(|replica| replica.name().to_owned())
        .collect();
    assert_eq!(answered, names);

    let mut seen = Vec::new();
    for replica in &fleet.replicas.replicas {
        let log = replica.log();
        for line in log.lines().filter(|line| !line.trim().is_empty()) {
            let entry: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}"));
            assert_eq!(entry["replica"], replica.name(), "{line}");
            assert!(entry["timestamp"].is_string() && entry["level"].is_string());
            if entry["message"] == "request" {
                let id = entry["request_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a request line without request_id: {line}"));
                seen.push(id.to_owned());
            }
        }
    }
    for id in ["obs-req-0001", trace, made_id.as_str()] {
        assert_eq!(
            seen.iter().filter(|seen| seen.as_str() == id).count(),
            1,
            "request {id} in the logs: {seen:?}"
        );
    }
}

/// Text logs written to a file (not a terminal) carry no ANSI colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_log_lines_off_a_terminal_carry_no_colours() {
    let replicas = ReplicaSet::start(BINARY, 1, &[("LOG_FORMAT", "text")]).await;
    let replica = &replicas.replicas[0];
    let mut session = RawSession::initialize(&format!("{}/mcp", replica.url()))
        .await
        .expect("initialize");
    session
        .call_tool("add", json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    let log = replica.log();
    assert!(log.contains("request"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "an escape code in the log: {log:?}"
    );
}

/// A session id no server issues (60 KB) is refused before any lookup, and
/// the log says how long it was instead of repeating it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_session_id_is_refused_and_not_logged() {
    let replicas = ReplicaSet::start(BINARY, 1, &[("LOG_FORMAT", "json")]).await;
    let replica = &replicas.replicas[0];
    let huge = "a".repeat(60_000);
    let client = reqwest::Client::new();
    let mcp = client
        .post(format!("{}/mcp", replica.url()))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", &huge)
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 400);
    let text = mcp.text().await.unwrap();
    assert!(text.contains("60000 bytes"), "{text}");
    let messages = client
        .post(format!("{}/messages?session_id={huge}", replica.url()))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(messages.status(), 400);
    // A control character is no session id either.
    let control = client
        .get(format!("{}/mcp", replica.url()))
        .header("mcp-session-id", "abc\tdef")
        .send()
        .await
        .unwrap();
    assert_eq!(control.status(), 400);

    let log = replica.log();
    assert!(!log.contains(&"a".repeat(200)), "the id is in the log");
    assert!(log.len() < 20_000, "{} bytes of log", log.len());
    assert!(log.contains("\"session_id_bytes\":60000"), "{log}");
}
