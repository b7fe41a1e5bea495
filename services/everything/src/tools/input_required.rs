//! Asking the client for input without a session: multi round-trip requests
//! (MRTR, SEP-2322, MCP 2026-07-28, Server Features §Multi Round-Trip
//! Requests).
//!
//! A 2026-07-28 client has no session, so a tool cannot send it an
//! `elicitation/create`, `sampling/createMessage` or `roots/list` request and
//! wait. Instead the tool answers with an `InputRequiredResult`
//! (`resultType: "input_required"`) holding the requests, keyed by names the
//! tool chooses, and maybe a `requestState`; the client fulfils them and
//! sends the same request again with `inputResponses` under the same keys
//! (and the `requestState` echoed back). Behind a round-robin load balancer
//! that retry reaches another replica, so nothing is kept in memory between
//! rounds: what a tool must remember goes into a `requestState` sealed with
//! [`mcp_session::request_state`], whose key every replica shares
//! (`MCP_REQUEST_STATE_KEY`), bound to the caller and the tool.
//!
//! [`gather`] does what every round needs, by the spec's rules:
//! - the client's capabilities are those of *this* request's `_meta`
//!   ([`client_capabilities`]), never remembered from an earlier one; a
//!   request for something the client did not declare is never sent, and a
//!   tool that cannot do without it fails with `-32021`
//!   (MissingRequiredClientCapability, HTTP 400) naming what is missing;
//! - an answer that is missing is asked for again (a new
//!   `InputRequiredResult`, not an error); an answer of the wrong shape is
//!   invalid params (`-32602`); keys the tool did not ask for are ignored.
//!
//! [`elicit`] is the sealed single-form round of the `test_elicitation`
//! tools, whose state remembers the form's message.
//!
//! rmcp marks sampling and roots deprecated (SEP-2577 removes them as
//! server-to-client *requests*); MRTR still carries them as input requests,
//! hence the `allow`.
#![allow(deprecated)]

use std::collections::BTreeMap;

use rmcp::{
    ErrorData, RoleServer,
    model::{
        ClientCapabilities, CreateMessageRequest, CreateMessageRequestParams, CreateMessageResult,
        ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationSchema, InputRequest,
        InputRequests, InputRequiredResult, InputResponses, ListRootsRequest, ListRootsResult,
        SamplingMessage,
    },
    service::RequestContext,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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

/// The key of the form request of [`elicit`] in `inputRequests` /
/// `inputResponses`.
pub const FORM_KEY: &str = "form";

pub use crate::request::is_stateless;

/// The capabilities the client declared for the request `context`: for a
/// 2026-07-28 request those of its `_meta`
/// (`io.modelcontextprotocol/clientCapabilities`) only, for a session those
/// it declared at `initialize`; none when it declared none.
pub fn client_capabilities(context: &RequestContext<RoleServer>) -> ClientCapabilities {
    context.client_capabilities().unwrap_or_default()
}

/// One input a tool asks the client for.
#[derive(Debug, Clone)]
pub enum Ask {
    /// A form for the user to fill (`elicitation/create`, form mode).
    Form {
        /// What the form is for, shown to the user.
        message: String,
        /// The form: an MCP elicitation schema (flat object of primitives).
        form: Value,
    },
    /// A message from the client's LLM (`sampling/createMessage`).
    Sampling {
        /// The user message to send to the model.
        prompt: String,
        /// Most tokens to generate.
        max_tokens: u32,
    },
    /// The client's roots (`roots/list`).
    Roots,
}

/// The client's answer to an [`Ask`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// The answer to [`Ask::Form`].
    Form(ElicitResult),
    /// The answer to [`Ask::Sampling`].
    Sampling(CreateMessageResult),
    /// The answer to [`Ask::Roots`].
    Roots(ListRootsResult),
}

impl Ask {
    /// The capability the client must have declared for this input:
    /// `elicitation` (form mode: `form`, or neither `form` nor `url`),
    /// `sampling` or `roots`.
    pub fn declared_by(&self, capabilities: &ClientCapabilities) -> bool {
        match self {
            Ask::Form { .. } => capabilities
                .elicitation
                .as_ref()
                .is_some_and(|elicitation| elicitation.form.is_some() || elicitation.url.is_none()),
            Ask::Sampling { .. } => capabilities.sampling.is_some(),
            Ask::Roots => capabilities.roots.is_some(),
        }
    }

