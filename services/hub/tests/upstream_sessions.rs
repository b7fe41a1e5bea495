//! The hub's upstream sessions, end to end: three hub replicas on Redis
//! behind a round-robin nginx, in front of the calculator (three replicas on
//! their own Redis, behind their own nginx).
//!
//! The users' acceptance: consecutive calls reuse one upstream session;
//! after the session is deleted upstream, expired in Redis, or deleted
//! through the admin API, the next call re-establishes it with no error
//! visible to the client. Twenty concurrent clients of one context key
//! cause one upstream `initialize`; two users with their own credentials
//! never share an upstream session; an unreachable upstream is a tool error
//! that names it.

mod support;

use std::time::Duration;

use mcp_testkit::{
    Fleet, RawSession,
    auth::{self, Auth},
    free_port, workspace_binary,
};
use serde_json::{Value, json};
use support::{HubFleet, SECRET};

/// The hub's fleet and the calculator's behind it.
struct Rig {
    hub: HubFleet,
    calculator: Fleet,
}

impl Rig {
    async fn start() -> Self {
        let calculator = Fleet::start(workspace_binary("calculator"), 3, &[]).await;
        let upstream = format!("{}/mcp", calculator.url());
        let dead = format!("http://127.0.0.1:{}/mcp", free_port());
        let config = json!({
            "servers": {
                "calculator": {"url": upstream, "sharing": "shared"},
                "burst": {"url": upstream, "sharing": "shared"},
                "personal": {"url": upstream, "sharing": "user",
                             "forward_headers": ["x-upstream-token"]},
                "dead": {"url": dead, "timeout_ms": 2000},
            },
            "groups": {"math": ["calculator"]},
        });
        let hub = HubFleet::start(&config, 3).await;
        Self { hub, calculator }
    }

    async fn session(&self, auth: &Auth, path: &str, headers: &[(&str, &str)]) -> RawSession {
        self.hub.session(auth, path, headers, json!({})).await
    }

    fn stored(&self, server: &str, context: &str) -> String {
        self.hub.stored(server, context)
    }

    fn keys(&self, pattern: &str) -> Vec<String> {
        self.hub.keys(pattern)
    }

    /// The sum over hub replicas of `mcp_hub_upstream_sessions_total` for
    /// `server` and `event`.
    async fn sessions_counted(&self, server: &str, event: &str) -> f64 {
        self.hub
            .metric_sum(
                "mcp_hub_upstream_sessions_total",
                &[("server", server), ("event", event)],
            )
            .await
    }

    async fn restart_hub(&mut self) {
        self.hub.restart().await;
    }

    fn logs(&self) -> String {
        format!(
            "{}\n{}",
            self.hub.replicas.logs(),
            self.calculator.replicas.logs()
        )
    }
}

fn sum_of(result: &Value) -> f64 {
    result["structuredContent"]["result"]
        .as_f64()
        .unwrap_or_else(|| panic!("no result in {result}"))
}

