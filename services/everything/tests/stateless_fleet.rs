//! Protocol 2026-07-28 across replicas, request by request: each test talks
//! to chosen replicas of three everything processes on one real Redis, so
//! that a change, a task or a stream is shown to cross from one replica to
//! another (the round-robin nginx would hide which one served what).
//!
//! - `subscriptions/listen`: a stream held by one replica hears, once, of
//!   a resource update made through another;
//! - tasks (SEP-2663): started on one replica, answered, read and cancelled
//!   on the others; another user's task id is unknown; a task whose replica
//!   is killed ends `failed`, never "not found".
//!
//! Callers authenticate with the test kit's HS256 JWTs, so that tasks
//! belong to users.
//! Every scenario runs on one Redis (`on_redis`) and on a three-master
//! Redis Cluster (`on_redis_cluster`).

use std::time::{Duration, Instant};

use mcp_testkit::{RedisCluster, RedisServer, ReplicaSet, SseReader};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_everything");
const STATE_KEY: &str = "stateless-fleet-test-sealing-key-0123456789abcdef";
const VERSION: &str = "2026-07-28";
const TASKS: &str = "io.modelcontextprotocol/tasks";

/// Three replicas on the Redis (or Redis Cluster) at `redis`.
async fn fleet(redis: &str) -> ReplicaSet {
    let auth = mcp_testkit::auth::auth_env();
    let mut env = mcp_testkit::auth::pairs(&auth);
    env.extend([
        ("REDIS_URL", redis),
        ("MCP_REQUEST_STATE_KEY", STATE_KEY),
        ("SHUTDOWN_GRACE_SECONDS", "2"),
    ]);
    ReplicaSet::start(BINARY, 3, &env).await
}

/// A 2026-07-28 caller: no session, its capabilities on every request.
struct Caller {
    http: reqwest::Client,
    token: String,
    capabilities: Value,
}

impl Caller {
    fn new(user: &str, capabilities: Value) -> Self {
        Self {
            http: reqwest::Client::new(),
            token: mcp_testkit::auth::token_for(user),
            capabilities,
        }
    }

    /// The POST of `method` with `params` (plus this caller's `_meta`) to
    /// the replica at `base`, with the headers 2026-07-28 requires.
    fn post(
        &self,
        base: &str,
        id: u64,
        method: &str,
        mut params: Value,
    ) -> reqwest::RequestBuilder {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": VERSION,
            "io.modelcontextprotocol/clientCapabilities": self.capabilities,
            "io.modelcontextprotocol/clientInfo": {"name": "stateless-fleet-test", "version": "1"},
        });
        let name = params
            .get("name")
            .or_else(|| params.get("taskId"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut request = self
            .http
            .post(format!("{base}/mcp"))
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", VERSION)
            .header("Mcp-Method", method)
            .json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        if let Some(name) = name {
            request = request.header("Mcp-Name", name);
        }
        request
    }

    /// The JSON-RPC answer (`result` or `error` object) to one request.
    async fn call(&self, base: &str, method: &str, params: Value) -> Value {
        let response = self
            .post(base, 7, method, params)
            .send()
            .await
            .expect("an HTTP answer");
        let is_sse = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        if !is_sse {
            return response.json().await.expect("a JSON body");
        }
        let mut stream = SseReader::new(response);
        loop {
            let message = stream
                .try_next_message(Duration::from_secs(15))
                .await
                .expect("an answer on the response stream");
            if message.get("id") == Some(&json!(7)) {
                return message;
            }
        }
    }

    /// Calls the task tool `name` and returns the id of the task it created.
    async fn start_task(&self, base: &str, name: &str, arguments: Value) -> String {
        let created = self.call_tool(base, name, arguments).await;
        let created = result(&created);
        assert_eq!(created["resultType"], "task", "{created}");
        created["taskId"].as_str().expect("a task id").to_owned()
    }

    /// The task `task_id` as `tasks/get` on `base` reads it.
    async fn task(&self, base: &str, task_id: &str) -> Value {
        let answer = self
            .call(base, "tasks/get", json!({"taskId": task_id}))
            .await;
        result(&answer).clone()
    }

    async fn call_tool(&self, base: &str, name: &str, arguments: Value) -> Value {
        self.call(
            base,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        )
        .await
    }
}

