//! Tasks that any replica can read, update and cancel (the Tasks extension,
//! SEP-2663, MCP 2026-07-28, `io.modelcontextprotocol/tasks`).
//!
//! A tool that takes long answers `tools/call` with a `CreateTaskResult`
//! and goes on in the background; the client then polls `tasks/get`, answers
//! the task's input requests with `tasks/update` and may `tasks/cancel` it.
//! Behind a round-robin load balancer each of those reaches any replica, so
//! the task's state lives in the fleet's [`TaskStore`] (Redis for a fleet),
//! keyed by its owner (`mcp_task:<user_hash>:<task_id>`: another user's task
//! id is unknown, `-32602`), and the replica that runs the work keeps only
//! the future:
//!
//! | step | where | what happens |
//! |---|---|---|
//! | [`start`] | the replica the `tools/call` reached | the task is written (`working`) *before* the `CreateTaskResult` goes out, then the work runs here |
//! | [`TaskHandle::ask`] | the running replica | the task becomes `input_required` with the requests; the work waits for the answers |
//! | [`get`] | any replica | reads the task; a task whose replica stopped renewing its lease is marked `failed` there and then |
//! | [`update`] | any replica | files the answers in the task at once (keys not asked for are ignored); all answered: `working` again, and the work picks them up |
//! | [`cancel`] | any replica | `cancelled` at once (a task already finished is left as it is); the running replica sees it within a poll interval and drops the work |
//! | end of the work | the running replica | `completed` with the tool's result (a tool error is `completed` with `isError`), or `failed` with the JSON-RPC error; never over a cancellation |
//! | scale-in (SIGTERM) | the running replica | the work gets the grace period, like a request in flight; then its task ends `failed` |
//!
//! Every change is a compare-and-set on the task's version, so concurrent
//! changes from several replicas never overwrite each other. The running
//! replica reads its task once per poll interval ([`POLL_INTERVAL`]) and
//! renews its lease ([`LEASE`]); that is the whole Redis cost of a task
//! beyond the client's own requests.
//!
//! A handler wires the three methods to rmcp's `get_task`, `update_task`
//! and `cancel_task`, declares the extension (`enable_tasks()`), and starts
//! tasks from its tools:
//!
//! ```rust,ignore
//! if context.client_capabilities().is_some_and(|caps| caps.supports_tasks()) {
//!     let created = mcp_session::tasks::start(&context, move |task| async move {
//!         let answers = task.ask(requests).await?;
//!         Ok(CallToolResult::success(vec![ContentBlock::text("done")]))
//!     })
//!     .await?;
//!     return Ok(created.into());
//! }
//! ```

use std::{
    collections::HashMap,
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use mcp_session_core::task_store::{StoredTask, TaskKey, TaskStore};
use parking_lot::Mutex;
use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolResult, CreateTaskResult, DetailedTask, GetTaskResult, InputRequests,
        InputResponses, JsonObject, Task, TaskPayload, TaskStatus,
    },
    service::RequestContext,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{service_context::ServiceContext, session};

/// How long a task is kept after it is created (its `ttlMs`).
pub const TASK_TTL: Duration = Duration::from_secs(3600);
/// How often the client is asked to poll (`pollIntervalMs`), and how often
/// the running replica reads its task for a cancellation or answers.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a running task's replica may go without renewing its lease
/// before the task is marked `failed` (the replica is taken for dead).
pub const LEASE: Duration = Duration::from_secs(10);
/// Most tasks one user may have running on one replica: each holds a
/// future and a Redis key, so a client cannot make a replica run without
/// bound.
pub const MAX_RUNNING_PER_USER: usize = 64;
/// Most compare-and-set attempts of one change before it gives up.
const MAX_ATTEMPTS: usize = 16;

/// The tasks of one replica: where they are stored, and the cancellation
/// tokens of those running here. Put in every request's extensions by the
/// server.
pub(crate) struct TaskRuntime {
    store: Arc<dyn TaskStore>,
    replica_id: String,
    running: Mutex<HashMap<TaskKey, CancellationToken>>,
}

