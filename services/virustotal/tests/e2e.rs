//! End to end: the real `virustotal` binary, configured only through the
//! environment, pointed at the local v3 stub, driven over Streamable HTTP:
//! the tool list with output schemas, one call of every tool, bad
//! arguments, a missing key (the service starts; every tool says so), a
//! wrong key (a tool error and a failing `/readyz`), and the API key never
//! in the service's log, at debug level.

mod stub;

use mcp_testkit::{RawSession, Replica};
use serde_json::{Value, json};
use stub::{EICAR_SHA256, MALWARE_TEST_URL, Stub};
use virustotal::errors::META_KEY;

const BINARY: &str = env!("CARGO_BIN_EXE_virustotal");
const KEY: &str = "e2e-key-7f3a9c1d5e8b2f4a6c0d9e1b3a5f7c8d2e4b6a8c0f1d3e5b7a9c2d4f6e8a0b1c";

/// The service's own tools.
const VT_TOOLS: [&str; 6] = [
    "get_file_report",
    "get_url_report",
    "scan_url",
    "get_analysis",
    "get_domain_report",
    "get_ip_report",
];

async fn start(stub: &Stub, key: &str) -> Replica {
    let base_url = stub.base_url();
    Replica::start(
        BINARY,
        "virustotal-e2e",
        &[
            ("VIRUSTOTAL_API_KEY", key),
            ("VIRUSTOTAL_BASE_URL", &base_url),
            ("VIRUSTOTAL_RETRY_INITIAL_BACKOFF_MS", "20"),
            // More calls than the public 4 a minute; the quota has its own tests.
            ("VIRUSTOTAL_RATE_LIMIT_PER_MINUTE", "0"),
            ("RUST_LOG", "debug"),
            ("NO_COLOR", "1"),
        ],
    )
    .await
}

/// Every tool's schemas are JSON Schema 2020-12, and the official
/// TypeScript SDK lists them without a warning.
/// The `/metrics` scrape after those requests passes `promtool check metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_schemas_and_the_metrics_scrape_are_clean() {
    let stub = Stub::start(&[KEY]).await;
    let replica = start(&stub, KEY).await;
    let url = format!("{}/mcp", replica.url());
    let checked = mcp_testkit::tool_schemas::assert_tool_schemas(&url).await;
    // The VirusTotal tools and the 3 session tools.
    assert_eq!(checked, VT_TOOLS.len() + 3);
    // The scrape after those requests passes Prometheus' own check.
    mcp_testkit::promtool_check_metrics(&mcp_testkit::Scrape::fetch_text(&replica.url()).await);
}

async fn call(session: &mut RawSession, tool: &str, arguments: Value) -> Value {
    session
        .call_tool(tool, arguments)
        .await
        .unwrap_or_else(|error| panic!("{tool}: {error:?}"))
}

