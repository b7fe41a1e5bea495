//! The admin API and the admin session tool, against three replicas of the
//! fixture service on one Redis behind a round-robin nginx (logging at debug
//! level).
//!
//! Alice (a JWT) and Bob (an API key) hold sessions on both transports.
//! Admins are a JWT whose `cognito:groups` holds `admin` and the API key
//! `ops`; everybody else gets `403` from every admin endpoint and an error
//! from `get_session_analytics`, and changes nothing. For admins:
//!
//! - `GET /admin/sessions` pages through every session with a cursor (Redis
//!   `SCAN`: `INFO commandstats` shows no `KEYS` ever ran), and `?user=`
//!   pages through one user's;
//! - `GET /admin/sessions/{id}` shows one with its TTL, without renewing it;
//! - `DELETE /admin/sessions/{id}` ends the session on every replica at once
//!   (each answers `404` for it right away, and its open streams end), and
//!   `DELETE /admin/users/{hash}/sessions` ends all of a user's;
//! - `/admin/analytics` and `get_session_analytics` count sessions by
//!   transport, protocol version and replica, users and ages.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use futures::{StreamExt, stream};
use mcp_session::{Caller, PrincipalKind};
use mcp_testkit::SseReader;
use mcp_testkit::{
    Fleet,
    auth::{
        Auth, BOB_KEY, ISSUER, McpSession, OPS_KEY, SECRET, SseSession, assert_no_secrets,
        auth_env, claims, hs256, http, stream_ends,
    },
};
use reqwest::Method;
use serde_json::{Value, json};

/// The library's fixture service.
const FIXTURE: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

const ALICE_STREAMABLE: usize = 12;
const ALICE_SSE: usize = 4;
const BOB_STREAMABLE: usize = 6;
const BOB_SSE: usize = 3;
/// Page size of the listings: several pages for every listing.
const PAGE: usize = 5;

/// An admin API call: status and JSON body.
async fn admin(base: &str, auth: &Auth, method: Method, path: &str) -> (u16, Value) {
    let response = auth
        .apply(http().request(method, format!("{base}{path}")))
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, body)
}

