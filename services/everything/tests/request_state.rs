//! Multi round-trip requests (MRTR, protocol 2026-07-28) across replicas:
//! the first round of a stateless `tools/call` is answered by one replica
//! with an `InputRequiredResult` and a sealed `requestState`; the retry
//! reaches another replica, which must open that state. The key that seals
//! it comes from configuration (`MCP_REQUEST_STATE_KEY`), the same on every
//! replica.
//!
//! Every fleet here is three everything processes on one real Redis; the
//! callers authenticate with HS256 JWTs so that a state can be shown to be
//! bound to its user.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use mcp_testkit::{Nginx, RedisServer, Replica, ReplicaSet};
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient,
    model::{
        CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig,
        ElicitRequestParams, ElicitResult, ElicitationAction, ErrorCode, InputRequest,
        InputRequiredResult, InputResponses, ProtocolVersion,
    },
    service::{RequestContext, RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_everything");
const JWT_SECRET: &str = "request-state-test-jwt-secret-0123456789";
const STATE_KEY: &str = "request-state-test-sealing-key-0123456789abcdef";
const OTHER_STATE_KEY: &str = "another-fleet-sealing-key-fedcba9876543210";

/// A JWT for `sub`, valid for an hour.
fn token(sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &Header::default(),
        &json!({"sub": sub, "iat": now, "exp": now + 3600}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A stateless client that fills every form with one fixed answer.
struct FormFiller;

fn the_answer() -> Value {
    json!({"username": "ada", "email": "ada@example.com"})
}

impl ClientHandler for FormFiller {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        assert!(
            matches!(request, ElicitRequestParams::FormElicitationParams { .. }),
            "a form is asked for: {request:?}"
        );
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(the_answer()))
    }

    fn get_info(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.capabilities = ClientCapabilities::builder().enable_elicitation().build();
        config
    }
}

/// A 2026-07-28 client of `url` authenticated as `user`.
async fn client(url: &str, user: &str) -> RunningService<RoleClient, FormFiller> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token(user)),
    );
    FormFiller
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("discover the server")
}

fn first_round(message: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("test_elicitation")
        .with_arguments(json!({"message": message}).as_object().unwrap().clone())
}

fn retry(message: &str, state: &str) -> CallToolRequestParams {
    let mut responses = InputResponses::new();
    responses.insert(
        "form".into(),
        json!({"action": "accept", "content": the_answer()}),
    );
    first_round(message)
        .with_input_responses(responses)
        .with_request_state(state)
}

/// Round one: the form request and the sealed state.
async fn ask(
    client: &RunningService<RoleClient, FormFiller>,
    message: &str,
) -> InputRequiredResult {
    match client.call_tool_once(first_round(message)).await {
        Ok(CallToolResponse::InputRequired(result)) => result,
        other => panic!("expected an input_required result, got {other:?}"),
    }
}

fn state_of(result: &InputRequiredResult) -> String {
    result
        .request_state
        .clone()
        .expect("the result carries a requestState")
}

