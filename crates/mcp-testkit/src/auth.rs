//! Callers of the authentication tests: signed tokens (HS256 with the shared
//! secret, RS256/ES256 with the keys in `fixtures/`), API keys, the
//! environment of a fleet that accepts them, raw MCP clients (Streamable
//! HTTP and HTTP+SSE) that send credentials and report every HTTP status, and
//! the checks of a refusal (`401` with its `WWW-Authenticate` challenge) and
//! of logs that must hold no credential.

#![allow(missing_docs)]

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::SseReader;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};

/// The shared HMAC secret of the test fleets (32 bytes or more).
pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";
/// The issuer the fleets require.
pub const ISSUER: &str = "https://issuer.mcp-tests.example";
/// The audience the fleets require.
pub const AUDIENCE: &str = "mcp-tests";
/// Bob's API key.
pub const BOB_KEY: &str = "bob-key-5f2b9c41d0e7a8b3c6f1e2d4a9b0c7e8";
/// The admin API key (`ops`).
pub const OPS_KEY: &str = "ops-key-a1c3e5f7b9d2c4e6f8a0b1c2d3e4f5a6";
/// Carol's API key (revoked in some fleets).
pub const CAROL_KEY: &str = "carol-key-0f1e2d3c4b5a69788796a5b4c3d2e1f0";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The key files of `fixtures/`, compiled in: a test binary built from a
/// copy of the repository (tests/scaffold/run.sh) keeps working after the
/// copy is gone.
const RSA_PRIVATE: &[u8] = include_bytes!("../fixtures/rsa_private.pem");
const RSA_ATTACKER_PRIVATE: &[u8] = include_bytes!("../fixtures/rsa_attacker_private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../fixtures/ec_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../fixtures/rsa_public.pem");

pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap()
}

pub fn attacker_rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_ATTACKER_PRIVATE).unwrap()
}

pub fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_PRIVATE).unwrap()
}

/// The PEM of the RSA public key: the "secret" of the algorithm-swap attack.
pub fn rsa_public_pem() -> Vec<u8> {
    RSA_PUBLIC.to_vec()
}

/// The JWKS of the fleet: the RSA key as `rsa1` (RS256) and the EC key as
/// `ec1` (ES256).
pub fn jwks_json() -> String {
    let mut rsa = Jwk::from_encoding_key(&rsa_key(), Algorithm::RS256).unwrap();
    rsa.common.key_id = Some("rsa1".into());
    let mut ec = Jwk::from_encoding_key(&ec_key(), Algorithm::ES256).unwrap();
    ec.common.key_id = Some("ec1".into());
    json!({ "keys": [rsa, ec] }).to_string()
}

/// Good claims for `sub`, valid for an hour.
pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 3600})
}

/// `claims` signed with `algorithm` and `key`, with `kid` in the header.
pub fn sign(algorithm: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// `claims` as an HS256 token with the fleet's secret.
pub fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
        claims,
    )
}

/// A good HS256 token for `sub`.
pub fn token_for(sub: &str) -> String {
    hs256(&claims(sub))
}

/// `claims` as an unsigned token: header `{"alg":<alg>,"typ":"JWT"}`, an
/// empty signature (the `alg: none` attack, RFC 7519 §6 and §11).
pub fn unsigned(alg: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// `token` with its payload replaced by `claims` and its signature kept (a
/// token tampered with after signing).
pub fn tampered(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let header = parts.next().unwrap();
    let signature = parts.nth(1).unwrap();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{signature}")
}

/// How a client authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: ApiKey <key>`.
    ApiKey(String),
    /// `X-API-Key: <key>`.
    XApiKey(String),
    /// A raw `Authorization` value.
    Raw(String),
}

