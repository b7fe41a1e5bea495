//! Three replicas of the fixture service on one Redis behind a round-robin nginx with no
//! stickiness: every MCP client must see them as one server.

use std::time::Duration;

use mcp_testkit::{
    ChannelListener, LegacySseSession, Nginx, RedisServer, ReplicaSet, SseReader, post_json,
};
use reqwest::StatusCode;
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, ClientConfig, ProtocolVersion},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

struct Fleet {
    redis: RedisServer,
    replicas: ReplicaSet,
    nginx: Nginx,
}

async fn fleet() -> Fleet {
    let redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &url)]).await;
    let nginx = Nginx::start(&replicas.ports());
    Fleet {
        redis,
        replicas,
        nginx,
    }
}

#[tokio::test]
async fn a_streamable_http_session_is_served_by_every_replica() {
    let fleet = fleet().await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", fleet.nginx.url())),
    );
    let client = ClientConfig::default()
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
        .serve(transport)
        .await
        .expect("initialize through nginx");
    for i in 0..60 {
        let result = client
            .call_tool(
                CallToolRequestParams::new("add")
                    .with_arguments(json!({"a": i, "b": 1}).as_object().unwrap().clone()),
            )
            .await
            .unwrap_or_else(|error| panic!("call {i}: {error}\n{}", fleet.replicas.logs()));
        assert_eq!(
            result.structured_content.unwrap()["result"],
            f64::from(i + 1)
        );
    }
    // The session and its user's index are in Redis.
    let keys = fleet.redis.cli(&["--scan", "--pattern", "mcp_user_*"]);
    assert_eq!(keys.lines().count(), 2, "{keys}");
    client.cancel().await.unwrap();
    // The calls really were spread over the three replicas.
    let log = fleet.nginx.access_log();
    for replica in &fleet.replicas.replicas {
        let upstream = format!("127.0.0.1:{}", replica.port());
        let served = log
            .lines()
            .filter(|line| line.starts_with("POST /mcp 200") && line.ends_with(&upstream))
            .count();
        assert!(
            served >= 10,
            "{} served {served} calls:\n{log}",
            replica.name()
        );
    }
}

