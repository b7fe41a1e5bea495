//! Hostile input to the client-session API gets a clear 4xx and changes
//! nothing: URLs to the cloud metadata endpoint, loopback, private and
//! link-local addresses, a name that resolves to loopback, a URL outside
//! the allow-list, an allowed server that redirects to the metadata
//! endpoint; malformed bodies, unknown fields, unknown servers and tools,
//! headers the hub sets itself or the server does not take, oversized
//! arguments, more client sessions at once than a user may have (exactly
//! the limit is created), ids that are no client session's, a server that answers
//! without end (read up to the hub's limit). Afterwards the client
//! session has exactly the connection it had, and no upstream session was
//! made for any refused URL. Redis going away gets a `503` to retry, and
//! once it is back the same client session is served.

mod support;

use mcp_testkit::{
    Fleet,
    auth::{self, Auth},
    workspace_binary,
};
use serde_json::{Value, json};
use support::HubFleet;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// An HTTP server on 127.0.0.2 (an address the test allows) that reads
/// each request's head and answers it with `head`, then, if `endless`,
/// with a body that never ends (until the client goes away).
async fn raw_http_server(head: String, endless: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let head = head.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                let _ = stream.read(&mut buffer).await;
                if stream.write_all(head.as_bytes()).await.is_err() || !endless {
                    return;
                }
                let chunk = vec![b' '; 64 * 1024];
                while stream.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    port
}

/// A server that answers every request with a redirect to `location`.
async fn redirector(location: &str) -> u16 {
    raw_http_server(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        false,
    )
    .await
}

