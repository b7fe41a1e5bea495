//! Runs the load: C workers, each one session calling the tool until the
//! deadline, recording latencies (microseconds) in HDR histograms.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::{
    Options,
    client::{Failure, Session},
    report::Report,
};

/// What one worker measured.
pub struct WorkerResult {
    /// Latency of `initialize` (session open), µs, if it succeeded.
    pub open_us: Option<u64>,
    /// Latencies of successful calls, µs.
    pub calls: Histogram<u64>,
    /// Failures by kind.
    pub failures: BTreeMap<Failure, u64>,
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn worker(
    options: &Options,
    arguments: &Value,
    deadline: Instant,
    timeout: Duration,
) -> WorkerResult {
    let mut result = WorkerResult {
        open_us: None,
        calls: new_histogram(),
        failures: BTreeMap::new(),
    };
    let started = Instant::now();
    let mut session = match Session::open(options.mode, &options.url, timeout).await {
        Ok(session) => session,
        Err(failure) => {
            *result.failures.entry(failure).or_default() += 1;
            return result;
        }
    };
    result.open_us = Some(started.elapsed().as_micros() as u64);
    while Instant::now() < deadline {
        let started = Instant::now();
        match session.call(&options.tool, arguments).await {
            Ok(()) => {
                let _ = result
                    .calls
                    .record(started.elapsed().as_micros().max(1) as u64);
            }
            Err(failure) => *result.failures.entry(failure).or_default() += 1,
        }
    }
    result
}

/// Runs `options.concurrency` workers for `duration` and reports.
pub async fn run(
    options: &Options,
    arguments: Value,
    duration: Duration,
    timeout: Duration,
) -> Report {
    let started = Instant::now();
    let deadline = started + duration;
    let options = std::sync::Arc::new(options_clone(options));
    let arguments = std::sync::Arc::new(arguments);
    let mut workers = JoinSet::new();
    for _ in 0..options.concurrency {
        let options = options.clone();
        let arguments = arguments.clone();
        workers.spawn(async move { worker(&options, &arguments, deadline, timeout).await });
    }
    let mut results = Vec::new();
    while let Some(result) = workers.join_next().await {
        if let Ok(result) = result {
            results.push(result);
        }
    }
    Report::new(&options, started.elapsed(), results)
}

fn options_clone(options: &Options) -> Options {
    Options {
        url: options.url.clone(),
        mode: options.mode,
        concurrency: options.concurrency,
        duration: options.duration,
        tool: options.tool.clone(),
        arguments: options.arguments.clone(),
        label: options.label.clone(),
        json: options.json.clone(),
        timeout: options.timeout,
    }
}
