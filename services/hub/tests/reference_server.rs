//! The hub in front of the official TypeScript reference server,
//! `@modelcontextprotocol/server-everything` from npm (pinned in
//! `tests/interop/typescript`), over Streamable HTTP, over HTTP+SSE and as
//! a stdio child process of each hub replica, with
//! three hub replicas behind a round-robin nginx: its tools are listed and
//! called through the hub's `/mcp` with no error, and its sampling requests
//! reach the client, whose answers (to any hub replica) complete the calls.
//!
//! Without the npm package the test says so and passes, unless
//! `MCP_INTEROP_REQUIRED=1` (set by `scripts/test.sh`).

#[path = "../../calculator/tests/interop_support/mod.rs"]
mod interop_support;
mod support;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use mcp_testkit::{
    auth::{self, Auth},
    free_port, wait_for_port,
};
use serde_json::json;
use support::{HubFleet, call_with_answer};

/// The npm package, under `tests/interop/typescript`.
const PACKAGE: &str = "node_modules/@modelcontextprotocol/server-everything";

/// A server-everything process, killed when dropped.
struct ReferenceServer {
    child: Child,
    port: u16,
}

impl ReferenceServer {
    /// `node dist/index.js <transport>` on a free port.
    fn start(node: &Path, dir: &Path, transport: &str) -> Self {
        let port = free_port();
        let child = Command::new(node)
            .arg(dir.join(PACKAGE).join("dist/index.js"))
            .arg(transport)
            .env("PORT", port.to_string())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server-everything");
        assert!(
            wait_for_port(port, Duration::from_secs(20)),
            "server-everything ({transport}) did not listen on {port}"
        );
        Self { child, port }
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_typescript_reference_server_over_both_transports_through_the_hub() {
    let test = "hub_reference_server";
    let Some(dir) = interop_support::available(test, interop_support::node_dir(PACKAGE)) else {
        return;
    };
    let Some(node) = interop_support::available(test, interop_support::on_path("node")) else {
        return;
    };
    let streamable = ReferenceServer::start(&node, &dir, "streamableHttp");
    let sse = ReferenceServer::start(&node, &dir, "sse");
    let config = json!({"servers": {
        "everything": {"url": format!("http://127.0.0.1:{}/mcp", streamable.port), "sharing": "user"},
        "legacy": {"url": format!("http://127.0.0.1:{}/sse", sse.port), "transport": "sse",
                   "sharing": "user"},
        // Run by each hub replica, as a child process.
        "local": {"transport": "stdio", "sharing": "shared",
                  "command": node.display().to_string(),
                  "args": [dir.join(PACKAGE).join("dist/index.js").display().to_string(), "stdio"]},
    }});
    let hub = HubFleet::start(&config, 3).await;
    let alice = Auth::Bearer(auth::token_for("alice"));
    let mut session = hub
        .session(&alice, "/mcp", &[], json!({"sampling": {}}))
        .await;

    let tools = session.request("tools/list", json!({})).await.unwrap();
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    for expected in [
        "everything__echo",
        "everything__get-sum",
        "legacy__echo",
        "legacy__get-sum",
        "local__echo",
        "local__get-sum",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }

    for server in ["everything", "legacy", "local"] {
        for i in 0..30 {
            let result = session
                .call_tool(&format!("{server}__get-sum"), json!({"a": i, "b": 40}))
                .await
                .unwrap_or_else(|error| {
                    panic!("{server} call {i}: {error:?}\n{}", hub.replicas.logs())
                });
            let text = result["content"][0]["text"].as_str().unwrap_or_default();
            assert_eq!(
                text,
                format!("The sum of {i} and 40 is {}.", i + 40),
                "{result}"
            );
        }
        let echoed = session
            .call_tool(
                &format!("{server}__echo"),
                json!({"message": "through the hub"}),
            )
            .await
            .unwrap();
        assert_eq!(echoed["content"][0]["text"], "Echo: through the hub");
        // The reference server asks the client for a completion; the answer,
        // POSTed through nginx, completes the call.
        for _ in 0..3 {
            let response = call_with_answer(
                &mut session,
                &format!("{server}__trigger-sampling-request"),
                json!({"prompt": "Say hello", "maxTokens": 20}),
            )
            .await;
            assert!(
                response["result"]
                    .to_string()
                    .contains("hello from the client"),
                "{server}: {response}"
            );
        }
    }
}