#[tokio::test]
async fn legacy_sse_posts_reach_the_replica_holding_the_stream() {
    let fleet = fleet().await;
    let response = reqwest::get(format!("{}/sse", fleet.nginx.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut reader = SseReader::new(response);
    let endpoint = reader
        .next_within(Duration::from_secs(5))
        .await
        .expect("endpoint");
    let messages = format!("{}{}", fleet.nginx.url(), endpoint.data);
    let init = post_json(
        &messages,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
    )
    .await;
    assert_eq!(
        init.status(),
        StatusCode::ACCEPTED,
        "{}",
        fleet.replicas.logs()
    );
    assert_eq!(reader.next_message().await["id"], 0);
    post_json(
        &messages,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    for i in 1..=30 {
        let accepted = post_json(
            &messages,
            json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                   "params": {"name": "multiply", "arguments": {"a": i, "b": 2}}}),
        )
        .await;
        assert_eq!(accepted.status(), StatusCode::ACCEPTED, "post {i}");
        let reply = reader.next_message().await;
        assert_eq!(reply["id"], i);
        assert_eq!(
            reply["result"]["structuredContent"]["result"],
            f64::from(i * 2)
        );
    }
}

/// A copy of an HTTP+SSE message sent again under the same ack token (what
/// a replica does when a copy goes unanswered, as when a failing primary
/// took the first one down with its connection) is answered twice and
/// delivered once: the request runs once and its stream gets one answer.
#[tokio::test]
async fn a_resent_sse_message_is_answered_again_and_delivered_once() {
    let fleet = fleet().await;
    let holder = &fleet.replicas.replicas[0];
    let mut session = LegacySseSession::connect(&holder.url())
        .await
        .expect("an HTTP+SSE session held by the first replica");
    let id = session
        .messages_url
        .split("session_id=")
        .nth(1)
        .expect("the session id in the messages URL")
        .to_owned();
    let key = fleet
        .redis
        .cli(&["--scan", "--pattern", &format!("mcp_user_session:*:{id}")]);
    let record: Value =
        serde_json::from_str(&fleet.redis.cli(&["GET", key.trim()])).expect("the session's record");
    // The acks, as the asking replica's channel carries them.
    let acks = ChannelListener::start(&fleet.redis, "mcp_replica:fixture:test-origin").await;

    let envelope = json!({
        "kind": "client_message",
        "origin": "test-origin",
        "session_id": id,
        "caller": {"kind": "anonymous", "issuer": "", "subject": "127.0.0.1|test",
                   "user_hash": record["user_hash"], "is_admin": false},
        "record": record,
        "message": {"jsonrpc": "2.0", "id": 77, "method": "tools/call",
                    "params": {"name": "multiply", "arguments": {"a": 7, "b": 11}}},
        "ack": {"replica": "test-origin", "token": 4242},
    })
    .to_string();
    for copy in ["first", "second"] {
        let receivers = fleet
            .redis
            .cli(&["SPUBLISH", "mcp_replica:fixture:replica-1", &envelope]);
        assert_eq!(receivers.trim(), "1", "the {copy} copy reached the holder");
    }
    // A request through the load balancer after both copies: its answer
    // comes after theirs.
    let accepted = post_json(
        &format!(
            "{}{}",
            fleet.nginx.url(),
            &session.messages_url[holder.url().len()..]
        ),
        json!({"jsonrpc": "2.0", "id": 78, "method": "tools/call",
               "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}),
    )
    .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    // Every answer until a second of quiet after the last request's.
    let mut answers: Vec<Value> = Vec::new();
    let stream = session.stream();
    loop {
        let quiet = if answers.iter().any(|answer| answer["id"] == 78) {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        match tokio::time::timeout(quiet, stream.next_within(Duration::from_secs(20))).await {
            Ok(Some(event)) => {
                answers.push(serde_json::from_str(&event.data).expect("a JSON-RPC message"));
            }
            Ok(None) | Err(_) => break,
        }
    }
    let resent: Vec<&Value> = answers.iter().filter(|answer| answer["id"] == 77).collect();
    assert_eq!(
        resent.len(),
        1,
        "one answer to the resent request: {answers:?}"
    );
    assert_eq!(resent[0]["result"]["structuredContent"]["result"], 77.0);
    assert!(
        answers.iter().any(|answer| answer["id"] == 78),
        "{answers:?}"
    );

    // Both copies were acknowledged as held: the second from what the
    // holder remembered of the first.
    let acked = acks.json_messages(2, Duration::from_secs(5));
    assert_eq!(
        acked,
        vec![json!({"kind": "ack", "token": 4242, "held": true}); 2],
        "{}",
        fleet.replicas.logs()
    );
}

/// Initializes a session at `base` (a replica or nginx) and returns its id.
async fn initialize(base: &str) -> String {
    mcp_testkit::RawSession::initialize(&format!("{base}/mcp"))
        .await
        .expect("initialize")
        .id
}

/// `GET` with `Last-Event-ID` on `base`, within `session`.
async fn resume_at(base: &str, session: &str, last_event_id: &str) -> reqwest::Response {
    mcp_request(reqwest::Method::GET, base, session)
        .header("accept", "text/event-stream")
        .header("last-event-id", last_event_id)
        .send()
        .await
        .unwrap()
}

fn mcp_request(method: reqwest::Method, base: &str, session: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
}

#[tokio::test]
async fn delete_ends_the_session_on_every_replica_at_once() {
    let fleet = fleet().await;
    let [one, two, three] = [0, 1, 2].map(|i| fleet.replicas.replicas[i].url());
    let session = initialize(&fleet.nginx.url()).await;
    // Standalone GET streams held on two replicas.
    let mut streams = Vec::new();
    for base in [&one, &two] {
        let response = mcp_request(reqwest::Method::GET, base, &session)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET on {base}");
        streams.push(SseReader::new(response));
    }
    let deleted = mcp_request(reqwest::Method::DELETE, &three, &session)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    // Both streams end at once, not after an idle timeout.
    for stream in &mut streams {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            assert!(tokio::time::Instant::now() < deadline, "stream still open");
            match stream.next_within(Duration::from_secs(3)).await {
                None => break,
                Some(_) => continue,
            }
        }
    }
    for base in [&one, &two, &three] {
        let response = mcp_request(reqwest::Method::POST, base, &session)
            .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "on {base}");
    }
}

#[tokio::test]
async fn a_response_stream_resumes_on_another_replica() {
    let fleet = fleet().await;
    let one = fleet.replicas.replicas[0].url();
    let two = fleet.replicas.replicas[1].url();
    let session = initialize(&one).await;
    let response = mcp_request(reqwest::Method::POST, &one, &session)
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "add", "arguments": {"a": 40, "b": 2}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut reader = SseReader::new(response);
    // The priming event (an id, no data) comes first; the client "loses"
    // the connection right after it.
    let priming = reader
        .next_within(Duration::from_secs(5))
        .await
        .expect("priming event");
    let last_event_id = priming.id.clone().expect("priming event has an id");
    assert!(priming.data.is_empty(), "{priming:?}");
    drop(reader);

    // Reconnect to ANOTHER replica with Last-Event-ID: the response replays.
    let resumed = resume_at(&two, &session, &last_event_id).await;
    assert_eq!(resumed.status(), StatusCode::OK);
    let mut reader = SseReader::new(resumed);
    let message = reader.next_message().await;
    assert_eq!(message["id"], 7, "{message}\n{}", fleet.replicas.logs());
    assert_eq!(message["result"]["structuredContent"]["result"], 42.0);
}

#[tokio::test]
async fn a_foreign_last_event_id_replays_nothing() {
    let fleet = fleet().await;
    let one = fleet.replicas.replicas[0].url();
    let mine = initialize(&one).await;
    let other = initialize(&one).await;
    // A standalone-stream event id of another session is refused.
    let response = resume_at(&one, &mine, &format!("{other}:common#x-0")).await;
    let body = tokio::time::timeout(Duration::from_secs(5), response.text())
        .await
        .expect("the stream ends")
        .unwrap();
    assert!(!body.contains("jsonrpc"), "{body}");
}

/// The keys of request response streams in Redis.
fn stream_keys(redis: &RedisServer) -> String {
    redis.cli(&["--scan", "--pattern", "mcp_stream_*"])
}

/// The whole body of a resumption: its JSON-RPC messages.
async fn replayed(response: reqwest::Response) -> Vec<Value> {
    let body = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the resumed stream ends")
        .unwrap();
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}

/// Calls `add` and reads its whole response stream, as a client whose
/// answer is delivered; returns the priming event's id and the response.
async fn answered_call(session: &mut mcp_testkit::RawSession, a: i64, b: i64) -> (String, Value) {
    let (call_id, mut answer) = session
        .open_request(
            "tools/call",
            json!({"name": "add", "arguments": {"a": a, "b": b}}),
        )
        .await
        .expect("a call");
    let priming = answer
        .next_within(Duration::from_secs(5))
        .await
        .expect("priming event");
    let result = answer.next_message().await;
    assert_eq!(result["id"], call_id);
    assert!(answer.next_within(Duration::from_secs(5)).await.is_none());
    (priming.id.expect("an id"), result)
}

#[tokio::test]
async fn a_delivered_answer_is_replayed_from_memory_and_flushed_for_another_replica() {
    let fleet = fleet().await;
    let [one, two, three] = [0, 1, 2].map(|i| fleet.replicas.replicas[i].url());
    let mut session = mcp_testkit::RawSession::initialize(&format!("{one}/mcp"))
        .await
        .expect("initialize");
    let other = initialize(&one).await;
    let (priming_id, result) = answered_call(&mut session, 40, 2).await;
    // Delivered: nothing of it was written to Redis.
    assert_eq!(stream_keys(&fleet.redis), "");

    // Neither another session nor the stateless path gets it, on any
    // replica, and asking writes nothing to Redis.
    for base in [&one, &two] {
        let foreign = resume_at(base, &other, &priming_id).await;
        assert!(
            replayed(foreign).await.is_empty(),
            "another session on {base}"
        );
        let stateless = reqwest::Client::new()
            .get(format!("{base}/mcp"))
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("last-event-id", &priming_id)
            .send()
            .await
            .unwrap();
        assert!(replayed(stateless).await.is_empty(), "stateless on {base}");
    }
    assert_eq!(stream_keys(&fleet.redis), "");

    // Its own session resumes it on replica 1, which holds it: from memory.
    let here = resume_at(&one, &session.id, &priming_id).await;
    assert_eq!(replayed(here).await, std::slice::from_ref(&result));
    assert_eq!(stream_keys(&fleet.redis), "");
    let scrape = mcp_testkit::Scrape::fetch(&one).await;
    assert!(scrape.value("mcp_stream_resumptions_total", &[("from", "memory")]) >= 1.0);
    assert_eq!(
        scrape.value("mcp_event_flushes_total", &[("reason", "requested")]),
        0.0
    );

    // On replica 3 it asks replica 1, which flushes it: the same answer.
    let elsewhere = resume_at(&three, &session.id, &priming_id).await;
    assert_eq!(replayed(elsewhere).await, [result]);
    let scrape = mcp_testkit::Scrape::fetch(&one).await;
    assert_eq!(
        scrape.value("mcp_event_flushes_total", &[("reason", "requested")]),
        1.0
    );
    let stream = priming_id.rsplit_once('#').unwrap().0;
    let listed = stream_keys(&fleet.redis);
    let mut keys: Vec<&str> = listed.lines().collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            format!("mcp_stream_events:{stream}"),
            format!("mcp_stream_session:{stream}")
        ]
    );
    let resumed_from_redis = mcp_testkit::Scrape::fetch(&three)
        .await
        .value("mcp_stream_resumptions_total", &[("from", "redis")]);
    assert_eq!(resumed_from_redis, 1.0);
}

