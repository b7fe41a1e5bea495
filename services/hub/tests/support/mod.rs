//! The hub as the tests run it: three replicas on one Redis behind a
//! round-robin nginx, configured by a `HUB_CONFIG` file written for the
//! test, with the testkit's auth (JWTs, API keys, the admin key `ops`).

#![allow(dead_code)] // each test file uses part of it

use std::{path::PathBuf, time::Duration};

use mcp_testkit::{
    Fleet, Nginx, RawSession, RedisServer, ReplicaSet, Scrape,
    auth::{self, Auth},
};
use serde_json::{Value, json};

/// The hub binary.
pub const HUB: &str = env!("CARGO_BIN_EXE_hub");
/// `HUB_CONTEXT_KEY_SECRET` of the tests' hubs.
pub const SECRET: &str = "hub-context-key-secret-for-tests-0123456789";

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!("hub-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Three hub replicas on Redis behind nginx.
pub struct HubFleet {
    /// The load balancer in front of the replicas.
    pub nginx: Nginx,
    /// The hub replicas.
    pub replicas: ReplicaSet,
    /// Their Redis (upstream sessions and downstream sessions).
    pub redis: RedisServer,
    _dir: TempDir,
}

impl HubFleet {
    /// `count` hub replicas serving `config` (a `HUB_CONFIG` file's JSON),
    /// with the testkit's auth.
    pub async fn start(config: &Value, count: usize) -> Self {
        Self::start_with(config, count, auth::auth_env()).await
    }

    /// [`start`](Self::start) without auth: every caller is anonymous (for
    /// clients that send no credentials).
    pub async fn start_open(config: &Value, count: usize) -> Self {
        Self::start_with(config, count, Vec::new()).await
    }

    /// [`start`](Self::start) with `extra` variables set for every replica
    /// too.
    pub async fn start_with_env(config: &Value, count: usize, extra: &[(&str, &str)]) -> Self {
        let mut env = auth::auth_env();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Self::start_with(config, count, env).await
    }

    async fn start_with(config: &Value, count: usize, mut env: Vec<(String, String)>) -> Self {
        let dir = TempDir::new();
        let path = dir.0.join("hub.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let redis = RedisServer::start();
        env.push(("HUB_CONFIG".into(), path.display().to_string()));
        env.push(("HUB_CONTEXT_KEY_SECRET".into(), SECRET.into()));
        let replicas = Fleet::replicas(HUB, &redis, count, &env).await;
        let nginx = Nginx::start(&replicas.ports());
        Self {
            nginx,
            replicas,
            redis,
            _dir: dir,
        }
    }

    /// nginx's URL.
    pub fn url(&self) -> String {
        self.nginx.url()
    }

    /// A client sending `auth` and `headers` with every request.
    pub fn client(auth: &Auth, headers: &[(&str, &str)]) -> reqwest::Client {
        let mut defaults = reqwest::header::HeaderMap::new();
        let probe = auth
            .apply(reqwest::Client::new().get("http://x"))
            .build()
            .unwrap();
        for (name, value) in probe.headers() {
            defaults.insert(name.clone(), value.clone());
        }
        for (name, value) in headers {
            defaults.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        reqwest::Client::builder()
            .default_headers(defaults)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// A downstream session of `auth` on the hub's `path`, declaring the
    /// client `capabilities`.
    pub async fn session(
        &self,
        auth: &Auth,
        path: &str,
        headers: &[(&str, &str)],
        capabilities: Value,
    ) -> RawSession {
        RawSession::initialize_declaring(
            Self::client(auth, headers),
            &format!("{}{path}", self.url()),
            capabilities,
        )
        .await
        .unwrap_or_else(|error| {
            panic!("initialize on the hub: {error:?}\n{}", self.replicas.logs())
        })
    }

    /// The upstream session id stored for `server` and `context`.
    pub fn stored(&self, server: &str, context: &str) -> String {
        self.redis
            .cli(&["GET", &format!("mcp:upstream:session:{server}:{context}")])
            .trim()
            .to_owned()
    }

    /// The keys matching `pattern`, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .redis
            .cli(&["--scan", "--pattern", pattern])
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// The sum over the replicas of `name{labels}`.
    pub async fn metric_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut total = 0.0;
        for replica in &self.replicas.replicas {
            total += Scrape::fetch(&replica.url()).await.value(name, labels);
        }
        total
    }

    /// Kills every replica and starts it again on its port.
    pub async fn restart(&mut self) {
        for replica in &mut self.replicas.replicas {
            replica.restart().await;
        }
    }
}

/// The client's answer to `request` (sampling or elicitation), POSTed
/// through nginx.
pub async fn answer(session: &mut RawSession, request: &Value) {
    let result = match request["method"].as_str() {
        Some("sampling/createMessage") => json!({
            "role": "assistant", "model": "test-model", "stopReason": "endTurn",
            "content": {"type": "text", "text": "hello from the client"}}),
        Some("elicitation/create") => json!({
            "action": "accept", "content": {"username": "alice", "email": "alice@example.com"}}),
        other => panic!("unexpected request {other:?}: {request}"),
    };
    session
        .notify(json!({"jsonrpc": "2.0", "id": request["id"], "result": result}))
        .await
        .expect("the answer is accepted");
}

/// Calls `tool` on the hub and answers the requests it sends the client;
/// returns the call's response.
pub async fn call_with_answer(session: &mut RawSession, tool: &str, arguments: Value) -> Value {
    let (call_id, mut stream) = session
        .open_request("tools/call", json!({"name": tool, "arguments": arguments}))
        .await
        .expect("the tool call starts");
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.next_message())
            .await
            .expect("a message of the call in time");
        if message.get("method").is_some() && message.get("id").is_some() {
            answer(session, &message).await;
        } else if message["id"] == call_id {
            return message;
        }
    }
}

/// A 2026-07-28 request to the hub (no session) as `auth`, with the
/// `_meta` and headers of that protocol (SEP-2243: `Mcp-Method`, and
/// `Mcp-Name` for a named request); the response as it comes.
pub async fn post_2026_stream(
    hub: &HubFleet,
    auth: &Auth,
    method: &str,
    mut params: Value,
) -> reqwest::Response {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
        "io.modelcontextprotocol/clientInfo": {"name": "hub-test", "version": "1"},
    });
    let mut request = auth
        .apply(reqwest::Client::new().post(format!("{}/mcp", hub.url())))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", method);
    if let Some(name) = params["name"].as_str() {
        request = request.header("Mcp-Name", name);
    }
    let response = request
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{method}");
    response
}

