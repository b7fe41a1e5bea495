//! Tools that run as tasks (the Tasks extension, SEP-2663, MCP 2026-07-28)
//! when the request declares `io.modelcontextprotocol/tasks` in its client
//! capabilities: the call is answered with a `CreateTaskResult` at once and
//! the work goes on in the background, its state in the fleet's task store
//! ([`mcp_session::tasks`]), so that `tasks/get`, `tasks/update` and
//! `tasks/cancel` work from any replica.
//!
//! | tool | task | behaviour |
//! |---|---|---|
//! | `greet` | never | `Hello, <name>!` at once |
//! | `slow_compute` | optional | waits `seconds` (0 .. 600), then reports; cancellable |
//! | `failing_job` | required (`-32021` without the extension) | ends `completed` with a tool error (`isError`) after 1 s |
//! | `protocol_error_job` | optional | ends `failed` with a JSON-RPC error |
//! | `confirm_delete` | optional | asks the user to confirm (task: `input_required`, answered by `tasks/update`) |
//! | `multi_input` | optional | asks two questions at once; each may be answered separately |
//! | `test_tool_with_task` | required | asks the user's name by MRTR first, then runs as a task that greets them |
//!
//! Without the extension an optional tool runs in the request, asking for
//! input the request's way (MRTR for a 2026-07-28 client, `elicitation/create`
//! for a session).

use std::{collections::BTreeMap, time::Duration};

use mcp_session::tasks::{self, TaskHandle};
use rmcp::{
    ErrorData, RoleServer,
    handler::server::{tool::InputResponses as ToolInputResponses, wrapper::Parameters},
    model::{
        CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock, ElicitResult,
        ElicitationAction, InputRequests, InputResponses,
    },
    schemars::{self, JsonSchema},
    service::RequestContext,
    tool, tool_router,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::input_required::{self, Answer, Ask, Gathered};
use crate::Everything;

/// Longest `slow_compute` run.
pub const MAX_SECONDS: u64 = 600;
/// How long `failing_job` and `protocol_error_job` work before they fail.
pub const JOB_TIME: Duration = Duration::from_secs(1);

/// Whether the request declared the Tasks extension (per request for
/// 2026-07-28: its `_meta` client capabilities).
fn wants_task(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .is_some_and(|capabilities| capabilities.supports_tasks())
}

/// `-32021` naming the Tasks extension, for a tool that only runs as a task.
fn tasks_required() -> ErrorData {
    ErrorData::missing_required_client_capability(
        ClientCapabilities::builder().enable_tasks().build(),
    )
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text.into())])
}

/// Arguments of `greet`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GreetArgs {
    /// Who to greet
    pub name: String,
}

/// Arguments of `slow_compute`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SlowComputeArgs {
    /// How long to work, in seconds (0 .. 600)
    pub seconds: u64,
    /// A label to find the run by
    pub label: String,
}

/// Arguments of `confirm_delete`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConfirmDeleteArgs {
    /// The file the user is asked about
    pub filename: String,
}

async fn compute(seconds: u64, label: &str) -> CallToolResult {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    text(format!("{label}: computed in {seconds} s"))
}

/// The questions of `confirm_delete`.
fn confirm_asks(filename: &str) -> Vec<(&'static str, Ask)> {
    vec![(
        "confirm",
        Ask::Form {
            message: format!("Delete {filename}?"),
            form: json!({
                "type": "object",
                "properties": { "confirm": { "type": "boolean", "description": "Delete it?" } },
                "required": ["confirm"]
            }),
        },
    )]
}

/// The questions of `multi_input`: a name and a confirmation, at once.
fn multi_asks() -> Vec<(&'static str, Ask)> {
    let form = json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "Your name" },
            "confirm": { "type": "boolean", "description": "Go on?" }
        }
    });
    vec![
        (
            "name",
            Ask::Form {
                message: "What is your name?".to_owned(),
                form: form.clone(),
            },
        ),
        (
            "confirm",
            Ask::Form {
                message: "Go on?".to_owned(),
                form,
            },
        ),
    ]
}