#[tokio::test]
async fn without_a_buffer_every_answer_is_written_to_redis_and_resumes_anywhere() {
    let redis = RedisServer::start();
    let replicas = ReplicaSet::start(
        BINARY,
        2,
        &[("REDIS_URL", &redis.url()), ("EVENT_BUFFER_BYTES", "0")],
    )
    .await;
    let [one, two] = [0, 1].map(|i| replicas.replicas[i].url());
    let mut session = mcp_testkit::RawSession::initialize(&format!("{one}/mcp"))
        .await
        .expect("initialize");
    let (priming_id, result) = answered_call(&mut session, 1, 2).await;
    // Written through as it was sent: the stream and its binding.
    let stream = priming_id.rsplit_once('#').unwrap().0;
    let mut written = String::new();
    for _ in 0..100 {
        written = stream_keys(&redis);
        if written.lines().count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        written.contains(&format!("mcp_stream_events:{stream}"))
            && written.contains(&format!("mcp_stream_session:{stream}")),
        "{written}"
    );
    let elsewhere = resume_at(&two, &session.id, &priming_id).await;
    assert_eq!(replayed(elsewhere).await, [result]);
    let scrape = mcp_testkit::Scrape::fetch(&one).await;
    assert_eq!(scrape.value("mcp_event_flushes_total", &[]), 0.0);
    assert!(scrape.value("mcp_redis_round_trips_total", &[("op", "events_write")]) >= 1.0);
}

