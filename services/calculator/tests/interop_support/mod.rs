//! Shared by the interop tests (`interop.rs`, `interop_replicas.rs`): finding
//! the official MCP clients, running them as bounded child processes, and
//! reading the JSON summary the SDK clients print.
//!
//! The clients are installed by `scripts/install-test-deps.sh` and found
//! through `MCP_TEST_PYTHON` (the `.venv` python) and `MCP_TEST_NODE_DIR`
//! (`tests/interop/typescript`, with its `node_modules`). `scripts/test.sh`
//! sets both, and `MCP_INTEROP_REQUIRED=1` so that a missing client fails the
//! test; without that variable a test whose client is missing says so on
//! stderr and passes.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::{
    env,
    io::{Read, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// Longest run of one client process doing its checks (no `--calls`).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Tools the calculator lists: its 11 arithmetic tools and the 3 session
/// tools of mcp-session (`health_check`, `get_user_sessions`,
/// `get_session_analytics`).
pub const TOOLS: u64 = 14;
/// Calls each SDK client makes in its checks: 11 results, 2 tool errors, 1
/// invalid-params error.
pub const SDK_CLIENT_CALLS: u64 = 14;

// --- the SDK clients -----------------------------------------------------------

/// An official MCP SDK with a calculator client in `tests/interop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// `tests/interop/python/calculator_client.py`, on the `.venv` python.
    Python,
    /// `tests/interop/typescript/calculator_client.mjs`, on the machine's `node`.
    TypeScript,
}

impl Sdk {
    /// The `sdk` field of the client's summary.
    pub fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::TypeScript => "typescript",
        }
    }

    /// For messages: "the Python SDK client".
    pub fn what(self) -> &'static str {
        match self {
            Self::Python => "the Python SDK client",
            Self::TypeScript => "the TypeScript SDK client",
        }
    }

    /// The installed client, or `None` (see [`available`]) when it is missing.
    pub fn client(self, test: &str) -> Option<SdkClient> {
        match self {
            Self::Python => {
                let python = available(test, python())?;
                Some(SdkClient {
                    sdk: self,
                    program: python,
                    script: workspace_root().join("tests/interop/python/calculator_client.py"),
                    dir: None,
                })
            }
            Self::TypeScript => {
                let dir = available(test, node_dir("node_modules/@modelcontextprotocol/sdk"))?;
                let node = available(test, on_path("node"))?;
                Some(SdkClient {
                    sdk: self,
                    program: node,
                    script: dir.join("calculator_client.mjs"),
                    dir: Some(dir),
                })
            }
        }
    }
}

/// An SDK's calculator client, ready to run.
#[derive(Debug, Clone)]
pub struct SdkClient {
    /// Which SDK.
    pub sdk: Sdk,
    program: PathBuf,
    script: PathBuf,
    dir: Option<PathBuf>,
}

impl SdkClient {
    /// The command running the client against `url` over `transport`
    /// (`streamable-http` or `sse`), with `extra` arguments (`--calls N`).
    pub fn command(&self, url: &str, transport: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .arg(&self.script)
            .arg(url)
            .arg(transport)
            .args(extra);
        match self.sdk {
            Sdk::Python => {
                command
                    .env("PYTHONUNBUFFERED", "1")
                    .env("PYTHONDONTWRITEBYTECODE", "1");
            }
            Sdk::TypeScript => {
                if let Some(dir) = &self.dir {
                    command.current_dir(dir);
                }
            }
        }
        command
    }
}

/// Reads the JSON summary line an SDK client prints on success and checks
/// its common fields (`ok`, `sdk`, `transport`, at least [`TOOLS`] tools
/// listed); `context` is added
/// to failure messages (the server's logs).
pub fn summary(run: &Run, sdk: Sdk, transport: &str, context: &dyn Fn() -> String) -> Value {
    let line = run
        .stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let summary: Value = serde_json::from_str(line).unwrap_or_else(|error| {
        panic!(
            "{} printed no JSON summary ({error}):\n{}",
            sdk.what(),
            run.report(&context())
        )
    });
    let failure = || format!("summary {summary}\n{}", run.report(&context()));
    assert_eq!(summary["ok"], Value::Bool(true), "{}", failure());
    assert_eq!(summary["sdk"].as_str(), Some(sdk.name()), "{}", failure());
    assert_eq!(
        summary["transport"].as_str(),
        Some(transport),
        "{}",
        failure()
    );
    assert!(
        summary["tools"]
            .as_u64()
            .is_some_and(|tools| tools >= TOOLS),
        "{}",
        failure()
    );
    summary
}

// --- prerequisites -----------------------------------------------------------

/// The client at hand, or `None` (after saying why on stderr) when it is
/// missing and the interop tests are optional. Panics when it is missing and
/// `MCP_INTEROP_REQUIRED=1`.
pub fn available(test: &str, prerequisite: Result<PathBuf, String>) -> Option<PathBuf> {
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
pub fn python() -> Result<PathBuf, String> {
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
pub fn node_dir(needed: &str) -> Result<PathBuf, String> {
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
pub fn on_path(name: &str) -> Result<PathBuf, String> {
    env::split_paths(&env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("no `{name}` on PATH"))
}

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// A fresh scratch directory for `test` under the target directory:
/// `<CARGO_TARGET_TMPDIR>/<suite>/<test>`.
pub fn scratch_dir(suite: &str, test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(suite)
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test's scratch directory");
    dir
}

// --- bounded child processes -----------------------------------------------------

/// What a client process did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// `None` when it was killed for running over its time limit.
    pub status: Option<ExitStatus>,
    /// Its time limit.
    pub limit: Duration,
    /// How long it ran.
    pub elapsed: Duration,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Run {
    /// Runs `command` (stdin closed, output captured, proxies bypassed for
    /// loopback, temporary files in `scratch`) for at most `limit`; a process
    /// still running then is killed together with its process group.
    pub fn bounded(command: &mut Command, scratch: &Path, limit: Duration) -> Self {
        let described = format!("{command:?}");
        let started = Instant::now();
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
        let deadline = started + limit;
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
        let elapsed = started.elapsed();
        // Output still held open by a stray grandchild is not waited for long.
        let grace = Duration::from_secs(5);
        Self {
            command: described,
            status,
            limit,
            elapsed,
            stdout: stdout.recv_timeout(grace).unwrap_or_default(),
            stderr: stderr.recv_timeout(grace).unwrap_or_default(),
        }
    }

    /// Panics with the client's output and `context()` (the server's logs)
    /// unless the process exited with status 0.
    pub fn assert_success(&self, what: &str, context: &dyn Fn() -> String) {
        match self.status {
            Some(status) if status.success() => {}
            Some(status) => panic!(
                "{what} failed ({status}) after {:.1?}:\n{}",
                self.elapsed,
                self.report(&context())
            ),
            None => panic!(
                "{what} did not finish within {:?} and was killed:\n{}",
                self.limit,
                self.report(&context())
            ),
        }
    }

    /// The command, its output and `context`, for failure messages.
    pub fn report(&self, context: &str) -> String {
        format!(
            "--- command ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
            self.command,
            self.stdout.trim_end(),
            self.stderr.trim_end(),
            context
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