/// Asks `asks` from inside a task: `input_required` until `tasks/update`
/// answers all of them.
async fn ask_in_task(
    task: &TaskHandle,
    asks: &[(&str, Ask)],
) -> Result<BTreeMap<String, Answer>, ErrorData> {
    let mut requests = InputRequests::new();
    for (key, ask) in asks {
        requests.insert((*key).to_owned(), ask.request()?);
    }
    let responses = task.ask(requests).await?;
    let mut answers = BTreeMap::new();
    for (key, ask) in asks {
        let value = responses.get(*key).cloned().unwrap_or(Value::Null);
        answers.insert((*key).to_owned(), ask.answer(key, value)?);
    }
    Ok(answers)
}

/// Asks `asks` in the request itself: by MRTR for a 2026-07-28 client
/// (`Err(result)` is the `InputRequiredResult` to return), by
/// `elicitation/create` for a session.
async fn ask_in_request(
    context: &RequestContext<RoleServer>,
    asks: &[(&str, Ask)],
    responses: Option<&InputResponses>,
) -> Result<Result<BTreeMap<String, Answer>, CallToolResponse>, ErrorData> {
    if input_required::is_stateless(context) {
        return Ok(
            match input_required::gather(context, asks, responses, None)? {
                Gathered::Ask(result) => Err(result.into()),
                Gathered::All(answers) => Ok(answers),
            },
        );
    }
    let mut answers = BTreeMap::new();
    for (key, ask) in asks {
        let Ask::Form { message, form } = ask else {
            return Err(ErrorData::internal_error("only forms are asked here", None));
        };
        let result = super::elicitation::elicit(&context.peer, message.clone(), form.clone())
            .await
            .map_err(|error| {
                ErrorData::invalid_request(format!("the client could not be asked: {error}"), None)
            })?;
        answers.insert((*key).to_owned(), Answer::Form(result));
    }
    Ok(Ok(answers))
}

/// The content field `field` of an accepted form answer under `key`.
fn accepted<'a>(
    answers: &'a BTreeMap<String, Answer>,
    key: &str,
    field: &str,
) -> Option<&'a Value> {
    match answers.get(key) {
        Some(Answer::Form(ElicitResult {
            action: ElicitationAction::Accept,
            content: Some(content),
            ..
        })) => content.get(field),
        _ => None,
    }
}

fn confirm_outcome(filename: &str, answers: &BTreeMap<String, Answer>) -> CallToolResult {
    if accepted(answers, "confirm", "confirm") == Some(&Value::Bool(true)) {
        text(format!("Confirmed: {filename} may be deleted"))
    } else {
        text(format!("Not confirmed: {filename} stays"))
    }
}

fn multi_outcome(answers: &BTreeMap<String, Answer>) -> CallToolResult {
    let name = accepted(answers, "name", "name")
        .and_then(Value::as_str)
        .unwrap_or("(no name)");
    let confirmed = accepted(answers, "confirm", "confirm") == Some(&Value::Bool(true));
    text(format!("name: {name}; confirmed: {confirmed}"))
}