impl Auth {
    /// The credential itself, for the log checks.
    pub fn secret(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Bearer(secret) | Self::ApiKey(secret) | Self::XApiKey(secret) => {
                Some(secret.clone())
            }
            Self::Raw(value) => Some(value.clone()),
        }
    }

    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Self::None => request,
            Self::Bearer(token) => request.header("authorization", format!("Bearer {token}")),
            Self::ApiKey(key) => request.header("authorization", format!("ApiKey {key}")),
            Self::XApiKey(key) => request.header("x-api-key", key),
            Self::Raw(value) => request.header("authorization", value),
        }
    }
}

/// The environment of a fleet accepting HS256 tokens of [`ISSUER`] for
/// [`AUDIENCE`] (admins: role `admin`), Bob's and Carol's API keys, and the
/// admin key `ops`.
pub fn auth_env() -> Vec<(String, String)> {
    let hash = mcp_session_auth::hash_api_key;
    vec![
        ("JWT_SECRET_KEY".into(), SECRET.into()),
        ("JWT_ISSUER".into(), ISSUER.into()),
        ("JWT_AUDIENCE".into(), AUDIENCE.into()),
        ("JWT_ADMIN_ROLES".into(), "admin".into()),
        (
            "API_KEYS".into(),
            format!(
                "bob:{},carol:{},ops:{}",
                hash(BOB_KEY),
                hash(CAROL_KEY),
                hash(OPS_KEY)
            ),
        ),
        ("ADMIN_API_KEYS".into(), "ops".into()),
    ]
}

/// `env` as the `&[(&str, &str)]` the testkit takes.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect()
}

/// Checks that `logs` hold none of `secrets`, nor any JWT-looking fragment
/// (`eyJ`, the base64url of `{"` that starts every JWT header and payload,
/// followed by at least [`JWT_FRAGMENT_TAIL`] more base64url characters: the
/// shortest JWT header, `{"alg":"none"}`, is 20 characters encoded, while
/// random ids in the logs, such as fred's 10-character client names
/// (`fred-xxeyJxxxxx`), may hold `eyJ` by chance).
pub fn assert_no_secrets(logs: &str, secrets: &[String]) {
    assert!(!logs.is_empty(), "no logs to check");
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        // Any 16-character piece of a secret is a leak (of a huge one, a
        // piece of its first or last KiB). A JWT's pieces cover its header,
        // its payload and its signature, and the header.payload prefix.
        let pieces: Vec<&str> = if secret.len() <= 16 {
            vec![secret.as_str()]
        } else {
            (0..=secret.len() - 16)
                .step_by(8)
                .filter(|start| *start < 1024 || *start + 1024 > secret.len())
                .map(|start| &secret[start..start + 16])
                .collect()
        };
        for piece in pieces {
            assert!(
                !logs.contains(piece),
                "the logs hold a piece of a credential: {piece}"
            );
        }
    }
    if let Some(line) = logs.lines().find(|line| holds_jwt_fragment(line)) {
        panic!("the logs hold a JWT fragment, in: {line}");
    }
}

/// Base64url characters after `eyJ` that make a JWT-looking fragment.
const JWT_FRAGMENT_TAIL: usize = 12;

/// Whether `text` holds `eyJ` followed by at least [`JWT_FRAGMENT_TAIL`]
/// base64url characters.
fn holds_jwt_fragment(text: &str) -> bool {
    text.match_indices("eyJ").any(|(start, _)| {
        text[start + 3..]
            .bytes()
            .take_while(|byte| byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'_')
            .count()
            >= JWT_FRAGMENT_TAIL
    })
}

/// The first JSON-RPC message of an SSE or JSON body.
pub fn first_message(body: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        return Some(value);
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .find_map(|data| serde_json::from_str(data).ok())
}

/// The first `id:` of an SSE body.
pub fn first_event_id(body: &str) -> Option<String> {
    body.lines()
        .find_map(|line| line.strip_prefix("id:"))
        .map(|id| id.trim().to_owned())
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A raw Streamable HTTP session (protocol 2025-06-18) with credentials.
pub struct McpSession {
    client: reqwest::Client,
    pub base: String,
    pub auth: Auth,
    pub id: String,
    next_id: u64,
}

/// An HTTP failure: status and body.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpError {
    pub status: u16,
    pub body: String,
    pub www_authenticate: Vec<String>,
}

