//! Resuming a tool call's response stream on another replica (MCP
//! 2025-06-18, Transports §Resumability and Redelivery) now that its events
//! live in the memory of the replica that produced them: the client's
//! connection breaks mid-stream, or that replica shuts down gracefully while
//! the call runs. Three everything processes on one real Redis; each
//! request goes to a chosen replica.
//!
//! The tool call is `test_sampling`: it asks the client (the test) for a
//! message on its own response stream and runs until the test answers, so
//! the stream is cut, resumed and finished exactly where the test says.

use std::time::Duration;

use mcp_testkit::{ChannelListener, RawSession, RedisServer, ReplicaSet, Scrape, SseReader};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_everything");

fn mcp_url(replicas: &ReplicaSet, index: usize) -> String {
    format!("{}/mcp", replicas.replicas[index].url())
}

/// A session on `url` whose client can answer sampling requests.
async fn sampling_session(url: &str) -> RawSession {
    RawSession::initialize_declaring(reqwest::Client::new(), url, json!({"sampling": {}}))
        .await
        .expect("initialize with the sampling capability")
}

/// A running `test_sampling` call: its request id, its response stream,
/// the stream's first (priming) event id, and the sampling request it sent.
struct Running {
    call_id: u64,
    stream: SseReader,
    priming_id: String,
    sampling: Value,
}

async fn start_sampling(session: &mut RawSession) -> Running {
    let (call_id, mut stream) = session
        .open_request(
            "tools/call",
            json!({"name": "test_sampling", "arguments": {"prompt": "Say hello"}}),
        )
        .await
        .expect("the tool call starts");
    let priming = stream
        .next_within(Duration::from_secs(10))
        .await
        .expect("the priming event");
    assert!(priming.data.is_empty(), "{priming:?}");
    let priming_id = priming.id.expect("the priming event has an id");
    let sampling = stream.next_message().await;
    assert_eq!(sampling["method"], "sampling/createMessage", "{sampling}");
    Running {
        call_id,
        stream,
        priming_id,
        sampling,
    }
}

/// The client's answer to `sampling`, POSTed by `session` (to its URL).
async fn answer(session: &mut RawSession, sampling: &Value) {
    session
        .notify(json!({"jsonrpc": "2.0", "id": sampling["id"], "result": {
            "role": "assistant", "model": "test-model", "stopReason": "endTurn",
            "content": {"type": "text", "text": "hello from the client"}}}))
        .await
        .expect("the sampling answer is accepted");
}