/// The calls of the session counted on replica `base`: cache hits, and
/// Redis round trips spent on session lookups.
async fn lookups(base: &str) -> (f64, f64) {
    let scrape = mcp_testkit::Scrape::fetch(base).await;
    (
        scrape.value("mcp_session_cache_total", &[("result", "hit")]),
        scrape.value("mcp_redis_round_trips_total", &[("op", "access")]),
    )
}

#[tokio::test]
async fn every_replica_serves_a_session_from_its_cache_and_drops_it_when_deleted_elsewhere() {
    let redis = RedisServer::start();
    // A refresh interval longer than the test: every lookup after the first
    // on a replica must be a cache hit.
    let replicas = ReplicaSet::start(
        BINARY,
        3,
        &[
            ("REDIS_URL", &redis.url()),
            ("SESSION_CACHE_SECONDS", "300"),
        ],
    )
    .await;
    let bases = [0, 1, 2].map(|i| replicas.replicas[i].url());
    let mut session = mcp_testkit::RawSession::initialize(&format!("{}/mcp", bases[0]))
        .await
        .expect("initialize");
    // Each replica reads the record once (the first call there), then
    // answers from its cache: no more Redis lookups, the same answers.
    for base in &bases {
        session.set_url(&format!("{base}/mcp"));
        session
            .call_tool("add", json!({"a": 1, "b": 1}))
            .await
            .unwrap_or_else(|error| panic!("first call on {base}: {error:?}"));
        let (hits, trips) = lookups(base).await;
        for i in 0..5 {
            let result = session
                .call_tool("add", json!({"a": i, "b": 10}))
                .await
                .unwrap_or_else(|error| panic!("call {i} on {base}: {error:?}"));
            assert_eq!(result["structuredContent"]["result"], f64::from(i + 10));
        }
        let (hits_after, trips_after) = lookups(base).await;
        assert_eq!(hits_after - hits, 5.0, "cache hits on {base}");
        assert_eq!(trips_after, trips, "session lookups in Redis on {base}");
    }
    // Deleted through replica 3: when the DELETE is answered, replicas 1
    // and 2 have dropped their cached copy (they acknowledged it), so the
    // very next request there is refused, with no wait.
    session.set_url(&format!("{}/mcp", bases[2]));
    assert_eq!(session.delete().await, Some(204));
    for base in &bases {
        let response = mcp_request(reqwest::Method::POST, base, &session.id)
            .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                          "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "on {base}");
    }
    let logs = replicas.logs();
    assert!(!logs.contains("not every replica acknowledged"), "{logs}");
}

