//! [`TestServer`]: a service's handler served by `mcp-session` in the test's
//! own process, on a free loopback port, stopped on drop: for tests that need
//! one replica and no Redis.

use std::time::Duration;

use mcp_session::{Config, McpServer, rmcp::ServerHandler};
use tokio::{sync::oneshot, task::JoinHandle};

/// A handler served by `mcp-session` until dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves `factory`'s handlers with the default configuration on
    /// 127.0.0.1 (a 2 s shutdown grace period).
    pub async fn start<S: ServerHandler>(factory: impl Fn() -> S + Send + Sync + 'static) -> Self {
        Self::start_with(|_| {}, factory).await
    }

    /// Serves `factory`'s handlers after `adjust` has edited the
    /// configuration.
    pub async fn start_with<S: ServerHandler>(
        adjust: impl FnOnce(&mut Config),
        factory: impl Fn() -> S + Send + Sync + 'static,
    ) -> Self {
        let mut config = Config::new(0);
        config.host = "127.0.0.1".into();
        config.shutdown_grace = Duration::from_secs(2);
        adjust(&mut config);
        let bound = McpServer::new(config, factory)
            .bind()
            .await
            .expect("bind a free port");
        let base = format!("http://{}", bound.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            bound
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Self {
            base,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and waits until it has exited.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops within its grace period")
                .expect("server task does not panic");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