impl TaskRuntime {
    /// The tasks of replica `replica_id`, kept in `store`.
    pub(crate) fn new(store: Arc<dyn TaskStore>, replica_id: &str) -> Self {
        Self {
            store,
            replica_id: replica_id.to_owned(),
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl TaskRuntime {
    /// At scale-in: lets the tasks running here finish until `deadline`,
    /// then ends the others `failed` (their work stops with this process),
    /// so that their clients learn it at their next `tasks/get` rather than
    /// when the lease runs out.
    pub(crate) async fn finish(&self, deadline: tokio::time::Instant) {
        while !self.running.lock().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left: Vec<(TaskKey, CancellationToken)> = self.running.lock().drain().collect();
        if !left.is_empty() {
            tracing::warn!(
                tasks = left.len(),
                "shutting down with tasks running: they end failed"
            );
        }
        for (key, work) in left {
            work.cancel();
            let error = ErrorData::internal_error(
                format!(
                    "the replica that ran this task ({}) shut down before it finished; call the tool again",
                    self.replica_id
                ),
                None,
            );
            let ended = self
                .change(&key, |document| {
                    if document.task.status().is_terminal() {
                        return Ok(Change::Keep(()));
                    }
                    settle(document, failed_payload(&error));
                    Ok(Change::Write(()))
                })
                .await;
            if let Err(error) = ended {
                tracing::warn!(task = %key.task_id, %error.message, "could not record a task as failed at shutdown");
            }
        }
    }
}

/// What is stored of a task: the task as `tasks/get` returns it, who runs
/// it, and the answers not yet taken by its work.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TaskDocument {
    task: DetailedTask,
    /// The replica running the work.
    owner: String,
    /// Until when (ms since the epoch) the owner is taken to be alive.
    lease_until_ms: u64,
    /// Answers filed by `tasks/update`, for the work to take.
    #[serde(default)]
    responses: InputResponses,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// `ms` (since the epoch) as an ISO 8601 timestamp in UTC, to the millisecond.
fn iso8601(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn unavailable(error: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(format!("the task store cannot be reached: {error}"), None)
}

fn unknown_task(task_id: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("unknown task {task_id:?} (never created, expired, or another user's)"),
        None,
    )
}

fn runtime(context: &RequestContext<RoleServer>) -> Result<Arc<TaskRuntime>, ErrorData> {
    ServiceContext::lent::<Arc<TaskRuntime>>(context).ok_or_else(|| {
        ErrorData::internal_error(
            "tasks are only available to requests served over HTTP",
            None,
        )
    })
}

fn key(context: &RequestContext<RoleServer>, task_id: &str) -> TaskKey {
    TaskKey {
        user: session::caller(context).user_hash,
        task_id: task_id.to_owned(),
    }
}

/// What a change decided about a task's document.
enum Change<T> {
    /// Write the changed document, then return `T`.
    Write(T),
    /// Leave it as it is and return `T`.
    Keep(T),
}

impl TaskRuntime {
    async fn read(&self, key: &TaskKey) -> Result<Option<(u64, TaskDocument)>, ErrorData> {
        let Some(StoredTask { version, document }) =
            self.store.read(key).await.map_err(unavailable)?
        else {
            return Ok(None);
        };
        let document = serde_json::from_str(&document).map_err(|error| {
            ErrorData::internal_error(format!("task {} is unreadable: {error}", key.task_id), None)
        })?;
        Ok(Some((version, document)))
    }

    /// Applies `change` to the task `key` by compare-and-set, reading again
    /// after a concurrent write; `None` when there is no such task.
    async fn change<T>(
        &self,
        key: &TaskKey,
        mut change: impl FnMut(&mut TaskDocument) -> Result<Change<T>, ErrorData>,
    ) -> Result<Option<T>, ErrorData> {
        for _ in 0..MAX_ATTEMPTS {
            let Some((version, mut document)) = self.read(key).await? else {
                return Ok(None);
            };
            match change(&mut document)? {
                Change::Keep(value) => return Ok(Some(value)),
                Change::Write(value) => {
                    let json = serde_json::to_string(&document)
                        .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
                    if self
                        .store
                        .write(key, Some(version), &json, TASK_TTL)
                        .await
                        .map_err(unavailable)?
                    {
                        return Ok(Some(value));
                    }
                }
            }
        }
        Err(ErrorData::internal_error(
            format!("task {} changed too often to be changed", key.task_id),
            None,
        ))
    }
}

/// Sets `document`'s payload (and status) to `payload`, stamped now.
fn settle(document: &mut TaskDocument, payload: TaskPayload) {
    let mut task = document.task.task.clone();
    task.last_updated_at = iso8601(now_ms());
    document.task = DetailedTask::new(task, payload);
}

/// The running work's side of a task: its cancellation, and the way to ask
/// the client for input.
#[derive(Clone)]
pub struct TaskHandle {
    runtime: Arc<TaskRuntime>,
    key: TaskKey,
    cancellation: CancellationToken,
}

impl TaskHandle {
    /// The task's id.
    pub fn task_id(&self) -> &str {
        &self.key.task_id
    }

    /// Cancelled when the client cancels the task (from any replica).
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancellation
    }

    /// Asks the client for input: the task becomes `input_required` with
    /// `requests` (keys the work chooses, unique over the task's life) and
    /// this waits until `tasks/update` (on any replica) has answered every
    /// one of them; returns the answers by key.
    ///
    /// # Errors
    /// `-32603` when the task was cancelled or ended meanwhile, or the task
    /// store cannot be reached.
    pub async fn ask(&self, requests: InputRequests) -> Result<InputResponses, ErrorData> {
        let ended = || ErrorData::internal_error("the task ended while it waited for input", None);
        let asked = self
            .runtime
            .change(&self.key, |document| {
                if document.task.status().is_terminal() {
                    return Ok(Change::Keep(false));
                }
                settle(
                    document,
                    TaskPayload::InputRequired {
                        input_requests: requests.clone(),
                    },
                );
                Ok(Change::Write(true))
            })
            .await?;
        if asked != Some(true) {
            return Err(ended());
        }
        loop {
            tokio::select! {
                () = self.cancellation.cancelled() => return Err(ended()),
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            let taken = self
                .runtime
                .change(&self.key, |document| match document.task.status() {
                    TaskStatus::Working => {
                        let answers = std::mem::take(&mut document.responses);
                        Ok(Change::Write(Some(answers)))
                    }
                    TaskStatus::InputRequired => Ok(Change::Keep(None)),
                    _ => Err(ended()),
                })
                .await?;
            match taken {
                Some(Some(answers)) => return Ok(answers),
                Some(None) => {}
                None => return Err(ended()),
            }
        }
    }
}

/// Creates a task for the request `context` and runs `work` for it in the
/// background on this replica; returns the `CreateTaskResult` to answer the
/// request with. The task is stored before this returns, so a `tasks/get`
/// sent as soon as the client has the result finds it on any replica.
///
/// The work's `Ok` result makes the task `completed` with that result (a
/// tool error, `isError: true`, is `completed` too: SEP-2663); its `Err`
/// makes it `failed` with that JSON-RPC error. A cancelled task's work is
/// dropped at its next await point.
///
/// # Errors
/// `-32603` when the task store cannot be reached, or when the caller has
/// [`MAX_RUNNING_PER_USER`] tasks running on this replica already.
pub async fn start<F, Fut>(
    context: &RequestContext<RoleServer>,
    work: F,
) -> Result<CreateTaskResult, ErrorData>
where
    F: FnOnce(TaskHandle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<CallToolResult, ErrorData>> + Send + 'static,
{
    let runtime = runtime(context)?;
    let task_id = uuid::Uuid::new_v4().simple().to_string();
    let key = key(context, &task_id);
    let running = runtime
        .running
        .lock()
        .keys()
        .filter(|running| running.user == key.user)
        .count();
    if running >= MAX_RUNNING_PER_USER {
        return Err(ErrorData::internal_error(
            format!(
                "too many tasks running: {running} of this user on this replica (at most {MAX_RUNNING_PER_USER}); wait for one to finish or cancel one"
            ),
            None,
        ));
    }
    let now = now_ms();
    let task = Task::new(&task_id, TaskStatus::Working, iso8601(now), iso8601(now))
        .with_ttl_ms(millis(TASK_TTL))
        .with_poll_interval_ms(millis(POLL_INTERVAL));
    let document = TaskDocument {
        task: DetailedTask::new(task.clone(), TaskPayload::Working),
        owner: runtime.replica_id.clone(),
        lease_until_ms: now + millis(LEASE),
        responses: InputResponses::new(),
    };
    let json = serde_json::to_string(&document)
        .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
    let created = runtime
        .store
        .write(&key, None, &json, TASK_TTL)
        .await
        .map_err(unavailable)?;
    if !created {
        return Err(ErrorData::internal_error("task id collision", None));
    }
    let cancellation = CancellationToken::new();
    runtime
        .running
        .lock()
        .insert(key.clone(), cancellation.clone());
    let handle = TaskHandle {
        runtime,
        key,
        cancellation,
    };
    tokio::spawn(run(handle, work));
    Ok(CreateTaskResult::new(task))
}

/// Runs a task's work beside its watch, then records how it ended.
async fn run<F, Fut>(handle: TaskHandle, work: F)
where
    F: FnOnce(TaskHandle) -> Fut,
    Fut: Future<Output = Result<CallToolResult, ErrorData>>,
{
    let watching = tokio::spawn(watch(handle.clone()));
    let outcome = tokio::select! {
        outcome = work(handle.clone()) => Some(outcome),
        () = handle.cancellation.cancelled() => None,
    };
    watching.abort();
    handle.runtime.running.lock().remove(&handle.key);
    let Some(outcome) = outcome else { return };
    let payload = match outcome {
        Ok(result) => match serde_json::to_value(result) {
            Ok(serde_json::Value::Object(result)) => TaskPayload::Completed { result },
            _ => failed_payload(&ErrorData::internal_error(
                "the tool's result could not be encoded",
                None,
            )),
        },
        Err(error) => failed_payload(&error),
    };
    let ended = handle
        .runtime
        .change(&handle.key, |document| {
            if document.task.status().is_terminal() {
                // Cancelled (or failed for a lost lease) meanwhile: the
                // first end stands.
                return Ok(Change::Keep(()));
            }
            settle(document, payload.clone());
            Ok(Change::Write(()))
        })
        .await;
    if let Err(error) = ended {
        tracing::warn!(task = %handle.key.task_id, %error.message, "could not record how a task ended");
    }
}

fn failed_payload(error: &ErrorData) -> TaskPayload {
    let error = match serde_json::to_value(error) {
        Ok(serde_json::Value::Object(error)) => error,
        _ => JsonObject::new(),
    };
    TaskPayload::Failed { error }
}

/// While the work runs: reads the task every [`POLL_INTERVAL`], cancels the
/// work when the task was cancelled (or ended) elsewhere, and renews the
/// lease that tells the fleet this replica is alive.
async fn watch(handle: TaskHandle) {
    loop {
        tokio::time::sleep(POLL_INTERVAL).await;
        let renewed = handle
            .runtime
            .change(&handle.key, |document| {
                if document.task.status().is_terminal() {
                    return Ok(Change::Keep(false));
                }
                let now = now_ms();
                if document.lease_until_ms.saturating_sub(now) < millis(LEASE) / 2 {
                    document.lease_until_ms = now + millis(LEASE);
                    return Ok(Change::Write(true));
                }
                Ok(Change::Keep(true))
            })
            .await;
        match renewed {
            Ok(Some(true)) => {}
            Ok(Some(false) | None) => {
                handle.cancellation.cancel();
                return;
            }
            // The store is away: try again; the work goes on meanwhile.
            Err(error) => {
                tracing::warn!(task = %handle.key.task_id, %error.message, "cannot watch a task");
            }
        }
    }
}

/// `tasks/get` for the request `context`: the task as it stands. A task
/// whose replica has not renewed its lease for [`LEASE`] is marked
/// `failed` (the replica stopped: the work is lost), never left `working`.
///
/// # Errors
/// `-32602` for a task this caller does not have; `-32603` when the task
/// store cannot be reached.
pub async fn get(
    context: &RequestContext<RoleServer>,
    task_id: &str,
) -> Result<GetTaskResult, ErrorData> {
    let runtime = runtime(context)?;
    let key = key(context, task_id);
    let task = runtime
        .change(&key, |document| {
            if !document.task.status().is_terminal() && document.lease_until_ms < now_ms() {
                let error = ErrorData::internal_error(
                    format!(
                        "the replica that ran this task ({}) stopped before it finished; call the tool again",
                        document.owner
                    ),
                    None,
                );
                settle(document, failed_payload(&error));
                return Ok(Change::Write(document.task.clone()));
            }
            Ok(Change::Keep(document.task.clone()))
        })
        .await?
        .ok_or_else(|| unknown_task(task_id))?;
    Ok(GetTaskResult::new(task))
}

/// `tasks/update` for the request `context`: files `responses` in the task
/// before it returns, so a `tasks/get` right after shows them taken. Answers
/// under keys the task is not waiting for are ignored (SEP-2663); when the
/// last request is answered the task is `working` again.
///
/// # Errors
/// `-32602` for a task this caller does not have; `-32603` when the task
/// store cannot be reached.
pub async fn update(
    context: &RequestContext<RoleServer>,
    task_id: &str,
    responses: InputResponses,
) -> Result<(), ErrorData> {
    let runtime = runtime(context)?;
    let key = key(context, task_id);
    runtime
        .change(&key, |document| {
            let TaskPayload::InputRequired { input_requests } = &document.task.payload else {
                return Ok(Change::Keep(()));
            };
            let mut waiting = input_requests.clone();
            let mut answered = false;
            for (name, answer) in &responses {
                if waiting.remove(name).is_some() {
                    document.responses.insert(name.clone(), answer.clone());
                    answered = true;
                }
            }
            if !answered {
                return Ok(Change::Keep(()));
            }
            let payload = if waiting.is_empty() {
                TaskPayload::Working
            } else {
                TaskPayload::InputRequired {
                    input_requests: waiting,
                }
            };
            settle(document, payload);
            Ok(Change::Write(()))
        })
        .await?
        .ok_or_else(|| unknown_task(task_id))
}

/// `tasks/cancel` for the request `context`: the task is `cancelled` at
/// once, and its work stops (here at once, on another replica within a
/// poll interval). Cancelling a task that already ended changes nothing and
/// is not an error.
///
/// # Errors
/// `-32602` for a task this caller does not have; `-32603` when the task
/// store cannot be reached.
pub async fn cancel(context: &RequestContext<RoleServer>, task_id: &str) -> Result<(), ErrorData> {
    let runtime = runtime(context)?;
    let key = key(context, task_id);
    runtime
        .change(&key, |document| {
            if document.task.status().is_terminal() {
                return Ok(Change::Keep(()));
            }
            settle(document, TaskPayload::Cancelled);
            Ok(Change::Write(()))
        })
        .await?
        .ok_or_else(|| unknown_task(task_id))?;
    if let Some(running) = runtime.running.lock().get(&key) {
        running.cancel();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_780_000_000_123), "2026-05-28T20:26:40.123Z");
    }

    #[test]
    fn a_document_round_trips_with_its_payload() {
        let task = Task::new("t", TaskStatus::Working, iso8601(0), iso8601(0));
        let mut requests = InputRequests::new();
        requests.insert(
            "confirm".into(),
            serde_json::from_value(serde_json::json!({
                "method": "roots/list", "params": {}
            }))
            .unwrap(),
        );
        let document = TaskDocument {
            task: DetailedTask::new(
                task,
                TaskPayload::InputRequired {
                    input_requests: requests,
                },
            ),
            owner: "r1".into(),
            lease_until_ms: 5,
            responses: InputResponses::new(),
        };
        let json = serde_json::to_string(&document).unwrap();
        let back: TaskDocument = serde_json::from_str(&json).unwrap();
        assert_eq!(back.task, document.task);
        assert_eq!(back.task.status(), TaskStatus::InputRequired);
    }
}
