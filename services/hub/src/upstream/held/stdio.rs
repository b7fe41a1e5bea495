//! Starting a stdio upstream (MCP 2025-11-25, Transports §stdio): the hub
//! runs the configured command as a child process and exchanges
//! newline-delimited JSON-RPC messages over its stdin and stdout; what the
//! process writes to stderr goes to the hub's log (debug level, with the
//! upstream's name).
//!
//! The process lives as long as its connection: it is killed when the
//! connection is dropped, and the connection ends when the process exits
//! (the next request starts a new one). When the hub itself exits, the
//! process's stdin closes, which ends a well-behaved stdio server.

use std::{process::Stdio, sync::Arc};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use super::{Connection, Outbound};
use crate::upstream::{Route, http::UpstreamError};

/// Starts the route's command and its reader and writer: a connection
/// ready for `initialize`.
///
/// # Errors
/// [`UpstreamError::Unreachable`] when the command cannot be started.
pub fn spawn(route: &Route<'_>) -> Result<Arc<Connection>, UpstreamError> {
    let upstream = route.upstream;
    let Some(command) = &upstream.stdio else {
        return Err(UpstreamError::Protocol(
            "no command configured for this stdio upstream".to_owned(),
        ));
    };
    let mut child = Command::new(&command.program)
        .args(&command.args)
        .envs(command.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            UpstreamError::Unreachable(format!("cannot start `{}`: {error}", command.program))
        })?;
    let (stdin, stdout, stderr) = (
        child.stdin.take().expect("piped stdin"),
        child.stdout.take().expect("piped stdout"),
        child.stderr.take().expect("piped stderr"),
    );
    let (lines, mut outgoing) = mpsc::unbounded_channel::<String>();
    let connection = Connection::new(Outbound::Stdin(lines));
    let name = upstream.name.clone();
    // Writer: one message per line.
    tokio::spawn({
        let connection = connection.clone();
        async move {
            let mut stdin = stdin;
            while let Some(line) = outgoing.recv().await {
                let written = async {
                    stdin.write_all(line.as_bytes()).await?;
                    stdin.write_all(b"\n").await?;
                    stdin.flush().await
                };
                if written.await.is_err() {
                    break;
                }
            }
            connection.close();
        }
    });
    // Reader: every line a message; the connection ends with the process.
    let process = Arc::new(Mutex::new(Some(child)));
    tokio::spawn({
        let (connection, process, name) = (connection.clone(), process.clone(), name.clone());
        async move {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                let line = tokio::select! {
                    line = lines.next_line() => line,
                    () = connection.closed().cancelled() => break,
                };
                let Ok(Some(line)) = line else { break };
                if let Ok(message) = serde_json::from_str::<Value>(&line) {
                    connection.dispatch(message).await;
                }
            }
            connection.close();
            // Killed if still running (the connection was dropped or closed).
            let child: Option<Child> = process.lock().take();
            drop(child);
            tracing::info!(upstream = %name, "stdio upstream process ended");
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(upstream = %name, line, "stdio upstream stderr");
        }
    });
    Ok(connection)
}
