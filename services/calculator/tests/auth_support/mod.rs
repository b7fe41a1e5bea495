//! Support of the authentication tests: signed tokens (HS256 with the shared
//! secret, RS256/ES256 with the keys in `tests/fixtures`), API keys, and raw
//! MCP clients (Streamable HTTP and HTTP+SSE) that send credentials and
//! report every HTTP status.

#![allow(dead_code, missing_docs)]

use std::{
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_testkit::SseReader;
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

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap()
}

pub fn attacker_rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture("rsa_attacker_private.pem")).unwrap()
}

pub fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture("ec_private.pem")).unwrap()
}

/// The PEM of the RSA public key: the "secret" of the algorithm-swap attack.
pub fn rsa_public_pem() -> Vec<u8> {
    fixture("rsa_public.pem")
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
    let hash = mcp_session::auth::api_keys::hash_api_key;
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
/// (`eyJ`, the base64url of `{"` that starts every JWT header and payload).
pub fn assert_no_secrets(logs: &str, secrets: &[String]) {
    assert!(!logs.is_empty(), "no logs to check");
    for secret in secrets {
        // Any 16-character piece of a secret is a leak.
        let pieces: Vec<&str> = if secret.len() <= 16 {
            vec![secret.as_str()]
        } else {
            (0..=secret.len() - 16)
                .step_by(8)
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
    assert!(!logs.contains("eyJ"), "the logs hold a JWT fragment");
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

async fn failure(response: reqwest::Response) -> HttpError {
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

/// POSTs `initialize` to `base/mcp` with `auth`; the response.
pub async fn post_initialize(
    client: &reqwest::Client,
    base: &str,
    auth: &Auth,
) -> reqwest::Response {
    auth.apply(
        client
            .post(format!("{base}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "auth-tests", "version": "1"}}}),
            ),
    )
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
            return Err(failure(response).await);
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
            return Err(failure(response).await);
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
            return Err(failure(response).await);
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