    /// The name of the capability this input needs, as in `ClientCapabilities`.
    pub fn capability(&self) -> &'static str {
        match self {
            Ask::Form { .. } => "elicitation",
            Ask::Sampling { .. } => "sampling",
            Ask::Roots => "roots",
        }
    }

    /// The request to put in `inputRequests`.
    ///
    /// # Errors
    /// `-32602` when the form is not a valid MCP elicitation form.
    pub fn request(&self) -> Result<InputRequest, ErrorData> {
        Ok(match self {
            Ask::Form { message, form } => {
                let requested_schema = elicitation_schema(form.clone())
                    .map_err(|error| ErrorData::invalid_params(error, None))?;
                InputRequest::Elicitation(ElicitRequest::new(
                    ElicitRequestParams::FormElicitationParams {
                        meta: None,
                        message: message.clone(),
                        requested_schema,
                    },
                ))
            }
            Ask::Sampling { prompt, max_tokens } => {
                let params = CreateMessageRequestParams::new(
                    vec![SamplingMessage::user_text(prompt.clone())],
                    *max_tokens,
                );
                InputRequest::CreateMessage(CreateMessageRequest::new(params))
            }
            Ask::Roots => InputRequest::ListRoots(ListRootsRequest::default()),
        })
    }

    /// Reads the client's answer to this input, found under `key`.
    ///
    /// # Errors
    /// `-32602` when `value` is not the result this input asked for.
    pub fn answer(&self, key: &str, value: Value) -> Result<Answer, ErrorData> {
        let kind = match self {
            Ask::Form { .. } => "an elicitation result",
            Ask::Sampling { .. } => "a sampling result",
            Ask::Roots => "a roots result",
        };
        let invalid = |error: serde_json::Error| {
            ErrorData::invalid_params(format!("inputResponses.{key} is not {kind}: {error}"), None)
        };
        Ok(match self {
            Ask::Form { .. } => Answer::Form(serde_json::from_value(value).map_err(invalid)?),
            Ask::Sampling { .. } => {
                Answer::Sampling(serde_json::from_value(value).map_err(invalid)?)
            }
            Ask::Roots => Answer::Roots(serde_json::from_value(value).map_err(invalid)?),
        })
    }
}

/// `-32021` (MissingRequiredClientCapability, MCP 2026-07-28, Basic §Error
/// Codes): the request needs `capabilities` (names as in
/// `ClientCapabilities`: `sampling`, `elicitation`, `roots`) that the client
/// did not declare; `data.requiredCapabilities` lists them.
pub fn missing_capabilities<'a>(capabilities: impl IntoIterator<Item = &'a str>) -> ErrorData {
    let required: serde_json::Map<String, Value> = capabilities
        .into_iter()
        .map(|name| (name.to_owned(), json!({})))
        .collect();
    let required: ClientCapabilities =
        serde_json::from_value(Value::Object(required)).unwrap_or_default();
    ErrorData::missing_required_client_capability(required)
}

/// What [`gather`] found.
#[derive(Debug)]
pub enum Gathered {
    /// Some answers are missing: return this result, which asks for them.
    Ask(InputRequiredResult),
    /// Every answer, by key.
    All(BTreeMap<String, Answer>),
}

/// One round of asking for `asks` (key and input): checks the capabilities
/// they need (all of them must be declared), reads the answers present in
/// `responses` (other keys are ignored), and returns either all answers or
/// the requests for the missing ones, with `request_state` attached.
///
/// # Errors
/// `-32021` naming every capability an input needs and the client did not
/// declare for this request; `-32602` for an answer of the wrong shape or an
/// invalid form.
pub fn gather(
    context: &RequestContext<RoleServer>,
    asks: &[(&str, Ask)],
    responses: Option<&InputResponses>,
    request_state: Option<String>,
) -> Result<Gathered, ErrorData> {
    let capabilities = client_capabilities(context);
    let mut missing: Vec<&str> = asks
        .iter()
        .filter(|(_, ask)| !ask.declared_by(&capabilities))
        .map(|(_, ask)| ask.capability())
        .collect();
    if !missing.is_empty() {
        missing.dedup();
        return Err(missing_capabilities(missing));
    }
    let mut answers = BTreeMap::new();
    let mut requests = InputRequests::new();
    for (key, ask) in asks {
        match responses.and_then(|responses| responses.get(*key)) {
            Some(value) => {
                answers.insert((*key).to_owned(), ask.answer(key, value.clone())?);
            }
            None => {
                requests.insert((*key).to_owned(), ask.request()?);
            }
        }
    }
    if requests.is_empty() {
        Ok(Gathered::All(answers))
    } else {
        Ok(Gathered::Ask(InputRequiredResult::new(
            Some(requests),
            request_state,
        )))
    }
}

/// The answers received so far, sealed in `requestState` by [`gather_sealed`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct Received {
    answers: BTreeMap<String, Value>,
}

/// [`gather`] over several rounds: the answers of earlier rounds travel
/// sealed in `requestState` (bound to the caller and to `tool`), so a retry
/// that reaches another replica, or that answers only part of what was
/// asked, loses nothing, and the client is asked again only for what is
/// still missing. Every `InputRequiredResult` carries a fresh state.
///
/// # Errors
/// As [`gather`]; and `-32602` when `request_state` is altered, expired,
/// another user's or another tool's.
pub fn gather_sealed(
    context: &RequestContext<RoleServer>,
    tool: &str,
    asks: &[(&str, Ask)],
    responses: Option<&InputResponses>,
    request_state: Option<&str>,
) -> Result<Gathered, ErrorData> {
    let mut received = match request_state {
        Some(state) => mcp_session::request_state::open::<Received>(context, tool, state)?,
        None => Received::default(),
    };
    for (key, _) in asks {
        if let Some(value) = responses.and_then(|responses| responses.get(*key)) {
            received.answers.insert((*key).to_owned(), value.clone());
        }
    }
    match gather(context, asks, Some(&received.answers), None)? {
        Gathered::Ask(mut result) => {
            result.request_state =
                Some(mcp_session::request_state::seal(context, tool, &received)?);
            Ok(Gathered::Ask(result))
        }
        all => Ok(all),
    }
}

