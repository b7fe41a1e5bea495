//! The shutdown sequence of one server (see `mcp_session::shutdown`): during
//! the drain delay `/readyz` fails, new SSE streams are refused and other
//! requests are served; at the hand-off standalone streams end; a tool call
//! in flight on its SSE response stream completes before the server exits.

use std::time::Duration;

use mcp_session::{Config, McpServer};
use mcp_testkit::{RawSession, SseReader};
use rmcp::{
    ServerHandler,
    handler::server::router::tool::ToolRouter,
    model::{ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};
use serde_json::json;
use tokio::sync::oneshot;

/// How long the slow tool takes: longer than the drain delay, shorter than
/// the grace period.
const SLOW: Duration = Duration::from_millis(1500);

#[derive(Clone)]
struct Slow {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Slow {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Answers `done` after 1.5 s")]
    async fn slow(&self) -> String {
        tokio::time::sleep(SLOW).await;
        "done".into()
    }

    #[tool(description = "Answers `fast` at once")]
    fn fast(&self) -> String {
        "fast".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Slow {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_calls_finish_and_streams_end_at_shutdown() {
    let mut config = Config::new(0);
    config.host = "127.0.0.1".into();
    config.shutdown_drain = Duration::from_millis(700);
    config.shutdown_grace = Duration::from_secs(10);
    let bound = McpServer::new(config, Slow::new)
        .bind()
        .await
        .expect("bind");
    let base = format!("http://{}", bound.local_addr().unwrap());
    let (signal, signalled) = oneshot::channel::<()>();
    let server = tokio::spawn(bound.run(async move {
        let _ = signalled.await;
    }));
    let mcp = format!("{base}/mcp");
    let mut session = RawSession::initialize(&mcp).await.expect("initialize");
    let standalone = reqwest::Client::new()
        .get(&mcp)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(standalone.status().as_u16(), 200);
    let mut standalone = SseReader::new(standalone);
    let in_flight = {
        let mut session = RawSession::initialize(&mcp).await.expect("initialize");
        tokio::spawn(async move { session.call_tool("slow", json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    signal.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Draining: not ready, no new SSE stream, everything else served.
    let readyz = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(readyz.status().as_u16(), 503);
    let sse = reqwest::get(format!("{base}/sse")).await.unwrap();
    assert_eq!(sse.status().as_u16(), 503);
    assert_eq!(sse.headers()["retry-after"], "1");
    let fast = session.call_tool("fast", json!({})).await.expect("served");
    assert_eq!(fast["content"][0]["text"], "fast");

    // The hand-off ends the standalone stream (the client would reconnect
    // elsewhere) while the slow call goes on.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while standalone
            .next_within(Duration::from_secs(5))
            .await
            .is_some()
        {}
    })
    .await;
    assert!(ended.is_ok(), "the standalone stream did not end");
    assert!(!in_flight.is_finished(), "the slow call ended early");

    let answer = in_flight
        .await
        .unwrap()
        .expect("the call in flight completes");
    assert_eq!(answer["content"][0]["text"], "done");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server exits within its grace period")
        .unwrap()
        .expect("a clean shutdown");
    // The listener is closed.
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
}