async fn add(session: &mut RawSession, tool: &str, a: f64, b: f64, rig: &Rig) -> f64 {
    let result = session
        .call_tool(tool, json!({"a": a, "b": b}))
        .await
        .unwrap_or_else(|error| panic!("{tool}: {error:?}\n{}", rig.logs()));
    assert_ne!(
        result["isError"],
        json!(true),
        "{tool}: {result}\n{}",
        rig.logs()
    );
    sum_of(&result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_sessions_are_shared_reused_and_reestablished() {
    let mut rig = Rig::start().await;
    let alice = Auth::Bearer(auth::token_for("alice"));
    let mut session = rig.session(&alice, "/mcp", &[]).await;

    // Every upstream's tools, prefixed; the unreachable one left out.
    let tools = session.request("tools/list", json!({})).await.unwrap();
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    for expected in ["calculator__add", "personal__add", "burst__divide"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(!names.iter().any(|name| name.starts_with("dead__")));

    // Consecutive calls, spread over the hub replicas, use one upstream
    // session.
    for i in 0..6 {
        assert_eq!(
            add(&mut session, "calculator__add", 2.0, f64::from(i), &rig).await,
            2.0 + f64::from(i)
        );
    }
    let first = rig.stored("calculator", "shared");
    assert!(!first.is_empty(), "stored upstream session\n{}", rig.logs());
    assert_eq!(rig.sessions_counted("calculator", "created").await, 1.0);
    assert!(rig.sessions_counted("calculator", "reused").await >= 5.0);

    // Deleted upstream: the next calls re-establish it, without an error.
    let deleted = reqwest::Client::new()
        .delete(format!("{}/mcp", rig.calculator.url()))
        .header("mcp-session-id", &first)
        .send()
        .await
        .unwrap();
    assert!(
        deleted.status().is_success(),
        "DELETE upstream: {}",
        deleted.status()
    );
    for i in 0..6 {
        assert_eq!(
            add(&mut session, "calculator__add", 40.0, f64::from(i), &rig).await,
            40.0 + f64::from(i)
        );
    }
    let second = rig.stored("calculator", "shared");
    assert!(!second.is_empty() && second != first, "{first} → {second}");
    assert!(rig.sessions_counted("calculator", "reestablished").await >= 1.0);

    // A hub restart loses no upstream session: every replica killed and
    // started again uses the stored one, with no `initialize`.
    rig.restart_hub().await;
    for i in 0..6 {
        assert_eq!(
            add(&mut session, "calculator__add", 5.0, f64::from(i), &rig).await,
            5.0 + f64::from(i)
        );
    }
    assert_eq!(rig.stored("calculator", "shared"), second);
    assert_eq!(rig.sessions_counted("calculator", "created").await, 0.0);

    // Expired: gone from Redis and from the replicas' memory (an idle
    // hour). The next calls make a new one, with no error.
    rig.hub
        .redis
        .cli(&["DEL", "mcp:upstream:session:calculator:shared"]);
    rig.restart_hub().await;
    for i in 0..6 {
        assert_eq!(
            add(&mut session, "calculator__add", 1.0, f64::from(i), &rig).await,
            1.0 + f64::from(i)
        );
    }
    let third = rig.stored("calculator", "shared");
    assert!(!third.is_empty() && third != second, "{second} → {third}");

    // Deleted through the admin API: ended upstream too, re-established.
    let http = reqwest::Client::new();
    let ops = Auth::ApiKey(auth::OPS_KEY.into());
    let listed: Value = ops
        .apply(http.get(format!(
            "{}/api/admin/upstream-sessions?server=calculator",
            rig.hub.url()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let current = rig.stored("calculator", "shared");
    assert!(
        !current.is_empty(),
        "re-established after the deletion in Redis"
    );
    assert_eq!(
        listed,
        json!([{"serverName": "calculator", "contextKey": "shared", "sessionId": current,
                "ttl": listed[0]["ttl"]}]),
    );
    assert!(listed[0]["ttl"].as_i64().unwrap() > 3000);
    let refused = Auth::Bearer(auth::token_for("alice"))
        .apply(http.delete(format!(
            "{}/api/admin/upstream-sessions/calculator/shared",
            rig.hub.url()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403, "only admins");
    let removed = ops
        .apply(http.delete(format!(
            "{}/api/admin/upstream-sessions/calculator/shared",
            rig.hub.url()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status().as_u16(), 204);
    for i in 0..6 {
        assert_eq!(
            add(&mut session, "calculator__add", 3.0, f64::from(i), &rig).await,
            3.0 + f64::from(i)
        );
    }
    let after_admin = rig.stored("calculator", "shared");
    assert!(!after_admin.is_empty() && after_admin != current);

    // A group's endpoint, and one upstream behind its own endpoint with its
    // own names.
    let mut group = rig.session(&alice, "/mcp/math", &[]).await;
    assert_eq!(
        add(&mut group, "calculator__add", 1.0, 1.0, &rig).await,
        2.0
    );
    assert!(
        group
            .call_tool("personal__add", json!({"a": 1, "b": 1}))
            .await
            .is_err()
    );
    let mut transparent = rig.session(&alice, "/mcp/calculator", &[]).await;
    assert_eq!(add(&mut transparent, "add", 20.0, 22.0, &rig).await, 42.0);

    // An unreachable upstream: a tool error naming it, quickly.
    let started = std::time::Instant::now();
    let result = session
        .call_tool("dead__add", json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    assert_eq!(result["isError"], json!(true), "{result}");
    assert!(result.to_string().contains("upstream `dead`"), "{result}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_make_one_upstream_session_and_users_never_share() {
    let rig = Rig::start().await;

    // 20 clients of the `shared` context at once, over 3 hub replicas.
    let mut clients = Vec::new();
    for i in 0..20 {
        let auth = Auth::Bearer(auth::token_for(&format!("user-{i}")));
        clients.push(rig.session(&auth, "/mcp", &[]).await);
    }
    let calls = clients.into_iter().enumerate().map(|(i, mut session)| {
        let rig = &rig;
        async move { add(&mut session, "burst__add", i as f64, 1.0, rig).await }
    });
    let sums = futures::future::join_all(calls).await;
    for (i, sum) in sums.into_iter().enumerate() {
        assert_eq!(sum, i as f64 + 1.0);
    }
    assert_eq!(
        rig.sessions_counted("burst", "created").await,
        1.0,
        "one initialize for 20 concurrent clients\n{}",
        rig.logs()
    );
    assert_eq!(rig.keys("mcp:upstream:session:burst:*").len(), 1);

    // Two users who both send an `x-upstream-token` (other values): two
    // upstream sessions. The users' first hub keyed on the header's name
    // and gave them one.
    let alice = Auth::Bearer(auth::token_for("alice"));
    let bob = Auth::ApiKey(auth::BOB_KEY.into());
    let mut alice_session = rig
        .session(&alice, "/mcp", &[("x-upstream-token", "alice-token")])
        .await;
    let mut bob_session = rig
        .session(&bob, "/mcp", &[("x-upstream-token", "bob-token")])
        .await;
    for _ in 0..3 {
        add(&mut alice_session, "personal__add", 1.0, 2.0, &rig).await;
        add(&mut bob_session, "personal__add", 3.0, 4.0, &rig).await;
    }
    let keys = rig.keys("mcp:upstream:session:personal:*");
    assert_eq!(keys.len(), 2, "{keys:?}");
    let ids: Vec<String> = keys
        .iter()
        .map(|key| rig.hub.redis.cli(&["GET", key]).trim().to_owned())
        .collect();
    assert_ne!(ids[0], ids[1]);
    // The upstream saw two sessions too: each id in its request log.
    let upstream_logs = rig.calculator.replicas.logs();
    for id in &ids {
        assert!(
            upstream_logs.contains(&format!("session_id=\"{id}\"")),
            "upstream session {id} not in the calculator's log"
        );
    }
    for key in &keys {
        let context = key.rsplit(':').next().unwrap();
        assert!(
            context.starts_with("u-") && context.len() == 34,
            "{context}"
        );
        assert!(
            !key.contains("token"),
            "credential names or values never in keys: {key}"
        );
    }
    // The same user with another credential value: a third session.
    let mut alice_other = rig
        .session(&alice, "/mcp", &[("x-upstream-token", "alice-2")])
        .await;
    add(&mut alice_other, "personal__add", 1.0, 1.0, &rig).await;
    assert_eq!(rig.keys("mcp:upstream:session:personal:*").len(), 3);
    // No credential value in any log line.
    auth::assert_no_secrets(
        &rig.hub.replicas.logs(),
        &["alice-token".into(), "bob-token".into(), SECRET.into()],
    );
}
