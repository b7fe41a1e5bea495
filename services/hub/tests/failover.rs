//! Replicas that die under load: a hub replica killed with SIGKILL while 20
//! downstream sessions call tools through the hub, then a replica of the
//! upstream (the calculator). No session is ever "not found": only calls
//! in flight on a dying process may fail, and every session goes on.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use mcp_testkit::{
    CallError, Fleet,
    auth::{self, Auth},
    workspace_binary,
};
use serde_json::json;
use support::HubFleet;
use tokio::sync::Mutex;

/// Downstream sessions.
const SESSIONS: usize = 20;
/// Calls each session makes.
const CALLS: usize = 30;

/// How the calls of the run ended.
#[derive(Debug, Default)]
struct Outcomes {
    ok: usize,
    /// Tool errors (`isError: true`): an upstream call in flight on the
    /// killed calculator replica.
    tool_errors: Vec<String>,
    /// HTTP or transport failures: a call in flight on the killed hub
    /// replica.
    failures: Vec<String>,
    /// `404`s: a session lost. Never allowed.
    not_found: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_hub_and_upstream_replicas_lose_no_session() {
    let mut calculator = Fleet::start(workspace_binary("calculator"), 3, &[]).await;
    let config = json!({"servers": {
        "calculator": {"url": format!("{}/mcp", calculator.url()), "sharing": "user"},
    }});
    let mut hub = HubFleet::start(&config, 3).await;
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let auth = Auth::Bearer(auth::token_for(&format!("user-{}", i % 5)));
        sessions.push(hub.session(&auth, "/mcp", &[], json!({})).await);
    }
    let done = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let runs: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(index, mut session)| {
            let (done, outcomes) = (done.clone(), outcomes.clone());
            tokio::spawn(async move {
                for call in 0..CALLS {
                    let (a, b) = (index as f64, call as f64);
                    let result = session
                        .call_tool("calculator__add", json!({"a": a, "b": b}))
                        .await;
                    let mut outcomes = outcomes.lock().await;
                    match result {
                        Ok(result) if result["isError"] == json!(true) => {
                            outcomes.tool_errors.push(result.to_string());
                        }
                        Ok(result) => {
                            assert_eq!(result["structuredContent"]["result"], json!(a + b));
                            outcomes.ok += 1;
                        }
                        Err(CallError::Status(404, body)) => outcomes.not_found.push(body),
                        Err(other) => outcomes.failures.push(format!("{other:?}")),
                    }
                    drop(outcomes);
                    done.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    let total = SESSIONS * CALLS;
    while done.load(Ordering::Relaxed) < total / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hub.replicas.replicas[1].kill();
    while done.load(Ordering::Relaxed) < 2 * total / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    calculator.replicas.replicas[2].kill();
    for run in runs {
        run.await.expect("a session's run");
    }
    let outcomes = outcomes.lock().await;
    let logs = hub.replicas.logs();
    assert!(
        outcomes.not_found.is_empty(),
        "sessions lost: {:?}\n{logs}",
        outcomes.not_found
    );
    // At most one call per session was in flight at each kill.
    assert!(
        outcomes.failures.len() + outcomes.tool_errors.len() <= 2 * SESSIONS,
        "{outcomes:?}"
    );
    assert!(outcomes.ok >= total - 2 * SESSIONS, "{outcomes:?}");
    eprintln!(
        "{} calls: {} ok, {} failed in flight on the killed hub replica, {} tool errors from the killed calculator replica",
        total,
        outcomes.ok,
        outcomes.failures.len(),
        outcomes.tool_errors.len()
    );
    // The upstream sessions survived both kills: one per user, in Redis.
    assert_eq!(hub.keys("mcp:upstream:session:calculator:*").len(), 5);
}
