//! The hub as a transparent proxy: the official MCP conformance suite
//! (0.1.16's active suite, and the 0.2 line's `--requirements 2025-11-25`)
//! passes through the hub's `/mcp/everything`, three hub replicas behind a
//! round-robin nginx in front of `services/everything` (three replicas on
//! Redis behind their own nginx), every check held to pass.
//!
//! The suite is installed in `tests/conformance` by
//! `scripts/install-test-deps.sh`; without it the test says so and passes,
//! unless `MCP_INTEROP_REQUIRED=1` (set by `scripts/test.sh`).

#[path = "../../calculator/tests/interop_support/mod.rs"]
mod interop_support;
mod support;

use std::{path::PathBuf, process::Command, time::Duration};

use interop_support::Run;
use mcp_testkit::{Fleet, workspace_binary};
use serde_json::json;
use support::HubFleet;

/// Longest run of one suite.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// The suites, as `run.sh` arguments after the URL.
const SUITES: [&[&str]; 2] = [&[], &["--requirements", "2025-11-25"]];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_through_the_hub_as_a_transparent_proxy() {
    let test = "hub_conformance";
    let dir = interop_support::workspace_root().join("tests/conformance");
    let installed = dir.join("node_modules/@modelcontextprotocol/conformance");
    let prerequisite = if installed.is_dir() {
        Ok(installed)
    } else {
        Err(format!("{} is missing", installed.display()))
    };
    if interop_support::available(test, prerequisite).is_none() {
        return;
    }
    let everything = Fleet::start(workspace_binary("everything"), 3, &[]).await;
    let config = json!({"servers": {
        "everything": {"url": format!("{}/mcp", everything.url()), "sharing": "session"},
    }});
    let hub = HubFleet::start_open(&config, 3).await;
    let url = format!("{}/mcp/everything", hub.url());
    for suite in SUITES {
        let scratch = interop_support::scratch_dir("hub_conformance", &suite.join("_"));
        let script: PathBuf = dir.join("run.sh");
        let args: Vec<String> = suite.iter().map(|arg| (*arg).to_owned()).collect();
        let url = url.clone();
        let run = tokio::task::spawn_blocking(move || {
            let mut command = Command::new("bash");
            command.arg(script).arg(url).args(args);
            Run::bounded(&mut command, &scratch, SUITE_TIMEOUT)
        })
        .await
        .expect("the suite's runner");
        let logs = || {
            format!(
                "--- hub ---\n{}\n--- everything ---\n{}",
                hub.replicas.logs(),
                everything.replicas.logs()
            )
        };
        run.assert_success(
            &format!("the conformance suite {suite:?} through the hub"),
            &logs,
        );
        eprintln!("{}", run.stdout.lines().last().unwrap_or_default());
    }
}
