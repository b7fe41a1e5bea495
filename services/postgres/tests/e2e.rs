//! End to end: the real `postgres` binary, configured only through the
//! environment, driven by rmcp's client over Streamable HTTP at `/mcp`.
//! Also checks that neither password appears anywhere in its output.

mod common;

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{PgCluster, free_port};
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, CallToolResult, ReadResourceRequestParams, ResourceContents},
    service::{RoleClient, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

/// The service binary, killed on drop; its output goes to a log file.
/// The tools the service lists, sorted: its own three and the session tools
/// mcp-session adds to every service.
const TOOLS: [&str; 6] = [
    "get_employee_schema",
    "get_session_analytics",
    "get_user_sessions",
    "health_check",
    "query_employees",
    "run_readonly_query",
];

struct Service {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Service {
    fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "mcp-postgres-e2e-{}-{port}.log",
            std::process::id()
        ));
        let output = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_postgres"));
        command
            .env("MCP_SERVER_HOST", "127.0.0.1")
            .env("MCP_SERVER_PORT", port.to_string())
            .env("DATABASE_URL", database_url)
            .env("PG_STATEMENT_TIMEOUT_MS", "1000")
            .env("PG_MAX_ROWS", "100")
            .env("PG_CONNECT_TIMEOUT_MS", "1000")
            .env("RUST_LOG", "debug")
            .env_remove("PG_READONLY_PASSWORD")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start the postgres service");
        let service = Self { child, port, log };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the service did not listen within 30 s:\n{}",
                service.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn client(&self) -> RunningService<RoleClient, ()> {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!(
                "http://127.0.0.1:{}/mcp",
                self.port
            )),
        );
        ().serve(transport).await.expect("MCP initialize")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|error| panic!("{tool}: {error}"))
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_binary_serves_tools_and_resources_over_streamable_http() {
    let cluster = PgCluster::shared();
    let baseline = cluster.checksum();
    let service = Service::start(
        &cluster.superuser_url(),
        &[("PG_READONLY_PASSWORD", common::READONLY_PASSWORD)],
    );
    let client = service.client().await;
    // The read-only role logs in itself: nothing to warn about.
    assert!(!service.output().contains("logs in as a superuser"));

    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|server| server.name.as_str()),
        Some("postgres")
    );
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    let readonly = tools
        .iter()
        .find(|tool| tool.name == "run_readonly_query")
        .unwrap();
    let description = readonly.description.as_deref().unwrap_or_default();
    for fragment in ["1000 ms", "100 rows", "COMMIT", "one"] {
        assert!(description.contains(fragment), "{fragment}: {description}");
    }
    assert!(tools.iter().all(|tool| tool.output_schema.is_some()));

    let page = call(
        &client,
        "query_employees",
        json!({"department": "Legal", "sort_by": "salary", "sort_order": "desc", "limit": 5}),
    )
    .await;
    assert_ne!(page.is_error, Some(true), "{}", text_of(&page));
    let structured = page.structured_content.expect("structured content");
    assert_eq!(structured["employees"].as_array().unwrap().len(), 5);
    assert_eq!(structured["employees"][0]["department"], "Legal");
    assert_eq!(
        structured["total"].as_i64().unwrap().to_string(),
        cluster.psql(
            common::DATABASE,
            "SELECT count(*) FROM employees WHERE department_id = \
             (SELECT id FROM departments WHERE name = 'Legal')"
        )
    );

    let schema = call(
        &client,
        "get_employee_schema",
        json!({"table": "employees"}),
    )
    .await;
    assert_ne!(schema.is_error, Some(true), "{}", text_of(&schema));
    assert_eq!(
        schema.structured_content.unwrap()["tables"][0]["primary_key"],
        json!(["id"])
    );

    let answer = call(
        &client,
        "run_readonly_query",
        json!({"sql": "SELECT count(*) AS n, max(salary) AS top FROM employees"}),
    )
    .await;
    assert_ne!(answer.is_error, Some(true), "{}", text_of(&answer));
    assert_eq!(
        answer.structured_content.unwrap()["rows"],
        json!([[3000, "420000.00"]])
    );

    for (sql, expected) in [
        ("COMMIT; DROP TABLE employees", "42601"),
        ("DROP TABLE employees", "refused"),
        ("SELECT pg_sleep(30)", "57014"),
        ("SELECT generate_series(1, 1000)", "PG_MAX_ROWS"),
    ] {
        let refused = call(&client, "run_readonly_query", json!({ "sql": sql })).await;
        assert_eq!(refused.is_error, Some(true), "{sql}");
        assert!(
            text_of(&refused).contains(expected),
            "{sql}: {}",
            text_of(&refused)
        );
    }

    let invalid = client
        .call_tool(
            CallToolRequestParams::new("query_employees")
                .with_arguments(json!({"departmnt": "Legal"}).as_object().cloned().unwrap()),
        )
        .await
        .expect_err("unknown argument");
    assert!(invalid.to_string().contains("departmnt"), "{invalid}");

    let resources = client.list_resources(None).await.unwrap();
    let uris: Vec<&str> = resources.resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(
        uris.contains(&"postgres://public/employees/schema"),
        "{uris:?}"
    );
    let templates = client.list_resource_templates(None).await.unwrap();
    assert_eq!(
        templates.resource_templates[0].uri_template,
        "postgres://{schema}/{table}/schema"
    );
    let read = client
        .read_resource(ReadResourceRequestParams::new(
            "postgres://public/departments/schema",
        ))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("expected a text resource");
    };
    let document: Value = serde_json::from_str(text).unwrap();
    assert_eq!(document["name"], "departments");
    client
        .read_resource(ReadResourceRequestParams::new(
            "postgres://public/nope/schema",
        ))
        .await
        .expect_err("unknown table");

    client.cancel().await.ok();
    assert_eq!(cluster.checksum(), baseline);
    let output = service.output();
    assert!(output.contains("postgres service configured"), "{output}");
    assert!(!output.contains(common::SUPERUSER_PASSWORD), "{output}");
    assert!(!output.contains(common::READONLY_PASSWORD), "{output}");
}