/// The `result` of an answer, or a panic naming what came instead.
fn result(answer: &Value) -> &Value {
    answer
        .get("result")
        .unwrap_or_else(|| panic!("expected a result, got {answer}"))
}

fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error, got {answer}"))
}

/// Polls `tasks/get` on `base` until `done` holds for the task, for at most
/// `within`; returns the last task read.
async fn poll_task(
    caller: &Caller,
    base: &str,
    task_id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let answer = caller
            .call(base, "tasks/get", json!({"taskId": task_id}))
            .await;
        let task = result(&answer).clone();
        if done(&task) || Instant::now() > deadline {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status(task: &Value) -> &str {
    task["status"].as_str().unwrap_or_default()
}

fn terminal(task: &Value) -> bool {
    matches!(status(task), "completed" | "failed" | "cancelled")
}

async fn a_listen_stream_on_one_replica_hears_once_of_an_update_made_on_another(redis: &str) {
    let replicas = fleet(redis).await;
    let [first, second, third] = [0, 1, 2].map(|index| replicas.replicas[index].url());
    let listener = Caller::new("alice", json!({}));
    let other = Caller::new("bob", json!({}));
    let uri = "test://static-text";

    let response = listener
        .post(
            &first,
            1,
            "subscriptions/listen",
            json!({"notifications": {"resourceSubscriptions": [uri]}}),
        )
        .send()
        .await
        .expect("the listen request is answered");
    assert_eq!(response.status(), 200);
    let mut stream = SseReader::new(response);
    let acknowledged = stream
        .try_next_message(Duration::from_secs(10))
        .await
        .expect("the subscription is acknowledged");
    assert_eq!(
        acknowledged["method"],
        "notifications/subscriptions/acknowledged"
    );

    // The update is made through the two other replicas, by another user
    // (the resource is shared): the stream on the first hears of each once.
    for (base, caller) in [(&second, &other), (&third, &listener)] {
        let answer = caller
            .call_tool(base, "test_notify_resource_updated", json!({"uri": uri}))
            .await;
        assert_eq!(result(&answer)["isError"], json!(false), "{answer}");
    }
    let mut updates = 0;
    while let Some(message) = stream.try_next_message(Duration::from_secs(2)).await {
        assert_eq!(
            message["method"], "notifications/resources/updated",
            "{message}"
        );
        assert_eq!(message["params"]["uri"], uri);
        assert_eq!(
            message["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            json!(1),
            "each notification names its listen request"
        );
        updates += 1;
    }
    assert_eq!(
        updates, 2,
        "one notification per update, on another replica's stream"
    );

    // An update of a resource the stream did not name does not reach it.
    let answer = other
        .call_tool(
            &second,
            "test_notify_resource_updated",
            json!({"uri": "test://static-binary"}),
        )
        .await;
    assert_eq!(result(&answer)["isError"], json!(false));
    assert!(
        stream
            .try_next_message(Duration::from_secs(1))
            .await
            .is_none(),
        "the filter holds across replicas"
    );
}

async fn a_task_started_on_one_replica_is_answered_read_and_cancelled_on_the_others(redis: &str) {
    let replicas = fleet(redis).await;
    let [first, second, third] = [0, 1, 2].map(|index| replicas.replicas[index].url());
    let alice = Caller::new(
        "alice",
        json!({"elicitation": {}, "extensions": {TASKS: {}}}),
    );

    // Input: asked on the first replica, seen on the second, answered on the
    // third; the work (on the first) picks the answer up and completes.
    let task_id = alice
        .start_task(&first, "confirm_delete", json!({"filename": "report.txt"}))
        .await;
    let waiting = poll_task(&alice, &second, &task_id, Duration::from_secs(10), |task| {
        status(task) == "input_required"
    })
    .await;
    assert_eq!(status(&waiting), "input_required", "{waiting}");
    let key = waiting["inputRequests"]
        .as_object()
        .and_then(|requests| requests.keys().next())
        .expect("an input request")
        .clone();
    let ack = alice
        .call(
            &third,
            "tasks/update",
            json!({"taskId": task_id, "inputResponses": {key: {"action": "accept", "content": {"confirm": true}}}}),
        )
        .await;
    assert_eq!(result(&ack), &json!({"resultType": "complete"}));
    let done = poll_task(&alice, &second, &task_id, Duration::from_secs(10), terminal).await;
    assert_eq!(status(&done), "completed", "{done}");
    assert_eq!(
        done["result"]["content"][0]["text"],
        "Confirmed: report.txt may be deleted"
    );

    // Cancellation: started on the first, cancelled on the third, read on
    // the second; the work on the first stops.
    let task_id = alice
        .start_task(
            &first,
            "slow_compute",
            json!({"seconds": 60, "label": "cancel-me"}),
        )
        .await;
    let ack = alice
        .call(&third, "tasks/cancel", json!({"taskId": task_id}))
        .await;
    assert_eq!(result(&ack), &json!({"resultType": "complete"}));
    assert_eq!(status(&alice.task(&second, &task_id).await), "cancelled");
    // It stays cancelled: the work that stopped on the first replica does
    // not overwrite it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status(&alice.task(&first, &task_id).await), "cancelled");
}

async fn another_users_task_is_unknown_on_every_replica(redis: &str) {
    let replicas = fleet(redis).await;
    let capabilities = json!({"extensions": {TASKS: {}}});
    let alice = Caller::new("alice", capabilities.clone());
    let mallory = Caller::new("mallory", capabilities);
    let first = replicas.replicas[0].url();
    let task_id = alice
        .start_task(
            &first,
            "slow_compute",
            json!({"seconds": 30, "label": "mine"}),
        )
        .await;
    for replica in &replicas.replicas {
        let base = replica.url();
        for method in ["tasks/get", "tasks/cancel"] {
            let answer = mallory
                .call(&base, method, json!({"taskId": task_id}))
                .await;
            assert_eq!(error_code(&answer), -32602, "{method} on {base}: {answer}");
            assert!(
                !answer.to_string().contains("mine"),
                "nothing of the task leaks: {answer}"
            );
        }
        let answer = mallory
            .call(
                &base,
                "tasks/update",
                json!({"taskId": task_id, "inputResponses": {}}),
            )
            .await;
        assert_eq!(
            error_code(&answer),
            -32602,
            "tasks/update on {base}: {answer}"
        );
    }
    assert_eq!(
        status(&alice.task(&first, &task_id).await),
        "working",
        "the owner's task is untouched"
    );
}

async fn a_task_whose_replica_is_killed_ends_failed_never_unknown(redis: &str) {
    let mut replicas = fleet(redis).await;
    let alice = Caller::new("alice", json!({"extensions": {TASKS: {}}}));
    let first = replicas.replicas[0].url();
    let second = replicas.replicas[1].url();
    let task_id = alice
        .start_task(
            &first,
            "slow_compute",
            json!({"seconds": 120, "label": "orphan"}),
        )
        .await;
    assert_eq!(status(&alice.task(&second, &task_id).await), "working");

    replicas.replicas[0].kill();
    let started = Instant::now();
    // The lease is 10 s: within it the task still reads `working`, after it
    // `failed`, naming the lost replica. Never an unknown task.
    let ended = poll_task(&alice, &second, &task_id, Duration::from_secs(30), terminal).await;
    assert_eq!(status(&ended), "failed", "{ended}");
    assert_eq!(ended["error"]["code"], json!(-32603));
    let message = ended["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("replica-1"), "{message}");
    assert!(ended.get("result").is_none());
    eprintln!(
        "the task ended failed {:?} after its replica was killed",
        started.elapsed()
    );
    // Read again on the third replica: the same failed task.
    let third = replicas.replicas[2].url();
    assert_eq!(status(&alice.task(&third, &task_id).await), "failed");
}

async fn every_replica_gives_the_same_lists_with_the_same_caching_hints(redis: &str) {
    let replicas = fleet(redis).await;
    let methods = [
        ("tools/list", "tools"),
        ("prompts/list", "prompts"),
        ("resources/list", "resources"),
        ("resources/templates/list", "resourceTemplates"),
    ];
    for (method, field) in methods {
        let mut seen = Vec::new();
        for (replica, user) in replicas.replicas.iter().zip(["alice", "bob", "carol"]) {
            let answer = Caller::new(user, json!({}))
                .call(&replica.url(), method, json!({}))
                .await;
            let list = result(&answer);
            // The lists depend on nothing but the deployment: the same for
            // every caller (public), and no freshness promised across a
            // rolling update (0 ms).
            assert_eq!(list["cacheScope"], "public", "{method}: {list}");
            assert_eq!(list["ttlMs"], json!(0), "{method}: {list}");
            seen.push(list[field].clone());
        }
        assert!(
            seen.windows(2).all(|pair| pair[0] == pair[1]),
            "{method}: every replica and caller sees the same list"
        );
    }
}

async fn a_task_whose_replica_scales_in_ends_failed_at_once(redis: &str) {
    let mut replicas = fleet(redis).await;
    let alice = Caller::new("alice", json!({"extensions": {TASKS: {}}}));
    let first = replicas.replicas[0].url();
    let second = replicas.replicas[1].url();
    let task_id = alice
        .start_task(
            &first,
            "slow_compute",
            json!({"seconds": 120, "label": "scaled-in"}),
        )
        .await;
    let short_id = alice
        .start_task(
            &first,
            "slow_compute",
            json!({"seconds": 1, "label": "finishes"}),
        )
        .await;

    // SIGTERM: the work gets the grace period (2 s here), then its task is
    // failed by the replica itself, before it exits; a task that finishes
    // within the grace period completes.
    let code =
        tokio::task::block_in_place(|| replicas.replicas[0].terminate(Duration::from_secs(20)));
    assert_eq!(code, Some(0), "the replica exits cleanly");
    let task = alice.task(&second, &task_id).await;
    assert_eq!(status(&task), "failed", "{task}");
    // Failed by the replica at its scale-in (the lease's expiry would say
    // "stopped before it finished").
    let message = task["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("shut down"), "{message}");
    let short = alice.task(&second, &short_id).await;
    assert_eq!(status(&short), "completed", "{short}");
}

/// One test per scenario and backend.
macro_rules! on_each_backend {
    ($($scenario:ident),* $(,)?) => {
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let redis = super::RedisServer::start();
                    super::$scenario(&redis.url()).await;
                }
            )*
        }
        mod on_redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let cluster = super::RedisCluster::start();
                    super::$scenario(&cluster.url()).await;
                }
            )*
        }
    };
}