/// The JSON-RPC error of a call that must fail.
fn error_of(outcome: Result<CallToolResponse, ServiceError>) -> rmcp::ErrorData {
    match outcome {
        Err(ServiceError::McpError(error)) => error,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

fn fleet_env<'a>(redis: &'a str, key: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("REDIS_URL", redis), ("JWT_SECRET_KEY", JWT_SECRET)];
    if let Some(key) = key {
        env.push(("MCP_REQUEST_STATE_KEY", key));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_elicitation_is_finished_by_another_replica() {
    let redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(BINARY, 3, &fleet_env(&url, Some(STATE_KEY))).await;

    // Round one on replica 1, the retry on replica 2 and on replica 3.
    let first = client(&format!("{}/mcp", replicas.replicas[0].url()), "alice").await;
    let asked = ask(&first, "Who are you?").await;
    let requests = asked.input_requests.clone().expect("input requests");
    let Some(InputRequest::Elicitation(form)) = requests.get("form") else {
        panic!("expected one form request under `form`: {requests:?}");
    };
    let ElicitRequestParams::FormElicitationParams { message, .. } = &form.params else {
        panic!("expected a form elicitation: {form:?}");
    };
    assert_eq!(message, "Who are you?");
    let state = state_of(&asked);
    for replica in &replicas.replicas[1..] {
        let other = client(&format!("{}/mcp", replica.url()), "alice").await;
        let done = match other.call_tool_once(retry("Who are you?", &state)).await {
            Ok(CallToolResponse::Complete(result)) => result,
            other => panic!(
                "{}: expected the tool's result, got {other:?}",
                replica.name()
            ),
        };
        assert_ne!(done.is_error, Some(true), "{done:?}");
        let text = serde_json::to_value(&done.content).unwrap()[0]["text"].clone();
        assert_eq!(
            text,
            format!("User response: action=accept, content={}", the_answer()),
            "{}",
            replica.name()
        );
        other.cancel().await.unwrap();
    }
    first.cancel().await.unwrap();

    // The official rmcp client drives the rounds by itself through the
    // round-robin load balancer: consecutive rounds reach different replicas.
    let nginx = Nginx::start(&replicas.ports());
    let through_nginx = client(&format!("{}/mcp", nginx.url()), "alice").await;
    for i in 0..6 {
        let result = through_nginx
            .call_tool(first_round(&format!("question {i}")))
            .await
            .expect("the call completes after its input round");
        assert_ne!(result.is_error, Some(true), "{result:?}");
    }
    through_nginx.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_state_serves_only_its_user_its_arguments_and_its_fleet() {
    let redis = RedisServer::start();
    let url = redis.url();
    let replicas = ReplicaSet::start(BINARY, 2, &fleet_env(&url, Some(STATE_KEY))).await;
    let alice = client(&format!("{}/mcp", replicas.replicas[0].url()), "alice").await;
    let mallory = client(&format!("{}/mcp", replicas.replicas[1].url()), "mallory").await;
    let state = state_of(&ask(&alice, "Who are you?").await);

    // Another user replays Alice's state.
    let error = error_of(mallory.call_tool_once(retry("Who are you?", &state)).await);
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    assert!(error.message.contains("integrity"), "{error:?}");

    // Alice changes the arguments between the rounds.
    let error = error_of(alice.call_tool_once(retry("Something else?", &state)).await);
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    assert!(error.message.contains("arguments changed"), "{error:?}");

    // A tampered state: one character of the payload changed.
    let mut tampered = state.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let error = error_of(alice.call_tool_once(retry("Who are you?", &tampered)).await);
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");

    // A state fed to another tool.
    let other_tool = CallToolRequestParams::new("test_elicitation_sep1034_defaults")
        .with_request_state(state.clone());
    let error = error_of(alice.call_tool_once(other_tool).await);
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");

    // A replica of a fleet with another key cannot open it.
    let stranger =
        Replica::start(BINARY, "stranger", &fleet_env(&url, Some(OTHER_STATE_KEY))).await;
    let elsewhere = client(&format!("{}/mcp", stranger.url()), "alice").await;
    let error = error_of(
        elsewhere
            .call_tool_once(retry("Who are you?", &state))
            .await,
    );
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    assert!(error.message.contains("key"), "{error:?}");

    // Nothing was lost: the genuine retry still completes.
    let done = alice
        .call_tool_once(retry("Who are you?", &state))
        .await
        .expect("the genuine retry");
    assert!(matches!(done, CallToolResponse::Complete(_)), "{done:?}");
    for client in [alice, mallory, elsewhere] {
        client.cancel().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_without_a_configured_key_refuses_to_seal() {
    let redis = RedisServer::start();
    let url = redis.url();
    let replica = Replica::start(BINARY, "keyless", &fleet_env(&url, None)).await;
    let alice = client(&format!("{}/mcp", replica.url()), "alice").await;
    let error = error_of(alice.call_tool_once(first_round("Who are you?")).await);
    assert_eq!(error.code, ErrorCode::INTERNAL_ERROR, "{error:?}");
    assert!(error.message.contains("MCP_REQUEST_STATE_KEY"), "{error:?}");
    // Tools that need no input still work.
    let simple = alice
        .call_tool(CallToolRequestParams::new("test_simple_text"))
        .await
        .expect("a plain tool call");
    assert_ne!(simple.is_error, Some(true), "{simple:?}");
    alice.cancel().await.unwrap();
    // The key never reaches the log; the log says what is missing.
    assert!(replica.log().contains("MCP_REQUEST_STATE_KEY is not set"));
}

/// A key rotation, done the way docs/operations.md (Rotating the
/// `requestState` key) says: during the roll
/// the replicas with the new key still accept the old one
/// (`MCP_REQUEST_STATE_PREVIOUS_KEYS`), so a round begun on a replica not yet
/// rolled is finished on one that is, and the other way round once the old
/// replicas accept the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_keeps_rounds_in_flight() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut old_env = fleet_env(&url, Some(STATE_KEY));
    old_env.push(("MCP_REQUEST_STATE_PREVIOUS_KEYS", OTHER_STATE_KEY));
    let old = Replica::start(BINARY, "old-key", &old_env).await;
    let mut new_env = fleet_env(&url, Some(OTHER_STATE_KEY));
    new_env.push(("MCP_REQUEST_STATE_PREVIOUS_KEYS", STATE_KEY));
    let new = Replica::start(BINARY, "new-key", &new_env).await;
    let on_old = client(&format!("{}/mcp", old.url()), "alice").await;
    let on_new = client(&format!("{}/mcp", new.url()), "alice").await;

    for (asker, finisher) in [(&on_old, &on_new), (&on_new, &on_old)] {
        let state = state_of(&ask(asker, "Who are you?").await);
        let done = finisher
            .call_tool_once(retry("Who are you?", &state))
            .await
            .expect("the retry under the other key");
        assert!(matches!(done, CallToolResponse::Complete(_)), "{done:?}");
    }

    // Once the old key is retired, its states are refused: clearly.
    let retired = Replica::start(BINARY, "retired", &fleet_env(&url, Some(OTHER_STATE_KEY))).await;
    let on_retired = client(&format!("{}/mcp", retired.url()), "alice").await;
    let state = state_of(&ask(&on_old, "Who are you?").await);
    let error = error_of(
        on_retired
            .call_tool_once(retry("Who are you?", &state))
            .await,
    );
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
    for client in [on_old, on_new, on_retired] {
        client.cancel().await.unwrap();
    }
}
