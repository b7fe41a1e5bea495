//! Test support: an in-process calculator server on a free loopback port,
//! stopped on drop. (SSE responses are read with `mcp_testkit::SseReader`.)

#![allow(dead_code, missing_docs)]

use std::time::Duration;

use calculator::Calculator;
use mcp_session::{Config, McpServer};
use tokio::{sync::oneshot, task::JoinHandle};

/// A calculator served by `mcp-session` until dropped.
pub struct TestServer {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with the default configuration on 127.0.0.1.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` has edited its configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::launch(adjust, Calculator::new).await
    }

    /// Starts a server that serves the calculator's tools alone, without
    /// the library's session tools.
    pub async fn start_without_session_tools() -> Self {
        Self::launch(|_| {}, || Calculator::new().without_session_tools()).await
    }

    async fn launch(
        adjust: impl FnOnce(&mut Config),
        factory: impl Fn() -> Calculator + Send + Sync + 'static,
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
