//! Runs the load: C workers, each one session calling the tool until the
//! deadline (or a fixed number of times, `--calls`), recording latencies
//! (microseconds) in HDR histograms.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::task::JoinSet;

use crate::{
    Options,
    client::Session,
    report::{Report, WorkerResult, new_histogram},
};

async fn worker(
    options: &Options,
    arguments: &Value,
    deadline: Instant,
    timeout: Duration,
) -> WorkerResult {
    let mut result = WorkerResult {
        open_us: None,
        calls: new_histogram(),
        open_failures: BTreeMap::new(),
        failures: BTreeMap::new(),
    };
    let started = Instant::now();
    let mut session = match Session::open(options.mode, &options.url, timeout).await {
        Ok(session) => session,
        Err(failure) => {
            *result.open_failures.entry(failure).or_default() += 1;
            return result;
        }
    };
    if options.mode != crate::Mode::Stateless {
        result.open_us = Some(started.elapsed().as_micros().max(1) as u64);
    }
    let mut made = 0;
    while options
        .calls
        .map_or(Instant::now() < deadline, |calls| made < calls)
    {
        made += 1;
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
    let mut lost_workers = 0;
    while let Some(result) = workers.join_next().await {
        match result {
            Ok(result) => results.push(result),
            // A worker that panicked measured nothing: counted, not hidden.
            Err(_) => lost_workers += 1,
        }
    }
    Report::new(&options, started.elapsed(), results, lost_workers)
}

fn options_clone(options: &Options) -> Options {
    Options {
        url: options.url.clone(),
        mode: options.mode,
        concurrency: options.concurrency,
        duration: options.duration,
        calls: options.calls,
        tool: options.tool.clone(),
        arguments: options.arguments.clone(),
        label: options.label.clone(),
        json: options.json.clone(),
        timeout: options.timeout,
    }
}