/// Checks that `message` is the answer of call `call_id`.
fn assert_answer(message: &Value, call_id: u64) {
    assert_eq!(message["id"], call_id, "{message}");
    let text = message["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(text, "LLM response: hello from the client", "{message}");
}

/// The stream id of an event id (`<stream>#<nonce>-<sequence>`).
fn stream_of(event_id: &str) -> &str {
    event_id.rsplit_once('#').expect("one of our event ids").0
}

/// The value of `name{labels}` on `base`, once it reaches `value` (at most
/// 10 s; the last value seen otherwise).
async fn metric_reaching(base: &str, name: &str, labels: &[(&str, &str)], value: f64) -> f64 {
    let mut seen = 0.0;
    for _ in 0..200 {
        seen = Scrape::fetch(base).await.value(name, labels);
        if seen >= value {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// The keys of request response streams in Redis.
fn stream_keys(redis: &RedisServer) -> Vec<String> {
    let mut keys: Vec<String> = redis
        .cli(&["--scan", "--pattern", "mcp_stream_*"])
        .lines()
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_cut_mid_stream_resumes_on_another_replica() {
    let redis = RedisServer::start();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &redis.url())]).await;
    let mut session = sampling_session(&mcp_url(&replicas, 0)).await;
    let running = start_sampling(&mut session).await;
    let stream_id = stream_of(&running.priming_id).to_owned();
    // While the client is connected, the stream is only in replica 1's
    // memory.
    assert!(stream_keys(&redis).is_empty(), "{:?}", stream_keys(&redis));

    // The connection breaks: replica 1 notices and flushes the stream.
    drop(running.stream);
    let holder = replicas.replicas[0].url();
    let flushed = metric_reaching(
        &holder,
        "mcp_event_flushes_total",
        &[("reason", "disconnected")],
        1.0,
    )
    .await;
    assert_eq!(flushed, 1.0, "{}", replicas.logs());
    assert_eq!(
        redis
            .cli(&["GET", &format!("mcp_stream_session:{stream_id}")])
            .trim(),
        session.id
    );
    assert_eq!(
        redis
            .cli(&["XLEN", &format!("mcp_stream_events:{stream_id}")])
            .trim(),
        "1"
    );

    // The client resumes on replica 2: it gets what it missed (the sampling
    // request) ...
    session.set_url(&mcp_url(&replicas, 1));
    let mut resumed = session
        .resume(&running.priming_id)
        .await
        .expect("resume on replica 2");
    let replayed = resumed.next_message().await;
    assert_eq!(replayed, running.sampling);
    // ... answers it through replica 3, and the call's answer, produced on
    // replica 1 after the break, reaches it on replica 2.
    session.set_url(&mcp_url(&replicas, 2));
    answer(&mut session, &running.sampling).await;
    let message = resumed.next_message().await;
    assert_answer(&message, running.call_id);
    assert!(
        resumed.next_within(Duration::from_secs(10)).await.is_none(),
        "the resumed stream ends with the call's answer"
    );
    let from_redis = Scrape::fetch(&replicas.replicas[1].url())
        .await
        .value("mcp_stream_resumptions_total", &[("from", "redis")]);
    assert_eq!(from_redis, 1.0);
    // Replica 2 asked replica 1, which had already flushed: nothing twice.
    let requested = Scrape::fetch(&holder)
        .await
        .value("mcp_event_flushes_total", &[("reason", "requested")]);
    assert_eq!(requested, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_hands_running_and_finished_streams_to_redis() {
    let redis = RedisServer::start();
    let replicas = ReplicaSet::start(
        BINARY,
        3,
        &[
            ("REDIS_URL", &redis.url()),
            ("SHUTDOWN_DRAIN_SECONDS", "0"),
            ("SHUTDOWN_GRACE_SECONDS", "15"),
        ],
    )
    .await;
    let mut replicas = replicas;
    let mut session = sampling_session(&mcp_url(&replicas, 0)).await;
    // A finished call, its answer delivered ...
    let (done_id, mut done) = session
        .open_request(
            "tools/call",
            json!({"name": "test_simple_text", "arguments": {}}),
        )
        .await
        .expect("a call");
    let done_priming = done
        .next_within(Duration::from_secs(10))
        .await
        .expect("priming")
        .id
        .expect("an id");
    let done_answer = done.next_message().await;
    assert_eq!(done_answer["id"], done_id);
    assert!(done.next_within(Duration::from_secs(10)).await.is_none());
    // ... and a running one, its client still connected.
    let mut running = start_sampling(&mut session).await;
    assert!(stream_keys(&redis).is_empty(), "{:?}", stream_keys(&redis));

    // SIGTERM: at the hand-off replica 1 writes both streams to Redis.
    replicas.replicas[0].send_sigterm();
    let expected = {
        let mut keys: Vec<String> = [&done_priming, &running.priming_id]
            .iter()
            .flat_map(|id| {
                let stream = stream_of(id);
                [
                    format!("mcp_stream_events:{stream}"),
                    format!("mcp_stream_session:{stream}"),
                ]
            })
            .collect();
        keys.sort();
        keys
    };
    let mut keys = Vec::new();
    for _ in 0..200 {
        keys = stream_keys(&redis);
        if keys == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(keys, expected, "{}", replicas.logs());

    // The running call finishes during the grace period (the answer to
    // its sampling request reaches replica 1 through replica 2), on the
    // connection the client still holds.
    session.set_url(&mcp_url(&replicas, 1));
    answer(&mut session, &running.sampling).await;
    assert_answer(&running.stream.next_message().await, running.call_id);
    let code = replicas.replicas[0]
        .wait_for_exit(Duration::from_secs(20))
        .await;
    assert_eq!(code, Some(0), "{}", replicas.replicas[0].log());

    // Replica 1 is gone; both streams resume elsewhere, whole: the
    // running one's answer was written through after the hand-off.
    let mut resumed = session.resume(&done_priming).await.expect("resume");
    assert_eq!(resumed.next_message().await, done_answer);
    session.set_url(&mcp_url(&replicas, 2));
    let mut resumed = session.resume(&running.priming_id).await.expect("resume");
    assert_eq!(resumed.next_message().await, running.sampling);
    assert_answer(&resumed.next_message().await, running.call_id);
    let log = replicas.replicas[0].log();
    assert!(
        log.contains("response streams held here go to Redis"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// A client's answer to a sampling request, sent over the fleet channel
/// with an ack token (as a replica other than the waiting handler's sends
/// it), twice under the same token as after a copy lost in a failover: the
/// handler's replica takes it once and acks both copies as held, the
/// others ack that they had no such request, and the call ends with one
/// answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_response_sent_twice_through_the_fleet_is_taken_once() {
    let redis = RedisServer::start();
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", &redis.url())]).await;
    let mut session = sampling_session(&mcp_url(&replicas, 0)).await;
    let mut running = start_sampling(&mut session).await;
    let fleet = redis.cli(&["PUBSUB", "CHANNELS", "mcp_fleet:*"]);
    let fleet = fleet.lines().next().expect("the fleet channel").to_owned();
    let service = fleet.trim_start_matches("mcp_fleet:");
    let acks_channel = format!("mcp_replica:{service}:test-origin");
    let record_key = redis.cli(&["--scan", "--pattern", "mcp_user_session:*"]);
    let user_hash = record_key
        .trim()
        .split(':')
        .nth(1)
        .expect("a user hash in the record key")
        .to_owned();

    // The acks, as the asking replica's channel carries them.
    let listener = ChannelListener::start(&redis, &acks_channel).await;

    let envelope = json!({
        "kind": "client_message",
        "origin": "test-origin",
        "session_id": session.id,
        "caller": {"kind": "anonymous", "issuer": "", "subject": "127.0.0.1|test",
                   "user_hash": user_hash, "is_admin": false},
        "message": {"jsonrpc": "2.0", "id": running.sampling["id"], "result": {
            "role": "assistant", "model": "test-model", "stopReason": "endTurn",
            "content": {"type": "text", "text": "hello from the client"}}},
        "ack": {"replica": "test-origin", "token": 5150},
    })
    .to_string();
    for copy in ["first", "second"] {
        let receivers = redis.cli(&["PUBLISH", &fleet, &envelope]);
        assert_eq!(
            receivers.trim(),
            "3",
            "the {copy} copy reached every replica"
        );
    }
    let message = running.stream.next_message().await;
    assert_answer(&message, running.call_id);
    assert!(
        running
            .stream
            .next_within(Duration::from_secs(10))
            .await
            .is_none(),
        "one answer, and the stream ends"
    );

    let acks = listener.json_messages(6, Duration::from_secs(5));
    let held = |held: bool| {
        acks.iter()
            // `held: false` is left out of the JSON.
            .filter(|ack| ack["token"] == 5150 && ack["held"].as_bool().unwrap_or(false) == held)
            .count()
    };
    assert_eq!(
        (held(true), held(false)),
        (2, 4),
        "the holder acked both copies as held, the two others both as not: {acks:?}\n{}",
        replicas.logs()
    );
}
