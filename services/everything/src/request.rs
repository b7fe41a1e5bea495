//! What a request says about itself, below every feature module: its
//! protocol generation, and the multi round-trip fields of a `prompts/get`
//! that the handler hands to prompts. The handler ([`server`](crate::server)),
//! the log filter ([`logging`](crate::logging)), the prompts and the tools
//! all read it; it reads none of them.

use rmcp::{
    RoleServer,
    model::{InputResponses, ProtocolVersion},
    service::RequestContext,
};

/// Whether the request comes from a stateless (2026-07-28 or later) client:
/// no session, its capabilities and log level in each request's `_meta`,
/// and input asked for with an `InputRequiredResult` (MCP 2026-07-28,
/// Basic §Stateless Operation).
pub fn is_stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// The MRTR fields of a `prompts/get` request (MCP 2026-07-28, Server
/// Features §Multi Round-Trip Requests), put in the request's extensions by
/// the handler's `get_prompt`: rmcp's prompt router hands a prompt its
/// arguments but not these.
#[derive(Debug, Clone, Default)]
pub struct PromptInput {
    /// `inputResponses`: the client's answers, by the keys the prompt chose.
    pub responses: Option<InputResponses>,
    /// `requestState`, echoed back by the client.
    pub state: Option<String>,
}
