//! The report: throughput, latency percentiles (ms), errors by kind; as a
//! text table and as JSON.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{Mode, Options, client::Failure};

/// What one worker measured.
pub struct WorkerResult {
    /// Latency of the session start (`initialize` and `notifications/initialized`;
    /// for sse also `GET /sse`), µs, if it succeeded; `None` in stateless mode,
    /// which has no session to start.
    pub open_us: Option<u64>,
    /// Latencies of successful calls, µs.
    pub calls: Histogram<u64>,
    /// Failures of the session start, by kind.
    pub open_failures: BTreeMap<Failure, u64>,
    /// Failures of tool calls, by kind.
    pub failures: BTreeMap<Failure, u64>,
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

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
    /// Concurrent sessions (C).
    pub concurrency: usize,
    /// Seconds each session was asked to call the tool for (D).
    pub duration_s: f64,
    /// The tool called.
    pub tool: String,
    /// Wall-clock seconds of the run, from the first session start to the
    /// last call's answer.
    pub elapsed_s: f64,
    /// Successful tool calls per second.
    pub throughput_rps: f64,
    /// Latency of successful tool calls.
    pub calls: Latency,
    /// Latency of starting a session: `initialize` and
    /// `notifications/initialized` (sse: `GET /sse` first); none in
    /// stateless mode.
    pub session_start: Latency,
    /// Failures by where and kind: `initialize/session_not_found`,
    /// `tools/call/http_status:502`, `tools/call/jsonrpc:-32602`,
    /// `tools/call/transport:...`, `worker/panicked`.
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
    pub fn new(
        options: &Options,
        elapsed: Duration,
        results: Vec<WorkerResult>,
        lost_workers: u64,
    ) -> Self {
        let mut calls = new_histogram();
        let mut opens = new_histogram();
        let mut errors = BTreeMap::new();
        if lost_workers > 0 {
            errors.insert("worker/panicked".to_owned(), lost_workers);
        }
        for result in results {
            let _ = calls.add(&result.calls);
            if let Some(open) = result.open_us {
                let _ = opens.record(open.max(1));
            }
            for (failure, count) in result.open_failures {
                *errors
                    .entry(format!("initialize/{}", failure_name(&failure)))
                    .or_default() += count;
            }
            for (failure, count) in result.failures {
                *errors
                    .entry(format!("tools/call/{}", failure_name(&failure)))
                    .or_default() += count;
            }
        }
        let elapsed_s = elapsed.as_secs_f64();
        Self {
            label: options.label.clone(),
            url: options.url.clone(),
            mode: options.mode,
            concurrency: options.concurrency,
            duration_s: options.duration,
            tool: options.tool.clone(),
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
            "{}: mode {:?}, C={} sessions, D={}s (ran {:.1}s), tool {}, {}\n",
            if self.label.is_empty() {
                "run"
            } else {
                &self.label
            },
            self.mode,
            self.concurrency,
            self.duration_s,
            self.elapsed_s,
            self.tool,
            self.url
        ));
        out.push_str("| row | count | calls/s | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n");
        out.push_str(&format!(
            "| tools/call | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            self.calls.count,
            self.throughput_rps,
            self.calls.p50_ms,
            self.calls.p90_ms,
            self.calls.p99_ms,
            self.calls.max_ms
        ));
        if self.session_start.count > 0 {
            out.push_str(&format!(
                "| session start (initialize) | {} | - | {:.3} | {:.3} | {:.3} | {:.3} |\n",
                self.session_start.count,
                self.session_start.p50_ms,
                self.session_start.p90_ms,
                self.session_start.p99_ms,
                self.session_start.max_ms
            ));
        } else {
            out.push_str("| session start (initialize) | 0 | - | - | - | - | - |\n");
        }
        out.push_str(&format!("errors: {}\n", self.error_count));
        for (kind, count) in &self.errors {
            out.push_str(&format!("  {kind}: {count}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::Parser;

    use super::*;
    use crate::client::Failure;

    #[test]
    fn every_failure_is_counted_by_where_and_kind() {
        let options =
            Options::parse_from(["mcp-load", "--url", "http://x/mcp", "-c", "2", "-d", "3"]);
        let mut calls = new_histogram();
        calls.record(1500).unwrap();
        let ok = WorkerResult {
            open_us: Some(2000),
            calls,
            open_failures: BTreeMap::new(),
            failures: BTreeMap::from([
                (Failure::SessionNotFound, 2),
                (Failure::JsonRpc(-32602), 1),
            ]),
        };
        let refused = WorkerResult {
            open_us: None,
            calls: new_histogram(),
            open_failures: BTreeMap::from([(Failure::HttpStatus(503), 1)]),
            failures: BTreeMap::new(),
        };
        let report = Report::new(&options, Duration::from_secs(3), vec![ok, refused], 1);
        assert_eq!(report.error_count, 5);
        assert_eq!(report.errors["tools/call/session_not_found"], 2);
        assert_eq!(report.errors["tools/call/jsonrpc:-32602"], 1);
        assert_eq!(report.errors["initialize/http_status:503"], 1);
        assert_eq!(report.errors["worker/panicked"], 1);
        assert_eq!(report.session_start.count, 1);
        assert_eq!((report.concurrency, report.duration_s), (2, 3.0));
        let table = report.table();
        assert!(table.contains("C=2 sessions, D=3s"), "{table}");
        assert!(table.contains("http://x/mcp"), "{table}");
        assert!(
            table.contains("| session start (initialize) | 1 |"),
            "{table}"
        );
    }
}
