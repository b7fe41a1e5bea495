//! Per-user session isolation across a fleet: two users, 50 sessions each
//! on each transport, three replicas of the fixture service on one Redis behind a
//! round-robin nginx. Every request one user makes naming the other's
//! session, on every endpoint, gets what an unknown session gets (`404`,
//! or for a foreign `Last-Event-ID` an empty stream) and leaves the session
//! working; `get_user_sessions` lists exactly the caller's own sessions; and
//! the logs of the whole run hold no credential.

use std::{collections::BTreeSet, time::Duration};

use futures::{StreamExt, stream};
use mcp_testkit::auth::{
    Auth, BOB_KEY, McpSession, SseSession, assert_no_secrets, auth_env, http, pairs, token_for,
};
use mcp_testkit::{Nginx, RedisServer, ReplicaSet};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

/// Sessions per user and transport.
const SESSIONS: usize = 50;

/// One user's sessions and what an attacker needs to name them.
struct User {
    auth: Auth,
    streamable: Vec<McpSession>,
    sse: Vec<SseSession>,
    /// A response stream's first event id per Streamable HTTP session.
    event_ids: Vec<String>,
}

async fn open_user(base: &str, auth: Auth) -> User {
    let streamable: Vec<McpSession> = stream::iter(0..SESSIONS)
        .map(|_| {
            let auth = auth.clone();
            async move {
                McpSession::initialize(base, &auth)
                    .await
                    .expect("initialize")
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let sse: Vec<SseSession> = stream::iter(0..SESSIONS)
        .map(|_| {
            let auth = auth.clone();
            async move { SseSession::open(base, &auth).await.expect("open /sse") }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut user = User {
        auth,
        streamable,
        sse,
        event_ids: Vec::new(),
    };
    for session in &mut user.streamable {
        let (result, event_id) = session
            .call("add", json!({"a": 1, "b": 2}))
            .await
            .expect("a call");
        assert_eq!(result["structuredContent"]["result"], 3.0);
        user.event_ids
            .push(event_id.expect("response streams carry event ids"));
    }
    user
}

fn ids(user: &User) -> BTreeSet<String> {
    user.streamable
        .iter()
        .map(|session| session.id.clone())
        .chain(user.sse.iter().map(|session| session.id.clone()))
        .collect()
}

/// A request of `attacker` on `/mcp` naming session `id`.
fn as_attacker(attacker: &McpSession, method: Method, id: &str) -> reqwest::RequestBuilder {
    attacker.request(method, id)
}

async fn status(request: reqwest::RequestBuilder) -> StatusCode {
    request.send().await.expect("an answer").status()
}

/// `POST /messages` of `attacker` naming session `id` (another user's
/// `what`): `404`, as for a session that does not exist.
async fn post_message(base: &str, attacker: &User, id: &str, call: &Value, what: &str) {
    assert_eq!(
        status(
            attacker.auth.apply(
                http()
                    .post(format!("{base}/messages?session_id={id}"))
                    .json(call)
            )
        )
        .await,
        StatusCode::NOT_FOUND,
        "POST /messages naming another user's {what}"
    );
}

/// Every way `attacker` can name `victim`'s sessions; each must look like a
/// session that does not exist.
async fn attack(base: &str, attacker: &User, victim: &User) {
    let mine = &attacker.streamable[0];
    let call = json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
                      "params": {"name": "add", "arguments": {"a": 1, "b": 1}}});
    for (index, session) in victim.streamable.iter().enumerate() {
        let id = &session.id;
        assert_eq!(
            status(as_attacker(mine, Method::POST, id).json(&call)).await,
            StatusCode::NOT_FOUND,
            "POST /mcp naming another user's session"
        );
        assert_eq!(
            status(as_attacker(mine, Method::GET, id).header("accept", "text/event-stream")).await,
            StatusCode::NOT_FOUND,
            "GET /mcp naming another user's session"
        );
        assert_eq!(
            status(
                as_attacker(mine, Method::GET, id)
                    .header("accept", "text/event-stream")
                    .header("last-event-id", &victim.event_ids[index])
            )
            .await,
            StatusCode::NOT_FOUND,
            "Last-Event-ID resume naming another user's session"
        );
        assert_eq!(
            status(as_attacker(mine, Method::DELETE, id)).await,
            StatusCode::NOT_FOUND,
            "DELETE /mcp of another user's session"
        );
        // The session id on the other transport's endpoint.
        post_message(base, attacker, id, &call, "a Streamable HTTP session").await;
    }
    for session in &victim.sse {
        let id = &session.id;
        post_message(base, attacker, id, &call, "an SSE session").await;
        assert_eq!(
            status(as_attacker(mine, Method::POST, id).json(&call)).await,
            StatusCode::NOT_FOUND,
            "POST /mcp naming another user's SSE session"
        );
        assert_eq!(
            status(as_attacker(mine, Method::DELETE, id)).await,
            StatusCode::NOT_FOUND,
            "DELETE /mcp of another user's SSE session"
        );
    }
    // Resuming another user's stream from one's own session, or without a
    // session (the stateless path), replays nothing.
    for event_id in victim
        .event_ids
        .iter()
        .take(10)
        .chain([&format!("{}:common#x-0", victim.streamable[0].id)])
    {
        let own = as_attacker(mine, Method::GET, &mine.id)
            .header("accept", "text/event-stream")
            .header("last-event-id", event_id);
        let stateless = attacker.auth.apply(
            http()
                .get(format!("{base}/mcp"))
                .header("accept", "text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("last-event-id", event_id),
        );
        for request in [own, stateless] {
            let response = request.send().await.unwrap();
            let code = response.status();
            let body = tokio::time::timeout(Duration::from_secs(10), response.text())
                .await
                .expect("the stream ends")
                .unwrap();
            assert!(
                !body.contains("jsonrpc") && !body.contains("result"),
                "{code}: another user's events were replayed: {body}"
            );
        }
    }
}

/// Every session of `user` still works.
async fn still_working(user: &mut User) {
    for session in &mut user.streamable {
        let (result, _) = session
            .call("multiply", json!({"a": 6, "b": 7}))
            .await
            .unwrap_or_else(|error| panic!("session {} broken: {error:?}", session.id));
        assert_eq!(result["structuredContent"]["result"], 42.0);
    }
    for session in &mut user.sse {
        let result = session.call("multiply", json!({"a": 6, "b": 7})).await;
        assert_eq!(result["structuredContent"]["result"], 42.0);
    }
}

fn listed_ids(result: &Value) -> BTreeSet<String> {
    result["structuredContent"]["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|session| session["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_never_reach_each_others_sessions() {
    let redis = RedisServer::start();
    let mut env = auth_env();
    env.push(("REDIS_URL".into(), redis.url()));
    let replicas = ReplicaSet::start(BINARY, 3, &pairs(&env)).await;
    let nginx = Nginx::start(&replicas.ports());
    let base = nginx.url();
    let alice_token = token_for("alice");
    let mut alice = open_user(&base, Auth::Bearer(alice_token.clone())).await;
    let mut bob = open_user(&base, Auth::XApiKey(BOB_KEY.into())).await;

    attack(&base, &alice, &bob).await;
    attack(&base, &bob, &alice).await;
    still_working(&mut alice).await;
    still_working(&mut bob).await;

    // get_user_sessions lists exactly the caller's sessions, both transports,
    // whichever replica answers (SSE calls often run on another replica than
    // the one the POST reached).
    let (listed, _) = alice.streamable[3]
        .call("get_user_sessions", json!({}))
        .await
        .unwrap();
    assert_eq!(listed_ids(&listed), ids(&alice), "{listed}");
    assert_eq!(listed["structuredContent"]["principal"], "jwt");
    let sessions = listed["structuredContent"]["sessions"].as_array().unwrap();
    assert_eq!(
        sessions
            .iter()
            .filter(|session| session["current"] == true)
            .count(),
        1
    );
    let sse_count = sessions
        .iter()
        .filter(|session| session["transport"] == "sse")
        .count();
    assert_eq!(sse_count, SESSIONS);
    for session in sessions {
        assert!(session["ttl_seconds"].as_u64().unwrap() > 3000, "{session}");
        assert!(session["protocol_version"].is_string(), "{session}");
    }
    let listed = bob.sse[7].call("get_user_sessions", json!({})).await;
    assert_eq!(listed_ids(&listed), ids(&bob), "{listed}");
    assert_eq!(listed["structuredContent"]["principal"], "api_key");

    // The attempts are in the logs, with the caller's user hash prefix; no
    // credential is.
    let logs = replicas.logs();
    assert!(
        logs.contains("no such session for this caller"),
        "attempts not logged"
    );
    assert_no_secrets(
        &logs,
        &[
            alice_token,
            BOB_KEY.to_owned(),
            mcp_testkit::auth::SECRET.to_owned(),
        ],
    );
    assert!(!logs.contains("panicked"), "{logs}");
}

/// A stateless (protocol 2026-07-28) `tools/call` of `auth` through `base`:
/// the response, answered as an SSE stream.
async fn stateless_call(base: &str, auth: &Auth) -> reqwest::Response {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    auth.apply(
        http()
            .post(format!("{base}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "add")
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                          "params": {"name": "add", "arguments": {"a": 20, "b": 22},
                                     "_meta": meta}})),
    )
    .send()
    .await
    .expect("an answer")
}

/// The stateless resumption of `auth` after `event_id` through `base`: the
/// body replayed (empty when refused).
async fn stateless_resume(base: &str, auth: &Auth, event_id: &str) -> String {
    let response = auth
        .apply(
            http()
                .get(format!("{base}/mcp"))
                .header("accept", "text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("last-event-id", event_id),
        )
        .send()
        .await
        .expect("an answer");
    tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the stream ends")
        .expect("a body")
}

/// Red-team finding 5: a response stream of a request without a session
/// (protocol 2026-07-28) belongs to the user who sent it. Another user who
/// learns one of its event ids gets nothing back, whichever replica holds
/// the stream (in memory, or flushed to Redis for the resumption), while
/// its own user resumes it on any replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_streams_are_resumed_only_by_their_user() {
    let redis = RedisServer::start();
    let mut env = auth_env();
    env.push(("REDIS_URL".into(), redis.url()));
    let replicas = ReplicaSet::start(BINARY, 3, &pairs(&env)).await;
    let alice = Auth::Bearer(token_for("alice"));
    let bob = Auth::XApiKey(BOB_KEY.into());
    for (index, replica) in replicas.replicas.iter().enumerate() {
        let base = replica.url();
        let response = stateless_call(&base, &alice).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.text().await.unwrap();
        assert!(body.contains("42"), "{body}");
        // The priming event's id: resuming after it replays the answer.
        let event_id = body
            .lines()
            .filter_map(|line| line.strip_prefix("id:"))
            .map(str::trim)
            .find(|id| id.contains('#'))
            .unwrap_or_else(|| panic!("no event id in the stateless stream: {body}"))
            .to_owned();
        // Bob, on the replica holding it and on the others: nothing.
        for other in &replicas.replicas {
            let replayed = stateless_resume(&other.url(), &bob, &event_id).await;
            assert!(
                !replayed.contains("jsonrpc"),
                "bob replayed alice's stream on replica {index}: {replayed}"
            );
        }
        // Alice, on another replica (the holder flushes it for her), then on
        // the holder: her answer.
        let next = &replicas.replicas[(index + 1) % replicas.replicas.len()];
        for resumed_on in [next.url(), base] {
            let replayed = stateless_resume(&resumed_on, &alice, &event_id).await;
            assert!(
                replayed.contains("jsonrpc") && replayed.contains("42"),
                "alice's own resumption on {resumed_on}: {replayed:?}"
            );
        }
    }
    let logs = replicas.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}
