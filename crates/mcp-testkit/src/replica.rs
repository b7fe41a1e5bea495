//! Service replicas: real processes of a service binary.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tempfile::TempDir;

use crate::net::{free_port, wait_for_http};

/// A process's resident memory (`/proc/<pid>/status`), in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// All resident pages (`VmRSS`): the heap, stacks, and the binary's
    /// pages read so far.
    pub rss_kib: u64,
    /// Resident anonymous pages (`RssAnon`): the heap and stacks.
    pub anonymous_kib: u64,
}

/// One process of a service, listening on its own loopback port; killed
/// when dropped. Its standard output and error go to a log file.
pub struct Replica {
    binary: PathBuf,
    env: Vec<(String, String)>,
    name: String,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    starts: usize,
}

impl Replica {
    /// Starts `binary` as replica `name` with `env` (on top of
    /// `MCP_SERVER_HOST=127.0.0.1`, `MCP_SERVER_PORT`, `REPLICA_ID` and
    /// `RUST_LOG=info`), and waits (at most 20 s) until its `/readyz` answers `200`.
    pub async fn start(binary: impl Into<PathBuf>, name: &str, env: &[(&str, &str)]) -> Self {
        let mut replica = Self {
            binary: binary.into(),
            env: env
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            name: name.to_owned(),
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            starts: 0,
        };
        replica.restart().await;
        replica
    }

    /// The replica's name (`REPLICA_ID`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process's resident memory now, from `/proc/<pid>/status`;
    /// `None` when it is not running (or the system has no `/proc`).
    pub fn memory(&self) -> Option<Memory> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<u64>().ok())
        };
        Some(Memory {
            rss_kib: kib("VmRSS:")?,
            anonymous_kib: kib("RssAnon:")?,
        })
    }

    /// Everything the process has logged so far (all of its runs).
    pub fn log(&self) -> String {
        let mut log = String::new();
        for run in 0..self.starts {
            log.push_str(
                &std::fs::read_to_string(self.dir.path().join(format!("run-{run}.log")))
                    .unwrap_or_default(),
            );
        }
        log
    }

    /// Kills the process with SIGKILL, as a crashed node would die.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod, and waits (at most
    /// `within`) for the process to exit; returns its exit status code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        self.send_sigterm();
        let mut child = self.child.take()?;
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(code) = reap(&mut child, deadline) {
                return code;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod, and returns at once:
    /// the replica shuts down while the test goes on. See
    /// [`wait_for_exit`](Self::wait_for_exit).
    pub fn send_sigterm(&self) {
        self.signal("-TERM");
    }

    /// Stops the process where it stands (SIGSTOP) without closing its
    /// connections: to Redis and its peers it is a replica that went
    /// silent (a stalled node, a half-open connection). See
    /// [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [`pause`](Self::pause)d process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Waits (at most `within`, without blocking the runtime) for the
    /// process to exit; returns its exit status code, or `None` when it did
    /// not exit in time (it is killed then) or was not running.
    pub async fn wait_for_exit(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(code) = reap(&mut child, deadline) {
                return code;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the process again on the same port (after a kill or a stop).
    pub async fn restart(&mut self) {
        self.kill();
        let log = std::fs::File::create(self.dir.path().join(format!("run-{}.log", self.starts)))
            .expect("replica log file");
        self.starts += 1;
        let child = Command::new(&self.binary)
            .env("MCP_SERVER_HOST", "127.0.0.1")
            .env("MCP_SERVER_PORT", self.port.to_string())
            .env("REPLICA_ID", &self.name)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.binary.display()));
        self.child = Some(child);
        let healthy =
            wait_for_http(&format!("{}/readyz", self.url()), Duration::from_secs(20)).await;
        assert!(
            healthy,
            "replica {} did not start:\n{}",
            self.name,
            self.log()
        );
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One look at a stopping `child`: `Some(code)` once it has exited (`code`
/// `None` when a signal ended it), `Some(None)` after killing it past
/// `deadline`, `None` while it runs.
fn reap(child: &mut Child, deadline: std::time::Instant) -> Option<Option<i32>> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status.code());
    }
    if std::time::Instant::now() > deadline {
        let _ = child.kill();
        let _ = child.wait();
        return Some(None);
    }
    None
}

/// Several replicas of one service binary, named `replica-1`, `replica-2`, ...
pub struct ReplicaSet {
    /// The replicas, in start order.
    pub replicas: Vec<Replica>,
}

impl ReplicaSet {
    /// Starts `count` replicas of `binary`, all with `env`.
    pub async fn start(binary: impl Into<PathBuf>, count: usize, env: &[(&str, &str)]) -> Self {
        let binary = binary.into();
        let mut replicas = Vec::with_capacity(count);
        for index in 1..=count {
            replicas.push(Replica::start(&binary, &format!("replica-{index}"), env).await);
        }
        Self { replicas }
    }

    /// The replicas' ports, for [`Nginx::start`](crate::Nginx::start).
    pub fn ports(&self) -> Vec<u16> {
        self.replicas.iter().map(Replica::port).collect()
    }

    /// All replicas' logs, each headed by its name.
    pub fn logs(&self) -> String {
        self.replicas
            .iter()
            .map(|replica| format!("===== {} =====\n{}", replica.name(), replica.log()))
            .collect()
    }
}
