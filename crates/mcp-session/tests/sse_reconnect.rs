//! HTTP+SSE sessions outlive their stream and their replica: a client that
//! reconnects `GET /sse` with `Last-Event-ID` (as an `EventSource` does), to
//! any replica, gets its same session back (the same `endpoint`), the
//! messages it missed exactly once, and goes on; after a replica is killed
//! or stopped too. A `Last-Event-ID` of an ended or foreign session gets
//! `404`, the clean end.

use std::time::Duration;

use mcp_testkit::{Nginx, RedisServer, ReplicaSet, SseReader};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

/// A raw HTTP+SSE client: its stream, the ids it saw, and where it posts.
struct Client {
    http: reqwest::Client,
    stream: SseReader,
    endpoint: String,
    last_event_id: Option<String>,
    post_base: String,
}

impl Client {
    /// Opens `<stream_base>/sse` (with `Last-Event-ID` when given) and reads
    /// its `endpoint` event.
    async fn open(
        stream_base: &str,
        post_base: &str,
        last_event_id: Option<&str>,
    ) -> Result<Self, StatusCode> {
        let http = reqwest::Client::new();
        let mut request = http
            .get(format!("{stream_base}/sse"))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("GET /sse");
        if response.status() != StatusCode::OK {
            return Err(response.status());
        }
        let mut stream = SseReader::new(response);
        let endpoint = loop {
            let event = stream
                .next_within(Duration::from_secs(10))
                .await
                .expect("the endpoint event");
            if event.event.as_deref() == Some("endpoint") {
                break event;
            }
        };
        Ok(Self {
            http,
            stream,
            endpoint: endpoint.data,
            last_event_id: endpoint.id.or(last_event_id.map(str::to_owned)),
            post_base: post_base.to_owned(),
        })
    }

    async fn post(&self, message: Value) -> StatusCode {
        self.http
            .post(format!("{}{}", self.post_base, self.endpoint))
            .json(&message)
            .send()
            .await
            .expect("POST /messages")
            .status()
    }

    /// The next message on the stream, remembering its id.
    async fn next_message(&mut self) -> Value {
        loop {
            let event = self
                .stream
                .next_within(Duration::from_secs(10))
                .await
                .expect("the stream is open");
            if event.event.as_deref() == Some("message") {
                if let Some(id) = event.id {
                    self.last_event_id = Some(id);
                }
                return serde_json::from_str(&event.data).expect("JSON");
            }
        }
    }

    async fn call_add(&mut self, id: u64, a: u64) -> Value {
        let status = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": "add", "arguments": {"a": a, "b": 1}}}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let answer = self.next_message().await;
        assert_eq!(answer["id"], id, "{answer}");
        answer
    }
}

