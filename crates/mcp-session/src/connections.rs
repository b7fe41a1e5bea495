//! Accepting and serving HTTP connections, with the timeouts `axum::serve`
//! does not set.
//!
//! `axum::serve` gives hyper no timer, so a client that opens a connection
//! and sends its request head slowly, or nothing at all (slowloris), holds
//! it forever: a few thousand such connections exhaust a pod's file
//! descriptors. Here each connection is served by hyper-util's automatic
//! HTTP/1.1 / HTTP/2 builder with a timer:
//!
//! - **the first request**: a connection that has not sent a whole first
//!   request head within the header-read timeout is closed, whatever it
//!   sent (hyper-util's detection of HTTP/1.1 or HTTP/2 has no timeout of
//!   its own, and HTTP/2 has no header-read timeout);
//! - **HTTP/1.1**: hyper's header-read timeout bounds the time to receive a
//!   whole request head, and the time a kept-alive connection waits idle
//!   for its next request (the timer starts when hyper begins reading a
//!   head). Response bodies, SSE streams included, are not bounded by it;
//! - **HTTP/2** (h2c with prior knowledge): keep-alive pings close a
//!   connection whose peer stops answering.
//!
//! The default timeout (75 s, `HTTP_HEADER_READ_TIMEOUT_SECONDS`) stays
//! above an AWS ALB's idle timeout (60 s by default): a target must not
//! close a kept-alive connection the load balancer may be reusing, or the
//! ALB answers `502` (AWS, "Application Load Balancers", §Connection idle
//! timeout). Without an ALB in front, a smaller value closes attackers'
//! connections sooner.
//!
//! Graceful shutdown is hyper-util's: when the signal completes, the
//! listener closes, idle connections close, and busy ones close after
//! their response.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo, serve::Listener};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Interval of HTTP/2 keep-alive pings, and how long an answer may take.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Serves `router` on `listener` until `shutdown` completes, then closes
/// connections as they become idle and returns once all are closed.
/// `header_read_timeout` bounds how long a connection may take to send a
/// request head, or wait idle for its next one (see the module docs).
///
/// Accept errors (too many open files, a connection reset before it was
/// accepted) are retried after a pause, as `axum::serve` does; they never
/// stop the server.
pub(crate) async fn serve(
    mut listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE)
        .enable_connect_protocol();
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        // Responses are SSE streams written in small chunks: without
        // TCP_NODELAY, Nagle's algorithm and delayed ACKs hold each back by
        // ~40 ms.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let watcher = graceful.watcher();
        let (builder, router) = (builder.clone(), router.clone());
        tokio::spawn(async move {
            let first_request = Arc::new(AtomicBool::new(false));
            let started = first_request.clone();
            // The peer address identifies anonymous callers (auth::anonymous).
            let service = router.map_request(move |mut request: axum::http::Request<Incoming>| {
                started.store(true, Ordering::Release);
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(Body::new)
            });
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(tcp),
                TowerToHyperService::new(service),
            );
            let connection = watcher.watch(connection.into_owned());
            tokio::pin!(connection);
            // A flag read when the timer fires, rather than a wake-up at
            // the first request: a connection still open then goes on.
            let served = tokio::select! {
                served = &mut connection => served,
                () = tokio::time::sleep(header_read_timeout) => {
                    if !first_request.load(Ordering::Acquire) {
                        // Protocol detection, or an HTTP/2 connection's
                        // first request, took too long: drop it.
                        tracing::debug!(%peer, "connection closed: no request within the header-read timeout");
                        return;
                    }
                    connection.await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
