//! The hub on a Redis Cluster (three masters): three hub replicas behind a
//! round-robin nginx, in front of the calculator. Twenty concurrent clients
//! of one context key make one upstream session; the admin API pages
//! through the upstream sessions of every master (SCAN node by node) and
//! deletes one, which the next call re-establishes without an error.
//! Client sessions of several users live on several masters, and are
//! created, listed, used and deleted there.

mod support;

use mcp_testkit::{
    Fleet, Nginx, RawSession, RedisCluster, ReplicaSet, Scrape,
    auth::{self, Auth},
    workspace_binary,
};
use serde_json::{Value, json};
use support::{HUB, HubFleet, SECRET, TempDir, add_in_client_session, client_session};

/// Every key matching `pattern` on the cluster's masters.
fn keys(cluster: &RedisCluster, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = (0..3)
        .flat_map(|node| {
            cluster
                .cli(node, &["--scan", "--pattern", pattern])
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_sessions_on_a_redis_cluster() {
    let calculator = Fleet::start(workspace_binary("calculator"), 3, &[]).await;
    let upstream = format!("{}/mcp", calculator.url());
    let mut servers = serde_json::Map::new();
    // Several upstreams, so that their keys land on several masters.
    for name in ["calc-a", "calc-b", "calc-c", "calc-d", "calc-e", "calc-f"] {
        servers.insert(
            name.to_owned(),
            json!({"url": upstream, "sharing": "shared"}),
        );
    }
    let config = json!({ "servers": servers });
    let dir = TempDir::new();
    let path = dir.0.join("hub.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let path = path.display().to_string();
    let mut env = auth::auth_env();
    env.extend([
        ("REDIS_URL".to_owned(), url),
        ("HUB_CONFIG".to_owned(), path),
        ("HUB_CONTEXT_KEY_SECRET".to_owned(), SECRET.to_owned()),
        (
            "CLIENT_SESSION_ENCRYPTION_KEY".to_owned(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
        ),
    ]);
    let replicas = ReplicaSet::start(HUB, 3, &auth::pairs(&env)).await;
    let nginx = Nginx::start(&replicas.ports());
    let hub_url = nginx.url();

    let mut sessions = Vec::new();
    for i in 0..20 {
        let auth = Auth::Bearer(auth::token_for(&format!("user-{i}")));
        let client = HubFleet::client(&auth, &[]);
        sessions.push(
            RawSession::initialize_with(client, &format!("{hub_url}/mcp"))
                .await
                .expect("initialize on the hub"),
        );
    }
    let calls = sessions
        .iter_mut()
        .enumerate()
        .map(|(i, session)| async move {
            for server in ["calc-a", "calc-b", "calc-c", "calc-d", "calc-e", "calc-f"] {
                let result = session
                    .call_tool(&format!("{server}__add"), json!({"a": i, "b": 1}))
                    .await
                    .expect("a call through the hub");
                assert_eq!(result["structuredContent"]["result"], json!(i as f64 + 1.0));
            }
        });
    futures::future::join_all(calls).await;
    let mut created = 0.0;
    for replica in &replicas.replicas {
        let scrape = Scrape::fetch(&replica.url()).await;
        for server in ["calc-a", "calc-b", "calc-c", "calc-d", "calc-e", "calc-f"] {
            created += scrape.value(
                "mcp_hub_upstream_sessions_total",
                &[("server", server), ("event", "created")],
            );
        }
    }
    assert_eq!(
        created,
        6.0,
        "one initialize per upstream for 20 clients on 3 replicas\n{}",
        replicas.logs()
    );
    let stored = keys(&cluster, "mcp:upstream:session:*");
    assert_eq!(stored.len(), 6, "{stored:?}");

    // The admin API pages through every master.
    let ops = Auth::ApiKey(auth::OPS_KEY.into());
    let http = reqwest::Client::new();
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{hub_url}/api/admin/upstream-sessions?limit=2");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let response = ops.apply(http.get(url)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        cursor = response
            .headers()
            .get("x-next-cursor")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let page: Vec<Value> = response.json().await.unwrap();
        listed.extend(page);
        if cursor.is_none() {
            break;
        }
    }
    let mut names: Vec<&str> = listed
        .iter()
        .filter_map(|entry| entry["serverName"].as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names,
        ["calc-a", "calc-b", "calc-c", "calc-d", "calc-e", "calc-f"],
        "{listed:?}"
    );

    // Deleted through the admin API: the next calls make a new one.
    let before = cluster_get(&cluster, "mcp:upstream:session:calc-c:shared");
    let removed = ops
        .apply(http.delete(format!(
            "{hub_url}/api/admin/upstream-sessions/calc-c/shared"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status().as_u16(), 204);
    for session in sessions.iter_mut().take(6) {
        let result = session
            .call_tool("calc-c__add", json!({"a": 1, "b": 1}))
            .await
            .expect("a call after the deletion");
        assert_eq!(result["isError"], json!(false), "{result}");
    }
    let after = cluster_get(&cluster, "mcp:upstream:session:calc-c:shared");
    assert!(!after.is_empty() && after != before, "{before} → {after}");

    // Client sessions: records and per-user indexes spread over the
    // masters; each user's several sessions listed, used and deleted.
    for i in 0..6 {
        let auth = Auth::Bearer(auth::token_for(&format!("web-user-{i}")));
        let client = HubFleet::client(&auth, &[]);
        let mut urls = Vec::new();
        for _ in 0..3 {
            let url = client_session(&client, &hub_url, &["calc-a", "calc-d"]).await;
            let sum = add_in_client_session(&client, &url, "calc-d", i as f64, 2.0).await;
            assert_eq!(sum, i as f64 + 2.0);
            urls.push(url);
        }
        let listed: Value = client
            .get(format!("{hub_url}/api/client-sessions"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sessions = listed["clientSessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 3, "{listed}");
        assert!(
            sessions
                .iter()
                .all(|s| s["connections"].as_array().unwrap().len() == 2)
        );
        let deleted = client.delete(&urls[0]).send().await.unwrap();
        assert_eq!(deleted.status().as_u16(), 204);
    }
    assert_eq!(keys(&cluster, "mcp_client_session:*").len(), 12);
    assert_eq!(keys(&cluster, "mcp_client_session_index:*").len(), 6);
    let masters_with_records = (0..3)
        .filter(|node| {
            !cluster
                .cli(*node, &["--scan", "--pattern", "mcp_client_session:*"])
                .trim()
                .is_empty()
        })
        .count();
    assert!(
        masters_with_records >= 2,
        "records on {masters_with_records} masters"
    );
}

/// `GET key` on whichever master holds it.
fn cluster_get(cluster: &RedisCluster, key: &str) -> String {
    (0..3)
        .map(|node| cluster.cli(node, &["GET", key]).trim().to_owned())
        .find(|value| !value.is_empty() && !value.starts_with("MOVED"))
        .unwrap_or_default()
}
