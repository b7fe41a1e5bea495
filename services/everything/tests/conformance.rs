//! The official MCP conformance suite against the everything server: in
//! process (`mcp-session` with its in-memory session and task stores), then
//! as three replicas behind a round-robin nginx on Redis and on a Redis
//! Cluster. `tests/conformance/run.sh` runs each of [`SUITES`]: 0.1.16's
//! active suite, and the 0.2 line's `--requirements 2025-11-25` and
//! `--requirements 2026-07-28` with their unscored scenarios (pending ones
//! and the Tasks extension), every check held to pass.
//!
//! The suite (`@modelcontextprotocol/conformance`) and the Node 22 it needs
//! are installed in `tests/conformance/node_modules` by
//! `scripts/install-test-deps.sh`. Without them the test says so on stderr
//! and passes, unless `MCP_INTEROP_REQUIRED=1` (set by `scripts/test.sh`),
//! when a missing install fails it. The suite's run is bounded in time.

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

use everything::Everything;
use mcp_session::{Config, McpServer};
use tokio::sync::oneshot;

/// Longest run of the whole suite (it takes a few seconds when all is well).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_conformance_suite_passes() {
    let dir = conformance_dir();
    if !installed(&dir) {
        return;
    }

    let mut config = Config::new(0);
    config.host = "127.0.0.1".into();
    config.shutdown_grace = Duration::from_secs(2);
    let bound = McpServer::new(config, Everything::new)
        .bind()
        .await
        .expect("bind a free port");
    let url = format!("http://{}/mcp", bound.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));

    for suite in SUITES {
        run_suite(&dir, &url, suite, String::new).await;
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops within its grace period")
        .expect("the server task does not panic")
        .expect("the server runs without I/O errors");
}

/// The suites every run goes through, as `run.sh` arguments after the URL:
/// 0.1.16's active suite, then the 0.2 line's requirement sets for
/// 2025-11-25 (sessions) and 2026-07-28 (stateless), each with the
/// scenarios it runs unscored (pending ones, the Tasks extension).
const SUITES: [&[&str]; 3] = [
    &[],
    &["--requirements", "2025-11-25"],
    &["--requirements", "2026-07-28"],
];

/// The `requestState` key every replica of a fleet shares.
const REQUEST_STATE_KEY: &str = "conformance-request-state-key-0123456789abcdef";

/// Runs the suite `args` selects against `url` and panics with its output
/// (and `logs`) unless every check passes.
async fn run_suite(dir: &Path, url: &str, args: &[&str], logs: impl Fn() -> String) {
    let script = dir.join("run.sh");
    let run = tokio::task::spawn_blocking({
        let url = url.to_owned();
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        move || Run::bounded(Command::new("bash").arg(script).arg(url).args(args))
    })
    .await
    .expect("the suite's runner thread does not panic");
    match run.status {
        Some(status) if status.success() => {
            eprintln!("{}", run.stdout.lines().last().unwrap_or_default());
        }
        Some(status) => panic!(
            "the conformance suite {args:?} failed against {url} ({status}):\n{}\n{}",
            run.output(),
            logs()
        ),
        None => panic!(
            "the conformance suite {args:?} did not finish within {SUITE_TIMEOUT:?} against {url}:\n{}",
            run.output()
        ),
    }
}

/// The same suite through three replicas on one Redis behind a round-robin
/// nginx with no stickiness: the fleet must behave as one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_conformance_suite_passes_through_three_replicas_on_redis() {
    let dir = conformance_dir();
    if !installed(&dir) {
        return;
    }
    let redis = mcp_testkit::RedisServer::start();
    let url = redis.url();
    let replicas = mcp_testkit::ReplicaSet::start(
        env!("CARGO_BIN_EXE_everything"),
        3,
        &[
            ("REDIS_URL", &url),
            ("MCP_REQUEST_STATE_KEY", REQUEST_STATE_KEY),
        ],
    )
    .await;
    let nginx = mcp_testkit::Nginx::start(&replicas.ports());
    for suite in SUITES {
        run_suite(&dir, &format!("{}/mcp", nginx.url()), suite, || {
            replicas.logs()
        })
        .await;
    }
}

/// The same on a three-master Redis Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_conformance_suite_passes_through_three_replicas_on_redis_cluster() {
    let dir = conformance_dir();
    if !installed(&dir) {
        return;
    }
    let cluster = mcp_testkit::RedisCluster::start();
    let url = cluster.url();
    let replicas = mcp_testkit::ReplicaSet::start(
        env!("CARGO_BIN_EXE_everything"),
        3,
        &[
            ("REDIS_URL", &url),
            ("MCP_REQUEST_STATE_KEY", REQUEST_STATE_KEY),
        ],
    )
    .await;
    let nginx = mcp_testkit::Nginx::start(&replicas.ports());
    for suite in SUITES {
        run_suite(&dir, &format!("{}/mcp", nginx.url()), suite, || {
            replicas.logs()
        })
        .await;
    }
}

/// `tests/conformance` of the workspace.
fn conformance_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance");
    dir.canonicalize().unwrap_or(dir)
}

/// Whether the suite is installed in `dir`. When it is not: `false` after a
/// line on stderr, or a panic when `MCP_INTEROP_REQUIRED=1`.
fn installed(dir: &Path) -> bool {
    let suites = [
        "node_modules/@modelcontextprotocol/conformance/dist/index.js",
        "node_modules/conformance-0.2/dist/index.js",
    ];
    if suites.iter().all(|suite| dir.join(suite).is_file()) {
        return true;
    }
    let reason = format!(
        "{} is missing (npm ci not run)",
        dir.join("node_modules").display()
    );
    if env::var("MCP_INTEROP_REQUIRED").as_deref() == Ok("1") {
        panic!(
            "official_conformance_suite_passes: {reason}, and MCP_INTEROP_REQUIRED=1: install it with scripts/install-test-deps.sh (scripts/test.sh does)"
        );
    }
    // Written past the test harness's capture, so that it shows.
    let _ = writeln!(
        std::io::stderr(),
        "official_conformance_suite_passes: skipped: {reason}; run scripts/install-test-deps.sh to install the MCP conformance suite"
    );
    false
}

/// What the suite's process did.
struct Run {
    /// `None` when it was killed for running over [`SUITE_TIMEOUT`].
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Runs `command` (stdin closed, output captured) for at most
    /// [`SUITE_TIMEOUT`]; a process still running then is killed together
    /// with its process group (the script's node child included).
    fn bounded(command: &mut Command) -> Self {
        let described = format!("{command:?}");
        let mut child = command
            .env(
                "CONFORMANCE_TIMEOUT",
                (SUITE_TIMEOUT.as_secs() - 30).to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {described}: {error}"));
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        let deadline = Instant::now() + SUITE_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
                Ok(None) | Err(_) => {
                    let _ = Command::new("kill")
                        .args(["-KILL", &format!("-{}", child.id())])
                        .stderr(Stdio::null())
                        .status();
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let grace = Duration::from_secs(5);
        Self {
            status,
            stdout: stdout.recv_timeout(grace).unwrap_or_default(),
            stderr: stderr.recv_timeout(grace).unwrap_or_default(),
        }
    }

    /// The suite's output, for failure messages.
    fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
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
