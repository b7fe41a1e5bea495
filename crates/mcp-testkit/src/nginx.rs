//! nginx as a round-robin load balancer with no session affinity, the way an
//! AWS ALB without stickiness spreads requests.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

use crate::net::{free_port, wait_for_port};

/// An nginx process balancing requests over upstream ports, killed when dropped.
pub struct Nginx {
    dir: TempDir,
    port: u16,
    child: Child,
    /// Whether failed `POST`s are tried on the next upstream.
    retry_posts: bool,
}

/// nginx's configuration for `upstreams`, listening on `port`, with its
/// files under `root` (`notice` logs tell when a reload has started the new
/// worker).
fn config(root: &str, port: u16, upstreams: &[u16], retry_posts: bool) -> String {
    let next_upstream = if retry_posts {
        "error timeout non_idempotent"
    } else {
        "error timeout"
    };
    let servers: String = upstreams
        .iter()
        .map(|upstream| format!("    server 127.0.0.1:{upstream} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    format!(
        r#"worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log notice;
events {{ worker_connections 4096; }}
http {{
  log_format spread '$request_method $uri $status $upstream_addr';
  access_log {root}/access.log spread;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  client_max_body_size 64m;
  upstream replicas {{
{servers}    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_cache off;
      proxy_read_timeout 3600s;
      proxy_next_upstream {next_upstream};
      proxy_connect_timeout 2s;
    }}
  }}
}}
"#
    )
}

fn nginx_binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

impl Nginx {
    /// Starts nginx on a free port in front of `127.0.0.1:<upstream>` for each
    /// upstream port: every request (not connection) goes to the next
    /// upstream in turn; responses are not buffered (SSE streams flow); the
    /// client's `Host` header is passed through; a request that cannot reach
    /// an upstream at all is tried on the next one.
    pub fn start(upstreams: &[u16]) -> Self {
        Self::start_with(upstreams, false)
    }

    /// [`start`](Self::start), but a `POST` whose upstream connection
    /// failed is tried on the next upstream too (`non_idempotent`): for
    /// replicas restarted under the test, whose pooled keep-alive
    /// connections nginx may reuse at the instant they close, which no
    /// deregistration precedes here (on EKS the ALB deregisters a pod before
    /// its SIGTERM).
    pub fn start_retrying_posts(upstreams: &[u16]) -> Self {
        Self::start_with(upstreams, true)
    }

    fn start_with(upstreams: &[u16], retry_posts: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let root = dir.path().display().to_string();
        let config = config(&root, port, upstreams, retry_posts);
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");
        let child = Command::new(nginx_binary())
            .arg("-c")
            .arg(&config_path)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx installed (scripts/install-test-deps.sh installs it)");
        let nginx = Self {
            dir,
            port,
            child,
            retry_posts,
        };
        assert!(
            wait_for_port(port, Duration::from_secs(10)),
            "nginx did not start: {}",
            nginx.error_log()
        );
        nginx
    }

    /// Replaces the upstreams with `upstreams` and reloads nginx gracefully
    /// (`SIGHUP`), as a load balancer drops a terminating pod's endpoint:
    /// requests already proxied finish on their upstream, new ones go to
    /// the new set. Returns once the new worker runs (at most 10 s).
    pub fn set_upstreams(&mut self, upstreams: &[u16]) {
        let root = self.dir.path().display().to_string();
        std::fs::write(
            self.dir.path().join("nginx.conf"),
            config(&root, self.port, upstreams, self.retry_posts),
        )
        .expect("write nginx.conf");
        let started = |log: &str| log.matches("start worker process").count();
        let before = started(&self.error_log());
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill on PATH");
        assert!(status.success(), "cannot signal nginx");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while started(&self.error_log()) <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not reload: {}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// nginx's error log, for failure messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// nginx's access log: one line per proxied request, as
    /// `METHOD URI STATUS UPSTREAM_ADDRESS`.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// Stops nginx with SIGTERM (its fast shutdown), which ends the worker
    /// process too; SIGKILL would end the master alone and leave the worker
    /// running, still listening on the port and proxying to upstreams that
    /// are gone. SIGKILL only if it has not exited within 5 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
