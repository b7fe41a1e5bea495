//! Slow and silent connections (red-team finding 7): with
//! `HTTP_HEADER_READ_TIMEOUT_SECONDS=2`, a replica closes connections that
//! send nothing, dribble a request head, stop inside the HTTP/2 preface, or
//! sit idle after a response, while it keeps serving others and keeps its
//! SSE streams open past the timeout.

use std::time::{Duration, Instant};

use mcp_testkit::Replica;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

/// Connections of each kind the test opens.
const EACH: usize = 100;

/// Reads from `stream` until the server closes it (end of stream or a
/// reset); `true` when that happens within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_connections_are_closed_after_the_header_read_timeout() {
    let replica = Replica::start(
        BINARY,
        "replica-1",
        &[("HTTP_HEADER_READ_TIMEOUT_SECONDS", "2")],
    )
    .await;
    let address = format!("127.0.0.1:{}", replica.port());
    let connect = || async { TcpStream::connect(&address).await.expect("connect") };

    // An SSE stream, opened first, outlives the timeout.
    let mut sse = connect().await;
    sse.write_all(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();

    let mut silent = Vec::new();
    let mut dribbling = Vec::new();
    let mut preface = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..EACH {
        silent.push(connect().await);
        let mut stream = connect().await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        dribbling.push(stream);
        let mut stream = connect().await;
        stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        preface.push(stream);
        // A whole request, its response, then nothing: an idle keep-alive.
        let mut stream = connect().await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        idle.push(stream);
    }
    // The slow ones keep sending a header line now and then.
    let dribbler = tokio::spawn(async move {
        for round in 0.. {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut open = 0;
            for stream in &mut dribbling {
                if stream
                    .write_all(format!("X-Slow-{round}: 1\r\n").as_bytes())
                    .await
                    .is_ok()
                {
                    open += 1;
                }
            }
            if open == 0 || round > 20 {
                return (dribbling, round);
            }
        }
        unreachable!()
    });

    // Meanwhile the replica serves everyone else.
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", replica.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let started = Instant::now();
    for (kind, streams) in [
        ("silent", &mut silent),
        ("HTTP/2 preface cut short", &mut preface),
        ("idle keep-alive", &mut idle),
    ] {
        for stream in streams.iter_mut() {
            assert!(
                closed_within(stream, Duration::from_secs(6)).await,
                "a {kind} connection stayed open {:?}",
                started.elapsed()
            );
        }
    }
    let (mut dribbling, rounds) = dribbler.await.unwrap();
    assert!(rounds <= 20, "slow request heads were still accepted");
    for stream in &mut dribbling {
        assert!(closed_within(stream, Duration::from_secs(1)).await);
    }

    // The SSE stream was open for longer than the timeout: its endpoint
    // event came, and it still is.
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(1), sse.read(&mut buffer))
        .await
        .expect("the SSE stream still answers")
        .unwrap();
    received.extend_from_slice(&buffer[..read]);
    assert!(
        !closed_within(&mut sse, Duration::from_millis(500)).await,
        "the SSE stream was closed"
    );
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.contains("200 OK") || text.contains("endpoint"),
        "{text}"
    );

    let health = client
        .get(format!("{}/healthz", replica.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(!replica.log().contains("panicked"));
}
