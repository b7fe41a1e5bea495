//! Tests of the deployment files (`k8s/`, `docker-compose.yml`): see
//! `tests/k8s.rs` and `tests/compose.rs`. This library holds what both use:
//! the workspace root, the services `k8s/base` deploys, the `.venv` tools and
//! a bounded runner for them.

use std::{
    env, fs,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// Longest run of one tool.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// The workspace root (two levels above this crate).
pub fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The MCP services `k8s/base/kustomization.yaml` deploys, with the
/// `MCP_SERVER_PORT` of their `k8s/base/<name>/config.env`, in file order.
/// Panics when a listed service has no port.
pub fn base_services() -> Vec<(String, u16)> {
    let base = workspace().join("k8s/base");
    let text = read(&base.join("kustomization.yaml"));
    text.lines()
        .filter_map(|line| line.strip_prefix("  - "))
        .map(str::trim)
        .filter(|name| *name != "common")
        .map(|name| {
            let config = read(&base.join(name).join("config.env"));
            let port = config
                .lines()
                .find_map(|line| line.strip_prefix("MCP_SERVER_PORT="))
                .and_then(|port| port.trim().parse().ok())
                .unwrap_or_else(|| panic!("k8s/base/{name}/config.env: no MCP_SERVER_PORT"));
            (name.to_owned(), port)
        })
        .collect()
}

/// A file's text; panics naming the file when it cannot be read.
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The `.venv/bin` tools named, found beside `MCP_TEST_PYTHON` (the `.venv`
/// python that `scripts/test.sh` points to), python first; or `None` (after
/// saying why on stderr) when one is missing and not required. Panics when
/// one is missing and `MCP_INTEROP_REQUIRED=1`.
pub fn venv_tools(test: &str, names: &[&str]) -> Option<Vec<PathBuf>> {
    let found = (|| {
        let python = match env::var_os("MCP_TEST_PYTHON") {
            Some(value) if !value.is_empty() => PathBuf::from(value),
            _ => return Err("MCP_TEST_PYTHON is not set".to_owned()),
        };
        let bin = python.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut tools = vec![python];
        tools.extend(names.iter().map(|name| bin.join(name)));
        match tools.iter().find(|tool| !tool.is_file()) {
            Some(missing) => Err(format!("{} does not exist", missing.display())),
            None => Ok(tools),
        }
    })();
    match found {
        Ok(tools) => Some(tools),
        Err(reason) if env::var("MCP_INTEROP_REQUIRED").as_deref() == Ok("1") => panic!(
            "{test}: {reason}, and MCP_INTEROP_REQUIRED=1: install the tools with scripts/install-test-deps.sh (scripts/test.sh does)"
        ),
        Err(reason) => {
            // Written past the test harness's capture, so that it shows.
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: {reason}; run scripts/test.sh to install {}",
                names.join(", ")
            );
            None
        }
    }
}

/// What a finished tool said.
pub struct Output {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// stdout and stderr, for failure messages.
    pub text: String,
}

/// Runs a tool to its end, killing it past [`TOOL_TIMEOUT`]; its output is
/// read as it comes, so a large rendering never blocks on a full pipe.
/// Panics when it cannot start or runs too long.
pub fn run(command: &mut Command) -> Output {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{shown}: {error}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|pipe| Box::new(pipe) as _));
    let stderr = drain(child.stderr.take().map(|pipe| Box::new(pipe) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .unwrap_or_else(|error| panic!("{shown}: {error}"))
        {
            break status;
        }
        if started.elapsed() > TOOL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown}: still running after {TOOL_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Output {
        success: status.success(),
        text: format!("{stdout}{stderr}"),
        stdout,
    }
}
