//! What the fleet bus costs each replica as replicas are added: 1, 2, 4 and
//! 8 everything replicas on one Redis, each holding the same share of a
//! notification-heavy load, and the messages and bytes each replica receives
//! over the bus (`mcp_fleet_messages_received_total` and
//! `mcp_fleet_received_bytes_total` on its `/metrics`).
//!
//! Each replica holds [`LISTENERS`] `subscriptions/listen` streams (protocol
//! 2026-07-28) and [`SESSIONS`] sessions (2025-11-25) with their `GET`
//! stream, each following a resource of its own; the session subscribed
//! through the next replica (so its watcher runs there) and the updates are
//! made through the replica after that, [`UPDATES`] per stream. Every
//! stream must hear of each of its updates exactly once, whichever replica
//! holds it. The figures are read over the update phase: with a broadcast
//! channel every replica would read every update of the fleet (8 times as
//! much with 8 replicas); with the channels of what each replica holds, it
//! reads its own share, however many replicas there are.
//!
//! Prints a table (`-- --nocapture`) that `docs/benchmarks.md` quotes.

use std::time::Duration;

use mcp_testkit::{RawSession, RedisServer, ReplicaSet, Scrape, SseReader};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_everything");
/// `subscriptions/listen` streams per replica.
const LISTENERS: usize = 3;
/// Sessions with a `GET` stream per replica.
const SESSIONS: usize = 3;
/// Updates of each stream's resource.
const UPDATES: usize = 4;
/// Replica counts measured.
const FLEETS: [usize; 4] = [1, 2, 4, 8];

/// The messages and bytes one replica received over the bus.
#[derive(Debug, Clone, Copy, Default)]
struct Received {
    messages: f64,
    bytes: f64,
}

async fn received(base: &str) -> Received {
    let scrape = Scrape::fetch(base).await;
    let mut total = Received::default();
    for channel in ["fleet", "replica", "stream_flush", "standalone", "change"] {
        total.messages +=
            scrape.value("mcp_fleet_messages_received_total", &[("channel", channel)]);
        total.bytes += scrape.value("mcp_fleet_received_bytes_total", &[("channel", channel)]);
    }
    total
}

/// A 2026-07-28 request (no session) of `method` with `params` to the
/// replica at `base`, with the headers that protocol requires (`Mcp-Name`
/// when the request names a tool) and the per-request `_meta`.
async fn post(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    mut params: Value,
) -> reqwest::Response {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "fleet-bus-scaling", "version": "1"},
    });
    let mut request = http
        .post(format!("{base}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method);
    if let Some(name) = params["name"].as_str() {
        request = request.header("Mcp-Name", name);
    }
    request
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} is answered: {error}"))
}