/// On a Redis Cluster a `PUBLISH` reply counts only the subscribers of the
/// node that took it, while each replica subscribes on the node of its own
/// client id: the replica answering a `DELETE` must still wait for every
/// other replica to drop what it holds of the session. One replica is
/// paused (its connections stay open, it acks nothing), so each deletion
/// shows whom its replica waited for: two others, whatever the nodes.
#[tokio::test]
async fn on_a_cluster_a_deletion_waits_for_every_replica_whatever_its_node() {
    let cluster = mcp_testkit::RedisCluster::start();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &cluster.url())]).await;
    let bases = [0, 1].map(|i| replicas.replicas[i].url());
    replicas.replicas[2].pause();
    const ROUNDS: usize = 6;
    for round in 0..ROUNDS {
        let base = &bases[round % 2];
        let session = mcp_testkit::RawSession::initialize(&format!("{base}/mcp"))
            .await
            .expect("initialize");
        assert_eq!(session.delete().await, Some(204), "round {round}");
    }
    replicas.replicas[2].resume();
    // Each `DELETE` waited for two acks and got one (the paused replica's
    // is missing), and said so.
    let waits: Vec<String> = [0, 1]
        .iter()
        .flat_map(|&i| {
            replicas.replicas[i]
                .log()
                .lines()
                .filter(|line| line.contains("not every replica acknowledged"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(waits.len(), ROUNDS, "{waits:#?}");
    for wait in &waits {
        assert!(
            wait.contains("expected=2") || wait.contains("\"expected\":2"),
            "a deletion did not wait for both other replicas: {wait}"
        );
    }
}