/// [`post_2026_stream`], returning the whole JSON-RPC answer (a result or
/// an error).
pub async fn post_2026_raw(hub: &HubFleet, auth: &Auth, method: &str, params: Value) -> Value {
    let body = post_2026_stream(hub, auth, method, params)
        .await
        .text()
        .await
        .unwrap();
    mcp_testkit::auth::first_message(&body).unwrap_or_else(|| panic!("{body}"))
}

/// [`post_2026_raw`], returning the `result` (`null` for an error).
pub async fn post_2026(hub: &HubFleet, auth: &Auth, method: &str, params: Value) -> Value {
    post_2026_raw(hub, auth, method, params).await["result"].clone()
}

/// One MRTR round of a 2026-07-28 client through the hub: calls `tool`,
/// expects `input_required` with one sampling request, answers it with
/// "hello from the client" and retries with the `requestState`; the
/// retry's result.
pub async fn sampling_round_2026(
    hub: &HubFleet,
    auth: &Auth,
    tool: &str,
    arguments: Value,
) -> Value {
    let first = post_2026(
        hub,
        auth,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await;
    assert_eq!(first["resultType"], "input_required", "{first}");
    let (key, request) = first["inputRequests"]
        .as_object()
        .and_then(|requests| requests.iter().next())
        .expect("an input request");
    assert_eq!(request["method"], "sampling/createMessage", "{first}");
    let answer = json!({"role": "assistant", "model": "m", "stopReason": "endTurn",
                        "content": {"type": "text", "text": "hello from the client"}});
    let done = post_2026_raw(
        hub,
        auth,
        "tools/call",
        json!({"name": tool, "arguments": arguments,
               "inputResponses": {key.as_str(): answer},
               "requestState": first["requestState"]}),
    )
    .await;
    assert!(done["result"].is_object(), "{done}");
    done["result"].clone()
}

/// Creates a client session on the hub at `base` with `client` and connects
/// the configured `servers` in it; returns its URL
/// (`<base>/api/client-sessions/<id>`).
pub async fn client_session(client: &reqwest::Client, base: &str, servers: &[&str]) -> String {
    let created: Value = client
        .post(format!("{base}/api/client-sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "{base}/api/client-sessions/{}",
        created["id"].as_str().expect("a client session id")
    );
    for server in servers {
        let connected = client
            .post(format!("{url}/connect"))
            .json(&json!({"server": server}))
            .send()
            .await
            .unwrap();
        assert_eq!(connected.status().as_u16(), 200, "connect {server}");
    }
    url
}

/// Calls `add(a, b)` of `server` in the client session at `url` and
/// returns the result's `structuredContent.result`.
pub async fn add_in_client_session(
    client: &reqwest::Client,
    url: &str,
    server: &str,
    a: f64,
    b: f64,
) -> f64 {
    let result: Value = client
        .post(format!("{url}/tools"))
        .json(&json!({"server": server, "name": "add", "arguments": {"a": a, "b": b}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    result["structuredContent"]["result"]
        .as_f64()
        .unwrap_or_else(|| panic!("a result in {result}"))
}

/// `rounds` 2026-07-28 calls of the everything service's `test_sampling`
/// through the hub (see [`sampling_round_2026`]), each ending with the
/// text the client sampled.
pub async fn sampled_rounds_2026(hub: &HubFleet, auth: &Auth, rounds: usize) {
    for _ in 0..rounds {
        let done = sampling_round_2026(
            hub,
            auth,
            "everything__test_sampling",
            json!({"prompt": "Say hello"}),
        )
        .await;
        let text = done["content"][0]["text"].as_str().unwrap_or_default();
        assert_eq!(text, "LLM response: hello from the client", "{done}");
    }
}