#[tokio::test]
async fn the_binary_reports_a_database_that_is_down_and_keeps_the_session() {
    let dead = format!("postgres://app:hunter2@127.0.0.1:{}/hr", free_port());
    let service = Service::start(&dead, &[]);
    let client = service.client().await;
    for _ in 0..2 {
        let result = call(&client, "query_employees", json!({})).await;
        assert_eq!(result.is_error, Some(true));
        let text = text_of(&result);
        assert!(text.contains("cannot connect to the database"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
    let result = call(&client, "run_readonly_query", json!({"sql": "SELECT 1"})).await;
    assert_eq!(result.is_error, Some(true));
    // The session survived the failures.
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.into_owned())
        .collect();
    names.sort();
    assert_eq!(names, TOOLS);
    client.cancel().await.ok();
    let output = service.output();
    assert!(output.contains("database not reachable yet"), "{output}");
    assert!(!output.contains("hunter2"), "{output}");
}

/// Every tool's schemas are JSON Schema 2020-12, and the official
/// TypeScript SDK lists them without a warning (the database is not needed).
/// The `/metrics` scrape after those requests passes `promtool check metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_schemas_and_the_metrics_scrape_are_clean() {
    let dead = format!("postgres://app:hunter2@127.0.0.1:{}/hr", free_port());
    let service = Service::start(&dead, &[]);
    let url = format!("http://127.0.0.1:{}/mcp", service.port);
    let checked = mcp_testkit::tool_schemas::assert_tool_schemas(&url).await;
    assert_eq!(checked, TOOLS.len());
    // The scrape after those requests passes Prometheus' own check.
    let base = format!("http://127.0.0.1:{}", service.port);
    mcp_testkit::promtool_check_metrics(&mcp_testkit::Scrape::fetch_text(&base).await);
}

/// `GET /readyz` of `service`: the status code and the JSON body.
async fn readyz(service: &Service) -> (u16, Value) {
    let response = reqwest::get(format!("http://127.0.0.1:{}/readyz", service.port))
        .await
        .expect("GET /readyz");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn readyz_reports_the_database() {
    let cluster = PgCluster::start();
    let service = Service::start(&cluster.superuser_url(), &[]);
    let (status, body) = readyz(&service).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");
    // A superuser DATABASE_URL without PG_READONLY_PASSWORD is named at
    // start-up (red-team finding 11): run_readonly_query cannot work so.
    assert!(
        service
            .output()
            .contains("DATABASE_URL logs in as a superuser and PG_READONLY_PASSWORD is unset"),
        "{}",
        service.output()
    );

    // The database goes away: the replica leaves the load balancer, and the
    // body says why, without the password.
    cluster.stop();
    let (status, body) = readyz(&service).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["database"]["status"], "failing", "{body}");
    let error = body["checks"]["database"]["error"].as_str().unwrap();
    assert!(error.contains("cannot connect to the database"), "{error}");
    assert!(!body.to_string().contains(common::SUPERUSER_PASSWORD));

    // It comes back: so does the replica, by itself.
    cluster.restart();
    let started = Instant::now();
    loop {
        let (status, body) = readyz(&service).await;
        if status == 200 {
            assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not ready 30 s after the database came back: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Peak resident memory (`VmHWM`) of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the service's /proc status")
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmHWM")
        * 1024
}

/// The service's memory stays under this while huge values are asked for
/// (docs/services/postgres.md, Limits).
const MEMORY_CEILING: u64 = 150 * 1024 * 1024;

/// Red-team finding 8: a single huge value (here 100 MB, eight queries at
/// once) is refused as its message header arrives, before tokio-postgres
/// buffers it: the service's peak memory stays under [`MEMORY_CEILING`]
/// instead of growing by the values' size, each call gets a clear error, and
/// the service goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_values_are_refused_before_they_reach_memory() {
    let cluster = PgCluster::shared();
    let service = Service::start(
        &cluster.superuser_url(),
        &[
            ("PG_READONLY_PASSWORD", common::READONLY_PASSWORD),
            ("PG_STATEMENT_TIMEOUT_MS", "10000"),
        ],
    );
    let client = service.client().await;
    let huge = [
        "SELECT repeat('x', 100000000)",
        "SELECT repeat('x', 100000000) AS a, 1 AS b",
        "SELECT string_agg(md5(i::text), '') FROM generate_series(1, 3000000) i",
        "SELECT repeat('y', 100000000)::int",
    ];
    let calls = (0..8).map(|index| {
        call(
            &client,
            "run_readonly_query",
            json!({"sql": huge[index % huge.len()]}),
        )
    });
    let results = futures::future::join_all(calls).await;
    for (index, result) in results.iter().enumerate() {
        let text = text_of(result);
        assert_eq!(result.is_error, Some(true), "call {index}: {text}");
        assert!(
            text.contains("larger than") || text.contains("exceeds"),
            "call {index}: {text}"
        );
    }
    let peak = peak_rss(service.child.id());
    eprintln!(
        "peak RSS of the postgres service: {} MiB",
        peak / (1024 * 1024)
    );
    assert!(
        peak < MEMORY_CEILING,
        "peak RSS {} MiB, over the {} MiB ceiling",
        peak / (1024 * 1024),
        MEMORY_CEILING / (1024 * 1024)
    );
    // The service, and its pools, go on.
    let count = call(
        &client,
        "run_readonly_query",
        json!({"sql": "SELECT count(*) AS n FROM employees"}),
    )
    .await;
    assert_ne!(count.is_error, Some(true), "{}", text_of(&count));
    assert!(!service.output().contains("panicked"));
}