async fn handshake(client: &mut Client) {
    let status = client
        .post(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                     "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                                "clientInfo": {"name": "reconnecting", "version": "1"}}}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let answer = client.next_message().await;
    assert_eq!(answer["id"], 0, "{answer}");
    let status = client
        .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_session_comes_back_on_any_replica_with_what_it_missed() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut replicas = ReplicaSet::start(
        BINARY,
        3,
        &[("REDIS_URL", &url), ("SHUTDOWN_GRACE_SECONDS", "5")],
    )
    .await;
    let nginx = Nginx::start(&replicas.ports());
    let urls: Vec<String> = replicas.replicas.iter().map(|r| r.url()).collect();

    // A session on replica 1, its messages posted through nginx.
    let mut client = Client::open(&urls[0], &nginx.url(), None).await.unwrap();
    let endpoint = client.endpoint.clone();
    handshake(&mut client).await;
    let mut ids = Vec::new();
    for call in 1..=4 {
        let answer = client.call_add(call, call).await;
        assert_eq!(
            answer["result"]["structuredContent"]["result"],
            (call + 1) as f64
        );
        ids.push(
            client
                .last_event_id
                .clone()
                .expect("message events carry ids"),
        );
    }

    // The client "missed" the last two answers: it reconnects to replica 2
    // with the id of the second. Replica 1 lets the session go; replica 2
    // replays answers 3 and 4, once each, then serves it.
    drop(client);
    let mut client = Client::open(&urls[1], &nginx.url(), Some(&ids[1]))
        .await
        .unwrap();
    assert_eq!(
        client.endpoint, endpoint,
        "the same session, the same endpoint"
    );
    let third = client.next_message().await;
    let fourth = client.next_message().await;
    assert_eq!(
        (third["id"].clone(), fourth["id"].clone()),
        (json!(3), json!(4))
    );
    assert_eq!(client.last_event_id.as_deref(), Some(ids[3].as_str()));
    for call in 5..=8 {
        let answer = client.call_add(call, call).await;
        assert_eq!(
            answer["result"]["structuredContent"]["result"],
            (call + 1) as f64
        );
    }

    // Replica 2 is killed: the client reconnects to replica 3 and goes on
    // (nothing was missed: nothing is replayed).
    replicas.replicas[1].kill();
    let last = client.last_event_id.clone().unwrap();
    drop(client);
    let mut client = Client::open(&urls[2], &nginx.url(), Some(&last))
        .await
        .unwrap();
    assert_eq!(client.endpoint, endpoint);
    for call in 9..=12 {
        let answer = client.call_add(call, call).await;
        assert_eq!(
            answer["result"]["structuredContent"]["result"],
            (call + 1) as f64
        );
    }

    // Replica 3 stops gracefully (a scale-in): its stream ends, the client
    // reconnects to replica 1, the session goes on.
    replicas.replicas[2].send_sigterm();
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while client
            .stream
            .next_within(Duration::from_secs(15))
            .await
            .is_some()
        {}
    })
    .await;
    assert!(ended.is_ok(), "the stream did not end at the hand-off");
    let last = client.last_event_id.clone().unwrap();
    let mut client = Client::open(&urls[0], &urls[0], Some(&last)).await.unwrap();
    assert_eq!(client.endpoint, endpoint);
    for call in 13..=16 {
        let answer = client.call_add(call, call).await;
        assert_eq!(
            answer["result"]["structuredContent"]["result"],
            (call + 1) as f64
        );
    }

    // Another user's Last-Event-ID, and one of a session that never was,
    // get 404: the clean end an EventSource stops at.
    let foreign = reqwest::Client::new()
        .get(format!("{}/sse", urls[0]))
        .header("accept", "text/event-stream")
        .header("last-event-id", &last)
        // Anonymous callers are told apart by address and User-Agent.
        .header("user-agent", "another-user/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let unknown = Client::open(&urls[0], &urls[0], Some("0123456789abcdef:sse#start")).await;
    assert_eq!(unknown.err(), Some(StatusCode::NOT_FOUND));

    let logs = replicas.logs();
    assert!(logs.contains("sse session reconnected"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

/// Red-team finding 4: the HTTP+SSE sessions of a killed replica whose
/// clients do not come back are ended by the fleet within seconds (here
/// `SSE_RECONNECT_SECONDS=1`), not left in Redis for the session TTL; the
/// one whose client reconnected in time lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_abandoned_sse_sessions_end_within_seconds() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut replicas = ReplicaSet::start(
        BINARY,
        3,
        &[("REDIS_URL", &url), ("SSE_RECONNECT_SECONDS", "1")],
    )
    .await;
    let urls: Vec<String> = replicas.replicas.iter().map(|r| r.url()).collect();
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut client = Client::open(&urls[0], &urls[1], None).await.unwrap();
        handshake(&mut client).await;
        client.call_add(1, 1).await;
        clients.push(client);
    }
    let sessions = |redis: &RedisServer| {
        redis
            .cli(&["--scan", "--pattern", "mcp_user_session:*"])
            .lines()
            .filter(|line| !line.is_empty())
            .count()
    };
    assert_eq!(sessions(&redis), 5);

    replicas.replicas[0].kill();
    // One client comes back at once, on replica 2.
    let back = clients.pop().unwrap();
    let last = back.last_event_id.clone().unwrap();
    let mut back = Client::open(&urls[1], &urls[2], Some(&last)).await.unwrap();
    let started = std::time::Instant::now();
    while sessions(&redis) != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} sessions left:\n{}",
            sessions(&redis),
            replicas.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "the killed replica's abandoned sessions ended {:?} after the kill",
        started.elapsed()
    );
    back.call_add(2, 2).await;
    assert!(
        replicas
            .logs()
            .contains("ended the HTTP+SSE sessions a gone replica left behind")
    );
}

/// A client whose `EventSource` reconnects without `Last-Event-ID` (the
/// official TypeScript SDK's does) after its stream's replica was killed
/// gets a new session, which continues the lost one at its first message.
/// Messages it still posts to the lost session's endpoint (sent before it
/// read the new `endpoint` event, or in flight meanwhile) reach the new
/// session too, instead of `404`; another user's do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_a_session_lost_without_last_event_id_reach_its_continuation() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut replicas = ReplicaSet::start(BINARY, 2, &[("REDIS_URL", &url)]).await;
    let urls: Vec<String> = replicas.replicas.iter().map(|r| r.url()).collect();

    let mut client = Client::open(&urls[0], &urls[1], None).await.unwrap();
    handshake(&mut client).await;
    client.call_add(1, 1).await;
    let lost = client.endpoint.clone();

    replicas.replicas[0].kill();
    drop(client);
    let mut client = Client::open(&urls[1], &urls[1], None).await.unwrap();
    let fresh = client.endpoint.clone();
    assert_ne!(fresh, lost, "no Last-Event-ID: a new session");

    // The first message to the lost endpoint pairs the two sessions; the
    // next ones go to the new session as well; the new endpoint works.
    client.endpoint = lost.clone();
    for call in 2..=4 {
        let answer = client.call_add(call, call).await;
        assert_eq!(
            answer["result"]["structuredContent"]["result"],
            (call + 1) as f64,
            "{answer}"
        );
    }
    client.endpoint = fresh;
    let answer = client.call_add(5, 5).await;
    assert_eq!(answer["result"]["structuredContent"]["result"], 6.0);

    // The lost session's id means nothing to another user.
    let foreign = reqwest::Client::new()
        .post(format!("{}{lost}", urls[1]))
        .header("user-agent", "another-user/1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);

    let logs = replicas.logs();
    assert!(logs.contains("goes to the session continuing it"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}