/// A server that answers every request with an endless JSON body.
async fn flooder() -> u16 {
    raw_http_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n["
            .to_owned(),
        true,
    )
    .await
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut request = client.request(method.parse().unwrap(), url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_input_gets_a_clear_4xx_and_changes_nothing() {
    let calculator = Fleet::start(workspace_binary("calculator"), 1, &[]).await;
    let to_metadata = redirector("http://169.254.169.254/latest/meta-data/").await;
    let config = json!({
        "servers": {"calculator": {"url": format!("{}/mcp", calculator.url()), "sharing": "user"}},
        "client_sessions": {
            "allowed_urls": ["http://169.254.169.254/", "http://127.0.0.1:*/", "http://localhost:*/",
                             "http://10.1.2.3/", "http://172.16.5.4/", "http://[::1]:*/",
                             "http://[fe80::1]/", "http://127.0.0.2:*/", "http://0.0.0.0:*/"],
            "allowed_networks": ["127.0.0.2/32"],
            "max_per_user": 5
        },
    });
    let hub = HubFleet::start(&config, 2).await;
    let client = HubFleet::client(&Auth::Bearer(auth::token_for("mallory")), &[]);
    let base = hub.url();
    let (status, created) = send(
        &client,
        &format!("{base}/api/client-sessions"),
        "POST",
        None,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let session = format!("{base}/api/client-sessions/{id}");
    let (status, _) = send(
        &client,
        &format!("{session}/connect"),
        "POST",
        Some(r#"{"server": "calculator"}"#),
    )
    .await;
    assert_eq!(status, 200);

    let calculator_port = calculator.url().rsplit(':').next().unwrap().to_owned();
    let redirect_url = format!("http://127.0.0.2:{to_metadata}/mcp");
    let loopback_url = format!("http://127.0.0.1:{calculator_port}/mcp");
    let localhost_url = format!("http://localhost:{calculator_port}/mcp");
    let url_cases: Vec<(&str, &str, &str)> = vec![
        (
            "http://169.254.169.254/latest/meta-data/",
            "destination_forbidden",
            "cloud metadata",
        ),
        (&loopback_url, "destination_forbidden", "loopback"),
        (&localhost_url, "destination_forbidden", "loopback"),
        ("http://[::1]:9/mcp", "destination_forbidden", "loopback"),
        (
            "http://0.0.0.0:9/mcp",
            "destination_forbidden",
            "unspecified",
        ),
        ("http://10.1.2.3/mcp", "destination_forbidden", "private"),
        ("http://172.16.5.4/mcp", "destination_forbidden", "private"),
        (
            "http://[fe80::1]/mcp",
            "destination_forbidden",
            "link-local",
        ),
        (
            "http://evil.example.org/mcp",
            "destination_forbidden",
            "allowed_urls",
        ),
        (
            "http://[::ffff:169.254.169.254]/",
            "destination_forbidden",
            "allowed_urls",
        ),
        (&redirect_url, "destination_forbidden", "redirect"),
        ("file:///etc/passwd", "invalid_request", "http or https"),
        (
            "http://user:pw@127.0.0.1:9/mcp",
            "invalid_request",
            "user name",
        ),
        ("not a url", "invalid_request", "url"),
    ];
    for (url, code, says) in url_cases {
        let body = json!({"server": "probe", "url": url}).to_string();
        let (status, error) =
            send(&client, &format!("{session}/connect"), "POST", Some(&body)).await;
        let expected = if code == "invalid_request" { 400 } else { 403 };
        assert_eq!(status, expected, "{url}: {error}");
        assert_eq!(error["error"], code, "{url}: {error}");
        assert!(
            error["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{url}: {error}"
        );
    }

    // A server that answers without end: the hub stops reading at its
    // limit and says so; its memory does not follow.
    let flood = flooder().await;
    let body =
        json!({"server": "flood", "url": format!("http://127.0.0.2:{flood}/mcp")}).to_string();
    let (status, error) = send(&client, &format!("{session}/connect"), "POST", Some(&body)).await;
    assert_eq!(status, 502, "{error}");
    assert!(
        error["error_description"]
            .as_str()
            .unwrap()
            .contains("larger than 16 MiB"),
        "{error}"
    );
    for replica in &hub.replicas.replicas {
        let rss = replica.memory().unwrap().rss_kib;
        assert!(
            rss < 512 * 1024,
            "a replica holds {rss} KiB after the flood"
        );
    }

    // Each refusal counted, for the operators' alerts.
    let refused = hub
        .metric_sum(
            "mcp_hub_client_session_events_total",
            &[("event", "destination_refused")],
        )
        .await;
    assert_eq!(refused, 11.0);

    let oversized = json!({"server": "calculator", "name": "add",
        "arguments": {"a": 1, "b": 2, "pad": "x".repeat(300 * 1024)}})
    .to_string();
    let body_cases: Vec<(&str, String, &str, u16, &str)> = vec![
        ("connect", "not json".into(), "POST", 400, "invalid_json"),
        (
            "connect",
            r#"{"server": 5}"#.into(),
            "POST",
            400,
            "invalid_json",
        ),
        (
            "connect",
            r#"{"server": "calculator", "extra": 1}"#.into(),
            "POST",
            400,
            "invalid_json",
        ),
        (
            "connect",
            r#"{"server": "no such"}"#.into(),
            "POST",
            400,
            "invalid_request",
        ),
        (
            "connect",
            r#"{"server": "nope"}"#.into(),
            "POST",
            404,
            "unknown_server",
        ),
        (
            "connect",
            r#"{"server": "calculator", "url": "http://127.0.0.2:9/"}"#.into(),
            "POST",
            409,
            "server_name_taken",
        ),
        (
            "connect",
            r#"{"server": "calculator", "headers": {"x-api-key": "k"}}"#.into(),
            "POST",
            400,
            "invalid_request",
        ),
        (
            "connect",
            r#"{"server": "p", "url": "http://127.0.0.2:9/", "headers": {"Mcp-Session-Id": "x"}}"#
                .into(),
            "POST",
            400,
            "invalid_request",
        ),
        (
            "disconnect",
            r#"{"server": "nope"}"#.into(),
            "POST",
            404,
            "not_connected",
        ),
        (
            "tools",
            r#"{"server": "calculator", "name": "nope", "arguments": {}}"#.into(),
            "POST",
            404,
            "unknown_tool",
        ),
        (
            "tools",
            r#"{"server": "nope", "name": "add", "arguments": {}}"#.into(),
            "POST",
            404,
            "not_connected",
        ),
        (
            "tools",
            r#"{"server": "calculator", "name": "add", "arguments": {"a": "two", "b": 2}}"#.into(),
            "POST",
            422,
            "upstream_refused",
        ),
        (
            "tools",
            r#"{"server": "calculator", "name": "add", "arguments": [1, 2]}"#.into(),
            "POST",
            400,
            "invalid_json",
        ),
        ("tools", oversized, "POST", 413, "payload_too_large"),
        (
            "prompts",
            r#"{"server": "calculator", "name": "nope"}"#.into(),
            "POST",
            404,
            "unknown_prompt",
        ),
        (
            "resources",
            r#"{"server": "calculator", "uri": ""}"#.into(),
            "POST",
            400,
            "invalid_request",
        ),
    ];
    for (path, body, method, expected, code) in body_cases {
        let (status, error) =
            send(&client, &format!("{session}/{path}"), method, Some(&body)).await;
        assert_eq!(
            status,
            expected,
            "{path} {}: {error}",
            &body[..body.len().min(120)]
        );
        assert_eq!(error["error"], code, "{path}: {error}");
        assert!(
            !error["error_description"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{error}"
        );
    }
    let (status, error) = send(
        &client,
        &format!("{session}/tools?server=nope"),
        "GET",
        None,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (404, Some("not_connected"))
    );

    // One user creating many at once, on every replica: exactly the limit.
    let eve = HubFleet::client(&Auth::Bearer(auth::token_for("eve")), &[]);
    let creations = (0..12).map(|_| {
        let (eve, url) = (eve.clone(), format!("{base}/api/client-sessions"));
        async move { eve.post(url).send().await.unwrap().status().as_u16() }
    });
    let mut statuses = futures::future::join_all(creations).await;
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [[201; 5].as_slice(), [409; 7].as_slice()].concat()
    );

    // Ids that are no client session's, and no credentials at all.
    for bad in [
        "cs_00000000000000000000000000000000",
        "session-1733500000000-abc",
        "*",
        "..%2f..%2fadmin",
    ] {
        let (status, error) = send(
            &client,
            &format!("{base}/api/client-sessions/{bad}"),
            "GET",
            None,
        )
        .await;
        assert_eq!(status, 404, "{bad}: {error}");
    }
    let anonymous = reqwest::Client::new();
    let (status, _) = send(
        &anonymous,
        &format!("{base}/api/client-sessions"),
        "POST",
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = send(&anonymous, &session, "GET", None).await;
    assert_eq!(status, 401);

    // Nothing changed: the one connection, no upstream session for a URL.
    let (status, record) = send(&client, &session, "GET", None).await;
    assert_eq!(status, 200);
    let connections = record["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{record}");
    assert_eq!(connections[0]["server"], "calculator");
    assert!(hub.keys("mcp:upstream:session:url-*").is_empty());
    // And the hub still serves the session.
    let (status, result) = send(
        &client,
        &format!("{session}/tools"),
        "POST",
        Some(r#"{"server": "calculator", "name": "add", "arguments": {"a": 2, "b": 40}}"#),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["structuredContent"]["result"], json!(42.0));

    // Redis away: a clear 503 to retry, no panic; back: the same session.
    let mut hub = hub;
    hub.redis.stop_saving(); // as a managed Redis keeps its data through a failover
    for _ in 0..3 {
        let (status, error) = send(&client, &session, "GET", None).await;
        assert_eq!(status, 503, "{error}");
        assert_eq!(error["error"], "store_unavailable", "{error}");
    }
    hub.redis.restart();
    let mut back = false;
    for _ in 0..100 {
        let (status, record) = send(&client, &session, "GET", None).await;
        if status == 200 {
            assert_eq!(record["connections"][0]["server"], "calculator");
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        back,
        "the client session is served again once Redis is back"
    );
    assert!(!hub.replicas.logs().contains("panicked"));
}

/// A body over the API's 256 KiB, sent through the round-robin nginx (which
/// streams it upstream: `proxy_request_buffering off`), is answered `413
/// payload_too_large`, never `502`: the hub reads and discards the rest of
/// the body before answering, so the connection closes cleanly instead of
/// with a TCP RST that nginx may see before the `413` (a 300 KiB body was
/// answered `502` once in CI). With a `Content-Length` and chunked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_body_through_nginx_is_413_never_502() {
    let calculator = Fleet::start(workspace_binary("calculator"), 1, &[]).await;
    let config = json!({
        "servers": {"calculator": {"url": format!("{}/mcp", calculator.url()), "sharing": "user"}},
    });
    let hub = HubFleet::start(&config, 2).await;
    let client = HubFleet::client(&Auth::Bearer(auth::token_for("mallory")), &[]);
    let (status, created) = send(
        &client,
        &format!("{}/api/client-sessions", hub.url()),
        "POST",
        None,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let tools = format!(
        "{}/api/client-sessions/{}/tools",
        hub.url(),
        created["id"].as_str().unwrap()
    );
    // 1 MiB: four times the limit.
    let envelope =
        r#"{"server": "calculator", "name": "add", "arguments": {"a": 1, "b": 2, "pad": ""}}"#;
    let body = envelope.replace(
        r#""pad": """#,
        &format!(r#""pad": "{}""#, "x".repeat(1024 * 1024 - envelope.len())),
    );
    assert_eq!(body.len(), 1024 * 1024);
    let mut wrong = Vec::new();
    for round in 0..40 {
        let request = client
            .post(&tools)
            .header("content-type", "application/json");
        let request = if round < 20 {
            request.body(body.clone())
        } else {
            // Chunked: no Content-Length.
            let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
                .as_bytes()
                .chunks(16 * 1024)
                .map(|chunk| Ok(bytes::Bytes::copy_from_slice(chunk)))
                .collect();
            request.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        };
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let error: Value = serde_json::from_str(&text).unwrap_or_default();
                if status != 413 || error["error"] != "payload_too_large" {
                    wrong.push(format!("round {round}: {status} {text}"));
                }
            }
            Err(error) => wrong.push(format!("round {round}: {error}")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}\n{}", hub.nginx.error_log());
}