fn error_code(result: &Value) -> String {
    assert_eq!(result["isError"], true, "{result}");
    result["_meta"][META_KEY]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {result}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_every_tool_and_never_logs_the_key() {
    let stub = Stub::start(&[KEY]).await;
    let replica = start(&stub, KEY).await;
    let mut session = RawSession::initialize(&format!("{}/mcp", replica.url()))
        .await
        .expect("initialize");

    let listed = session
        .request("tools/list", json!({}))
        .await
        .expect("tools/list");
    let tools = listed["tools"].as_array().expect("tools");
    let mut names: Vec<&str> = tools
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "get_analysis",
            "get_domain_report",
            "get_file_report",
            "get_ip_report",
            "get_session_analytics",
            "get_url_report",
            "get_user_sessions",
            "health_check",
            "scan_url"
        ],
        "the six VirusTotal tools and the library's session tools"
    );
    for tool in tools
        .iter()
        .filter(|tool| VT_TOOLS.contains(&tool["name"].as_str().unwrap_or_default()))
    {
        let name = &tool["name"];
        assert!(
            tool["description"].as_str().unwrap().len() > 150,
            "{name}: a description a model can act on"
        );
        assert_eq!(tool["outputSchema"]["type"], "object", "{name}");
        assert_eq!(
            tool["inputSchema"]["required"].as_array().unwrap().len(),
            1,
            "{name}"
        );
        assert_eq!(tool["inputSchema"]["additionalProperties"], false, "{name}");
    }

    let file = call(
        &mut session,
        "get_file_report",
        json!({"hash": EICAR_SHA256}),
    )
    .await;
    assert_eq!(file["isError"], false, "{file}");
    assert_eq!(
        file["structuredContent"]["report"]["analysis"]["verdict"],
        "malicious"
    );
    assert!(
        file["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("flagged by 10 of 13 engines")
    );

    let url = call(
        &mut session,
        "get_url_report",
        json!({"url": MALWARE_TEST_URL}),
    )
    .await;
    assert_eq!(url["structuredContent"]["found"], true, "{url}");

    let scan = call(
        &mut session,
        "scan_url",
        json!({"url": "https://fresh.example.org/"}),
    )
    .await;
    let analysis_id = scan["structuredContent"]["analysis_id"]
        .as_str()
        .expect("analysis id")
        .to_owned();
    let analysis = call(
        &mut session,
        "get_analysis",
        json!({"analysis_id": analysis_id}),
    )
    .await;
    assert_eq!(
        analysis["structuredContent"]["report"]["status"], "queued",
        "{analysis}"
    );

    let domain = call(
        &mut session,
        "get_domain_report",
        json!({"domain": "google.com"}),
    )
    .await;
    assert_eq!(
        domain["structuredContent"]["report"]["registrar"],
        "MarkMonitor Inc."
    );
    let ip = call(
        &mut session,
        "get_ip_report",
        json!({"ip": "2001:4860:4860::8888"}),
    )
    .await;
    assert_eq!(ip["structuredContent"]["report"]["asn"], 15169);

    // Cached on a second call.
    let again = call(
        &mut session,
        "get_file_report",
        json!({"hash": EICAR_SHA256}),
    )
    .await;
    assert_eq!(again["structuredContent"]["cached"], true);

    // An invalid indicator is a tool error; arguments of the wrong shape are
    // a JSON-RPC invalid-params error.
    let invalid = call(&mut session, "get_ip_report", json!({"ip": "999.1.1.1"})).await;
    assert_eq!(error_code(&invalid), "InvalidIndicator");
    let wrong_shape = session
        .call_tool("get_file_report", json!({"sha": EICAR_SHA256}))
        .await
        .expect_err("unknown argument");
    assert!(
        format!("{wrong_shape:?}").contains("-32602"),
        "{wrong_shape:?}"
    );

    assert_eq!(stub.call_count(), 6, "{:?}", stub.calls());
    let log = replica.log();
    assert!(log.contains("virustotal service configured"), "{log}");
    assert!(log.contains("DEBUG"), "the log is at debug level:\n{log}");
    assert!(
        log.contains(&virustotal::config::key_id(KEY)),
        "the key is named by its id"
    );
    assert!(!log.contains(KEY), "the API key appears in the log:\n{log}");
    assert!(
        !log.contains(&KEY[..24]),
        "part of the API key appears in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_starts_the_service_and_every_tool_says_so() {
    let stub = Stub::start(&[KEY]).await;
    // Replica::start waits for /readyz 200: the service is up and ready.
    let replica = start(&stub, "").await;
    let mut session = RawSession::initialize(&format!("{}/mcp", replica.url()))
        .await
        .expect("initialize");
    for (tool, arguments) in [
        ("get_file_report", json!({"hash": EICAR_SHA256})),
        ("get_url_report", json!({"url": MALWARE_TEST_URL})),
        ("scan_url", json!({"url": MALWARE_TEST_URL})),
        ("get_analysis", json!({"analysis_id": "u-abc-1"})),
        ("get_domain_report", json!({"domain": "google.com"})),
        ("get_ip_report", json!({"ip": "8.8.8.8"})),
    ] {
        let result = call(&mut session, tool, arguments).await;
        assert_eq!(error_code(&result), "ApiKeyNotConfigured", "{tool}");
        assert!(
            result["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("VIRUSTOTAL_API_KEY")
        );
    }
    assert_eq!(stub.call_count(), 0);
    assert!(replica.log().contains("VIRUSTOTAL_API_KEY is not set"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_a_tool_error_and_fails_readiness() {
    let stub = Stub::start(&[KEY]).await;
    let wrong = "wrong-key-c0ffee-4b1d-9f2e-a7c3d5e6f8091a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d";
    let replica = start(&stub, wrong).await;
    let mut session = RawSession::initialize(&format!("{}/mcp", replica.url()))
        .await
        .expect("initialize");
    let result = call(
        &mut session,
        "get_domain_report",
        json!({"domain": "google.com"}),
    )
    .await;
    assert_eq!(error_code(&result), "WrongCredentialsError");
    assert_eq!(stub.calls()[0].api_key.as_deref(), Some(wrong));

    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/readyz", replica.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    let check = &body["checks"]["virustotal_api_key"];
    assert_eq!(check["status"], "failing", "{body}");
    let message = check["error"].as_str().unwrap();
    assert!(
        message.contains("WrongCredentialsError") && message.contains("VIRUSTOTAL_API_KEY"),
        "{message}"
    );
    assert!(!message.contains(wrong));
    let health = client
        .get(format!("{}/healthz", replica.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "liveness is not affected");
    let log = replica.log();
    assert!(
        !log.contains(wrong),
        "the API key appears in the log:\n{log}"
    );
}
