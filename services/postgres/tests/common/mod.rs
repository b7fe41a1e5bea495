//! Test support: a real PostgreSQL cluster started by the test itself, with
//! the sample database loaded by `sql/load.sh`, and helpers to checksum the
//! data.
//!
//! PostgreSQL refuses to run as root, and the tests run as root on CI: the
//! cluster's directory is then given to the `postgres` OS user and every
//! server binary runs through `runuser -u postgres --`. The server listens on
//! a free loopback port (password authentication, scram-sha-256) and on a
//! unix socket in the temporary directory; [`PgCluster`]'s `Drop` stops it
//! (bounded by `pg_ctl -t`) and removes the directory.
//!
//! Binaries come from `PG_BIN_DIR`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package, installed by
//! `scripts/install-test-deps.sh`).

#![allow(dead_code, missing_docs)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use postgres::{Database, Settings};

/// Password of the `postgres` superuser of test clusters.
pub const SUPERUSER_PASSWORD: &str = "super-secret-pw-7d1f";
/// Password of the read-only role of test clusters: all digits, which a
/// configuration loader that parses values would turn into a number.
pub const READONLY_PASSWORD: &str = "8675309012";
/// Database holding the sample data.
pub const DATABASE: &str = "hr";

/// A running PostgreSQL cluster with the sample database; stopped on drop.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
    stopped: Mutex<bool>,
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: install them \
             with scripts/install-test-deps.sh (apt package `postgresql`) or set PG_BIN_DIR"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

pub use mcp_testkit::free_port;

fn check(what: &str, output: std::io::Result<Output>) -> String {
    let output = output.unwrap_or_else(|error| panic!("{what}: cannot run: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

impl PgCluster {
    /// Starts a new cluster and loads the sample database.
    pub fn start() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "mcp-pg-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let as_postgres = is_root();
        let cluster = Self {
            bin: bin_dir(),
            port: free_port(),
            as_postgres,
            stopped: Mutex::new(false),
            dir,
        };
        std::fs::write(cluster.dir.join("pwfile"), SUPERUSER_PASSWORD).expect("write pwfile");
        if as_postgres {
            check(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&cluster.dir)
                    .output(),
            );
        }
        let data = cluster.data_dir();
        check(
            "initdb",
            cluster
                .server_command("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", cluster.dir.join("pwfile").display()))
                .output(),
        );
        cluster.pg_ctl_start();
        cluster.psql("postgres", &format!("CREATE DATABASE {DATABASE}"));
        check(
            "load.sh",
            // From the postgres crate, or from a test of another crate that includes this module.
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../postgres/sql/load.sh"))
                .env("DATABASE_URL", cluster.superuser_url())
                .env("PSQL", cluster.bin.join("psql"))
                .env("PG_READONLY_PASSWORD", READONLY_PASSWORD)
                .output(),
        );
        cluster
    }

    /// One cluster shared by the tests of a binary that run at the same
    /// time; it stops when the last of them drops its handle.
    pub fn shared() -> Arc<Self> {
        static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(cluster) = shared.upgrade() {
            return cluster;
        }
        let cluster = Arc::new(Self::start());
        *shared = Arc::downgrade(&cluster);
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command running a server binary, as the `postgres` OS user when the
    /// tests run as root.
    fn server_command(&self, binary: &str) -> Command {
        let path = self.bin.join(binary);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=60",
            self.port,
            self.dir.display()
        );
        check(
            "pg_ctl start",
            self.server_command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-o", &options, "-w", "-t", "60", "-l"])
                .arg(self.dir.join("server.log"))
                .arg("start")
                .output(),
        );
        *self
            .stopped
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = false;
    }

    /// Stops the server (fast shutdown), bounded to 30 s. Idempotent.
    pub fn stop(&self) {
        let mut stopped = self
            .stopped
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if *stopped {
            return;
        }
        let _ = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "30", "stop"])
            .output();
        *stopped = true;
    }

    /// Starts the server again after [`stop`](Self::stop).
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// Runs SQL as the superuser through psql over the unix socket and
    /// returns its unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        check(
            "psql",
            Command::new(self.bin.join("psql"))
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(&self.dir)
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    database,
                    "-c",
                    sql,
                ])
                .output(),
        )
        .trim()
        .to_owned()
    }

    /// `postgres://postgres:…@127.0.0.1:port/hr`.
    pub fn superuser_url(&self) -> String {
        format!(
            "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// `postgres://mcp_readonly:…@127.0.0.1:port/hr`.
    pub fn readonly_url(&self) -> String {
        format!(
            "postgres://mcp_readonly:{READONLY_PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// Settings as the service would read them: the superuser in
    /// `DATABASE_URL`, the read-only role logging in itself, a 1 s
    /// statement timeout and small caps.
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::for_url(&self.superuser_url())
            .expect("valid URL")
            .with_readonly_password(READONLY_PASSWORD);
        settings.limits.statement_timeout = Duration::from_millis(1000);
        settings.limits.max_rows = 5000;
        settings.limits.max_result_bytes = 2 * 1024 * 1024;
        settings.pool_size = 4;
        settings
    }

    /// A [`Database`] over [`settings`](Self::settings).
    pub fn database(&self) -> Arc<Database> {
        Arc::new(Database::new(self.settings()).expect("database setup"))
    }

    /// md5 of every row of both tables in id order, the sequence position,
    /// and counts of relations, large objects, schemas, functions and roles:
    /// changes if anything in the data or the schema changes.
    pub fn checksum(&self) -> String {
        self.psql(
            DATABASE,
            "SELECT md5((SELECT string_agg(d::text, '|' ORDER BY d.id) FROM departments d)) \
             || ':' || md5((SELECT string_agg(e::text, '|' ORDER BY e.id) FROM employees e)) \
             || ':' || (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace) \
             || ':' || (SELECT last_value FROM employees_id_seq) \
             || ':' || (SELECT count(*) FROM pg_largeobject_metadata) \
             || ':' || (SELECT count(*) FROM pg_namespace) \
             || ':' || (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace) \
             || ':' || (SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles \
                        WHERE rolname NOT LIKE 'pg\\_%')",
        )
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A result that must be an error; returns its message.
pub fn expect_err<T: std::fmt::Debug>(result: Result<T, String>, what: &str) -> String {
    match result {
        Ok(value) => panic!("{what}: expected an error, got {value:?}"),
        Err(message) => message,
    }
}