/// The status, `WWW-Authenticate` values and body of `response`.
pub async fn answer(response: reqwest::Response) -> HttpError {
    let status = response.status().as_u16();
    let www_authenticate = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|value| value.to_str().unwrap_or_default().to_owned())
        .collect();
    HttpError {
        status,
        body: response.text().await.unwrap_or_default(),
        www_authenticate,
    }
}

/// The `initialize` request of the tests' Streamable HTTP clients
/// (protocol 2025-06-18, client `auth-tests/1`).
pub fn initialize_message() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "auth-tests", "version": "1"}}})
}

/// `POST base/mcp` of [`initialize_message`], without credentials yet.
pub fn initialize_request(client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_message())
}

/// POSTs `initialize` to `base/mcp` with `auth`; the response.
pub async fn post_initialize(
    client: &reqwest::Client,
    base: &str,
    auth: &Auth,
) -> reqwest::Response {
    auth.apply(initialize_request(client, base))
        .send()
        .await
        .expect("the server answers")
}

impl McpSession {
    /// Initializes a session at `base` (`http://host:port`).
    ///
    /// # Errors
    /// The status and body when `initialize` is refused.
    pub async fn initialize(base: &str, auth: &Auth) -> Result<Self, HttpError> {
        let client = http();
        let response = post_initialize(&client, base, auth).await;
        if response.status() != 200 {
            return Err(answer(response).await);
        }
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|value| value.to_str().ok())
            .expect("a session id")
            .to_owned();
        let _ = response.text().await;
        let session = Self {
            client,
            base: base.to_owned(),
            auth: auth.clone(),
            id,
            next_id: 1,
        };
        let initialized = session
            .request(reqwest::Method::POST, &session.id)
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .unwrap();
        assert_eq!(initialized.status(), 202);
        Ok(session)
    }

    /// A request on `/mcp` naming session `id`, with this session's
    /// credentials.
    pub fn request(&self, method: reqwest::Method, id: &str) -> reqwest::RequestBuilder {
        self.auth.apply(
            self.client
                .request(method, format!("{}/mcp", self.base))
                .header("accept", "application/json, text/event-stream")
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-06-18"),
        )
    }

    /// Calls `tool`; the result and the first SSE event id of the response
    /// stream (for `Last-Event-ID`).
    ///
    /// # Errors
    /// The HTTP failure.
    pub async fn call(
        &mut self,
        tool: &str,
        arguments: Value,
    ) -> Result<(Value, Option<String>), HttpError> {
        let id = self.next_id;
        self.next_id += 1;
        let response = self
            .request(reqwest::Method::POST, &self.id.clone())
            .json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}}))
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            return Err(answer(response).await);
        }
        let body = response.text().await.unwrap();
        let message = first_message(&body).unwrap_or_else(|| panic!("no message in {body}"));
        assert_eq!(message["id"], id, "{message}");
        Ok((message["result"].clone(), first_event_id(&body)))
    }
}

/// An HTTP+SSE session (protocol 2024-11-05) with credentials.
pub struct SseSession {
    client: reqwest::Client,
    reader: SseReader,
    pub auth: Auth,
    /// `http://host:port/messages?session_id=<id>`.
    pub messages: String,
    pub id: String,
    next_id: u64,
}

