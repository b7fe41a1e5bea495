//! `mcp-load`: C concurrent MCP sessions, each initializing and then calling a
//! tool in a loop for D seconds, against any MCP URL, over Streamable HTTP
//! (session mode or stateless 2026-07-28 mode) or legacy HTTP+SSE. Reports
//! throughput, latency percentiles and errors by kind, as a table and as JSON.
//!
//! ```text
//! mcp-load --url http://127.0.0.1:9100/mcp --mode session --concurrency 16 --duration 10
//! mcp-load --url http://127.0.0.1:9100/sse --mode sse --json results.json
//! ```

mod client;
mod report;
mod run;

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// The MCP transport and lifecycle the load uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Streamable HTTP with a session (`initialize`, `Mcp-Session-Id`), protocol 2025-06-18.
    Session,
    /// Streamable HTTP without a session, protocol 2026-07-28 (per-request `_meta`).
    Stateless,
    /// HTTP+SSE (`GET /sse`, `POST /messages`), protocol 2024-11-05.
    Sse,
}

/// Command-line options.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Options {
    /// The server's MCP URL: `.../mcp` for session and stateless, `.../sse` for sse.
    #[arg(long)]
    pub url: String,
    /// Transport and lifecycle.
    #[arg(long, value_enum, default_value = "session")]
    pub mode: Mode,
    /// Concurrent sessions (C).
    #[arg(long, short = 'c', default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds each session calls the tool for (D).
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Exactly this many calls per session instead of calling for
    /// `--duration` (`0`: open the sessions and call nothing), for counts
    /// that do not depend on speed (`scripts/callgrind.sh`).
    #[arg(long)]
    pub calls: Option<u64>,
    /// Tool to call.
    #[arg(long, default_value = "add")]
    pub tool: String,
    /// Tool arguments, as a JSON object.
    #[arg(long, default_value = r#"{"a": 2, "b": 40}"#)]
    pub arguments: String,
    /// A label for this run in the report (e.g. "a: 1 replica, memory").
    #[arg(long, default_value = "")]
    pub label: String,
    /// Also write the report as JSON to this file (`-` for standard output).
    #[arg(long)]
    pub json: Option<String>,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let arguments: serde_json::Value = serde_json::from_str(&options.arguments)
        .map_err(|error| anyhow::anyhow!("--arguments is not JSON: {error}"))?;
    anyhow::ensure!(arguments.is_object(), "--arguments must be a JSON object");
    anyhow::ensure!(options.concurrency > 0, "--concurrency must be at least 1");
    let report = run::run(
        &options,
        arguments,
        Duration::from_secs_f64(options.duration),
        Duration::from_secs_f64(options.timeout),
    )
    .await;
    println!("{}", report.table());
    if let Some(path) = &options.json {
        let json = serde_json::to_string_pretty(&report)?;
        if path == "-" {
            println!("{json}");
        } else {
            std::fs::write(path, json)?;
        }
    }
    Ok(())
}
