//! Three replicas of the real `postgres` binary on one Redis and one
//! PostgreSQL cluster, behind a round-robin nginx with no stickiness, driven
//! by a client on the official MCP Python SDK
//! (`tests/interop/python/postgres_client.py`) over Streamable HTTP (`/mcp`)
//! and the legacy HTTP+SSE transport (`/sse`): the client must see one
//! server, and nginx's access log must show its requests spread over all
//! three replicas.
//!
//! The client runs on the `.venv` python named by `MCP_TEST_PYTHON`
//! (installed by `scripts/install-test-deps.sh`; `scripts/test.sh` sets it).
//! Without it the tests say so on stderr and pass, unless
//! `MCP_INTEROP_REQUIRED=1`, which makes a missing client a failure.

mod common;

use std::{
    collections::BTreeMap,
    env,
    io::{Read, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::{Arc, mpsc},
    thread,
    time::{Duration, Instant},
};

use common::PgCluster;
use mcp_testkit::{Nginx, RedisServer, ReplicaSet};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_postgres");
/// `query_employees` calls the client makes per run.
const CALLS: u64 = 100;
/// Longest run of the client process.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(240);
/// Requests each replica must have served at least (round robin: about a
/// third of the client's more than `CALLS` requests).
const MIN_POSTS_PER_REPLICA: usize = 20;

#[tokio::test]
async fn python_sdk_queries_employees_through_three_replicas_over_streamable_http() {
    run_python_client("/mcp", "streamable-http", "/mcp").await;
}

#[tokio::test]
async fn python_sdk_queries_employees_through_three_replicas_over_sse() {
    run_python_client("/sse", "sse", "/messages").await;
}

/// PostgreSQL, Redis, three replicas and nginx; stopped when dropped.
struct Fleet {
    _cluster: Arc<PgCluster>,
    _redis: RedisServer,
    replicas: ReplicaSet,
    nginx: Nginx,
}

impl Fleet {
    async fn start() -> Self {
        let cluster = PgCluster::shared();
        let redis = RedisServer::start();
        let redis_url = redis.url();
        let database_url = cluster.superuser_url();
        let replicas = ReplicaSet::start(
            BINARY,
            3,
            &[
                ("REDIS_URL", &redis_url),
                ("DATABASE_URL", &database_url),
                ("PG_READONLY_PASSWORD", common::READONLY_PASSWORD),
                // Two fleets may share the cluster (max_connections=60).
                ("PG_POOL_SIZE", "4"),
                ("PG_CONNECT_TIMEOUT_MS", "5000"),
                ("PG_STATEMENT_TIMEOUT_MS", "5000"),
                ("NO_COLOR", "1"),
            ],
        )
        .await;
        let nginx = Nginx::start(&replicas.ports());
        Self {
            _cluster: cluster,
            _redis: redis,
            replicas,
            nginx,
        }
    }

    /// The last lines of every replica's log, nginx's error log and its
    /// access log, for failure messages.
    fn report(&self) -> String {
        let mut report = String::new();
        for replica in &self.replicas.replicas {
            report.push_str(&format!(
                "===== {} (127.0.0.1:{}) log, last 80 lines =====\n{}\n",
                replica.name(),
                replica.port(),
                tail(&replica.log(), 80)
            ));
        }
        report.push_str(&format!(
            "===== nginx error log =====\n{}\n===== nginx access log, last 60 lines =====\n{}",
            tail(&self.nginx.error_log(), 40),
            tail(&self.nginx.access_log(), 60)
        ));
        report
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

async fn run_python_client(path: &str, transport: &str, post_path: &str) {
    let test = format!("python_sdk_{transport}");
    let Some(python) = python(&test) else {
        return;
    };
    let fleet = Fleet::start().await;
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("replicas")
        .join(&test);
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("create the test's scratch directory");
    let mut command = Command::new(&python);
    command
        .arg(workspace_root().join("tests/interop/python/postgres_client.py"))
        .arg(format!("{}{path}", fleet.nginx.url()))
        .arg(transport)
        .args(["--calls", &CALLS.to_string()])
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let scratch_path = scratch.clone();
    let run = tokio::task::spawn_blocking(move || Run::bounded(&mut command, &scratch_path))
        .await
        .expect("the client runner");
    let context = || format!("{}\n{}", run.report(), fleet.report());
    match run.status {
        Some(status) if status.success() => {}
        Some(status) => panic!(
            "{test}: the Python SDK client failed ({status}):\n{}",
            context()
        ),
        None => panic!(
            "{test}: the Python SDK client did not finish within {CLIENT_TIMEOUT:?} and was killed:\n{}",
            context()
        ),
    }

    // The summary line.
    let line = run
        .stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let summary: Value = serde_json::from_str(line).unwrap_or_else(|error| {
        panic!(
            "{test}: the client printed no JSON summary ({error}):\n{}",
            context()
        )
    });
    assert_eq!(summary["ok"], Value::Bool(true), "{summary}\n{}", context());
    assert_eq!(summary["transport"].as_str(), Some(transport), "{summary}");
    assert_eq!(
        summary["query_employees_calls"].as_u64(),
        Some(CALLS),
        "{summary}"
    );
    assert_eq!(summary["calls"].as_u64(), Some(CALLS + 2), "{summary}");
    assert_eq!(summary["employee_count"].as_u64(), Some(3000), "{summary}");
    assert_eq!(summary["limit_cap"].as_u64(), Some(500), "{summary}");
    eprintln!("{test}: {line}");

    // Every request went through nginx, none was lost, and the POSTs were
    // spread over all three replicas.
    let log = fleet.nginx.access_log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|line| {
            let status = line.split(' ').nth(2).unwrap_or_default();
            status == "404" || status.starts_with('5')
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{test}: requests failed behind nginx: {failed:?}\n{}",
        context()
    );
    let mut spread = Vec::new();
    for replica in &fleet.replicas.replicas {
        let upstream = format!("127.0.0.1:{}", replica.port());
        let posts = log
            .lines()
            .filter(|line| {
                line.starts_with(&format!("POST {post_path} 2")) && line.ends_with(&upstream)
            })
            .count();
        spread.push((replica.name().to_owned(), posts));
    }
    let mut requests: BTreeMap<String, usize> = BTreeMap::new();
    for line in log.lines() {
        let request: Vec<&str> = line.split(' ').take(3).collect();
        *requests.entry(request.join(" ")).or_default() += 1;
    }
    eprintln!("{test}: nginx saw {requests:?}; POST {post_path} per replica: {spread:?}");
    assert!(
        spread
            .iter()
            .all(|(_, posts)| *posts >= MIN_POSTS_PER_REPLICA),
        "{test}: POST {post_path} per replica {spread:?}, expected at least {MIN_POSTS_PER_REPLICA} on each:\n{}",
        context()
    );
    let total: usize = spread.iter().map(|(_, posts)| posts).sum();
    assert!(
        total as u64 > CALLS,
        "{test}: only {total} POST {post_path} in nginx's log for {CALLS} calls:\n{}",
        context()
    );
}

// --- the client ----------------------------------------------------------------

/// The `.venv` python named by `MCP_TEST_PYTHON`, or `None` (after saying
/// why on stderr) when it is missing and the interop tests are optional.
/// Panics when it is missing and `MCP_INTEROP_REQUIRED=1`.
fn python(test: &str) -> Option<PathBuf> {
    let reason = match env::var_os("MCP_TEST_PYTHON") {
        Some(value) if !value.is_empty() => {
            let python = PathBuf::from(value);
            if python.is_file() {
                return Some(python);
            }
            format!("MCP_TEST_PYTHON={} does not exist", python.display())
        }
        _ => "MCP_TEST_PYTHON is not set".to_owned(),
    };
    if env::var("MCP_INTEROP_REQUIRED").as_deref() == Ok("1") {
        panic!(
            "{test}: {reason}, and MCP_INTEROP_REQUIRED=1: install the clients with scripts/install-test-deps.sh (scripts/test.sh does)"
        );
    }
    // Written past the test harness's capture, so that it shows.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: {reason}; run scripts/test.sh to install the official MCP clients and run the interop tests"
    );
    None
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

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
            .current_dir(scratch)
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

    /// The command and its output, for failure messages.
    fn report(&self) -> String {
        format!(
            "--- command ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.stdout.trim_end(),
            self.stderr.trim_end()
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
