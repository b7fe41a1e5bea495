//! The official MCP SDK clients through the hub: the Python and TypeScript
//! SDKs' calculator clients (`tests/interop`), with their tool names
//! prefixed (`calculator__add`), each run one session of [`CALLS`] checked
//! tool calls through the hub's `/mcp` (Streamable HTTP) and `/sse`
//! (HTTP+SSE), three hub replicas behind a round-robin nginx, in front of
//! three calculator replicas behind their own nginx: zero errors, and the
//! session's POSTs spread over every hub replica (nginx's access log).
//!
//! The clients are found as in the calculator's interop tests: without them
//! a test says so on stderr and passes, unless `MCP_INTEROP_REQUIRED=1`.

#[path = "../../calculator/tests/interop_support/mod.rs"]
mod interop_support;
mod support;

use std::{collections::BTreeMap, io::Write, time::Duration};

use interop_support::{CLIENT_TIMEOUT, Run, SDK_CLIENT_CALLS, Sdk};
use mcp_testkit::{Fleet, workspace_binary};
use serde_json::json;
use support::HubFleet;

/// Tool calls each client makes in its one long session.
const CALLS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_streamable_http() {
    through_the_hub(
        "hub_python_sdk_over_streamable_http",
        Sdk::Python,
        "streamable-http",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_sse() {
    through_the_hub("hub_python_sdk_over_sse", Sdk::Python, "sse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_over_streamable_http() {
    through_the_hub(
        "hub_typescript_sdk_over_streamable_http",
        Sdk::TypeScript,
        "streamable-http",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_over_sse() {
    through_the_hub("hub_typescript_sdk_over_sse", Sdk::TypeScript, "sse").await;
}

async fn through_the_hub(test: &str, sdk: Sdk, transport: &'static str) {
    let Some(client) = sdk.client(test) else {
        return;
    };
    let calculator = Fleet::start(workspace_binary("calculator"), 3, &[]).await;
    let config = json!({"servers": {
        "calculator": {"url": format!("{}/mcp", calculator.url()), "sharing": "shared"},
    }});
    let hub = HubFleet::start_open(&config, 3).await;
    let (path, post_path) = match transport {
        "sse" => ("/sse", "/messages"),
        _ => ("/mcp", "/mcp"),
    };
    let url = format!("{}{path}", hub.url());
    let scratch = interop_support::scratch_dir("hub_sdk_clients", test);
    let limit = CLIENT_TIMEOUT + Duration::from_millis(500 * CALLS);
    let run = tokio::task::spawn_blocking(move || {
        let calls = CALLS.to_string();
        let mut command = client.command(&url, transport, &["--calls", &calls]);
        command
            .env("MCP_TOOL_PREFIX", "calculator__")
            .env("MCP_SERVER_NAME", "hub");
        Run::bounded(&mut command, &scratch, limit)
    })
    .await
    .expect("the client runner");

    let diagnostics = || {
        format!(
            "--- hub nginx ---\n{}\n--- hub ---\n{}\n--- calculator ---\n{}",
            hub.nginx.access_log(),
            hub.replicas.logs(),
            calculator.replicas.logs()
        )
    };
    run.assert_success(sdk.what(), &diagnostics);
    let summary = interop_support::summary(&run, sdk, transport, &diagnostics);
    let failure = || format!("summary {summary}\n{}", run.report(&diagnostics()));
    assert_eq!(summary["calls"].as_u64(), Some(CALLS), "{}", failure());
    assert_eq!(summary["errors"].as_u64(), Some(0), "{}", failure());
    assert_eq!(
        summary["checks"].as_u64(),
        Some(SDK_CLIENT_CALLS),
        "{}",
        failure()
    );

    // The session's POSTs, by hub replica: each served at least a sixth.
    let mut by_upstream: BTreeMap<String, u64> = BTreeMap::new();
    for line in hub.nginx.access_log().lines() {
        let fields: Vec<&str> = line.splitn(4, ' ').collect();
        if fields.len() == 4 && fields[0] == "POST" && fields[1] == post_path {
            let upstream = fields[3].rsplit(", ").next().unwrap_or("-").trim();
            *by_upstream.entry(upstream.to_owned()).or_default() += 1;
        }
    }
    let floor = CALLS / 6;
    for replica in &hub.replicas.replicas {
        let served = by_upstream
            .get(&format!("127.0.0.1:{}", replica.port()))
            .copied()
            .unwrap_or(0);
        assert!(
            served >= floor,
            "{} served {served} POSTs: {by_upstream:?}\n{}",
            replica.name(),
            failure()
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {} over {transport} through the hub: {CALLS} calls + {SDK_CLIENT_CALLS} checks, 0 errors, in {:.1?}; POST {post_path} by hub replica: {by_upstream:?}",
        sdk.name(),
        run.elapsed,
    );
}
