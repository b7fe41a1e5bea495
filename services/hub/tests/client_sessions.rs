//! The client-session API through three hub replicas behind a round-robin
//! nginx, on one Redis: a user creates a client session, connects the
//! calculator (three replicas of its own) and the postgres service (three
//! replicas, PostgreSQL), calls tools on both; every hub replica is
//! restarted (SIGTERM, then SIGKILL) and the same client session goes on
//! with the same connections and no error; the upstream sessions behind
//! them are ended, and the next calls re-establish them with no error.
//! Another user's ids are `404`.
//! A URL connected with a credential keeps the credential sealed in Redis
//! and out of every answer and log line.

#[path = "../../postgres/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use common::PgCluster;
use mcp_testkit::{
    Fleet, Nginx, RedisServer, ReplicaSet,
    auth::{self, Auth},
    workspace_binary,
};
use serde_json::{Value, json};
use support::HubFleet;

/// A 32-byte key, base64.
pub const KEY: &str = "c2VjcmV0LWtleS1mb3ItY2xpZW50LXNlc3Npb25zLTA=";

/// A JSON API client of the hub as `auth`.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(hub: &HubFleet, auth: &Auth) -> Self {
        Self {
            client: HubFleet::client(auth, &[]),
            base: hub.url(),
        }
    }

    /// `method` on `path` with `body`: the status and the JSON answer
    /// (`null` when empty).
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method.parse().unwrap(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: {text}"))
        };
        (status, json)
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, json) = self.send(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {json}"
        );
        json
    }
}

/// The calculator and the postgres service, each three replicas behind
/// their own nginx.
struct Upstreams {
    calculator: Fleet,
    postgres_nginx: Nginx,
    _postgres: ReplicaSet,
    _redis: RedisServer,
    cluster: std::sync::Arc<PgCluster>,
}

impl Upstreams {
    async fn start() -> Self {
        let calculator = Fleet::start(workspace_binary("calculator"), 3, &[]).await;
        let cluster = PgCluster::shared();
        let redis = RedisServer::start();
        let (redis_url, database_url) = (redis.url(), cluster.superuser_url());
        let postgres = ReplicaSet::start(
            workspace_binary("postgres"),
            3,
            &[
                ("REDIS_URL", &redis_url),
                ("DATABASE_URL", &database_url),
                ("PG_READONLY_PASSWORD", common::READONLY_PASSWORD),
                ("PG_POOL_SIZE", "4"),
            ],
        )
        .await;
        let postgres_nginx = Nginx::start(&postgres.ports());
        Self {
            calculator,
            postgres_nginx,
            _postgres: postgres,
            _redis: redis,
            cluster,
        }
    }

    fn config(&self) -> Value {
        json!({
            "servers": {
                "calculator": {"url": format!("{}/mcp", self.calculator.url()), "sharing": "user",
                               "description": "Arithmetic"},
                "postgres": {"url": format!("{}/mcp", self.postgres_nginx.url()), "sharing": "session"},
            },
            // The calculator's own replicas, by URL, for the sealed-credential check.
            "client_sessions": {"allowed_urls": ["http://127.0.0.1:*/mcp"],
                                "allowed_networks": ["127.0.0.0/8"]},
        })
    }
}

/// Calls add(a, b) and returns the result's structured `result`.
async fn add(api: &Api, id: &str, server: &str, a: i64, b: i64) -> i64 {
    let result = api
        .ok(
            "POST",
            &format!("/api/client-sessions/{id}/tools"),
            Some(json!({"server": server, "name": "add", "arguments": {"a": a, "b": b}})),
        )
        .await;
    assert_ne!(result["isError"], json!(true), "{result}");
    result["structuredContent"]["result"]
        .as_f64()
        .unwrap_or_else(|| panic!("a number in {result}")) as i64
}

