//! The official MCP Python SDK authenticates like any user: with a bearer
//! token (`Authorization: Bearer`) and with an API key (`X-API-Key`), each
//! over Streamable HTTP and HTTP+SSE, through three calculator replicas on
//! one Redis behind a round-robin nginx. The client
//! (`tests/interop/python/calculator_client.py`, headers from
//! `MCP_CLIENT_HEADERS`) initializes, lists the tools, makes its checks and
//! [`CALLS`] more calls, then calls `get_user_sessions`, which must list
//! exactly its user's sessions: its own and those the test opened for the
//! same user beforehand, none of another user's. nginx's access log shows
//! the session's requests reached every replica; the replicas' logs hold no
//! credential. An expired token makes the client fail on the server's `401`
//! without a session.
//!
//! The client is found as in the other interop tests (`interop_support`):
//! without it a test says so and passes, unless `MCP_INTEROP_REQUIRED=1`.

mod interop_support;

use std::{collections::BTreeSet, time::Duration};

use interop_support::{CLIENT_TIMEOUT, Run, SDK_CLIENT_CALLS, Sdk, SdkClient};
use mcp_session::{Caller, PrincipalKind};
use mcp_testkit::{
    Fleet,
    auth::{
        Auth, BOB_KEY, ISSUER, McpSession, SECRET, SseSession, assert_no_secrets, auth_env,
        token_for,
    },
};
use serde_json::{Value, json};

/// Tool calls after the client's checks (`--calls`).
/// The calculator binary.
const CALCULATOR: &str = env!("CARGO_BIN_EXE_calculator");

const CALLS: u64 = 30;