/// A `subscriptions/listen` stream on `base` for `uri` (no session).
async fn listen(http: &reqwest::Client, base: &str, uri: &str) -> SseReader {
    let response = post(
        http,
        base,
        "subscriptions/listen",
        json!({"notifications": {"resourceSubscriptions": [uri]}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut stream = SseReader::new(response);
    let acknowledged = stream
        .try_next_message(Duration::from_secs(10))
        .await
        .expect("the subscription is acknowledged");
    assert_eq!(
        acknowledged["method"],
        "notifications/subscriptions/acknowledged"
    );
    stream
}

/// Announces an update of `uri` through `base` (a 2026-07-28 call).
async fn update(http: &reqwest::Client, base: &str, uri: &str) {
    let response = post(
        http,
        base,
        "tools/call",
        json!({"name": "test_notify_resource_updated", "arguments": {"uri": uri}}),
    )
    .await;
    let is_sse = response
        .headers()
        .get("content-type")
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    let answer: Value = if is_sse {
        SseReader::new(response)
            .try_next_message(Duration::from_secs(10))
            .await
            .expect("the answer on the response stream")
    } else {
        response.json().await.expect("a JSON answer")
    };
    assert_eq!(answer["result"]["isError"], json!(false), "{answer}");
}

/// Reads `stream` until it is quiet; returns the URIs of the resource
/// updates it heard.
async fn updates_heard(stream: &mut SseReader) -> Vec<String> {
    let mut uris = Vec::new();
    while let Some(message) = stream.try_next_message(Duration::from_millis(1500)).await {
        if message["method"] == "notifications/resources/updated" {
            uris.push(
                message["params"]["uri"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    uris
}

/// One fleet of `count` replicas under the load; returns what each replica
/// received during the update phase.
async fn run(count: usize) -> Vec<Received> {
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let replicas = ReplicaSet::start(
        BINARY,
        count,
        &[
            ("REDIS_URL", redis_url.as_str()),
            ("MAX_SESSIONS_PER_USER", "unlimited"),
        ],
    )
    .await;
    let bases: Vec<String> = replicas
        .replicas
        .iter()
        .map(|replica| replica.url())
        .collect();
    let http = reqwest::Client::new();

    // Streams: on replica `index`, LISTENERS listen streams and SESSIONS
    // sessions with their GET stream, each following its own resource.
    let mut streams = Vec::new();
    let mut sessions = Vec::new();
    for (index, base) in bases.iter().enumerate() {
        for number in 0..LISTENERS {
            let uri = format!("test://template/listen-{index}-{number}/data");
            streams.push((uri.clone(), index, listen(&http, base, &uri).await));
        }
        for number in 0..SESSIONS {
            let uri = format!("test://template/session-{index}-{number}/data");
            let mut session = RawSession::initialize(&format!("{base}/mcp"))
                .await
                .expect("a session");
            let stream = session.open_stream().await.expect("the GET stream opens");
            // The watcher runs where the subscription was made.
            session.set_url(&format!("{}/mcp", bases[(index + 1) % count]));
            session
                .request("resources/subscribe", json!({"uri": uri}))
                .await
                .expect("subscribed");
            streams.push((uri, index, stream));
            sessions.push(session);
        }
    }

    let before = futures::future::join_all(bases.iter().map(|base| received(base))).await;
    for _ in 0..UPDATES {
        for (uri, index, _) in &streams {
            update(&http, &bases[(index + 2) % count], uri).await;
        }
    }
    // Every stream, at once: what it heard until it was quiet.
    let heard = futures::future::join_all(
        streams
            .iter_mut()
            .map(|(_, _, stream)| updates_heard(stream)),
    )
    .await;
    for ((uri, index, _), heard) in streams.iter().zip(heard) {
        assert_eq!(
            heard,
            vec![uri.clone(); UPDATES],
            "the stream on replica {index} hears of each update of its resource once\n{}",
            replicas.logs()
        );
    }
    let after = futures::future::join_all(bases.iter().map(|base| received(base))).await;
    for session in &sessions {
        session.delete().await;
    }
    before
        .iter()
        .zip(&after)
        .map(|(before, after)| Received {
            messages: after.messages - before.messages,
            bytes: after.bytes - before.bytes,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_replica_receives_its_own_share_however_many_replicas_there_are() {
    let mut rows = Vec::new();
    for count in FLEETS {
        let received = run(count).await;
        let most = received
            .iter()
            .copied()
            .fold(Received::default(), |most, replica| Received {
                messages: most.messages.max(replica.messages),
                bytes: most.bytes.max(replica.bytes),
            });
        let mean = received.iter().map(|replica| replica.messages).sum::<f64>() / count as f64;
        rows.push((count, mean, most));
    }
    let updates_per_replica = (LISTENERS + SESSIONS) * UPDATES;
    println!(
        "fleet bus, update phase: {updates_per_replica} resource updates per replica's share \
         ({LISTENERS} listen streams and {SESSIONS} sessions with a GET stream per replica, \
         {UPDATES} updates each)"
    );
    println!(
        "| replicas | updates in the fleet | messages received per replica (mean) | max | bytes received per replica (max) |"
    );
    println!("|---|---|---|---|---|");
    for (count, mean, most) in &rows {
        println!(
            "| {count} | {} | {mean:.0} | {:.0} | {:.0} |",
            updates_per_replica * count,
            most.messages,
            most.bytes
        );
    }
    let alone = rows[0].2.messages;
    let largest = rows.last().expect("measured").2.messages;
    assert!(
        alone > 0.0,
        "the single replica reads its own updates over Redis too"
    );
    assert!(
        largest <= alone * 1.5,
        "a replica of 8 receives about what a replica alone does ({largest} against {alone} messages): \
         what reaches a replica does not grow with the fleet"
    );
}