impl SseSession {
    /// Opens `base/sse`, initializes the session, and keeps the stream.
    ///
    /// # Errors
    /// The status and body when `GET /sse` is refused.
    pub async fn open(base: &str, auth: &Auth) -> Result<Self, HttpError> {
        let client = reqwest::Client::new();
        let response = auth
            .apply(client.get(format!("{base}/sse")))
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            return Err(answer(response).await);
        }
        let mut reader = SseReader::new(response);
        let endpoint = reader
            .next_within(Duration::from_secs(10))
            .await
            .expect("endpoint event");
        assert_eq!(endpoint.event.as_deref(), Some("endpoint"));
        let id = endpoint
            .data
            .split("session_id=")
            .nth(1)
            .expect("a session id")
            .to_owned();
        let mut session = Self {
            client,
            reader,
            auth: auth.clone(),
            messages: format!("{base}{}", endpoint.data),
            id,
            next_id: 1,
        };
        let accepted = session
            .post(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {},
                "clientInfo": {"name": "auth-tests-sse", "version": "1"}}}),
            )
            .await;
        assert_eq!(accepted.status(), 202);
        assert_eq!(session.reader.next_message().await["id"], 0);
        let accepted = session
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(accepted.status(), 202);
        Ok(session)
    }

    /// POSTs `message` to this session's endpoint with its credentials.
    pub async fn post(&self, message: &Value) -> reqwest::Response {
        self.auth
            .apply(self.client.post(&self.messages).json(message))
            .send()
            .await
            .unwrap()
    }

    /// Whether the session's stream ends within `within`.
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        stream_ends(&mut self.reader, within).await
    }

    /// Calls `tool` and reads its result from the stream.
    pub async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let accepted = self
            .post(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}}))
            .await;
        assert_eq!(accepted.status(), 202, "POST /messages of {}", self.id);
        let message = self.reader.next_message().await;
        assert_eq!(message["id"], id, "{message}");
        message["result"].clone()
    }
}

/// Whether the stream `reader` reads ends within `within` (events and
/// keep-alive comments before its end are skipped).
pub async fn stream_ends(reader: &mut SseReader, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        // The inner wait is longer than the outer one, which drops it.
        if let Ok(None) = tokio::time::timeout(
            Duration::from_millis(500),
            reader.next_within(Duration::from_secs(60)),
        )
        .await
        {
            return true;
        }
    }
    false
}

// --- challenges -----------------------------------------------------------------

/// One `WWW-Authenticate` challenge (RFC 9110 §11.6.1): its scheme and
/// parameters, quoted strings unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses one challenge `Scheme k1="v1", k2=v2` (one challenge per header
/// value, as the service sends them).
pub fn parse_challenge(value: &str) -> Challenge {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Challenge {
        scheme: scheme.to_owned(),
        params,
    }
}

/// What a refusal must say: the scheme whose challenge carries it, the
/// RFC 6750 §3.1 `error` code (`None`: no code, for missing credentials) and
/// the `error_description`.
#[derive(Debug, Clone, Copy)]
pub struct Reason {
    pub scheme: &'static str,
    pub error: Option<&'static str>,
    pub description: &'static str,
}

/// An `invalid_token` refusal of a bearer token.
pub const fn bad_token(description: &'static str) -> Reason {
    Reason {
        scheme: "Bearer",
        error: Some("invalid_token"),
        description,
    }
}

/// An `invalid_request` refusal (malformed credentials), carried by the
/// challenge of `scheme`.
pub const fn bad_request(scheme: &'static str, description: &'static str) -> Reason {
    Reason {
        scheme,
        error: Some("invalid_request"),
        description,
    }
}

