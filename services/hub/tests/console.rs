//! The web console (`/console`) in a real browser: Debian's Chromium,
//! headless, driven by playwright-core (`tests/browser/console.mjs`),
//! against three hub replicas behind the round-robin nginx. A user signs in
//! with a bearer token, connects the calculator, calls `add` with a=2 b=40
//! through the form generated from its input schema and reads 42 on the
//! page; after a reload the same client session is there with the
//! calculator still connected, and a call works again; then it connects the
//! `everything` service, gets a prompt through its generated form and reads
//! a resource; and connects the calculator by URL as a 2026-07-28
//! (stateless) server through the URL form and calls it. The page must log no
//! error (a Content-Security-Policy violation included). Screenshots of
//! each step are saved in `target/test-artifacts/console/`.
//!
//! Without Chromium or the npm package the test says so and passes, unless
//! `MCP_INTEROP_REQUIRED=1` (set by `scripts/test.sh`).

#[path = "../../calculator/tests/interop_support/mod.rs"]
mod interop_support;
mod support;

use std::{path::PathBuf, process::Command};

use mcp_testkit::{Fleet, auth, workspace_binary};
use serde_json::json;
use support::HubFleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_connects_calls_and_survives_a_reload_in_chromium() {
    let test = "hub_console_chromium";
    let root = interop_support::workspace_root();
    let driver = root.join("tests/browser/console.mjs");
    let installed = root.join("tests/browser/node_modules/playwright-core");
    let Some(_) = interop_support::available(
        test,
        if installed.is_dir() {
            Ok(installed)
        } else {
            Err("tests/browser has no playwright-core (npm ci not run)".to_owned())
        },
    ) else {
        return;
    };
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    let Some(chromium) = interop_support::available(
        test,
        if chromium.is_file() {
            Ok(chromium)
        } else {
            Err(format!(
                "no {} (apt-get install chromium)",
                chromium.display()
            ))
        },
    ) else {
        return;
    };
    let Some(node) = interop_support::available(test, interop_support::on_path("node")) else {
        return;
    };

    let calculator = Fleet::start(workspace_binary("calculator"), 1, &[]).await;
    let everything = Fleet::start(workspace_binary("everything"), 1, &[]).await;
    let config = json!({"servers": {
        "calculator": {"url": format!("{}/mcp", calculator.url()), "sharing": "user",
                       "description": "Arithmetic: add, subtract, multiply, divide"},
        "everything": {"url": format!("{}/mcp", everything.url()), "sharing": "user",
                       "description": "Every MCP feature, for testing clients"},
    },
    // The calculator by URL too (loopback, allowed for this test only).
    "client_sessions": {"allowed_urls": ["http://127.0.0.1:*/mcp"],
                        "allowed_networks": ["127.0.0.0/8"]}});
    let calculator_url = format!("{}/mcp", calculator.replicas.replicas[0].url());
    let hub = HubFleet::start(&config, 3).await;
    let screenshots = root.join("target/test-artifacts/console");
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).unwrap();
    let (url, token) = (hub.url(), auth::token_for("alice"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(node)
            .arg(driver)
            .args([&url, &token])
            .arg(&screenshots)
            .arg(calculator_url)
            .env("CHROMIUM", chromium)
            .output()
            .expect("run the browser driver")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the console failed in Chromium:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        hub.replicas.logs()
    );
    eprintln!("{stdout}");
    assert!(
        root.join("target/test-artifacts/console/04-tool-result.png")
            .is_file(),
        "screenshots saved"
    );
}
