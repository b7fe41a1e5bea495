//! Asking the client for input without a session: multi round-trip requests
//! (MRTR, SEP-2322, protocol 2026-07-28).
//!
//! A 2026-07-28 client has no session, so a tool cannot send it an
//! `elicitation/create` request and wait. Instead the tool answers the first
//! `tools/call` with an `InputRequiredResult` (`resultType: "input_required"`)
//! holding the requests and a `requestState`; the client fulfils them and
//! calls the tool again with `inputResponses` and the `requestState` echoed
//! back. Behind a round-robin load balancer the second call reaches another
//! replica, so the state is sealed with [`mcp_session::request_state`], whose
//! key every replica shares (`MCP_REQUEST_STATE_KEY`), and bound to the
//! caller and the tool.
//!
//! [`Round`] tells a tool which round it is in; [`ask`] and [`answer`] do the
//! two halves.

use rmcp::model::ElicitationSchema;
use rmcp::{
    ErrorData, RoleServer,
    model::{
        ElicitRequest, ElicitRequestParams, ElicitResult, InputRequest, InputRequests,
        InputRequiredResult, InputResponses, ProtocolVersion,
    },
    service::RequestContext,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Checks that `form` is a valid MCP elicitation form.
///
/// # Errors
/// Why it is not.
pub fn elicitation_schema(form: Value) -> Result<ElicitationSchema, String> {
    let Value::Object(object) = form else {
        return Err("an elicitation form must be a JSON object".to_owned());
    };
    ElicitationSchema::from_json_schema(object)
        .map_err(|error| format!("invalid elicitation form: {error}"))
}

/// The key of the form request in `inputRequests` / `inputResponses`.
pub const FORM_KEY: &str = "form";

/// Whether the request comes from a stateless (2026-07-28 or later) client,
/// which must be asked for input with an `InputRequiredResult`.
pub fn is_stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// What the first round remembers, sealed in `requestState`: the message the
/// form was shown with, so that a retry with other arguments is refused.
#[derive(Debug, Serialize, Deserialize)]
struct PendingForm {
    message: String,
}

/// The round a stateless tool call is in.
pub enum Round {
    /// First call: ask the client (return this result to it).
    Ask(InputRequiredResult),
    /// Retry: the client's answer to the form.
    Answered(ElicitResult),
}

/// Runs one round of a form elicitation for the tool `tool`: without
/// `request_state`, builds the `InputRequiredResult` that asks the client to
/// fill `form` (shown with `message`); with it, checks the state and returns
/// the client's answer from `input_responses`.
///
/// # Errors
/// `-32602` (invalid params) when the form is not a valid MCP form, the
/// state is altered, expired, another user's or another tool's, the
/// arguments changed between rounds, or the answer is missing or not an
/// `ElicitResult`; `-32603` when the service has no `requestState` key.
pub fn elicit(
    context: &RequestContext<RoleServer>,
    tool: &str,
    message: String,
    form: Value,
    request_state: Option<String>,
    input_responses: Option<InputResponses>,
) -> Result<Round, ErrorData> {
    match request_state {
        None => ask(context, tool, message, form).map(Round::Ask),
        Some(state) => {
            answer(context, tool, &message, &state, input_responses).map(Round::Answered)
        }
    }
}

/// The first round: an `InputRequiredResult` with one form request under
/// [`FORM_KEY`] and the sealed state.
///
/// # Errors
/// As [`elicit`].
pub fn ask(
    context: &RequestContext<RoleServer>,
    tool: &str,
    message: String,
    form: Value,
) -> Result<InputRequiredResult, ErrorData> {
    let requested_schema =
        elicitation_schema(form).map_err(|error| ErrorData::invalid_params(error, None))?;
    let state = mcp_session::request_state::seal(
        context,
        tool,
        &PendingForm {
            message: message.clone(),
        },
    )?;
    let mut requests = InputRequests::new();
    requests.insert(
        FORM_KEY.to_owned(),
        InputRequest::Elicitation(ElicitRequest::new(
            ElicitRequestParams::FormElicitationParams {
                meta: None,
                message,
                requested_schema,
            },
        )),
    );
    Ok(InputRequiredResult::new(Some(requests), Some(state)))
}

/// The second round: the client's answer, after checking the state.
///
/// # Errors
/// As [`elicit`].
pub fn answer(
    context: &RequestContext<RoleServer>,
    tool: &str,
    message: &str,
    request_state: &str,
    input_responses: Option<InputResponses>,
) -> Result<ElicitResult, ErrorData> {
    let pending: PendingForm = mcp_session::request_state::open(context, tool, request_state)?;
    if pending.message != message {
        return Err(ErrorData::invalid_params(
            "the arguments changed since the form was asked for: call the tool again without requestState",
            None,
        ));
    }
    let response = input_responses
        .and_then(|mut responses| responses.remove(FORM_KEY))
        .ok_or_else(|| {
            ErrorData::invalid_params(
                format!(
                    "inputResponses has no `{FORM_KEY}` entry: answer the form that was asked for"
                ),
                None,
            )
        })?;
    serde_json::from_value(response).map_err(|error| {
        ErrorData::invalid_params(
            format!("inputResponses.{FORM_KEY} is not an elicitation result: {error}"),
            None,
        )
    })
}
