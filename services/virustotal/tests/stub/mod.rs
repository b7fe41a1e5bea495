//! A local stand-in for the VirusTotal API v3, the one component the tests
//! cannot reach: an axum server on a free loopback port that speaks the v3
//! object and error formats (docs.virustotal.com) with the JSON documents of
//! `tests/fixtures/`, checks the `x-apikey` header as the API does, and
//! records every request it receives so that tests can count them.
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v3/files/{md5, sha1 or sha256}` | a file object, else `404 NotFoundError` |
//! | `GET /api/v3/urls/{unpadded base64url, or sha256}` | a URL object, else `404 NotFoundError` |
//! | `POST /api/v3/urls` (form `url=`) | `{"data": {"type": "analysis", "id": "u-<sha256>-<time>"}}` |
//! | `GET /api/v3/analyses/{id}` | `queued` on the first poll, `completed` after; the URL is then known |
//! | `GET /api/v3/domains/{domain}`, `GET /api/v3/ip_addresses/{ip}` | the object, else `404` |
//! | no `x-apikey` / an unknown key | `401 AuthenticationRequiredError` / `401 WrongCredentialsError` |
//!
//! Tests queue [`Scripted`] answers (errors, HTML pages, delays) that the
//! next requests get instead.

#![allow(dead_code)]

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A fixture document of `tests/fixtures/`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// The documented error of `code` (fixtures/errors.json): its HTTP status
/// and message.
pub fn documented_error(code: &str) -> (u16, String) {
    let errors = fixture("errors.json");
    let entry = errors
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["code"] == code)
        .unwrap_or_else(|| panic!("{code} is not in fixtures/errors.json"));
    (
        entry["status"].as_u64().unwrap() as u16,
        entry["message"].as_str().unwrap().to_owned(),
    )
}

/// The URL of the fixture `url_malware_test.json`.
pub const MALWARE_TEST_URL: &str = "http://malware.testing.google.test/testing/malware/";
/// SHA-256 of the EICAR test file (`file_eicar.json`).
pub const EICAR_SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
/// MD5 of the EICAR test file.
pub const EICAR_MD5: &str = "44d88612fea8a8f36de82e1278abb02f";
/// SHA-1 of the EICAR test file.
pub const EICAR_SHA1: &str = "3395856ce81f2b7382dee72602f798b642f14140";

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `GET` or `POST`.
    pub method: String,
    /// The path as sent (percent-encoding kept).
    pub path: String,
    /// The `x-apikey` header.
    pub api_key: Option<String>,
    /// The request body (the form of `POST /urls`).
    pub body: String,
}

/// An answer the next request gets instead of the normal one.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// The documented error of this code (`TransientError`, ...), with a
    /// `Retry-After` header when given.
    Error {
        /// The error code of fixtures/errors.json.
        code: &'static str,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// A non-API HTML page with this status (a load balancer's 502).
    Html(u16),
    /// Answers normally after this delay.
    Delay(Duration),
}

/// A submitted URL's analysis.
#[derive(Debug, Clone)]
struct Analysis {
    url: String,
    sha256: String,
    time: u64,
    polls: u32,
}

#[derive(Default)]
struct Objects {
    files: HashMap<String, Value>,
    urls: HashMap<String, Value>,
    domains: HashMap<String, Value>,
    ips: HashMap<String, Value>,
    analyses: HashMap<String, Analysis>,
}

struct Shared {
    keys: HashSet<String>,
    objects: Mutex<Objects>,
    calls: Mutex<Vec<Call>>,
    script: Mutex<VecDeque<Scripted>>,
}

/// The running stub; stops when dropped.
pub struct Stub {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> parking_lot::MutexGuard<'_, T> {
    mutex.lock()
}

impl Stub {
    /// Starts a stub accepting the API keys `keys`, knowing the objects of
    /// the fixtures (the EICAR and a clean file, the malware test URL,
    /// google.com, 8.8.8.8 and 2001:4860:4860::8888).
    pub async fn start(keys: &[&str]) -> Self {
        let shared = Arc::new(Shared {
            keys: keys.iter().map(|key| key.to_string()).collect(),
            objects: Mutex::default(),
            calls: Mutex::default(),
            script: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stub");
        let address = listener.local_addr().expect("stub address");
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let stub = Self {
            address,
            shared,
            server,
        };
        stub.add_file(fixture("file_eicar.json"));
        stub.add_file(fixture("file_clean.json"));
        stub.add_url(fixture("url_malware_test.json"));
        {
            let mut objects = lock(&stub.shared.objects);
            objects
                .domains
                .insert("google.com".into(), fixture("domain_google.com.json"));
            objects
                .ips
                .insert("8.8.8.8".into(), fixture("ip_8.8.8.8.json"));
            objects.ips.insert(
                "2001:4860:4860::8888".into(),
                fixture("ip_2001-4860-4860--8888.json"),
            );
        }
        stub
    }

    /// `http://127.0.0.1:<port>/api/v3`, for `VIRUSTOTAL_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v3", self.address)
    }

    /// Every request received so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    /// How many requests were received.
    pub fn call_count(&self) -> usize {
        lock(&self.shared.calls).len()
    }

    /// The next request gets `answer` instead (queued in order).
    pub fn script(&self, answer: Scripted) {
        lock(&self.shared.script).push_back(answer);
    }

    /// Knows the file object `document` by its SHA-256, SHA-1 and MD5.
    pub fn add_file(&self, document: Value) {
        let attributes = &document["data"]["attributes"];
        let mut objects = lock(&self.shared.objects);
        for hash in ["sha256", "sha1", "md5"] {
            if let Some(hash) = attributes[hash].as_str() {
                objects.files.insert(hash.to_owned(), document.clone());
            }
        }
    }

    /// Knows the URL object `document` by its `url` attribute.
    pub fn add_url(&self, document: Value) {
        let url = document["data"]["attributes"]["url"]
            .as_str()
            .expect("a URL object")
            .to_owned();
        lock(&self.shared.objects).urls.insert(url, document);
    }

    /// A copy of the EICAR file object as if it were the file with
    /// `sha256` (for lookups of many distinct files).
    pub fn file_like_eicar(sha256: &str) -> Value {
        let mut document = fixture("file_eicar.json");
        document["data"]["id"] = json!(sha256);
        document["data"]["attributes"]["sha256"] = json!(sha256);
        document["data"]["attributes"]["sha1"] = Value::Null;
        document["data"]["attributes"]["md5"] = Value::Null;
        document["data"]["links"]["self"] =
            json!(format!("https://www.virustotal.com/api/v3/files/{sha256}"));
        document
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).expect("a status"),
        [("content-type", "application/json")],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response()
}