/// Checks that `answer` is a `401` whose challenges are exactly one per
/// scheme in `offered`, that the one of `reason.scheme` carries its `error`
/// and `error_description` (and no other does), that the Bearer challenge
/// names `resource_metadata` when given, and that the JSON body says the same.
pub fn assert_refused(
    answer: &HttpError,
    offered: &[&str],
    reason: Reason,
    resource_metadata: Option<&str>,
    case: &str,
) {
    assert_eq!(answer.status, 401, "{case}: {answer:?}");
    let challenges: Vec<Challenge> = answer
        .www_authenticate
        .iter()
        .map(|value| parse_challenge(value))
        .collect();
    let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
    assert_eq!(schemes, offered, "{case}: {answer:?}");
    for challenge in &challenges {
        // The realm is the service's name (`serverInfo.name`).
        assert!(
            challenge
                .params
                .get("realm")
                .is_some_and(|realm| !realm.is_empty() && realm == &challenges[0].params["realm"]),
            "{case}: {challenge:?}"
        );
        if challenge.scheme == "Bearer" {
            assert_eq!(
                challenge
                    .params
                    .get("resource_metadata")
                    .map(String::as_str),
                resource_metadata,
                "{case}: {challenge:?}"
            );
        }
        if challenge.scheme == reason.scheme {
            assert_eq!(
                challenge.params.get("error").map(String::as_str),
                reason.error,
                "{case}: {challenge:?}"
            );
            assert_eq!(
                challenge
                    .params
                    .get("error_description")
                    .map(String::as_str),
                Some(reason.description),
                "{case}: {challenge:?}"
            );
        } else {
            assert!(
                !challenge.params.contains_key("error")
                    && !challenge.params.contains_key("error_description"),
                "{case}: only the {} challenge says why: {challenge:?}",
                reason.scheme
            );
        }
    }
    let body: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|error| panic!("{case}: body is no JSON ({error}): {answer:?}"));
    assert_eq!(
        body["error"],
        reason.error.unwrap_or("unauthorized"),
        "{case}: {body}"
    );
    assert_eq!(
        body["error_description"], reason.description,
        "{case}: {body}"
    );
}

/// Sends `request` and returns what came back.
pub async fn send(request: reqwest::RequestBuilder) -> HttpError {
    answer(request.send().await.expect("the server answers")).await
}

/// The requests that must all be refused alike for credentials `auth`: one
/// per endpoint behind authentication (`POST /mcp` initialize, `GET /mcp`,
/// `DELETE /mcp`, `GET /sse`, `POST /messages`, the admin API), naming
/// session `session` where a session is named.
pub fn every_endpoint(
    base: &str,
    auth: &Auth,
    session: &str,
) -> Vec<(String, reqwest::RequestBuilder)> {
    let client = http();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    let mcp = format!("{base}/mcp");
    vec![
        (
            "POST /mcp initialize".to_owned(),
            initialize_request(&client, base),
        ),
        (
            "POST /mcp in a session".to_owned(),
            client
                .post(&mcp)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-session-id", session)
                .json(&call),
        ),
        (
            "GET /mcp".to_owned(),
            client
                .get(&mcp)
                .header("accept", "text/event-stream")
                .header("mcp-session-id", session),
        ),
        (
            "DELETE /mcp".to_owned(),
            client.delete(&mcp).header("mcp-session-id", session),
        ),
        ("GET /sse".to_owned(), client.get(format!("{base}/sse"))),
        (
            "POST /messages".to_owned(),
            client
                .post(format!("{base}/messages?session_id={session}"))
                .json(&call),
        ),
        (
            "GET /admin/sessions".to_owned(),
            client.get(format!("{base}/admin/sessions")),
        ),
        (
            "DELETE /admin/users/…/sessions".to_owned(),
            client.delete(format!("{base}/admin/users/{}/sessions", "0".repeat(64))),
        ),
    ]
    .into_iter()
    .map(|(name, request)| (name, auth.apply(request)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_fragment_is_found_and_a_random_id_holding_eyj_is_not() {
        // The header of an HS256 token and a whole token.
        assert!(holds_jwt_fragment("token eyJhbGciOiJIUzI1NiJ9 seen"));
        assert!(holds_jwt_fragment(
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
        ));
        // A payload alone, after a separator.
        assert!(holds_jwt_fragment("payload=eyJzdWIiOiJhbGljZSJ9"));
        // fred's random client names: `fred-` and 10 alphanumerics.
        assert!(!holds_jwt_fragment(
            "DEBUG fred-QeyJ7aQIHk: Initializing router"
        ));
        assert!(!holds_jwt_fragment("DEBUG fred-abcdefgeyJ: Sleeping"));
        assert!(!holds_jwt_fragment("no fragment at all"));
    }
}