on_each_backend!(
    a_listen_stream_on_one_replica_hears_once_of_an_update_made_on_another,
    a_task_started_on_one_replica_is_answered_read_and_cancelled_on_the_others,
    another_users_task_is_unknown_on_every_replica,
    a_task_whose_replica_is_killed_ends_failed_never_unknown,
    every_replica_gives_the_same_lists_with_the_same_caching_hints,
    a_task_whose_replica_scales_in_ends_failed_at_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_run_tasks_without_bound() {
    let redis = RedisServer::start();
    let replicas = fleet(&redis.url()).await;
    let base = replicas.replicas[0].url();
    let capabilities = json!({"extensions": {TASKS: {}}});
    let alice = Caller::new("alice", capabilities.clone());
    let limit = mcp_session::tasks::MAX_RUNNING_PER_USER;
    let mut first = None;
    for i in 0..limit {
        let task_id = alice
            .start_task(
                &base,
                "slow_compute",
                json!({"seconds": 120, "label": format!("t{i}")}),
            )
            .await;
        first.get_or_insert(task_id);
    }
    let refused = alice
        .call_tool(
            &base,
            "slow_compute",
            json!({"seconds": 120, "label": "one too many"}),
        )
        .await;
    assert_eq!(error_code(&refused), -32603, "{refused}");
    assert!(
        refused.to_string().contains("too many tasks running"),
        "{refused}"
    );
    // Another user is not held back by Alice's tasks.
    let bob = Caller::new("bob", capabilities);
    bob.start_task(&base, "slow_compute", json!({"seconds": 1, "label": "bob"}))
        .await;
    // Cancelling one makes room again.
    let first = first.expect("a task");
    alice
        .call(&base, "tasks/cancel", json!({"taskId": first}))
        .await;
    let created = alice
        .call_tool(
            &base,
            "slow_compute",
            json!({"seconds": 1, "label": "room again"}),
        )
        .await;
    assert_eq!(result(&created)["resultType"], "task", "{created}");
}
