//! Authentication against the fixture service binary: three replicas on one
//! Redis behind a round-robin nginx, logging at `RUST_LOG=debug` (one test at
//! `trace`).
//!
//! Every forged, broken or refused credential gets `401` with a
//! `WWW-Authenticate` challenge per accepted scheme, the one concerned saying
//! exactly why (RFC 6750 §3: `error`, `error_description`), on every
//! endpoint behind authentication, and changes nothing: the sessions of the
//! user it claims to be keep working. Good credentials of every kind open
//! working sessions. At the end of each test, the replicas' logs hold no
//! credential and no piece of one.
//!
//! | test | fleet | proves |
//! |---|---|---|
//! | `forged_and_broken_bearer_tokens_are_refused_with_their_reason` | HS256/384/512, issuer, audience, 30 s leeway | alg none, wrong key, HS/RS swap, tampering, expiry, nbf, audience, issuer, claims, garbage, empty and malformed headers, 100 KB headers, no credentials (anonymous off); leeway; RFC 9728 metadata |
//! | `rs256_and_es256_tokens_are_checked_against_a_jwks_file` | HS256 + RS256 + ES256 (JWKS file) | both key families, a foreign key, unknown `kid`s, family and algorithm mismatches, the RS256 → HS256 swap with the public key |
//! | `a_jwks_url_is_fetched_once_and_cached` | RS256 + ES256 (JWKS URL on loopback) | one fetch per replica however many tokens (and forged `kid`s) arrive; keys kept when the provider goes away; `503` while no key could ever be loaded |
//! | `api_keys_unknown_revoked_and_malformed_are_refused` | API keys only | both headers, unknown keys, a hash given as a key, a key revoked by a redeploy (its sessions refused, others kept), no metadata without an issuer |
//! | `anonymous_callers_are_told_apart_by_address_and_agent` | anonymous allowed, behind 1 trusted proxy | forged `X-Forwarded-For` ignored, agents separate users, bad tokens still refused |
//! | `max_sessions_per_user_is_a_clear_429_on_both_transports` | `MAX_SESSIONS_PER_USER=4` | the limit counts both transports, holds under 32 concurrent attempts through nginx and 64 on the store itself, other users unaffected, ending a session frees a place |
//! | `credentials_never_reach_the_logs_even_at_trace_level` | `RUST_LOG=trace`, JSON logs | good and bad credentials of every kind on every endpoint, both transports, resumed streams, messages forwarded between replicas, the admin API: no credential in any log line |

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::{StreamExt, stream};
use jsonwebtoken::{Algorithm, EncodingKey};
use mcp_session::store::SessionStore;
use mcp_testkit::Replica;
use mcp_testkit::{
    Fleet,
    auth::{
        AUDIENCE, Auth, BOB_KEY, CAROL_KEY, HttpError, ISSUER, McpSession, OPS_KEY, Reason, SECRET,
        SseSession, assert_no_secrets, assert_refused, attacker_rsa_key, auth_env, bad_request,
        bad_token, claims, ec_key, every_endpoint, hs256, http, initialize_request, jwks_json, now,
        rsa_key, rsa_public_pem, send, sign, tampered, unsigned,
    },
};
use serde_json::{Value, json};

/// The schemes a fleet with JWTs and API keys offers, in challenge order.
/// The library's fixture service.
const FIXTURE: &str = env!("CARGO_BIN_EXE_mcp-session-fixture");

const BOTH: [&str; 2] = ["Bearer", "ApiKey"];

fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = auth_env();
    env.extend(
        extra
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string())),
    );
    env
}

/// `claims(sub)` with `key` set to `value` (`Value::Null` removes it).
fn with(sub: &str, key: &str, value: Value) -> Value {
    let mut claims = claims(sub);
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(key);
    } else {
        claims[key] = value;
    }
    claims
}

fn hmac(algorithm: Algorithm, secret: &[u8], claims: &Value) -> String {
    sign(algorithm, &EncodingKey::from_secret(secret), None, claims)
}

/// Opens a session with `auth` and makes one call in it.
async fn works(base: &str, auth: &Auth, case: &str) -> McpSession {
    let mut session = McpSession::initialize(base, auth)
        .await
        .unwrap_or_else(|error| panic!("{case}: initialize refused: {error:?}"));
    let (result, _) = session
        .call("add", json!({"a": 20, "b": 22}))
        .await
        .unwrap_or_else(|error| panic!("{case}: call refused: {error:?}"));
    assert_eq!(result["structuredContent"]["result"], 42.0, "{case}");
    session
}

/// Sends `auth` to every endpoint (naming `session`) and checks each refusal.
async fn refused_everywhere(
    base: &str,
    auth: &Auth,
    session: &str,
    offered: &[&str],
    reason: Reason,
    metadata: Option<&str>,
    case: &str,
) {
    for (endpoint, request) in every_endpoint(base, auth, session) {
        let answer = send(request).await;
        assert_refused(
            &answer,
            offered,
            reason,
            metadata,
            &format!("{case}, {endpoint}"),
        );
    }
}

/// A 100 KiB credential of base64url characters.
fn huge_credential() -> String {
    let unit = uuid_like();
    unit.repeat(100 * 1024 / unit.len() + 1)[..100 * 1024].to_owned()
}