fn documented(code: &str, kind: &str, id: &str) -> Response {
    let (status, message) = documented_error(code);
    error(
        status,
        code,
        &message.replace("{kind}", kind).replace("{id}", id),
    )
}

fn ok(document: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        document.to_string(),
    )
        .into_response()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// Fills `{url}`, `{sha256}`, `{time}` in a fixture's strings.
fn fill(template: &Value, analysis: &Analysis) -> Value {
    let text = template
        .to_string()
        .replace("{url}", &analysis.url)
        .replace("{sha256}", &analysis.sha256)
        .replace("{time}", &analysis.time.to_string());
    serde_json::from_str(&text).expect("a filled fixture")
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api_key = headers
        .get("x-apikey")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = String::from_utf8_lossy(&body).into_owned();
    lock(&shared.calls).push(Call {
        method: method.to_string(),
        path: uri.path().to_owned(),
        api_key: api_key.clone(),
        body: body.clone(),
    });
    let scripted = lock(&shared.script).pop_front();
    match scripted {
        Some(Scripted::Error { code, retry_after }) => {
            let (status, message) = documented_error(code);
            let mut response = error(status, code, &message);
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
            }
            return response;
        }
        Some(Scripted::Html(status)) => {
            return (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "text/html")],
                format!("<html><body><h1>{status} Bad Gateway</h1></body></html>"),
            )
                .into_response();
        }
        Some(Scripted::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    match &api_key {
        None => return documented("AuthenticationRequiredError", "", ""),
        Some(key) if !shared.keys.contains(key) => {
            return documented("WrongCredentialsError", "", "");
        }
        Some(_) => {}
    }
    let Some(rest) = uri.path().strip_prefix("/api/v3/") else {
        return documented("NotFoundError", "Resource", uri.path());
    };
    let (collection, id) = match rest.split_once('/') {
        Some((collection, id)) => (
            collection,
            percent_encoding::percent_decode_str(id)
                .decode_utf8_lossy()
                .into_owned(),
        ),
        None => (rest, String::new()),
    };
    let mut objects = lock(&shared.objects);
    match (method.as_str(), collection) {
        ("GET", "files") => match objects.files.get(&id.to_ascii_lowercase()) {
            Some(document) => ok(document.clone()),
            None => documented("NotFoundError", "File", &id),
        },
        ("GET", "urls") => {
            let by_base64 = URL_SAFE_NO_PAD
                .decode(&id)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|url| objects.urls.get(&url));
            let by_sha256 = || {
                objects
                    .urls
                    .values()
                    .find(|document| document["data"]["id"] == id.as_str())
            };
            match by_base64.or_else(by_sha256) {
                Some(document) => ok(document.clone()),
                None => documented("NotFoundError", "URL", &id),
            }
        }
        ("POST", "urls") if id.is_empty() => {
            let url = url::form_urlencoded::parse(body.as_bytes())
                .find(|(name, _)| name == "url")
                .map(|(_, value)| value.into_owned());
            let Some(url) = url.filter(|url| !url.is_empty()) else {
                return error(400, "BadRequestError", "Missing url parameter");
            };
            let analysis = Analysis {
                sha256: hex::encode(Sha256::digest(url.as_bytes())),
                url,
                time: now(),
                polls: 0,
            };
            let answer = fill(&fixture("scan_url_submitted.json"), &analysis);
            let id = answer["data"]["id"].as_str().unwrap().to_owned();
            objects.analyses.insert(id, analysis);
            ok(answer)
        }
        ("GET", "analyses") => {
            let Some(analysis) = objects.analyses.get_mut(&id) else {
                return documented("NotFoundError", "Analysis", &id);
            };
            analysis.polls += 1;
            let analysis = analysis.clone();
            if analysis.polls == 1 {
                return ok(fill(&fixture("analysis_url_queued.json"), &analysis));
            }
            if !objects.urls.contains_key(&analysis.url) {
                let mut document = fixture("url_malware_test.json");
                document["data"]["id"] = json!(analysis.sha256);
                document["data"]["attributes"]["url"] = json!(analysis.url);
                document["data"]["attributes"]["last_final_url"] = json!(analysis.url);
                objects.urls.insert(analysis.url.clone(), document);
            }
            ok(fill(&fixture("analysis_url_completed.json"), &analysis))
        }
        ("GET", "domains") => match objects.domains.get(&id) {
            Some(document) => ok(document.clone()),
            None => documented("NotFoundError", "Domain", &id),
        },
        ("GET", "ip_addresses") => match objects.ips.get(&id) {
            Some(document) => ok(document.clone()),
            None => documented("NotFoundError", "IP address", &id),
        },
        _ => documented("NotFoundError", "Resource", uri.path()),
    }
}