/// Calls postgres's query_employees and returns the total.
async fn engineers(api: &Api, id: &str) -> Value {
    let result = api
        .ok(
            "POST",
            &format!("/api/client-sessions/{id}/tools"),
            Some(json!({"server": "postgres", "name": "query_employees",
                        "arguments": {"department": "Engineering", "limit": 3}})),
        )
        .await;
    assert_eq!(result["isError"], json!(false), "{result}");
    result["structuredContent"]["total"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_session_goes_on_through_restarts_of_every_replica() {
    let upstreams = Upstreams::start().await;
    let mut hub = HubFleet::start_with_env(
        &upstreams.config(),
        3,
        &[("CLIENT_SESSION_ENCRYPTION_KEY", KEY)],
    )
    .await;
    let alice = Api::new(&hub, &Auth::Bearer(auth::token_for("alice")));
    let expected: i64 = upstreams
        .cluster
        .psql(
            common::DATABASE,
            "SELECT count(*) FROM employees e JOIN departments d ON d.id = e.department_id WHERE d.name = 'Engineering'",
        )
        .trim()
        .parse()
        .unwrap();

    let servers = alice.ok("GET", "/api/servers", None).await;
    assert_eq!(servers["servers"][0]["name"], "calculator", "{servers}");
    assert_eq!(servers["servers"][0]["description"], "Arithmetic");

    let created = alice.ok("POST", "/api/client-sessions", None).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cs_") && id.len() == 35, "{id}");
    for server in ["calculator", "postgres"] {
        let connection = alice
            .ok(
                "POST",
                &format!("/api/client-sessions/{id}/connect"),
                Some(json!({"server": server})),
            )
            .await;
        assert_eq!(connection["kind"], "configured", "{connection}");
    }
    let tools = alice
        .ok("GET", &format!("/api/client-sessions/{id}/tools"), None)
        .await;
    let named: Vec<String> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| {
            format!(
                "{}/{}",
                tool["server"].as_str().unwrap(),
                tool["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(named.contains(&"calculator/add".to_owned()), "{named:?}");
    assert!(
        named.contains(&"postgres/query_employees".to_owned()),
        "{named:?}"
    );

    // Round-robin: every hub replica serves the client session.
    for i in 0..6 {
        assert_eq!(add(&alice, &id, "calculator", i, 40).await, i + 40);
        assert_eq!(engineers(&alice, &id).await, json!(expected));
    }

    // State is in Redis: one hash, in the user's index, with a TTL.
    let keys = hub.keys(&format!("mcp_client_session:*:{id}"));
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl: i64 = hub.redis.cli(&["TTL", &keys[0]]).trim().parse().unwrap();
    assert!((1..=1800).contains(&ttl), "{ttl}");
    assert_eq!(hub.keys("mcp_client_session_index:*").len(), 1);

    for (round, signal) in ["SIGTERM", "SIGKILL"].into_iter().enumerate() {
        for replica in &mut hub.replicas.replicas {
            if signal == "SIGTERM" {
                let code = replica.terminate(Duration::from_secs(20));
                assert_eq!(code, Some(0), "a replica stops cleanly on SIGTERM");
            }
            replica.restart().await; // kills first: SIGKILL in round two
        }
        let session = alice
            .ok("GET", &format!("/api/client-sessions/{id}"), None)
            .await;
        let connected: Vec<&str> = session["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["server"].as_str().unwrap())
            .collect();
        assert_eq!(connected, ["calculator", "postgres"], "after {signal}");
        for i in 0..6 {
            let a = 100 * (round as i64 + 1) + i;
            assert_eq!(
                add(&alice, &id, "calculator", a, 2).await,
                a + 2,
                "after {signal}"
            );
            assert_eq!(
                engineers(&alice, &id).await,
                json!(expected),
                "after {signal}"
            );
        }
    }

    // The upstream sessions end (an operator deletes them: each is ended
    // upstream too): the next calls re-establish them, with no error.
    let ops = Api::new(&hub, &Auth::ApiKey(auth::OPS_KEY.into()));
    let listed = ops
        .ok("GET", "/api/admin/upstream-sessions?limit=1000", None)
        .await;
    let listed = listed.as_array().unwrap().clone();
    assert!(listed.len() >= 2, "{listed:?}");
    for session in &listed {
        let (status, _) = ops
            .send(
                "DELETE",
                &format!(
                    "/api/admin/upstream-sessions/{}/{}",
                    session["serverName"].as_str().unwrap(),
                    session["contextKey"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(status, 204);
    }
    for i in 0..3 {
        assert_eq!(add(&alice, &id, "calculator", i, 7).await, i + 7);
        assert_eq!(engineers(&alice, &id).await, json!(expected));
    }

    // Another user: alice's id names nothing of bob's.
    let bob = Api::new(&hub, &Auth::Bearer(auth::token_for("bob")));
    for (method, path, body) in [
        ("GET", format!("/api/client-sessions/{id}"), None),
        ("GET", format!("/api/client-sessions/{id}/tools"), None),
        (
            "POST",
            format!("/api/client-sessions/{id}/tools"),
            Some(json!({"server": "calculator", "name": "add", "arguments": {"a": 1, "b": 1}})),
        ),
        (
            "POST",
            format!("/api/client-sessions/{id}/connect"),
            Some(json!({"server": "calculator"})),
        ),
        ("DELETE", format!("/api/client-sessions/{id}"), None),
    ] {
        let (status, error) = bob.send(method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {error}");
        assert_eq!(error["error"], "not_found");
    }
    let listed = bob.ok("GET", "/api/client-sessions", None).await;
    assert_eq!(listed["clientSessions"], json!([]));
    let listed = alice.ok("GET", "/api/client-sessions", None).await;
    assert_eq!(listed["clientSessions"][0]["id"], json!(id));

    // A URL with a credential: sealed in Redis, never answered or logged.
    let secret = "Bearer sk-client-session-secret-0123456789";
    let calculator_url = format!("{}/mcp", upstreams.calculator.replicas.replicas[0].url());
    let connection = alice
        .ok(
            "POST",
            &format!("/api/client-sessions/{id}/connect"),
            Some(json!({"server": "mine", "url": calculator_url,
                        "headers": {"Authorization": secret}})),
        )
        .await;
    assert_eq!(connection["kind"], "url");
    assert_eq!(connection["credentialHeaders"], json!(["authorization"]));
    assert_eq!(add(&alice, &id, "mine", 2, 40).await, 42);
    let stored = hub.redis.cli(&["HGETALL", &keys[0]]);
    assert!(
        stored.contains("server:mine") && !stored.contains("sk-client-session-secret"),
        "{stored}"
    );
    let session = alice
        .ok("GET", &format!("/api/client-sessions/{id}"), None)
        .await;
    assert!(!session.to_string().contains("sk-client"), "{session}");
    assert!(!hub.replicas.logs().contains("sk-client-session-secret"));

    // The same server spoken to as 2026-07-28 (no session): a URL with
    // `transport: stateless`.
    let connection = alice
        .ok(
            "POST",
            &format!("/api/client-sessions/{id}/connect"),
            Some(json!({"server": "mine-2026", "url": calculator_url, "transport": "stateless"})),
        )
        .await;
    assert_eq!(connection["transport"], "stateless", "{connection}");
    for i in 0..4 {
        assert_eq!(add(&alice, &id, "mine-2026", i, 40).await, i + 40);
    }
    let (status, error) = alice
        .send(
            "POST",
            &format!("/api/client-sessions/{id}/connect"),
            Some(json!({"server": "calculator", "transport": "stateless"})),
        )
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Disconnect, then delete: gone for every replica.
    let (status, _) = alice
        .send(
            "POST",
            &format!("/api/client-sessions/{id}/disconnect"),
            Some(json!({"server": "mine"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, error) = alice
        .send(
            "POST",
            &format!("/api/client-sessions/{id}/tools"),
            Some(json!({"server": "mine", "name": "add", "arguments": {"a": 1, "b": 1}})),
        )
        .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (404, Some("not_connected"))
    );
    let (status, _) = alice
        .send("DELETE", &format!("/api/client-sessions/{id}"), None)
        .await;
    assert_eq!(status, 204);
    for _ in 0..3 {
        let (status, _) = alice
            .send("GET", &format!("/api/client-sessions/{id}"), None)
            .await;
        assert_eq!(status, 404);
    }
    assert!(hub.keys(&format!("mcp_client_session:*:{id}")).is_empty());
}
