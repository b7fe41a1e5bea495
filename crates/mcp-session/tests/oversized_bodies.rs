//! A body over `MAX_REQUEST_BODY_BYTES`, sent through the round-robin nginx
//! (which streams it upstream: `proxy_request_buffering off`), is answered
//! `413`, never `502`: the replica reads and discards the rest of the body
//! before answering, so the connection closes cleanly instead of with a TCP
//! RST that nginx may see before the `413` (`transport/body.rs`). Both with
//! a `Content-Length` and chunked, on HTTP+SSE `POST /messages`, on a
//! `subscriptions/listen` `POST /mcp` and on any other `POST /mcp`.

use bytes::Bytes;
use mcp_testkit::{LegacySseSession, Nginx, ReplicaSet};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

/// The replicas' `MAX_REQUEST_BODY_BYTES`.
const LIMIT: usize = 256 * 1024;
/// Each refused body: four times the limit.
const BODY: usize = 1024 * 1024;
/// Requests of each kind: a 502 came about one in a few before the fix.
const ROUNDS: usize = 20;

/// A JSON-RPC `tools/call` of `BODY` bytes.
fn oversized_message() -> Vec<u8> {
    let envelope = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2, "pad": ""}}})
    .to_string();
    let pad = BODY - envelope.len();
    envelope
        .replace(r#""pad":"""#, &format!(r#""pad":"{}""#, "x".repeat(pad)))
        .into_bytes()
}

/// `message` as a chunked body (no `Content-Length`), in 16 KiB chunks.
fn chunked(message: &[u8]) -> reqwest::Body {
    let chunks: Vec<Result<Bytes, std::io::Error>> = message
        .chunks(16 * 1024)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

/// Posts `message` to `url` `ROUNDS` times with a `Content-Length` and
/// `ROUNDS` times chunked, each with `headers`; returns every answer's
/// status that was not `413`, with its body.
async fn refusals(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    message: &[u8],
) -> Vec<String> {
    let mut wrong = Vec::new();
    for round in 0..2 * ROUNDS {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = if round < ROUNDS {
            request.body(message.to_vec())
        } else {
            request.body(chunked(message))
        };
        match request.send().await {
            Ok(response) if response.status() == 413 => {}
            Ok(response) => wrong.push(format!(
                "round {round}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            )),
            Err(error) => wrong.push(format!("round {round}: {error}")),
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_through_nginx_is_413_never_502() {
    let limit = LIMIT.to_string();
    let replicas =
        ReplicaSet::start(BINARY, 1, &[("MAX_REQUEST_BODY_BYTES", limit.as_str())]).await;
    let nginx = Nginx::start(&replicas.ports());
    let client = reqwest::Client::new();
    let message = oversized_message();
    assert_eq!(message.len(), BODY);

    let mut session = LegacySseSession::connect(&nginx.url())
        .await
        .expect("an HTTP+SSE session through nginx");
    let wrong = refusals(&client, &session.messages_url, &[], &message).await;
    assert!(
        wrong.is_empty(),
        "POST /messages: {wrong:#?}\n{}",
        nginx.error_log()
    );

    let wrong = refusals(
        &client,
        &format!("{}/mcp", nginx.url()),
        &[("mcp-method", "subscriptions/listen")],
        &message,
    )
    .await;
    assert!(
        wrong.is_empty(),
        "subscriptions/listen: {wrong:#?}\n{}",
        nginx.error_log()
    );

    // Any other `POST /mcp` (rmcp reads a body only up to the limit: the
    // library refuses a longer one first).
    let wrong = refusals(&client, &format!("{}/mcp", nginx.url()), &[], &message).await;
    assert!(
        wrong.is_empty(),
        "POST /mcp: {wrong:#?}\n{}",
        nginx.error_log()
    );

    // The session still serves.
    let sum = session
        .call_tool("add", json!({"a": 2, "b": 40}))
        .await
        .expect("a call after the refusals");
    assert_eq!(sum["structuredContent"]["result"], 42.0, "{sum}");
}