#[derive(Debug, Clone, Copy)]
enum Credential {
    /// A JWT for `py-alice` in `Authorization: Bearer`.
    Bearer,
    /// Bob's API key in `X-API-Key`.
    ApiKey,
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    StreamableHttp,
    Sse,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Self::StreamableHttp => "streamable-http",
            Self::Sse => "sse",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::StreamableHttp => "/mcp",
            Self::Sse => "/sse",
        }
    }

    fn post_path(self) -> &'static str {
        match self {
            Self::StreamableHttp => "/mcp",
            Self::Sse => "/messages",
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_with_a_bearer_token_over_streamable_http() {
    authenticated_session(
        "python_sdk_with_a_bearer_token_over_streamable_http",
        Credential::Bearer,
        Transport::StreamableHttp,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_with_a_bearer_token_over_sse() {
    authenticated_session(
        "python_sdk_with_a_bearer_token_over_sse",
        Credential::Bearer,
        Transport::Sse,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_with_an_api_key_over_streamable_http() {
    authenticated_session(
        "python_sdk_with_an_api_key_over_streamable_http",
        Credential::ApiKey,
        Transport::StreamableHttp,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_with_an_api_key_over_sse() {
    authenticated_session(
        "python_sdk_with_an_api_key_over_sse",
        Credential::ApiKey,
        Transport::Sse,
    )
    .await;
}

/// Runs `client` against `url` with `headers`, off the async runtime.
async fn run(
    client: SdkClient,
    url: String,
    transport: Transport,
    headers: Value,
    test: &str,
) -> Run {
    let scratch = interop_support::scratch_dir("interop_auth", test);
    let limit = CLIENT_TIMEOUT + Duration::from_millis(500 * CALLS);
    tokio::task::spawn_blocking(move || {
        let calls = CALLS.to_string();
        let mut command = client.command(&url, transport.name(), &["--calls", &calls]);
        command.env("MCP_CLIENT_HEADERS", headers.to_string());
        Run::bounded(&mut command, &scratch, limit)
    })
    .await
    .expect("the client runner")
}

async fn authenticated_session(test: &str, credential: Credential, transport: Transport) {
    let Some(client) = Sdk::Python.client(test) else {
        return;
    };
    // The Python SDK does not reconnect an HTTP+SSE stream: its session
    // ends SSE_RECONNECT_SECONDS after the stream (1 s here).
    let mut env = auth_env();
    env.push(("SSE_RECONNECT_SECONDS".into(), "1".into()));
    let fleet = Fleet::start(CALCULATOR, 3, &env).await;
    let base = fleet.url();
    let token = token_for("py-alice");
    let (auth, other, headers, principal, user_hash) = match credential {
        Credential::Bearer => (
            Auth::Bearer(token.clone()),
            Auth::XApiKey(BOB_KEY.into()),
            json!({"Authorization": format!("Bearer {token}")}),
            "jwt",
            Caller::new(PrincipalKind::Jwt, ISSUER, "py-alice").user_hash,
        ),
        Credential::ApiKey => (
            Auth::XApiKey(BOB_KEY.into()),
            Auth::Bearer(token.clone()),
            json!({"X-API-Key": BOB_KEY}),
            "api_key",
            Caller::new(PrincipalKind::ApiKey, "", "bob").user_hash,
        ),
    };
    // The same user's other sessions, on both transports, and another user's.
    let mine = vec![
        McpSession::initialize(&base, &auth).await.unwrap(),
        McpSession::initialize(&base, &auth).await.unwrap(),
    ];
    let mine_sse = SseSession::open(&base, &auth).await.unwrap();
    let others = vec![
        McpSession::initialize(&base, &other).await.unwrap(),
        McpSession::initialize(&base, &other).await.unwrap(),
    ];
    let others_sse = SseSession::open(&base, &other).await.unwrap();
    let my_ids: BTreeSet<String> = mine
        .iter()
        .map(|session| session.id.clone())
        .chain([mine_sse.id.clone()])
        .collect();
    let other_ids: BTreeSet<String> = others
        .iter()
        .map(|session| session.id.clone())
        .chain([others_sse.id.clone()])
        .collect();

    let url = format!("{base}{}", transport.path());
    let run = run(client, url, transport, headers, test).await;
    let diagnostics = || {
        format!(
            "--- nginx access log ---\n{}\n--- replica logs ---\n{}",
            fleet.nginx.access_log(),
            fleet.logs()
        )
    };
    run.assert_success("the Python SDK client", &diagnostics);
    let summary = interop_support::summary(&run, Sdk::Python, transport.name(), &diagnostics);
    let failure = || format!("summary {summary}\n{}", run.report(&diagnostics()));
    assert_eq!(summary["calls"].as_u64(), Some(CALLS), "{}", failure());
    assert_eq!(summary["errors"].as_u64(), Some(0), "{}", failure());
    assert_eq!(
        summary["checks"].as_u64(),
        Some(SDK_CLIENT_CALLS),
        "{}",
        failure()
    );

    // get_user_sessions, as the SDK client saw it: its user's sessions, all
    // of them, and nobody else's.
    let listed = &summary["user_sessions"];
    assert_eq!(listed["principal"], principal, "{}", failure());
    assert_eq!(listed["user_hash"], user_hash.as_str(), "{}", failure());
    let current = listed["current"]
        .as_str()
        .expect("the current session")
        .to_owned();
    let ids: BTreeSet<String> = listed["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    let mut expected = my_ids.clone();
    expected.insert(current.clone());
    assert!(!my_ids.contains(&current), "{}", failure());
    assert_eq!(ids, expected, "{}", failure());
    assert!(ids.is_disjoint(&other_ids), "{}", failure());

    // The session's requests reached every replica.
    let log = fleet.nginx.access_log();
    for replica in &fleet.replicas.replicas {
        let upstream = format!("127.0.0.1:{}", replica.port());
        let served = log
            .lines()
            .filter(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                fields.first() == Some(&"POST")
                    && fields.get(1) == Some(&transport.post_path())
                    && fields.get(2).is_some_and(|status| status.starts_with('2'))
                    && line.ends_with(&upstream)
            })
            .count();
        assert!(
            served > 0,
            "{test}: {} served none of the session's POSTs:\n{}",
            replica.name(),
            failure()
        );
    }

    // The client ended its session when it left (DELETE, or the end of its
    // stream); the test's own sessions stay.
    let mut probe = McpSession::initialize(&base, &auth).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (listed, _) = probe.call("get_user_sessions", json!({})).await.unwrap();
        let ids: BTreeSet<String> = listed["structuredContent"]["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|session| session["id"].as_str().unwrap().to_owned())
            .collect();
        let mut expected = my_ids.clone();
        expected.insert(probe.id.clone());
        if ids == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the client's session {current} outlived it: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let logs = fleet.logs();
    assert_no_secrets(&logs, &[token, BOB_KEY.to_owned(), SECRET.to_owned()]);
    drop((mine, mine_sse, others, others_sse));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_with_an_expired_token_is_refused() {
    let test = "python_sdk_with_an_expired_token_is_refused";
    let Some(client) = Sdk::Python.client(test) else {
        return;
    };
    let fleet = Fleet::start(CALCULATOR, 1, &auth_env()).await;
    let mut claims = mcp_testkit::auth::claims("py-alice");
    claims["exp"] = json!(mcp_testkit::auth::now() - 3600);
    let expired = mcp_testkit::auth::hs256(&claims);
    for transport in [Transport::StreamableHttp, Transport::Sse] {
        let url = format!("{}{}", fleet.url(), transport.path());
        let headers = json!({"Authorization": format!("Bearer {expired}")});
        let run = run(client.clone(), url, transport, headers, test).await;
        // The SDK reports the 401 in its own words (over Streamable HTTP:
        // "Server returned an error response"); the server says why.
        assert_eq!(
            run.status.and_then(|status| status.code()),
            Some(1),
            "{}",
            run.report(&fleet.logs())
        );
        assert!(
            run.stdout.trim().is_empty(),
            "{}",
            run.report(&fleet.logs())
        );
    }
    let logs = fleet.logs();
    let refusals = logs
        .lines()
        .filter(|line| line.contains("authentication refused") && line.contains("token expired"))
        .count();
    assert!(refusals >= 2, "{logs}");
    assert!(
        fleet
            .redis
            .cli(&["--scan", "--pattern", "mcp_user_session:*"])
            .trim()
            .is_empty(),
        "a refused client got a session"
    );
    assert_no_secrets(&logs, &[expired, SECRET.to_owned()]);
}
