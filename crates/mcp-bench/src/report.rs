//! The report: throughput, latency percentiles (ms), errors by kind; as a
//! text table and as JSON.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{Mode, Options, run::WorkerResult, run::new_histogram};

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's label.
    pub label: String,
    /// The URL loaded.
    pub url: String,
    /// The mode.
    pub mode: Mode,
    /// Concurrent sessions.
    pub concurrency: usize,
    /// Wall-clock seconds of the run.
    pub elapsed_s: f64,
    /// Successful tool calls per second.
    pub throughput_rps: f64,
    /// Latency of successful tool calls.
    pub calls: Latency,
    /// Latency of opening a session (`initialize`, or `GET /sse` + `initialize`).
    pub session_start: Latency,
    /// Failures by kind (`session_not_found`, `http_status:502`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Total failures.
    pub error_count: u64,
}

fn failure_name(failure: &crate::client::Failure) -> String {
    use crate::client::Failure;
    match failure {
        Failure::SessionNotFound => "session_not_found".into(),
        Failure::HttpStatus(status) => format!("http_status:{status}"),
        Failure::JsonRpc(code) => format!("jsonrpc:{code}"),
        Failure::ToolError => "tool_error".into(),
        Failure::Transport(detail) => format!("transport:{detail}"),
    }
}

impl Report {
    /// Aggregates the workers' results.
    pub fn new(options: &Options, elapsed: Duration, results: Vec<WorkerResult>) -> Self {
        let mut calls = new_histogram();
        let mut opens = new_histogram();
        let mut errors = BTreeMap::new();
        for result in results {
            let _ = calls.add(&result.calls);
            if let Some(open) = result.open_us {
                let _ = opens.record(open.max(1));
            }
            for (failure, count) in result.failures {
                *errors.entry(failure_name(&failure)).or_default() += count;
            }
        }
        let elapsed_s = elapsed.as_secs_f64();
        Self {
            label: options.label.clone(),
            url: options.url.clone(),
            mode: options.mode,
            concurrency: options.concurrency,
            elapsed_s,
            throughput_rps: calls.len() as f64 / elapsed_s.max(f64::EPSILON),
            calls: Latency::of(&calls),
            session_start: Latency::of(&opens),
            error_count: errors.values().sum(),
            errors,
        }
    }

    /// A text table of the run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{} {:?} c={} {:.1}s  {}\n",
            if self.label.is_empty() {
                "run"
            } else {
                &self.label
            },
            self.mode,
            self.concurrency,
            self.elapsed_s,
            self.url
        ));
        out.push_str("| row | count | rps | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n");
        out.push_str(&format!(
            "| tools/call | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            self.calls.count,
            self.throughput_rps,
            self.calls.p50_ms,
            self.calls.p90_ms,
            self.calls.p99_ms,
            self.calls.max_ms
        ));
        out.push_str(&format!(
            "| session start | {} | - | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            self.session_start.count,
            self.session_start.p50_ms,
            self.session_start.p90_ms,
            self.session_start.p99_ms,
            self.session_start.max_ms
        ));
        if self.errors.is_empty() {
            out.push_str("errors: 0\n");
        } else {
            out.push_str(&format!("errors: {}\n", self.error_count));
            for (kind, count) in &self.errors {
                out.push_str(&format!("  {kind}: {count}\n"));
            }
        }
        out
    }
}
