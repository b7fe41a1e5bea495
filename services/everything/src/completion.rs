//! Argument completion (`completion/complete`, MCP 2025-06-18, Server
//! Features §Utilities, Completion): suggestions for the arguments of the
//! [`prompts`](crate::prompts) and of the resource template's `{id}`.
//!
//! Each completable argument has a fixed list of candidates; the answer is
//! the candidates that start with what the user has typed, ignoring case,
//! in list order. An argument with nothing to suggest gets an empty list.

use rmcp::{
    ErrorData,
    model::{CompleteRequestParams, CompleteResult, CompletionInfo, Reference},
};

use crate::resources;

/// The candidates for argument `argument` of prompt `prompt`, or `None` for
/// an unknown prompt.
fn prompt_candidates(prompt: &str, argument: &str) -> Option<&'static [&'static str]> {
    let candidates: &[&str] = match (prompt, argument) {
        ("test_prompt_with_arguments", "arg1") => &["paris", "park", "party", "testValue1"],
        ("test_prompt_with_arguments", "arg2") => &["hello", "help", "world", "testValue2"],
        ("test_prompt_with_embedded_resource", "resourceUri") => &[
            resources::STATIC_TEXT_URI,
            resources::STATIC_BINARY_URI,
            resources::WATCHED_URI,
            "test://template/123/data",
        ],
        ("test_simple_prompt" | "test_prompt_with_image", _)
        | ("test_prompt_with_arguments" | "test_prompt_with_embedded_resource", _) => &[],
        _ => return None,
    };
    Some(candidates)
}

/// The candidates for argument `argument` of the resource template
/// `template`, or `None` for an unknown template.
fn template_candidates(template: &str, argument: &str) -> Option<&'static [&'static str]> {
    match (template, argument) {
        (resources::TEMPLATE_URI, "id") => Some(&["1", "2", "3", "42", "123"]),
        (resources::TEMPLATE_URI, _) => Some(&[]),
        _ => None,
    }
}

/// Answers a `completion/complete` request.
///
/// # Errors
/// Invalid params (`-32602`) for a prompt or resource template this service
/// does not have.
pub fn complete(request: &CompleteRequestParams) -> Result<CompleteResult, ErrorData> {
    let argument = &request.argument;
    let candidates = match &request.r#ref {
        Reference::Prompt(prompt) => {
            prompt_candidates(&prompt.name, &argument.name).ok_or_else(|| {
                ErrorData::invalid_params(format!("no prompt named `{}`", prompt.name), None)
            })?
        }
        Reference::Resource(template) => template_candidates(&template.uri, &argument.name)
            .ok_or_else(|| {
                ErrorData::invalid_params(format!("no resource template `{}`", template.uri), None)
            })?,
        // `Reference` may gain kinds in later protocol revisions.
        _ => &[],
    };
    let typed = argument.value.to_lowercase();
    let values: Vec<String> = candidates
        .iter()
        .filter(|candidate| candidate.to_lowercase().starts_with(&typed))
        .map(|candidate| (*candidate).to_owned())
        .collect();
    let completion = CompletionInfo::with_all_values(values)
        .map_err(|error| ErrorData::internal_error(error, None))?;
    Ok(CompleteResult::new(completion))
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ArgumentInfo, ErrorCode};

    use super::*;

    fn values(reference: Reference, name: &str, value: &str) -> Vec<String> {
        let request = CompleteRequestParams::new(reference, ArgumentInfo::new(name, value));
        complete(&request).unwrap().completion.values
    }

    #[test]
    fn prompt_arguments_complete_by_prefix() {
        let prompt = || Reference::for_prompt("test_prompt_with_arguments");
        assert_eq!(values(prompt(), "arg1", "par"), ["paris", "park", "party"]);
        assert_eq!(values(prompt(), "arg1", "TEST"), ["testValue1"]);
        assert_eq!(
            values(prompt(), "arg2", ""),
            ["hello", "help", "world", "testValue2"]
        );
        assert!(values(prompt(), "arg3", "x").is_empty());
    }

    #[test]
    fn template_ids_complete() {
        let template = || Reference::for_resource(resources::TEMPLATE_URI);
        assert_eq!(values(template(), "id", "1"), ["1", "123"]);
    }

    #[test]
    fn unknown_references_are_invalid_params() {
        let request =
            CompleteRequestParams::new(Reference::for_prompt("nope"), ArgumentInfo::new("a", ""));
        assert_eq!(
            complete(&request).unwrap_err().code,
            ErrorCode::INVALID_PARAMS
        );
    }
}
