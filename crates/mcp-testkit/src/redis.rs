//! `redis-server` processes: one standalone server, or a 3-master cluster.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

use crate::net::{free_port, wait_for_port};

fn spawn_redis(dir: &Path, port: u16, extra: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join(format!("redis-{port}.log"))).expect("redis log file");
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--dir",
        ])
        .arg(dir)
        .args(extra)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (scripts/install-test-deps.sh installs it)")
}

/// `count` different ports that were free a moment ago.
fn distinct_free_ports(count: usize) -> Vec<u16> {
    let mut ports = Vec::with_capacity(count);
    while ports.len() < count {
        let port = free_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

fn log_of(dir: &Path, port: u16) -> String {
    std::fs::read_to_string(dir.join(format!("redis-{port}.log"))).unwrap_or_default()
}

/// One `redis-server` on a free loopback port, killed when dropped.
pub struct RedisServer {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    /// Arguments beyond the defaults (`--replicaof`), kept for restarts.
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server and waits (at most 10 s) until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// A server started with `extra` arguments (kept for restarts).
    fn start_with(extra: Vec<String>) -> Self {
        let mut server = Self {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            child: None,
            extra,
        };
        server.restart();
        server
    }

    /// Starts a replica of the server on `primary_port` and waits (at most
    /// 10 s) until it has synced (`master_link_status:up`).
    pub fn start_replica_of(primary_port: u16) -> Self {
        let server = Self::start_with(vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary_port.to_string(),
            "--repl-diskless-sync-delay".into(),
            "0".into(),
        ]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server
            .cli(&["info", "replication"])
            .contains("master_link_status:up")
        {
            assert!(Instant::now() < deadline, "the replica did not sync");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as an outage would); its data is lost.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server cleanly after saving its data to disk (as a managed
    /// Redis keeps its data through a failover); [`restart`](Self::restart)
    /// loads it back.
    pub fn stop_saving(&mut self) {
        let _ = self.cli(&["shutdown", "save"]);
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after a stop), with the data
    /// saved by [`stop_saving`](Self::stop_saving), if any.
    pub fn restart(&mut self) {
        self.stop();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        self.child = Some(spawn_redis(self.dir.path(), self.port, &extra));
        assert!(
            wait_for_port(self.port, Duration::from_secs(10)),
            "redis-server did not start: {}",
            log_of(self.dir.path(), self.port)
        );
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli on PATH");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A Redis Cluster of three masters (and, with
/// [`start_with_replicas`](RedisCluster::start_with_replicas), a replica of
/// each) on free loopback ports.
pub struct RedisCluster {
    dir: TempDir,
    ports: Vec<u16>,
    children: Vec<Child>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them, and waits (at most
    /// 30 s) until the cluster reports `cluster_state:ok`.
    pub fn start() -> Self {
        Self::start_nodes(3, 0)
    }

    /// Three masters and a replica of each (the first three ports are the
    /// masters): a master that dies is replaced by its replica, as on
    /// ElastiCache with cluster mode on.
    pub fn start_with_replicas() -> Self {
        Self::start_nodes(6, 1)
    }

    fn start_nodes(count: usize, replicas_per_master: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // Each node's cluster bus gets its own free port: by default Redis
        // uses `port + 10000`, which does not exist for ephemeral ports above
        // 55535 (the node then refuses to start) and may be taken by others.
        let mut ports = distinct_free_ports(2 * count);
        let bus_ports = ports.split_off(count);
        let children = ports
            .iter()
            .zip(bus_ports)
            .map(|(port, bus_port)| {
                spawn_redis(
                    dir.path(),
                    *port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &bus_port.to_string(),
                        "--cluster-config-file",
                        &format!("nodes-{port}.conf"),
                        "--cluster-node-timeout",
                        "2000",
                        // Replicas sync at once, and may take over whatever
                        // their replication lag (a test kills masters soon).
                        "--repl-diskless-sync-delay",
                        "0",
                        "--cluster-replica-validity-factor",
                        "0",
                    ],
                )
            })
            .collect();
        let cluster = Self {
            dir,
            ports,
            children,
        };
        for port in &cluster.ports {
            assert!(
                wait_for_port(*port, Duration::from_secs(10)),
                "cluster node did not start: {}",
                log_of(cluster.dir.path(), *port)
            );
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args([
                "--cluster-replicas",
                &replicas_per_master.to_string(),
                "--cluster-yes",
            ])
            .output()
            .expect("redis-cli on PATH");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            cluster.wait_until_ok(Duration::from_secs(30)),
            "cluster did not become ok"
        );
        // Replicas have synced with their masters.
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in &cluster.ports[3..] {
            while !redis_cli(*port, &["info", "replication"]).contains("master_link_status:up") {
                assert!(Instant::now() < deadline, "replica {port} did not sync");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        cluster
    }

    /// Waits (at most `within`) until every node still running reports
    /// `cluster_state:ok`; `false` after `within`.
    pub fn wait_until_ok(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            // A killed node answers nothing (an empty reply): it is not asked.
            let ok = self.ports.iter().all(|port| {
                let info = redis_cli(*port, &["cluster", "info"]);
                info.is_empty() || info.contains("cluster_state:ok")
            });
            if ok {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills node `index` (SIGKILL, as a failed instance), whose port stops
    /// answering; with replicas, the cluster fails its slots over.
    pub fn kill(&mut self, index: usize) {
        let _ = self.children[index].kill();
        let _ = self.children[index].wait();
    }

    /// Waits (at most `within`) until the other nodes mark node `index`
    /// failed (`fail` in `CLUSTER NODES`) and report `cluster_state:ok`
    /// again: its replica took its slots over. `false` after `within`.
    pub fn wait_for_failover(&self, index: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let killed = format!("127.0.0.1:{}@", self.ports[index]);
        let witness = self.ports[(index + 1) % self.ports.len()];
        loop {
            let nodes = redis_cli(witness, &["cluster", "nodes"]);
            let failed = nodes.lines().any(|line| {
                line.contains(&killed)
                    && line
                        .split_whitespace()
                        .nth(2)
                        .is_some_and(|flags| flags.split(',').any(|flag| flag == "fail"))
            });
            if failed {
                let left = deadline.saturating_duration_since(Instant::now());
                return self.wait_until_ok(left);
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `redis-cluster://127.0.0.1:<p1>?node=127.0.0.1:<p2>&node=…`: every
    /// node as a seed.
    pub fn url(&self) -> String {
        let others: Vec<String> = self.ports[1..]
            .iter()
            .map(|port| format!("node=127.0.0.1:{port}"))
            .collect();
        format!(
            "redis-cluster://127.0.0.1:{}?{}",
            self.ports[0],
            others.join("&")
        )
    }

    /// The nodes' ports (with replicas: the masters first, as started).
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Runs `redis-cli` against node `index` (of [`ports`](Self::ports))
    /// and returns its output (empty when the node is gone).
    pub fn cli(&self, index: usize, args: &[&str]) -> String {
        redis_cli(self.ports[index], args)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