#[tool_router(router = task_tools, vis = "pub(crate)")]
impl Everything {
    #[tool(
        name = "greet",
        description = "Greets `name` at once: \"Hello, <name>!\" (never a task)."
    )]
    async fn greet(&self, Parameters(GreetArgs { name }): Parameters<GreetArgs>) -> String {
        format!("Hello, {name}!")
    }

    #[tool(
        name = "slow_compute",
        description = "Works for `seconds` (0 .. 600) and reports with `label`. Runs as a task when the request declares the Tasks extension, and can then be cancelled."
    )]
    async fn slow_compute(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(SlowComputeArgs { seconds, label }): Parameters<SlowComputeArgs>,
    ) -> Result<CallToolResponse, ErrorData> {
        if seconds > MAX_SECONDS {
            return Err(ErrorData::invalid_params(
                format!("seconds must be at most {MAX_SECONDS}"),
                None,
            ));
        }
        if !wants_task(&context) || seconds == 0 {
            return Ok(compute(seconds, &label).await.into());
        }
        let created = tasks::start(&context, move |_task| async move {
            Ok(compute(seconds, &label).await)
        })
        .await?;
        Ok(created.into())
    }

    #[tool(
        name = "failing_job",
        description = "Runs only as a task (-32021 without the Tasks extension); after 1 s the task completes with a tool error (isError: true)."
    )]
    async fn failing_job(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !wants_task(&context) {
            return Err(tasks_required());
        }
        let created = tasks::start(&context, |_task| async {
            tokio::time::sleep(JOB_TIME).await;
            Ok(CallToolResult::error(vec![ContentBlock::text(
                "the job failed: the input it works on is not there",
            )]))
        })
        .await?;
        Ok(created.into())
    }

    #[tool(
        name = "protocol_error_job",
        description = "Fails with a JSON-RPC error (-32603): as a task, the task ends `failed` with that error after 1 s."
    )]
    async fn protocol_error_job(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let failure = || ErrorData::internal_error("the job's backend went away", None);
        if !wants_task(&context) {
            return Err(failure());
        }
        let created = tasks::start(&context, move |_task| async move {
            tokio::time::sleep(JOB_TIME).await;
            Err(failure())
        })
        .await?;
        Ok(created.into())
    }

    #[tool(
        name = "confirm_delete",
        description = "Asks the user to confirm before `filename` may be deleted: as a task, the task waits in input_required for tasks/update."
    )]
    async fn confirm_delete(
        &self,
        context: RequestContext<RoleServer>,
        Parameters(ConfirmDeleteArgs { filename }): Parameters<ConfirmDeleteArgs>,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        if wants_task(&context) {
            let created = tasks::start(&context, move |task| async move {
                let answers = ask_in_task(&task, &confirm_asks(&filename)).await?;
                Ok(confirm_outcome(&filename, &answers))
            })
            .await?;
            return Ok(created.into());
        }
        match ask_in_request(&context, &confirm_asks(&filename), responses.as_ref()).await? {
            Err(ask) => Ok(ask),
            Ok(answers) => Ok(confirm_outcome(&filename, &answers).into()),
        }
    }

    #[tool(
        name = "multi_input",
        description = "Asks two questions at once (keys name and confirm); as a task, each can be answered by its own tasks/update."
    )]
    async fn multi_input(
        &self,
        context: RequestContext<RoleServer>,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        if wants_task(&context) {
            let created = tasks::start(&context, |task| async move {
                let answers = ask_in_task(&task, &multi_asks()).await?;
                Ok(multi_outcome(&answers))
            })
            .await?;
            return Ok(created.into());
        }
        match ask_in_request(&context, &multi_asks(), responses.as_ref()).await? {
            Err(ask) => Ok(ask),
            Ok(answers) => Ok(multi_outcome(&answers).into()),
        }
    }

    #[tool(
        name = "test_tool_with_task",
        description = "Runs only as a task (-32021 without the Tasks extension): first asks the user's name by MRTR (inputRequests.user_name), then starts a task that greets them."
    )]
    async fn tool_with_task(
        &self,
        context: RequestContext<RoleServer>,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        if !wants_task(&context) {
            return Err(tasks_required());
        }
        let asks = [(
            "user_name",
            Ask::Form {
                message: "What is your name?".to_owned(),
                form: json!({
                    "type": "object",
                    "properties": { "name": { "type": "string", "description": "Your name" } },
                    "required": ["name"]
                }),
            },
        )];
        let answers = match ask_in_request(&context, &asks, responses.as_ref()).await? {
            Err(ask) => return Ok(ask),
            Ok(answers) => answers,
        };
        let name = accepted(&answers, "user_name", "name")
            .and_then(Value::as_str)
            .unwrap_or("whoever you are")
            .to_owned();
        let created = tasks::start(&context, move |_task| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(text(format!("Hello, {name}! (greeted by a task)")))
        })
        .await?;
        Ok(created.into())
    }
}
