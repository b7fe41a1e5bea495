//! Every protocol generation through the fleet, as the official SDK clients
//! speak it: the Python SDK (`mcp`) and the TypeScript SDK v2
//! (`@modelcontextprotocol/client`), each in its 2026-07-28 (stateless) mode
//! and in its session mode (2025-11-25), make [`CALLS`] tool calls through
//! three everything replicas behind a round-robin nginx, on Redis and on a
//! Redis Cluster, with zero errors; nginx's access log shows the calls
//! spread over the replicas.
//!
//! The clients (`tests/interop/*/generations_client.*`) are found as the
//! calculator's interop tests find theirs (`interop_support`): without them a
//! test says so on stderr and passes, unless `MCP_INTEROP_REQUIRED=1`.

#[path = "../../calculator/tests/interop_support/mod.rs"]
mod interop_support;

use std::{process::Command, time::Duration};

use interop_support::{Run, available, node_dir, python, scratch_dir, workspace_root};
use mcp_testkit::{Nginx, RedisCluster, RedisServer, ReplicaSet};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_everything");
/// Tool calls of each client run.
const CALLS: u64 = 200;
/// Longest run of one client.
const LIMIT: Duration = Duration::from_secs(240);

#[derive(Debug, Clone, Copy)]
enum Sdk {
    Python,
    TypeScript,
}

/// The client command for `sdk`, or `None` when it is not installed.
fn client(sdk: Sdk, test: &str) -> Option<Command> {
    match sdk {
        Sdk::Python => {
            let python = available(test, python())?;
            let mut command = Command::new(python);
            command.arg(workspace_root().join("tests/interop/python/generations_client.py"));
            Some(command)
        }
        Sdk::TypeScript => {
            let dir = available(test, node_dir("node_modules/@modelcontextprotocol/client"))?;
            let mut command = Command::new("node");
            command
                .current_dir(&dir)
                .arg(dir.join("generations_client.mjs"));
            Some(command)
        }
    }
}

/// The `mcp_user_session:*` keys in the Redis node(s) `scan` runs
/// `redis-cli --scan --pattern mcp_user_session:*` on.
fn session_keys(scan: &dyn Fn(&[&str]) -> String) -> usize {
    scan(&["--scan", "--pattern", "mcp_user_session:*"])
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count()
}

/// Runs `sdk`'s client in `mode` (`stateless` or `session`) through three
/// replicas on the Redis at `redis`, and checks its summary, the spread,
/// and that a stateless run made no session (`scan`: as for
/// [`session_keys`]).
async fn run(test: &str, sdk: Sdk, mode: &str, redis: &str, scan: &dyn Fn(&[&str]) -> String) {
    let Some(mut command) = client(sdk, test) else {
        return;
    };
    let replicas = ReplicaSet::start(BINARY, 3, &[("REDIS_URL", redis)]).await;
    let nginx = Nginx::start(&replicas.ports());
    let url = format!("{}/mcp", nginx.url());
    let scratch = scratch_dir("sdk_generations", test);
    command.args([url.as_str(), mode, &CALLS.to_string()]);
    let run = tokio::task::spawn_blocking(move || Run::bounded(&mut command, &scratch, LIMIT))
        .await
        .expect("the client runner");
    run.assert_success(test, &|| replicas.logs());
    let summary: Value = run
        .stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("{test}: no JSON summary:\n{}", run.report("")));
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["calls"], CALLS, "{summary}");
    let expected = if mode == "stateless" {
        "2026-07-28"
    } else {
        "2025-11-25"
    };
    assert_eq!(summary["protocolVersion"], expected, "{summary}");
    // The calls went to every replica, and none failed.
    let log = nginx.access_log();
    for port in replicas.ports() {
        let upstream = format!("127.0.0.1:{port}");
        let served = log
            .lines()
            .filter(|line| line.starts_with("POST /mcp ") && line.ends_with(&upstream))
            .count();
        assert!(served > 0, "{test}: no POST reached {upstream}:\n{log}");
    }
    let failed: Vec<&str> = log
        .lines()
        .filter(|line| {
            line.starts_with("POST /mcp ") && !line.contains(" 200 ") && !line.contains(" 202 ")
        })
        .collect();
    assert!(failed.is_empty(), "{test}: failed POSTs: {failed:?}");
    let sessions = session_keys(scan);
    if mode == "stateless" {
        assert_eq!(sessions, 0, "{test}: a 2026-07-28 client made a session");
    } else {
        assert!(sessions <= 1, "{test}: {sessions} sessions for one client");
    }
    eprintln!("{test}: {summary}");
}

macro_rules! generation_tests {
    ($($name:ident: $sdk:expr, $mode:literal;)*) => {
        mod on_redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let redis = RedisServer::start();
                    let scan = |args: &[&str]| redis.cli(args);
                    run(stringify!($name), $sdk, $mode, &redis.url(), &scan).await;
                }
            )*
        }
        mod on_redis_cluster {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let cluster = RedisCluster::start();
                    let scan = |args: &[&str]| {
                        (0..cluster.ports().len())
                            .map(|node| cluster.cli(node, args))
                            .collect::<Vec<_>>()
                            .join("\n")
                    };
                    run(stringify!($name), $sdk, $mode, &cluster.url(), &scan).await;
                }
            )*
        }
    };
}

generation_tests! {
    python_sdk_stateless: Sdk::Python, "stateless";
    python_sdk_session: Sdk::Python, "session";
    typescript_sdk_stateless: Sdk::TypeScript, "stateless";
    typescript_sdk_session: Sdk::TypeScript, "session";
}
