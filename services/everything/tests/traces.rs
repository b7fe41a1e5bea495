//! OpenTelemetry traces that follow a request across replicas: three
//! replicas export their spans over OTLP/HTTP to a real receiver (the
//! `opentelemetry-proto` types, [`OtlpReceiver`]), and each request the
//! client traced (its own W3C `traceparent`) must come back as one trace
//! holding the spans of both replicas it touched, each parented to the span
//! that caused it:
//!
//! - an HTTP+SSE `POST /messages` reaching replica 2 while replica 1 holds
//!   the stream: `POST /messages` (replica 2) → `fleet receive
//!   client_message` (replica 1) → `tools/call test_simple_text` (replica 1),
//!   with replica 2's `session_store access` and `redis SPUBLISH` beside;
//! - a `Last-Event-ID` resumption on replica 2 of a response stream that
//!   replica 1 still holds in memory: `GET /mcp` (replica 2) → `fleet
//!   receive flush_stream` (replica 1) → its `session_store`/flush work.

use std::time::Duration;

use mcp_testkit::{
    LegacySseSession, OtlpReceiver, RawSession, ReceivedSpan, RedisServer, ReplicaSet, SseReader,
};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_everything");

/// The client's own span: the parent of each request's server span.
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// An `X-Amzn-Trace-Id` as AWS documents it.
const AMAZON_TRACE: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{CLIENT_SPAN}-01")
}

/// The spans of `trace_id`, once `expected` names have all arrived.
async fn trace(receiver: &OtlpReceiver, trace_id: &str, expected: &[&str]) -> Vec<ReceivedSpan> {
    let of_trace = |spans: &[ReceivedSpan]| -> Vec<ReceivedSpan> {
        spans
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect()
    };
    let spans = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            let mine = of_trace(spans);
            expected
                .iter()
                .all(|name| mine.iter().any(|span| span.name == *name))
        })
        .await;
    of_trace(&spans)
}

/// The one span of `spans` named `name`.
fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` span expected: {spans:#?}");
    found[0]
}

async fn fleet(redis: &RedisServer, receiver: &OtlpReceiver) -> ReplicaSet {
    ReplicaSet::start(
        BINARY,
        3,
        &[
            ("REDIS_URL", &redis.url()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("LOG_FORMAT", "json"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_sse_message_is_one_trace_across_two_replicas() {
    let receiver = OtlpReceiver::start().await;
    let redis = RedisServer::start();
    let replicas = fleet(&redis, &receiver).await;
    let (holder, other) = (&replicas.replicas[0], &replicas.replicas[1]);
    let mut session = LegacySseSession::connect_via(&holder.url(), &other.url())
        .await
        .expect("an HTTP+SSE session held by replica 1");

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = reqwest::Client::new()
        .post(&session.messages_url)
        .header("traceparent", traceparent(trace_id))
        .json(&json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
                      "params": {"name": "test_simple_text", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer = session.stream().next_message().await;
    assert_eq!(answer["id"], 99, "{answer}");

    let spans = trace(
        &receiver,
        trace_id,
        &[
            "POST /messages",
            "fleet receive client_message",
            "tools/call test_simple_text",
        ],
    )
    .await;
    let post = named(&spans, "POST /messages");
    assert_eq!(post.service_instance, other.name());
    assert_eq!(
        post.parent_span_id, CLIENT_SPAN,
        "the client's span is the parent"
    );
    assert_eq!(post.attributes["http.response.status_code"], "202");
    let received = named(&spans, "fleet receive client_message");
    assert_eq!(received.service_instance, holder.name());
    assert_eq!(received.parent_span_id, post.span_id, "{spans:#?}");
    let tool = named(&spans, "tools/call test_simple_text");
    assert_eq!(tool.service_instance, holder.name());
    assert_eq!(tool.parent_span_id, received.span_id, "{spans:#?}");
    assert_eq!(tool.attributes["gen_ai.tool.name"], "test_simple_text");
    assert_eq!(post.service_name, "everything");
    // Replica 2's own work for the request: the session's record from the
    // store, and the message published to replica 1.
    for work in ["session_store access", "redis SPUBLISH"] {
        let span = named(&spans, work);
        assert_eq!(span.service_instance, other.name(), "{work}");
        assert_eq!(span.parent_span_id, post.span_id, "{work}: {spans:#?}");
    }

    // The request's log lines carry its trace id.
    let logs = other.log();
    assert!(
        logs.lines()
            .any(|line| line.contains("\"message\":\"request\"")
                && line.contains(&format!("\"trace_id\":\"{trace_id}\""))
                && line.contains("/messages")),
        "{logs}"
    );
    assert!(
        !logs.contains("otel.name"),
        "otel.* fields stay out of logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumption_that_needs_a_flush_is_one_trace_across_two_replicas() {
    let receiver = OtlpReceiver::start().await;
    let redis = RedisServer::start();
    let replicas = fleet(&redis, &receiver).await;
    let (producer, other) = (&replicas.replicas[0], &replicas.replicas[1]);
    let mut session = RawSession::initialize_declaring(
        reqwest::Client::new(),
        &format!("{}/mcp", producer.url()),
        json!({"sampling": {}}),
    )
    .await
    .expect("initialize with the sampling capability");
    // A call whose response stream stays open on replica 1, waiting for the
    // client's answer to its sampling request.
    let (_call, mut stream) = session
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
    let priming_id = priming.id.expect("the priming event has an id");
    let sampling = stream.next_message().await;
    assert_eq!(sampling["method"], "sampling/createMessage", "{sampling}");

    // The client resumes on replica 2 while replica 1 still holds the
    // stream: replica 2 asks replica 1 to flush it, then replays it.
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = reqwest::Client::new()
        .get(format!("{}/mcp", other.url()))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", "2025-06-18")
        .header("last-event-id", &priming_id)
        .header("traceparent", traceparent(trace_id))
        .header("x-amzn-trace-id", AMAZON_TRACE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut resumed = SseReader::new(response);
    assert_eq!(
        resumed.next_message().await,
        sampling,
        "the missed event, replayed"
    );

    let spans = trace(
        &receiver,
        trace_id,
        &["GET /mcp", "fleet receive flush_stream"],
    )
    .await;
    let get = named(&spans, "GET /mcp");
    assert_eq!(get.service_instance, other.name());
    assert_eq!(get.parent_span_id, CLIENT_SPAN);
    // The ALB's trace header: linked, and its X-Ray id kept.
    assert_eq!(
        get.links,
        [(
            "5759e988bd862e3fe1be46a994272793".to_owned(),
            "53995c3f42cd8ad8".to_owned()
        )]
    );
    assert_eq!(
        get.attributes["aws.xray.trace_id"],
        "1-5759e988-bd862e3fe1be46a994272793"
    );
    let flush = named(&spans, "fleet receive flush_stream");
    assert_eq!(flush.service_instance, producer.name());
    assert_eq!(flush.parent_span_id, get.span_id, "{spans:#?}");
    drop(stream);
}