/// Every page of `path` (which has a query), following `next_cursor`; the
/// ids listed and the number of pages.
async fn all_pages(base: &str, auth: &Auth, path: &str) -> (Vec<Value>, usize) {
    let mut sessions = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 1..=200 {
        let url = match &cursor {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.to_owned(),
        };
        let (status, body) = admin(base, auth, Method::GET, &url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let listed = body["sessions"].as_array().expect("sessions");
        // SCAN's COUNT (10 at least) is a hint: a call returns whole hash
        // buckets, so a page may pass `limit` by a call's worth of keys
        // (the store stops calling once it has `limit`). Never all 25 at once.
        assert!(
            listed.len() <= 4 * PAGE,
            "page of {} for limit {PAGE}",
            listed.len()
        );
        sessions.extend(listed.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (sessions, page),
        }
    }
    panic!("{path}: no end after 200 pages");
}

fn ids_of(sessions: &[Value]) -> BTreeSet<String> {
    sessions
        .iter()
        .map(|session| session["id"].as_str().unwrap().to_owned())
        .collect()
}

struct User {
    auth: Auth,
    streamable: Vec<McpSession>,
    sse: Vec<SseSession>,
}

impl User {
    async fn open(base: &str, auth: Auth, streamable: usize, sse: usize) -> Self {
        let opened: Vec<McpSession> = stream::iter(0..streamable)
            .map(|_| McpSession::initialize(base, &auth))
            .buffer_unordered(8)
            .map(|session| session.expect("initialize"))
            .collect()
            .await;
        let mut streams = Vec::new();
        for _ in 0..sse {
            streams.push(SseSession::open(base, &auth).await.expect("open /sse"));
        }
        Self {
            auth,
            streamable: opened,
            sse: streams,
        }
    }

    fn ids(&self) -> BTreeSet<String> {
        self.streamable
            .iter()
            .map(|session| session.id.clone())
            .chain(self.sse.iter().map(|session| session.id.clone()))
            .collect()
    }
}

/// `POST /mcp` naming `id` with `auth`, straight to `replica`: the status.
async fn status_on(replica: &str, auth: &Auth, id: &str) -> u16 {
    auth.apply(
        http()
            .post(format!("{replica}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({"jsonrpc": "2.0", "id": 5, "method": "ping"})),
    )
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

/// The standalone `GET /mcp` stream of a Streamable HTTP session.
async fn standalone_stream(session: &McpSession) -> SseReader {
    let response = session
        .request(Method::GET, &session.id)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET /mcp of {}", session.id);
    SseReader::new(response)
}

/// The remaining TTL of a session key in Redis, ms.
fn pttl(fleet: &Fleet, user: &str, id: &str) -> i64 {
    fleet
        .redis
        .cli(&["PTTL", &format!("mcp_user_session:{user}:{id}")])
        .trim()
        .parse()
        .expect("PTTL answers a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_show_and_end_sessions_on_every_replica() {
    let mut env = auth_env();
    env.push((
        "JWT_ROLES_CLAIM".into(),
        "cognito:groups,realm_access.roles".into(),
    ));
    env.push(("SSE_KEEPALIVE_SECONDS".into(), "1".into()));
    let fleet = Fleet::start(FIXTURE, 3, &env).await;
    let base = fleet.url();
    let replicas: Vec<String> = fleet.replicas.replicas.iter().map(|r| r.url()).collect();
    let replica_names: BTreeSet<String> = fleet
        .replicas
        .replicas
        .iter()
        .map(|replica| replica.name().to_owned())
        .collect();

    let alice_token = hs256(&claims("alice"));
    let alice_hash = Caller::new(PrincipalKind::Jwt, ISSUER, "alice")
        .user_hash
        .to_string();
    let bob_hash = Caller::new(PrincipalKind::ApiKey, "", "bob")
        .user_hash
        .to_string();
    let mut alice = User::open(
        &base,
        Auth::Bearer(alice_token.clone()),
        ALICE_STREAMABLE,
        ALICE_SSE,
    )
    .await;
    let mut bob = User::open(
        &base,
        Auth::XApiKey(BOB_KEY.into()),
        BOB_STREAMABLE,
        BOB_SSE,
    )
    .await;
    let (mine, _) = alice.streamable[0]
        .call("get_user_sessions", json!({}))
        .await
        .unwrap();
    assert_eq!(mine["structuredContent"]["user_hash"], alice_hash.as_str());

    let admin_token = {
        let mut claims = claims("root");
        claims["cognito:groups"] = json!(["staff", "admin"]);
        hs256(&claims)
    };
    let jwt_admin = Auth::Bearer(admin_token.clone());
    let key_admin = Auth::XApiKey(OPS_KEY.into());
    // A role in a claim that is not configured makes no admin.
    let pretender_token = {
        let mut claims = claims("mallory");
        claims["roles"] = json!(["admin"]);
        hs256(&claims)
    };

    // --- non-admins: 403 everywhere, nothing changes --------------------------
    let victim = alice.streamable[1].id.clone();
    for auth in [
        alice.auth.clone(),
        bob.auth.clone(),
        Auth::Bearer(pretender_token.clone()),
    ] {
        for (method, path) in [
            (Method::GET, "/admin/sessions".to_owned()),
            (Method::GET, format!("/admin/sessions?user={alice_hash}")),
            (Method::GET, format!("/admin/sessions/{victim}")),
            (Method::DELETE, format!("/admin/sessions/{victim}")),
            (Method::GET, format!("/admin/users/{alice_hash}/sessions")),
            (
                Method::DELETE,
                format!("/admin/users/{alice_hash}/sessions"),
            ),
            (Method::GET, "/admin/analytics".to_owned()),
        ] {
            let (status, body) = admin(&base, &auth, method.clone(), &path).await;
            assert_eq!(status, 403, "{auth:?} {method} {path}: {body}");
            assert_eq!(body["error"], "forbidden", "{body}");
            assert_eq!(
                body["error_description"],
                "admin rights required (JWT_ADMIN_ROLES or ADMIN_API_KEYS)"
            );
        }
    }
    let (refused, _) = alice.streamable[2]
        .call("get_session_analytics", json!({}))
        .await
        .unwrap();
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("get_session_analytics is for administrators"),
        "{refused}"
    );
    let refused = bob.sse[0].call("get_session_analytics", json!({})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    let (health, _) = alice.streamable[2]
        .call("health_check", json!({}))
        .await
        .unwrap();
    let health = &health["structuredContent"];
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["store"]["backend"], "redis");
    assert_eq!(health["store"]["reachable"], true);
    assert_eq!(health["sessions"]["yours"], ALICE_STREAMABLE + ALICE_SSE);
    assert!(health["sessions"].get("total").is_none(), "{health}");
    assert!(replica_names.contains(health["replica"].as_str().unwrap()));

    // --- listing: every session, in pages, by SCAN ----------------------------
    let everyone: BTreeSet<String> = alice.ids().union(&bob.ids()).cloned().collect();
    for auth in [&jwt_admin, &key_admin] {
        let (listed, pages) =
            all_pages(&base, auth, &format!("/admin/sessions?limit={PAGE}")).await;
        assert!(pages > 1, "one page only");
        assert_eq!(ids_of(&listed), everyone, "the whole listing");
        for session in &listed {
            let ttl = session["ttl_seconds"].as_u64().unwrap();
            assert!((3000..=3600).contains(&ttl), "{session}");
            assert!(replica_names.contains(session["replica"].as_str().unwrap()));
            let owner = session["user_hash"].as_str().unwrap();
            assert!(owner == alice_hash || owner == bob_hash, "{session}");
        }
        let (listed, pages) = all_pages(
            &base,
            auth,
            &format!("/admin/sessions?user={alice_hash}&limit={PAGE}"),
        )
        .await;
        assert!(pages > 1, "one page only");
        assert_eq!(listed.len(), ALICE_STREAMABLE + ALICE_SSE, "no duplicates");
        assert_eq!(ids_of(&listed), alice.ids(), "alice's listing");
    }
    let (status, body) = admin(
        &base,
        &key_admin,
        Method::GET,
        &format!("/admin/users/{bob_hash}/sessions"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids_of(body["sessions"].as_array().unwrap()), bob.ids());
    // Bad parameters are clear 400s.
    for (path, code) in [
        ("/admin/sessions?cursor=zzz", "invalid_cursor"),
        ("/admin/sessions?cursor=0:abc", "invalid_cursor"),
        ("/admin/sessions?user=nothex", "invalid_user"),
        ("/admin/users/1234/sessions", "invalid_user"),
    ] {
        let (status, body) = admin(&base, &key_admin, Method::GET, path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(code)),
            "{path}: {body}"
        );
    }
    let stats = fleet.redis.cli(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_scan:"), "{stats}");
    assert!(!stats.contains("cmdstat_keys:"), "KEYS ran: {stats}");

    // --- one session, with its TTL, read without renewing it ------------------
    let shown = &alice.streamable[3];
    let before = pttl(&fleet, &alice_hash, &shown.id);
    for path in [
        format!("/admin/sessions/{}", shown.id),
        format!("/admin/sessions/{}?user={alice_hash}", shown.id),
    ] {
        let (status, body) = admin(&base, &jwt_admin, Method::GET, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let session = &body["session"];
        assert_eq!(session["id"], shown.id.as_str());
        assert_eq!(session["user_hash"], alice_hash.as_str());
        assert_eq!(session["transport"], "streamable_http");
        assert_eq!(session["protocol_version"], "2025-06-18");
        assert_eq!(session["client"], "auth-tests/1");
        let ttl = session["ttl_seconds"].as_u64().unwrap();
        assert!((3000..=3600).contains(&ttl), "{session}");
    }
    assert!(
        pttl(&fleet, &alice_hash, &shown.id) <= before,
        "a read renewed the TTL"
    );
    let (status, body) = admin(
        &base,
        &jwt_admin,
        Method::GET,
        "/admin/sessions/no-such-session",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, _) = admin(
        &base,
        &jwt_admin,
        Method::GET,
        &format!("/admin/sessions/{}?user={bob_hash}", shown.id),
    )
    .await;
    assert_eq!(status, 404, "a session under the wrong owner");

    // --- analytics --------------------------------------------------------------
    let (status, analytics) = admin(&base, &key_admin, Method::GET, "/admin/analytics").await;
    assert_eq!(status, 200, "{analytics}");
    let total = everyone.len();
    assert_eq!(analytics["total_sessions"], total, "{analytics}");
    assert_eq!(analytics["users"], 2);
    assert_eq!(
        analytics["max_sessions_per_user"],
        ALICE_STREAMABLE + ALICE_SSE
    );
    assert_eq!(
        analytics["by_transport"],
        json!({"streamable_http": ALICE_STREAMABLE + BOB_STREAMABLE, "sse": ALICE_SSE + BOB_SSE})
    );
    assert_eq!(
        analytics["by_protocol_version"],
        json!({"2025-06-18": ALICE_STREAMABLE + BOB_STREAMABLE, "2024-11-05": ALICE_SSE + BOB_SSE})
    );
    let by_replica: BTreeMap<String, usize> =
        serde_json::from_value(analytics["by_replica"].clone()).unwrap();
    assert_eq!(by_replica.values().sum::<usize>(), total, "{analytics}");
    assert_eq!(
        by_replica.keys().cloned().collect::<BTreeSet<_>>(),
        replica_names,
        "round robin spread the sessions over every replica"
    );
    assert_eq!(analytics["age"]["under_1m"], total, "{analytics}");
    assert_eq!(analytics["complete"], true);
    // The tool says the same to admins, on both transports (its own session
    // counted too).
    let mut root = McpSession::initialize(&base, &jwt_admin).await.unwrap();
    let (tool, _) = root.call("get_session_analytics", json!({})).await.unwrap();
    let tool = &tool["structuredContent"];
    assert_eq!(tool["total_sessions"], total + 1, "{tool}");
    assert_eq!(tool["users"], 3);
    let mut ops = SseSession::open(&base, &key_admin).await.unwrap();
    let tool = ops.call("get_session_analytics", json!({})).await;
    assert_eq!(
        tool["structuredContent"]["total_sessions"],
        total + 2,
        "{tool}"
    );
    assert_eq!(
        tool["structuredContent"]["by_transport"]["sse"],
        ALICE_SSE + BOB_SSE + 1
    );
    let (health, _) = root.call("health_check", json!({})).await.unwrap();
    assert_eq!(
        health["structuredContent"]["sessions"]["total"],
        total + 2,
        "{health}"
    );

    // --- deleting one session ends it on every replica at once -----------------
    let doomed = alice.streamable.remove(4);
    let mut doomed_stream = standalone_stream(&doomed).await;
    let (status, body) = admin(
        &base,
        &key_admin,
        Method::DELETE,
        &format!("/admin/sessions/{}", doomed.id),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], json!([doomed.id]));
    for replica in &replicas {
        assert_eq!(
            status_on(replica, &alice.auth, &doomed.id).await,
            404,
            "{replica}"
        );
    }
    assert!(
        stream_ends(&mut doomed_stream, Duration::from_secs(10)).await,
        "the deleted session's GET /mcp stream is still open"
    );
    let (status, _) = admin(
        &base,
        &key_admin,
        Method::DELETE,
        &format!("/admin/sessions/{}", doomed.id),
    )
    .await;
    assert_eq!(status, 404, "deleted twice");
    // An SSE session: its stream, held by one replica, ends.
    let mut doomed_sse = alice.sse.remove(0);
    let (status, body) = admin(
        &base,
        &jwt_admin,
        Method::DELETE,
        &format!("/admin/sessions/{}?user={alice_hash}", doomed_sse.id),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        doomed_sse.ends_within(Duration::from_secs(10)).await,
        "the deleted SSE session's stream is still open"
    );
    let gone = doomed_sse
        .post(&json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
        .await;
    assert_eq!(gone.status(), 404);

    // --- deleting all of a user's sessions --------------------------------------
    let mut bob_streams = Vec::new();
    for session in &bob.streamable {
        bob_streams.push(standalone_stream(session).await);
    }
    let (status, body) = admin(
        &base,
        &jwt_admin,
        Method::DELETE,
        &format!("/admin/users/{bob_hash}/sessions"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deleted: BTreeSet<String> = body["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deleted, bob.ids());
    for id in bob.ids() {
        for replica in &replicas {
            assert_eq!(
                status_on(replica, &bob.auth, &id).await,
                404,
                "{id} on {replica}"
            );
        }
    }
    for stream in &mut bob_streams {
        assert!(
            stream_ends(stream, Duration::from_secs(10)).await,
            "a GET /mcp stream of bob's"
        );
    }
    for session in &mut bob.sse {
        assert!(
            session.ends_within(Duration::from_secs(10)).await,
            "an SSE stream of bob's"
        );
    }
    // Bob can start again; his new session is his only one.
    let mut fresh = McpSession::initialize(&base, &bob.auth).await.unwrap();
    let (listed, _) = fresh.call("get_user_sessions", json!({})).await.unwrap();
    assert_eq!(listed["structuredContent"]["count"], 1, "{listed}");

    // Alice's other sessions were never touched.
    for session in &mut alice.streamable {
        let (result, _) = session.call("add", json!({"a": 2, "b": 2})).await.unwrap();
        assert_eq!(result["structuredContent"]["result"], 4.0);
    }
    for session in &mut alice.sse {
        let result = session.call("add", json!({"a": 2, "b": 2})).await;
        assert_eq!(result["structuredContent"]["result"], 4.0);
    }
    let (listed, _) = alice.streamable[0]
        .call("get_user_sessions", json!({}))
        .await
        .unwrap();
    assert_eq!(
        listed["structuredContent"]["count"],
        ALICE_STREAMABLE + ALICE_SSE - 2
    );

    let logs = fleet.logs();
    assert!(
        logs.contains("session deleted by an admin"),
        "admin deletions not logged"
    );
    assert!(logs.contains("user's sessions deleted by an admin"));
    assert_no_secrets(
        &logs,
        &[
            SECRET.to_owned(),
            BOB_KEY.to_owned(),
            OPS_KEY.to_owned(),
            alice_token,
            admin_token,
            pretender_token,
        ],
    );
    assert!(!logs.contains("panicked"), "{logs}");
}
