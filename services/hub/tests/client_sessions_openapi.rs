//! The client-session API's OpenAPI document: served at
//! `/api/openapi.json` to anyone, OpenAPI 3.1, naming every route; and
//! fuzzed by schemathesis (PyPI, pinned in `tests/fuzz/requirements.txt`)
//! through three hub replicas, with a signed-in user and a client session
//! that has the calculator connected: no answer is a server error, every
//! status and content type is one the document declares, and every body
//! matches its schema.
//!
//! Without schemathesis in `.venv` the test says so and passes, unless
//! `MCP_INTEROP_REQUIRED=1` (set by `scripts/test.sh`).

#[path = "../../calculator/tests/interop_support/mod.rs"]
mod interop_support;
mod support;

use std::process::Command;

use mcp_testkit::{
    Fleet,
    auth::{self, Auth},
    workspace_binary,
};
use serde_json::{Value, json};
use support::{HubFleet, client_session};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_is_served_and_survives_schemathesis() {
    let calculator = Fleet::start(workspace_binary("calculator"), 1, &[]).await;
    let config = json!({
        "servers": {"calculator": {"url": format!("{}/mcp", calculator.url()), "sharing": "user"}},
        "client_sessions": {"allowed_urls": ["https://mcp.example.com/"], "max_per_user": 1000},
    });
    let hub = HubFleet::start(&config, 3).await;
    let base = hub.url();

    // Public, 3.1, every route.
    let document: Value = reqwest::get(format!("{base}/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    for path in [
        "/api/servers",
        "/api/client-sessions",
        "/api/client-sessions/{id}",
        "/api/client-sessions/{id}/connect",
        "/api/client-sessions/{id}/disconnect",
        "/api/client-sessions/{id}/tools",
        "/api/client-sessions/{id}/prompts",
        "/api/client-sessions/{id}/resources",
    ] {
        assert!(
            document["paths"].get(path).is_some(),
            "{path} in the document"
        );
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());

    let python = interop_support::python();
    let Some(python) = interop_support::available("hub_openapi_schemathesis", python) else {
        return;
    };
    let schemathesis = python.with_file_name("schemathesis");
    let Some(schemathesis) = interop_support::available(
        "hub_openapi_schemathesis",
        if schemathesis.is_file() {
            Ok(schemathesis)
        } else {
            Err(format!(
                "no {} (pip install -r tests/fuzz/requirements.txt)",
                schemathesis.display()
            ))
        },
    ) else {
        return;
    };

    // A client session with the calculator, for requests that name it.
    let token = auth::token_for("fuzzer");
    let client = HubFleet::client(&Auth::Bearer(token.clone()), &[]);
    client_session(&client, &base, &["calculator"]).await;

    let reports = interop_support::workspace_root().join("target/test-artifacts/schemathesis");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&schemathesis)
            .args(["run", &format!("{base}/api/openapi.json"), "--url", &base])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--max-examples", "40", "--seed", "1", "--workers", "2"])
            .args(["--generation-database", "none", "--request-timeout", "20"])
            .arg("--report-dir")
            .arg(&reports)
            .args(["--report", "junit"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        hub.replicas
            .logs()
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("panicked"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "{}",
        stdout
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
