//! Bad input and failures at the hub get a clear error and change nothing:
//! an endpoint that names no upstream or group, names that are no tool's, the admin
//! API's refusals (no credentials, not an admin, a foreign cursor, an
//! unknown server, a malformed context key, a limit out of range), and the
//! hub's Redis going away (a tool error naming the cause, no panic), after
//! which the hub serves again.

mod support;

use std::time::Duration;

use mcp_testkit::{
    CallError, Fleet, RawSession,
    auth::{self, Auth},
    workspace_binary,
};
use serde_json::{Value, json};
use support::HubFleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_and_a_lost_redis_get_clear_errors() {
    let calculator = Fleet::start(workspace_binary("calculator"), 1, &[]).await;
    let config = json!({"servers": {
        "calculator": {"url": format!("{}/mcp", calculator.url()), "sharing": "user"},
    }, "groups": {"math": ["calculator"]}});
    let mut hub = HubFleet::start(&config, 2).await;
    let alice = Auth::Bearer(auth::token_for("alice"));

    // An endpoint naming nothing: every request on it is refused, saying
    // why.
    let mut nowhere = hub.session(&alice, "/mcp/nope", &[], json!({})).await;
    let Err(CallError::JsonRpc(error)) = nowhere.request("tools/list", json!({})).await else {
        panic!("tools/list on /mcp/nope was answered")
    };
    assert!(
        error
            .to_string()
            .contains("no upstream or group named `nope`"),
        "{error}"
    );

    // Names that are no tool's: invalid params, saying how names look.
    let mut session = hub.session(&alice, "/mcp", &[], json!({})).await;
    for name in ["add", "nope__add", "calculator__", "__add"] {
        let Err(CallError::JsonRpc(error)) = session.call_tool(name, json!({"a": 1, "b": 2})).await
        else {
            panic!("{name} was accepted")
        };
        assert_eq!(error["error"]["code"], -32602, "{error}");
        assert!(error.to_string().contains("<server>__<name>"), "{error}");
    }
    // The upstream's own refusal of bad arguments comes through as it is.
    let Err(CallError::JsonRpc(error)) = session
        .call_tool("calculator__add", json!({"a": "two", "b": 2}))
        .await
    else {
        panic!("bad arguments accepted")
    };
    assert_eq!(error["error"]["code"], -32602, "{error}");

    // The admin API's refusals.
    let http = reqwest::Client::new();
    let admin = |path: &str| format!("{}/api/admin/{path}", hub.url());
    let ops = Auth::ApiKey(auth::OPS_KEY.into());
    let status = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(
        status(http.get(admin("upstream-sessions")).send().await.unwrap()),
        401
    );
    assert_eq!(
        status(
            alice
                .apply(http.get(admin("upstream-sessions")))
                .send()
                .await
                .unwrap()
        ),
        403
    );
    for (path, expected, code) in [
        ("upstream-sessions?cursor=garbage", 400, "invalid_cursor"),
        ("upstream-sessions?limit=0", 400, "invalid_limit"),
        ("upstream-sessions?server=nope", 404, "unknown_server"),
    ] {
        let response = ops.apply(http.get(admin(path))).send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{path}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    for (path, expected) in [
        ("upstream-sessions/calculator/tok:GITHUB_TOKEN", 400),
        ("upstream-sessions/calculator/..%2F..%2Fx", 400),
        ("upstream-sessions/nope/shared", 404),
        ("upstream-sessions/calculator/shared", 404),
    ] {
        let response = ops.apply(http.delete(admin(path))).send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{path}");
    }
    let health: Value = ops
        .apply(http.get(admin("upstreams")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health[0]["name"], "calculator");
    assert_eq!(health[0]["reachable"], true, "{health}");

    // The hub's Redis goes away: a call that needs an upstream session it
    // does not hold gets a tool error naming the cause (or the library's
    // 503 for the downstream session), never a hang or a panic.
    let bob = Auth::ApiKey(auth::BOB_KEY.into());
    let mut bobs = hub.session(&bob, "/mcp", &[], json!({})).await;
    hub.redis.stop();
    let started = std::time::Instant::now();
    match bobs
        .call_tool("calculator__add", json!({"a": 1, "b": 2}))
        .await
    {
        Ok(result) => {
            assert_eq!(result["isError"], json!(true), "{result}");
            assert!(
                result.to_string().contains("upstream `calculator`"),
                "{result}"
            );
        }
        Err(CallError::Status(503, body)) => assert!(!body.is_empty()),
        Err(other) => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    hub.redis.restart();
    // Back: a new session and a call work again.
    let mut again = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut session = match RawSession::initialize_with(
            HubFleet::client(&bob, &[]),
            &format!("{}/mcp", hub.url()),
        )
        .await
        {
            Ok(session) => session,
            Err(_) => continue,
        };
        if let Ok(result) = session
            .call_tool("calculator__add", json!({"a": 1, "b": 2}))
            .await
            && result["isError"] == json!(false)
        {
            again = Some(result);
            break;
        }
    }
    let again = again.expect("the hub serves again once Redis is back");
    assert_eq!(again["structuredContent"]["result"], json!(3.0));
    assert!(
        !hub.replicas.logs().contains("panicked"),
        "a replica panicked"
    );
}