fn uuid_like() -> String {
    format!("{:x}{:x}", now(), std::process::id()).repeat(4)
}

/// `GET base/path` without credentials: status and JSON body.
async fn get_json(base: &str, path: &str) -> (u16, Value) {
    let response = http().get(format!("{base}{path}")).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// The secrets of `auth_env` and the keys of its users.
fn fleet_secrets() -> Vec<String> {
    vec![
        SECRET.to_owned(),
        BOB_KEY.to_owned(),
        CAROL_KEY.to_owned(),
        OPS_KEY.to_owned(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_broken_bearer_tokens_are_refused_with_their_reason() {
    let fleet = Fleet::start(
        FIXTURE,
        3,
        &env(&[
            ("JWT_ALGORITHM", "HS256,HS384,HS512"),
            ("JWT_LEEWAY_SECONDS", "30"),
        ]),
    )
    .await;
    let base = fleet.url();
    let metadata = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let mut secrets = fleet_secrets();

    // Good tokens of each HMAC algorithm, and tokens off by less than the
    // leeway, open working sessions.
    let secret = SECRET.as_bytes();
    let good = [
        ("HS256", hmac(Algorithm::HS256, secret, &claims("alice"))),
        ("HS384", hmac(Algorithm::HS384, secret, &claims("alice"))),
        ("HS512", hmac(Algorithm::HS512, secret, &claims("alice"))),
        (
            "expired 10 s ago, within the 30 s leeway",
            hs256(&with("alice", "exp", json!(now() - 10))),
        ),
        (
            "valid in 10 s, within the leeway",
            hs256(&with("alice", "nbf", json!(now() + 10))),
        ),
        (
            "one of several audiences",
            hs256(&with("alice", "aud", json!(["other", AUDIENCE]))),
        ),
    ];
    let mut alice = Vec::new();
    for (case, token) in &good {
        secrets.push(token.clone());
        alice.push(works(&base, &Auth::Bearer(token.clone()), case).await);
    }
    // All of them are alice: one user, whatever the algorithm.
    let (listed, _) = alice[0].call("get_user_sessions", json!({})).await.unwrap();
    assert_eq!(listed["structuredContent"]["count"], good.len(), "{listed}");
    let victim = alice[0].id.clone();

    // Forged and broken tokens, all claiming to be alice.
    let other_secret = b"another-secret-of-32-bytes-or-more!!";
    let good_token = hs256(&claims("alice"));
    let admin_claims = {
        let mut claims = claims("alice");
        claims["roles"] = json!(["admin"]);
        claims
    };
    let cases: Vec<(&str, String, Reason)> = vec![
        (
            "alg none",
            unsigned("none", &claims("alice")),
            bad_token("unsigned token (alg none) refused"),
        ),
        (
            "alg None",
            unsigned("None", &claims("alice")),
            bad_token("unsigned token (alg none) refused"),
        ),
        (
            "alg NONE with a stolen signature",
            format!(
                "{}{}",
                unsigned("NONE", &claims("alice")),
                good_token.rsplit('.').next().unwrap()
            ),
            bad_token("unsigned token (alg none) refused"),
        ),
        (
            "signed with a wrong key",
            hmac(Algorithm::HS256, other_secret, &admin_claims),
            bad_token("invalid token signature"),
        ),
        (
            "HS512 with a wrong key",
            hmac(Algorithm::HS512, other_secret, &claims("alice")),
            bad_token("invalid token signature"),
        ),
        (
            "signature stripped",
            format!(
                "{}.",
                good_token.rsplit_once('.').map(|(head, _)| head).unwrap()
            ),
            bad_token("invalid token signature"),
        ),
        (
            "payload tampered after signing (admin role added)",
            tampered(&good_token, &admin_claims),
            bad_token("invalid token signature"),
        ),
        (
            "RS256 where only HS* is accepted",
            sign(Algorithm::RS256, &rsa_key(), Some("rsa1"), &claims("alice")),
            bad_token("token algorithm not accepted"),
        ),
        (
            "ES256 where only HS* is accepted",
            sign(Algorithm::ES256, &ec_key(), Some("ec1"), &claims("alice")),
            bad_token("token algorithm not accepted"),
        ),
        (
            "HS256 signed with the RSA public key (algorithm swap)",
            hmac(Algorithm::HS256, &rsa_public_pem(), &claims("alice")),
            bad_token("invalid token signature"),
        ),
        (
            "an algorithm no JWT library knows",
            unsigned("XS999", &claims("alice")),
            bad_token("token algorithm not accepted"),
        ),
        (
            "expired an hour ago",
            hs256(&with("alice", "exp", json!(now() - 3600))),
            bad_token("token expired"),
        ),
        (
            "expired 60 s ago, past the 30 s leeway",
            hs256(&with("alice", "exp", json!(now() - 60))),
            bad_token("token expired"),
        ),
        (
            "not valid for another hour",
            hs256(&with("alice", "nbf", json!(now() + 3600))),
            bad_token("token not yet valid"),
        ),
        (
            "wrong audience",
            hs256(&with("alice", "aud", json!("another-service"))),
            bad_token("wrong token audience"),
        ),
        (
            "no audience",
            hs256(&with("alice", "aud", Value::Null)),
            bad_token("wrong token audience"),
        ),
        (
            "wrong issuer",
            hs256(&with("alice", "iss", json!("https://evil.example"))),
            bad_token("wrong token issuer"),
        ),
        (
            "no issuer",
            hs256(&with("alice", "iss", Value::Null)),
            bad_token("wrong token issuer"),
        ),
        (
            "no sub",
            hs256(&with("alice", "sub", Value::Null)),
            bad_token("token lacks a required claim (exp, sub)"),
        ),
        (
            "an empty sub",
            hs256(&with("alice", "sub", json!(""))),
            bad_token("token lacks a required claim (exp, sub)"),
        ),
        (
            "no exp",
            hs256(&with("alice", "exp", Value::Null)),
            bad_token("token lacks a required claim (exp, sub)"),
        ),
        (
            "garbage",
            "garbage-garbage-garbage".to_owned(),
            bad_token("malformed token"),
        ),
        (
            "three dots of nothing",
            "a.b.c".to_owned(),
            bad_token("malformed token"),
        ),
        (
            "two segments",
            good_token.rsplit_once('.').unwrap().0.to_owned(),
            bad_token("malformed token"),
        ),
        (
            "four segments",
            format!("{good_token}.x"),
            bad_token("malformed token"),
        ),
        (
            "an API key as a bearer token",
            BOB_KEY.to_owned(),
            bad_token("malformed token"),
        ),
    ];
    for (case, token, reason) in &cases {
        secrets.push(token.clone());
        let auth = Auth::Bearer(token.clone());
        refused_everywhere(&base, &auth, &victim, &BOTH, *reason, Some(&metadata), case).await;
    }

    // Malformed Authorization headers: invalid_request, carried by the
    // first challenge (the request named no scheme we could trust).
    let malformed = [
        ("an empty header", "", "empty credential header"),
        ("only spaces", "   ", "empty credential header"),
        (
            "Bearer without a token",
            "Bearer",
            "authorization scheme without credentials",
        ),
        (
            "Bearer and spaces",
            "Bearer    ",
            "authorization scheme without credentials",
        ),
        (
            "two tokens",
            "Bearer a.b.c d.e.f",
            "credentials contain spaces",
        ),
        (
            "Basic credentials",
            "Basic YWxpY2U6cGFzc3dvcmQ=",
            "unsupported authorization scheme",
        ),
        (
            "a token without a scheme",
            "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
            "unsupported authorization scheme",
        ),
    ];
    for (case, value, description) in malformed {
        refused_everywhere(
            &base,
            &Auth::Raw(value.to_owned()),
            &victim,
            &BOTH,
            bad_request("Bearer", description),
            Some(&metadata),
            case,
        )
        .await;
    }
    // Two credentials at once.
    let good_auth = Auth::Bearer(good_token.clone());
    let answer = send(
        good_auth
            .apply(http().get(format!("{base}/admin/sessions")))
            .header("x-api-key", BOB_KEY),
    )
    .await;
    assert_refused(
        &answer,
        &BOTH,
        bad_request("Bearer", "more than one credential header"),
        Some(&metadata),
        "a bearer token and an API key",
    );
    // (nginx itself refuses a duplicate Authorization header with 400, so
    // this one goes to a replica directly.)
    let replica = fleet.replicas.replicas[1].url();
    let answer = send(
        http()
            .get(format!("{replica}/admin/sessions"))
            .header("authorization", format!("Bearer {good_token}"))
            .header("authorization", format!("Bearer {good_token}")),
    )
    .await;
    assert_refused(
        &answer,
        &BOTH,
        bad_request("Bearer", "more than one credential header"),
        Some(&format!(
            "{replica}/.well-known/oauth-protected-resource/mcp"
        )),
        "two Authorization headers",
    );

    // No credentials while anonymous callers are not allowed: the challenge
    // has no error code (RFC 6750 §3.1) and points to the metadata.
    refused_everywhere(
        &base,
        &Auth::None,
        &victim,
        &BOTH,
        Reason {
            scheme: "Bearer",
            error: None,
            description: "missing credentials",
        },
        Some(&metadata),
        "no credentials",
    )
    .await;
    // The realm of every challenge is the service's name.
    let refusal = send(initialize_request(&http(), &base)).await;
    assert!(
        refusal
            .www_authenticate
            .iter()
            .all(|value| value.contains("realm=\"fixture\"")),
        "{refusal:?}"
    );

    // A 100 KiB header: straight to a replica, refused unread; through
    // nginx, nginx refuses it (its header buffers are 8 KiB). Either way a
    // clear 4xx, and the fleet serves on.
    let huge = huge_credential();
    secrets.push(huge.clone());
    let replica = fleet.replicas.replicas[0].url();
    for auth in [Auth::Bearer(huge.clone()), Auth::XApiKey(huge.clone())] {
        let answer = send(auth.apply(http().post(format!("{replica}/mcp")).json(&json!({})))).await;
        assert_refused(
            &answer,
            &BOTH,
            bad_request("Bearer", "credential header too large"),
            Some(&format!(
                "{replica}/.well-known/oauth-protected-resource/mcp"
            )),
            "a 100 KiB credential header, straight to a replica",
        );
        let answer = send(auth.apply(http().post(format!("{base}/mcp")).json(&json!({})))).await;
        assert!(
            (400..500).contains(&answer.status),
            "a 100 KiB credential header through nginx: {}",
            answer.status
        );
    }

    // Metadata (RFC 9728): public, names the issuer as authorization server.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, document) = get_json(&base, path).await;
        assert_eq!(status, 200, "{path}: {document}");
        assert_eq!(
            document,
            json!({
                "resource": format!("{base}/mcp"),
                "authorization_servers": [ISSUER],
                "bearer_methods_supported": ["header"],
                "resource_name": "fixture",
            }),
            "{path}"
        );
    }
    assert_eq!(get_json(&base, "/healthz").await.0, 200);

    // Nothing the refused requests named was touched: alice's sessions all
    // still work, on every replica.
    for (session, (case, _)) in alice.iter_mut().zip(&good) {
        let (result, _) = session
            .call("multiply", json!({"a": 6, "b": 7}))
            .await
            .unwrap_or_else(|error| panic!("{case}: session broken: {error:?}"));
        assert_eq!(result["structuredContent"]["result"], 42.0);
    }

    let logs = fleet.logs();
    assert!(
        logs.contains("authentication refused"),
        "refusals not logged"
    );
    assert!(
        logs.contains("DEBUG"),
        "the fleet does not log at debug level"
    );
    assert_no_secrets(&logs, &secrets);
    assert!(!logs.contains("panicked"), "{logs}");
}

/// A JWKS file with the fleet's RSA and EC public keys.
fn jwks_file() -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("auth");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("jwks-{}-{}.json", std::process::id(), now()));
    std::fs::write(&path, jwks_json()).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_and_es256_tokens_are_checked_against_a_jwks_file() {
    let jwks = jwks_file();
    let fleet = Fleet::start(
        FIXTURE,
        3,
        &env(&[
            ("JWT_JWKS_FILE", &jwks),
            ("JWT_ALGORITHM", "HS256,RS256,ES256"),
        ]),
    )
    .await;
    let base = fleet.url();
    let metadata = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let mut secrets = fleet_secrets();

    let rs256 = sign(Algorithm::RS256, &rsa_key(), Some("rsa1"), &claims("carol"));
    let es256 = sign(Algorithm::ES256, &ec_key(), Some("ec1"), &claims("carol"));
    let hs = hs256(&claims("carol"));
    let mut sessions = Vec::new();
    for (case, token) in [("RS256", &rs256), ("ES256", &es256), ("HS256", &hs)] {
        secrets.push(token.clone());
        sessions.push(works(&base, &Auth::Bearer(token.clone()), case).await);
    }
    let victim = sessions[0].id.clone();

    let cases: Vec<(&str, String, Reason)> = vec![
        (
            "RS256 signed by another key, naming the service's kid",
            sign(
                Algorithm::RS256,
                &attacker_rsa_key(),
                Some("rsa1"),
                &claims("carol"),
            ),
            bad_token("invalid token signature"),
        ),
        (
            "RS256 signed by another key, without a kid",
            sign(
                Algorithm::RS256,
                &attacker_rsa_key(),
                None,
                &claims("carol"),
            ),
            bad_token("invalid token signature"),
        ),
        (
            "RS256 naming an unknown kid",
            sign(
                Algorithm::RS256,
                &attacker_rsa_key(),
                Some("attacker"),
                &claims("carol"),
            ),
            bad_token("unknown token signing key"),
        ),
        (
            "ES256 naming the RSA key",
            sign(Algorithm::ES256, &ec_key(), Some("rsa1"), &claims("carol")),
            bad_token("unknown token signing key"),
        ),
        (
            "HS256 signed with the RSA public key (algorithm swap)",
            hmac(Algorithm::HS256, &rsa_public_pem(), &claims("carol")),
            bad_token("invalid token signature"),
        ),
        (
            "HS256 with the swapped key, naming the RSA kid",
            sign(
                Algorithm::HS256,
                &EncodingKey::from_secret(&rsa_public_pem()),
                Some("rsa1"),
                &claims("carol"),
            ),
            bad_token("invalid token signature"),
        ),
        (
            "RS384, not accepted",
            sign(Algorithm::RS384, &rsa_key(), Some("rsa1"), &claims("carol")),
            bad_token("token algorithm not accepted"),
        ),
        (
            "PS256, not accepted",
            sign(Algorithm::PS256, &rsa_key(), Some("rsa1"), &claims("carol")),
            bad_token("token algorithm not accepted"),
        ),
        (
            "alg none naming the RSA kid",
            unsigned("none", &claims("carol")),
            bad_token("unsigned token (alg none) refused"),
        ),
        (
            "RS256 expired",
            sign(
                Algorithm::RS256,
                &rsa_key(),
                Some("rsa1"),
                &with("carol", "exp", json!(now() - 3600)),
            ),
            bad_token("token expired"),
        ),
        (
            "ES256 not yet valid",
            sign(
                Algorithm::ES256,
                &ec_key(),
                Some("ec1"),
                &with("carol", "nbf", json!(now() + 3600)),
            ),
            bad_token("token not yet valid"),
        ),
        (
            "ES256 for another audience",
            sign(
                Algorithm::ES256,
                &ec_key(),
                Some("ec1"),
                &with("carol", "aud", json!("another-service")),
            ),
            bad_token("wrong token audience"),
        ),
        (
            "RS256 payload tampered",
            tampered(&rs256, &with("mallory", "roles", json!(["admin"]))),
            bad_token("invalid token signature"),
        ),
    ];
    for (case, token, reason) in &cases {
        secrets.push(token.clone());
        let auth = Auth::Bearer(token.clone());
        refused_everywhere(&base, &auth, &victim, &BOTH, *reason, Some(&metadata), case).await;
    }
    for session in &mut sessions {
        session.call("add", json!({"a": 1, "b": 1})).await.unwrap();
    }
    let logs = fleet.logs();
    assert_no_secrets(&logs, &secrets);
    assert!(!logs.contains("panicked"), "{logs}");
}

/// A JWKS endpoint on loopback that counts its fetches; stopped when dropped.
struct JwksServer {
    url: String,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start() -> Self {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        let document = jwks_json();
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let document = document.clone();
                async move { ([("content-type", "application/json")], document) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, fetches, task }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_url_is_fetched_once_and_cached() {
    let jwks = JwksServer::start().await;
    let fleet = Fleet::start(
        FIXTURE,
        3,
        &[
            ("JWT_JWKS_URL".to_owned(), jwks.url.clone()),
            ("JWT_JWKS_CACHE_SECONDS".to_owned(), "3600".to_owned()),
            ("JWT_ISSUER".to_owned(), ISSUER.to_owned()),
            ("JWT_AUDIENCE".to_owned(), AUDIENCE.to_owned()),
        ],
    )
    .await;
    let base = fleet.url();
    let metadata = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let mut secrets = Vec::new();

    // 30 sessions, RS256 and ES256 alternately, spread over the replicas.
    let tokens: Vec<String> = (0..30)
        .map(|index| {
            let sub = format!("user-{index}");
            if index % 2 == 0 {
                sign(Algorithm::RS256, &rsa_key(), Some("rsa1"), &claims(&sub))
            } else {
                sign(Algorithm::ES256, &ec_key(), Some("ec1"), &claims(&sub))
            }
        })
        .collect();
    secrets.extend(tokens.iter().cloned());
    let sessions: Vec<McpSession> = stream::iter(&tokens)
        .map(|token| {
            let base = base.clone();
            async move { works(&base, &Auth::Bearer(token.clone()), "JWKS URL token").await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    // Forged kids ask for a reload, which the minimum reload interval
    // absorbs: the provider is not hammered.
    for index in 0..10 {
        let forged = sign(
            Algorithm::RS256,
            &attacker_rsa_key(),
            Some(&format!("rotated-{index}")),
            &claims("mallory"),
        );
        secrets.push(forged.clone());
        let answer =
            send(Auth::Bearer(forged).apply(http().post(format!("{base}/mcp")).json(&json!({}))))
                .await;
        assert_refused(
            &answer,
            &["Bearer"],
            bad_token("unknown token signing key"),
            Some(&metadata),
            "a forged kid",
        );
    }
    // One fetch per replica (at start-up), whatever came since.
    assert_eq!(jwks.fetches(), 3, "JWKS fetches");

    // The provider goes away: the keys held stay in use.
    drop(jwks);
    for mut session in sessions {
        session.call("add", json!({"a": 1, "b": 2})).await.unwrap();
    }
    let late = sign(Algorithm::ES256, &ec_key(), Some("ec1"), &claims("late"));
    secrets.push(late.clone());
    works(
        &base,
        &Auth::Bearer(late),
        "a new token after the provider left",
    )
    .await;

    // A replica that never got the keys answers 503 (the token may be fine),
    // with Retry-After, not 401.
    let dead = format!(
        "http://127.0.0.1:{}/.well-known/jwks.json",
        mcp_testkit::free_port()
    );
    let replica = Replica::start(
        env!("CARGO_BIN_EXE_mcp-session-fixture"),
        "no-keys",
        &[("JWT_JWKS_URL", &dead), ("RUST_LOG", "debug")],
    )
    .await;
    let token = sign(Algorithm::RS256, &rsa_key(), Some("rsa1"), &claims("alice"));
    secrets.push(token.clone());
    let response = Auth::Bearer(token)
        .apply(
            http()
                .post(format!("{}/mcp", replica.url()))
                .json(&json!({})),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    let logs = format!("{}{}", fleet.logs(), replica.log());
    assert!(
        logs.contains("cannot load the token signing keys"),
        "the JWKS failure is not logged"
    );
    assert_no_secrets(&logs, &secrets);
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_unknown_revoked_and_malformed_are_refused() {
    let hash = mcp_session_auth::hash_api_key;
    let keys = |names: &[(&str, &str)]| {
        names
            .iter()
            .map(|(name, key)| format!("{name}:{}", hash(key)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let everyone = vec![(
        "API_KEYS".to_owned(),
        keys(&[("bob", BOB_KEY), ("carol", CAROL_KEY)]),
    )];
    let mut fleet = Fleet::start(FIXTURE, 3, &everyone).await;
    let base = fleet.url();
    let mut secrets = fleet_secrets();
    let api_key_only = ["ApiKey"];

    // Both headers name one user.
    let mut bob = vec![
        works(&base, &Auth::XApiKey(BOB_KEY.into()), "X-API-Key").await,
        works(
            &base,
            &Auth::ApiKey(BOB_KEY.into()),
            "Authorization: ApiKey",
        )
        .await,
        works(
            &base,
            &Auth::Raw(format!("apikey {BOB_KEY}")),
            "lowercase scheme",
        )
        .await,
    ];
    let (listed, _) = bob[0].call("get_user_sessions", json!({})).await.unwrap();
    assert_eq!(listed["structuredContent"]["count"], 3, "{listed}");
    assert_eq!(listed["structuredContent"]["principal"], "api_key");
    let mut carol = works(&base, &Auth::XApiKey(CAROL_KEY.into()), "carol").await;
    let mut carol_sse = SseSession::open(&base, &Auth::ApiKey(CAROL_KEY.into()))
        .await
        .expect("carol's SSE session");
    carol_sse.call("add", json!({"a": 1, "b": 2})).await;

    let unknown = "sk-live-7f3a9c0e5b2d4f6a8c1e3b5d7f9a2c4e";
    let unknown_key = Reason {
        scheme: "ApiKey",
        error: Some("invalid_token"),
        description: "unknown API key",
    };
    secrets.push(unknown.to_owned());
    let victim = bob[0].id.clone();
    for (case, auth) in [
        ("an unknown key in X-API-Key", Auth::XApiKey(unknown.into())),
        (
            "an unknown key in Authorization",
            Auth::ApiKey(unknown.into()),
        ),
        (
            "a key's SHA-256 given as the key",
            Auth::XApiKey(hash(BOB_KEY)),
        ),
        (
            "a key with a trailing character",
            Auth::XApiKey(format!("{BOB_KEY}x")),
        ),
        ("a key cut short", Auth::ApiKey(BOB_KEY[..20].to_owned())),
    ] {
        refused_everywhere(
            &base,
            &auth,
            &victim,
            &api_key_only,
            unknown_key,
            None,
            case,
        )
        .await;
    }
    refused_everywhere(
        &base,
        &Auth::Bearer(hs256(&claims("bob"))),
        &victim,
        &api_key_only,
        Reason {
            scheme: "ApiKey",
            error: Some("invalid_request"),
            description: "bearer tokens are not accepted here",
        },
        None,
        "a bearer token where only API keys are accepted",
    )
    .await;
    refused_everywhere(
        &base,
        &Auth::None,
        &victim,
        &api_key_only,
        Reason {
            scheme: "ApiKey",
            error: None,
            description: "missing credentials",
        },
        None,
        "no credentials",
    )
    .await;
    // No issuer: no metadata.
    assert_eq!(
        get_json(&base, "/.well-known/oauth-protected-resource/mcp")
            .await
            .0,
        404
    );

    // Carol's key is revoked: a rolling redeploy with her entry removed
    // (as after an edit of the Kubernetes Secret). Her sessions are refused
    // from then on, whatever they name; bob's sessions live on.
    let revoked = vec![("API_KEYS".to_owned(), keys(&[("bob", BOB_KEY)]))];
    let replicas = Fleet::replicas(FIXTURE, &fleet.redis, 3, &revoked).await;
    let old_logs = fleet.logs();
    let nginx = mcp_testkit::Nginx::start(&replicas.ports());
    let old = std::mem::replace(&mut fleet.replicas, replicas);
    fleet.nginx = nginx;
    drop(old);
    let base = fleet.url();
    let carol_key = Auth::XApiKey(CAROL_KEY.into());
    refused_everywhere(
        &base,
        &carol_key,
        &carol.id,
        &api_key_only,
        unknown_key,
        None,
        "a revoked key",
    )
    .await;
    let answer = send(
        Auth::ApiKey(CAROL_KEY.into()).apply(
            http()
                .post(format!("{base}/messages?session_id={}", carol_sse.id))
                .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "ping"})),
        ),
    )
    .await;
    assert_refused(
        &answer,
        &api_key_only,
        unknown_key,
        None,
        "a revoked key on its SSE session",
    );
    carol.base = base.clone();
    assert_eq!(
        carol
            .call("add", json!({"a": 1, "b": 2}))
            .await
            .unwrap_err()
            .status,
        401
    );
    for session in &mut bob {
        session.base = base.clone();
        let (result, _) = session
            .call("add", json!({"a": 2, "b": 3}))
            .await
            .expect("bob's sessions survive the redeploy");
        assert_eq!(result["structuredContent"]["result"], 5.0);
    }

    let logs = format!("{old_logs}{}", fleet.logs());
    assert_no_secrets(&logs, &secrets);
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_are_told_apart_by_address_and_agent() {
    let fleet = Fleet::start(
        FIXTURE,
        3,
        &env(&[("ALLOW_ANONYMOUS", "true"), ("TRUSTED_PROXY_HOPS", "1")]),
    )
    .await;
    let base = fleet.url();
    let metadata = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let client = http();

    // Three sessions of agent A, each with a different forged
    // X-Forwarded-For (nginx appends the real peer, the one trusted hop).
    let mut sessions = Vec::new();
    for forged in ["6.6.6.6", "10.1.2.3, 7.7.7.7", "::1"] {
        let response = mcp_testkit::auth::initialize_request(&client, &base)
            .header("user-agent", "agent-a/1")
            .header("x-forwarded-for", forged)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "anonymous initialize");
        sessions.push(
            response.headers()["mcp-session-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let list = |agent: &'static str, session: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let response = client
                .post(format!("{base}/mcp"))
                .header("accept", "application/json, text/event-stream")
                .header("user-agent", agent)
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", "2025-06-18")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                              "params": {"name": "get_user_sessions", "arguments": {}}}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            (status, mcp_testkit::auth::first_message(&body))
        }
    };
    let (status, message) = list("agent-a/1", sessions[0].clone()).await;
    assert_eq!(status, 200);
    let listed = &message.unwrap()["result"]["structuredContent"];
    assert_eq!(listed["principal"], "anonymous", "{listed}");
    assert_eq!(
        listed["count"], 3,
        "forged X-Forwarded-For split a user: {listed}"
    );
    // Another agent from the same address is another user: agent A's
    // session does not exist for it.
    let (status, _) = list("agent-b/1", sessions[0].clone()).await;
    assert_eq!(status, 404);
    // Credentials, when present, are checked, never downgraded to anonymous.
    refused_everywhere(
        &base,
        &Auth::Bearer(hs256(&with("alice", "exp", json!(now() - 3600)))),
        &sessions[0],
        &BOTH,
        bad_token("token expired"),
        Some(&metadata),
        "an expired token with anonymous access on",
    )
    .await;
    let token = hs256(&claims("alice"));
    let mut alice = works(&base, &Auth::Bearer(token.clone()), "alice").await;
    let (listed, _) = alice.call("get_user_sessions", json!({})).await.unwrap();
    assert_eq!(listed["structuredContent"]["principal"], "jwt");
    assert_eq!(listed["structuredContent"]["count"], 1);

    let mut secrets = fleet_secrets();
    secrets.push(token);
    let logs = fleet.logs();
    assert_no_secrets(&logs, &secrets);
}

/// Opens a Streamable HTTP session; the status and JSON-RPC error of a refusal.
async fn try_initialize(base: &str, auth: &Auth) -> Result<McpSession, HttpError> {
    McpSession::initialize(base, auth).await
}

fn assert_too_many(error: &HttpError, case: &str) {
    assert_eq!(error.status, 429, "{case}: {error:?}");
    let body: Value = serde_json::from_str(&error.body).expect("a JSON-RPC error");
    assert_eq!(body["error"]["code"], -32002, "{case}: {body}");
    assert_eq!(
        body["error"]["message"],
        "too many sessions: the limit is 4 live sessions per user; end one (DELETE /mcp, or close its SSE stream) or let one expire",
        "{case}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sessions_per_user_is_a_clear_429_on_both_transports() {
    // A closed SSE stream's session stays SSE_RECONNECT_SECONDS for its
    // client to come back: 1 s here.
    let fleet = Fleet::start(
        FIXTURE,
        3,
        &env(&[
            ("MAX_SESSIONS_PER_USER", "4"),
            ("SSE_RECONNECT_SECONDS", "1"),
        ]),
    )
    .await;
    let base = fleet.url();
    let alice = Auth::Bearer(hs256(&claims("alice")));
    let bob = Auth::XApiKey(BOB_KEY.into());

    // Two sessions on each transport fill alice's four places.
    let mut streamable = vec![
        works(&base, &alice, "alice 1").await,
        works(&base, &alice, "alice 2").await,
    ];
    let mut sse = vec![
        SseSession::open(&base, &alice)
            .await
            .expect("alice's SSE 1"),
        SseSession::open(&base, &alice)
            .await
            .expect("alice's SSE 2"),
    ];
    for _ in 0..3 {
        assert_too_many(
            &try_initialize(&base, &alice)
                .await
                .err()
                .expect("a fifth session"),
            "a fifth session over Streamable HTTP",
        );
        assert_too_many(
            &SseSession::open(&base, &alice)
                .await
                .err()
                .expect("a fifth session"),
            "a fifth session over SSE",
        );
    }
    // The ones she has keep working; bob is not affected.
    for session in &mut streamable {
        session.call("add", json!({"a": 1, "b": 1})).await.unwrap();
    }
    for session in &mut sse {
        session.call("add", json!({"a": 1, "b": 1})).await;
    }
    let mut bobs = Vec::new();
    for index in 0..4 {
        bobs.push(works(&base, &bob, &format!("bob {index}")).await);
    }

    // Ending a session frees a place: by DELETE, and by closing an SSE stream.
    let deleted = streamable.pop().unwrap();
    let status = deleted
        .request(reqwest::Method::DELETE, &deleted.id)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    streamable.push(works(&base, &alice, "after a DELETE").await);
    drop(sse.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reopened = loop {
        match SseSession::open(&base, &alice).await {
            Ok(session) => break session,
            Err(error) if error.status == 429 && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("no place after closing an SSE stream: {error:?}"),
        }
    };
    sse.push(reopened);

    // Concurrent attempts never exceed the limit: carol opens 16 sessions at
    // once over the three replicas.
    let carol = Auth::XApiKey(CAROL_KEY.into());
    let attempts: Vec<Result<McpSession, HttpError>> = stream::iter(0..32)
        .map(|_| try_initialize(&base, &carol))
        .buffer_unordered(16)
        .collect()
        .await;
    let opened = attempts.iter().filter(|attempt| attempt.is_ok()).count();
    for refused in attempts.iter().filter_map(|attempt| attempt.as_ref().err()) {
        assert_too_many(refused, "a concurrent attempt");
    }
    assert!(
        (1..=4).contains(&opened),
        "{opened} of 16 concurrent sessions opened with a limit of 4"
    );
    let live = fleet
        .redis
        .cli(&["--scan", "--pattern", "mcp_user_session:*"])
        .lines()
        .count();
    assert_eq!(live, 4 + 4 + opened, "live sessions in Redis");

    // The store itself, hit by 64 creations at once for one user: exactly
    // the limit gets through.
    let redis =
        mcp_session::RedisConnection::connect(&fleet.redis.url(), 4, Duration::from_secs(2))
            .unwrap();
    let store = mcp_session_fleet::RedisStore::new(redis, Duration::from_secs(60))
        .with_max_sessions_per_user(Some(4));
    let dave = mcp_session::Caller::new(mcp_session::PrincipalKind::Jwt, ISSUER, "dave").user_hash;
    let created = futures::future::join_all((0..64).map(|index| {
        let record = mcp_session::store::SessionRecord::new(
            format!("dave-{index}"),
            dave.clone(),
            mcp_session::store::TransportKind::StreamableHttp,
            "store-test",
        );
        let store = &store;
        async move { store.create(&record).await }
    }))
    .await;
    let admitted = created.iter().filter(|result| result.is_ok()).count();
    assert_eq!(admitted, 4, "{created:?}");
    assert!(created.iter().all(|result| matches!(
        result,
        Ok(()) | Err(mcp_session::store::StoreError::TooManySessions { limit: 4 })
    )));
    assert_eq!(store.list(&dave).await.unwrap().len(), 4);

    let logs = fleet.logs();
    assert_no_secrets(&logs, &fleet_secrets());
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_the_logs_even_at_trace_level() {
    // Every kind of credential, good and bad, on every endpoint and both
    // transports, with the most verbose logs there are, as JSON.
    let fleet = Fleet::start(
        FIXTURE,
        3,
        &env(&[
            ("RUST_LOG", "trace"),
            ("LOG_FORMAT", "json"),
            ("JWT_ALGORITHM", "HS256,HS512"),
        ]),
    )
    .await;
    let base = fleet.url();
    let admin_token = {
        let mut claims = claims("root");
        claims["roles"] = json!(["admin"]);
        hs256(&claims)
    };
    let good = [
        Auth::Bearer(hs256(&claims("alice"))),
        Auth::Bearer(hmac(Algorithm::HS512, SECRET.as_bytes(), &claims("alice"))),
        Auth::Bearer(admin_token.clone()),
        Auth::XApiKey(BOB_KEY.into()),
        Auth::ApiKey(CAROL_KEY.into()),
        Auth::XApiKey(OPS_KEY.into()),
    ];
    let bad = [
        Auth::Bearer(hs256(&with("alice", "exp", json!(now() - 3600)))),
        Auth::Bearer(hmac(
            Algorithm::HS256,
            b"another-secret-of-32-bytes-or-more!!",
            &claims("alice"),
        )),
        Auth::Bearer(unsigned("none", &claims("alice"))),
        Auth::Bearer(sign(
            Algorithm::RS256,
            &rsa_key(),
            Some("rsa1"),
            &claims("alice"),
        )),
        Auth::XApiKey("sk-live-5e1f0c3b7a9d2e4f6a8b0c1d3e5f7a9b".into()),
        Auth::Raw(format!("Basic {}", hs256(&claims("alice")))),
    ];
    let mut secrets = fleet_secrets();
    secrets.extend(good.iter().chain(&bad).filter_map(Auth::secret));

    let mut sessions = Vec::new();
    for auth in &good {
        let mut streamable = works(&base, auth, "a good credential").await;
        // Resuming a response stream by its event id, on whichever replica.
        let (_, event_id) = streamable
            .call("get_user_sessions", json!({}))
            .await
            .unwrap();
        let resumed = streamable
            .request(reqwest::Method::GET, &streamable.id.clone())
            .header("accept", "text/event-stream")
            .header("last-event-id", event_id.expect("an event id"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .unwrap();
        assert_eq!(resumed.status(), 200);
        let mut sse = SseSession::open(&base, auth).await.expect("an SSE session");
        // HTTP+SSE messages reaching other replicas are forwarded to the
        // stream's holder: several calls cross the fleet bus.
        for _ in 0..3 {
            sse.call("health_check", json!({})).await;
        }
        sessions.push((streamable, sse));
    }
    for auth in &bad {
        for (_, request) in every_endpoint(&base, auth, &sessions[0].0.id) {
            assert_eq!(send(request).await.status, 401);
        }
    }
    let admin = Auth::Bearer(admin_token);
    for path in ["/admin/sessions?limit=3", "/admin/analytics"] {
        let response = admin
            .apply(http().get(format!("{base}{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let (streamable, _) = sessions.pop().unwrap();
    let response = Auth::XApiKey(OPS_KEY.into())
        .apply(http().delete(format!("{base}/admin/sessions/{}", streamable.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for (streamable, _) in &sessions {
        let status = streamable
            .request(reqwest::Method::DELETE, &streamable.id)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 204);
    }
    drop(sessions);

    let logs = fleet.logs();
    assert!(logs.contains("\"level\":\"TRACE\""), "no trace output");
    assert_no_secrets(&logs, &secrets);
    assert!(!logs.contains("panicked"), "{logs}");
}