/// The text of a sampling answer (its text blocks, one per line).
pub fn sampled_text(result: &CreateMessageResult) -> String {
    result
        .message
        .content
        .clone()
        .into_vec()
        .into_iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the first round of [`elicit`] remembers, sealed in `requestState`:
/// the message the form was shown with, so that a retry with other
/// arguments is refused.
#[derive(Debug, Serialize, Deserialize)]
struct PendingForm {
    message: String,
}

/// The round a sealed form elicitation is in.
pub enum Round {
    /// Ask the client (return this result to it): the first call, or a retry
    /// that did not answer the form.
    Ask(InputRequiredResult),
    /// Retry: the client's answer to the form.
    Answered(ElicitResult),
}

/// Runs one round of a form elicitation for the tool `tool`: without
/// `request_state`, builds the `InputRequiredResult` that asks the client to
/// fill `form` (shown with `message`) under [`FORM_KEY`], with a sealed
/// state; with it, checks the state and returns the client's answer from
/// `input_responses`, or asks again when the answer is missing.
///
/// # Errors
/// `-32021` when the request does not declare form elicitation; `-32602`
/// (invalid params) when the form is not a valid MCP form, the state is
/// altered, expired, another user's or another tool's, the arguments changed
/// between rounds, or the answer is not an `ElicitResult`; `-32603` when the
/// service has no `requestState` key.
pub fn elicit(
    context: &RequestContext<RoleServer>,
    tool: &str,
    message: String,
    form: Value,
    request_state: Option<String>,
    input_responses: Option<InputResponses>,
) -> Result<Round, ErrorData> {
    if let Some(state) = &request_state {
        let pending: PendingForm = mcp_session::request_state::open(context, tool, state)?;
        if pending.message != message {
            return Err(ErrorData::invalid_params(
                "the arguments changed since the form was asked for: call the tool again without requestState",
                None,
            ));
        }
    }
    let state = match request_state {
        Some(state) => state,
        None => mcp_session::request_state::seal(
            context,
            tool,
            &PendingForm {
                message: message.clone(),
            },
        )?,
    };
    let asks = [(FORM_KEY, Ask::Form { message, form })];
    match gather(context, &asks, input_responses.as_ref(), Some(state))? {
        Gathered::Ask(result) => Ok(Round::Ask(result)),
        Gathered::All(mut answers) => match answers.remove(FORM_KEY) {
            Some(Answer::Form(result)) => Ok(Round::Answered(result)),
            _ => Err(ErrorData::internal_error(
                "the form's answer is missing after gathering it",
                None,
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_capability_error_names_what_is_missing() {
        let error = missing_capabilities(["sampling", "roots"]);
        assert_eq!(error.code.0, -32021);
        let data = error.data.expect("data");
        assert_eq!(data["requiredCapabilities"]["sampling"], json!({}));
        assert_eq!(data["requiredCapabilities"]["roots"], json!({}));
        assert!(data["requiredCapabilities"].get("elicitation").is_none());
    }

    #[test]
    fn inputs_need_their_capability() {
        let form = Ask::Form {
            message: "m".into(),
            form: json!({"type": "object", "properties": {}}),
        };
        let none = ClientCapabilities::default();
        let all: ClientCapabilities = serde_json::from_value(
            json!({"elicitation": {}, "sampling": {}, "roots": {"listChanged": true}}),
        )
        .unwrap();
        let url_only: ClientCapabilities =
            serde_json::from_value(json!({"elicitation": {"url": {}}})).unwrap();
        for ask in [
            form.clone(),
            Ask::Sampling {
                prompt: "p".into(),
                max_tokens: 10,
            },
            Ask::Roots,
        ] {
            assert!(!ask.declared_by(&none));
            assert!(ask.declared_by(&all));
            assert!(ask.request().is_ok());
        }
        assert!(!form.declared_by(&url_only));
    }

    #[test]
    fn answers_of_the_wrong_shape_are_invalid_params() {
        let roots = Ask::Roots;
        let ok = roots.answer("r", json!({"roots": [{"uri": "file:///a"}]}));
        assert!(matches!(ok, Ok(Answer::Roots(result)) if result.roots.len() == 1));
        let error = roots.answer("r", json!(12345)).unwrap_err();
        assert_eq!(error.code.0, -32602);
        assert!(
            error.message.contains("inputResponses.r"),
            "{}",
            error.message
        );
        let form = Ask::Form {
            message: "m".into(),
            form: json!({"type": "object", "properties": {}}),
        };
        assert!(form.answer("f", json!({"action": "maybe"})).is_err());
        assert!(form.answer("f", json!({"action": "decline"})).is_ok());
    }
}
