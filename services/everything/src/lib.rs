//! # everything: the whole MCP server protocol on `mcp-session`
//!
//! A reference service that exposes every tool, resource, resource template
//! and prompt that the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, server scenarios) exercises. It is
//! the proof that `mcp-session` carries the whole protocol — logging,
//! progress, sampling, elicitation, subscriptions, completion, binary content
//! — and a worked example for service authors: each feature lives in a small
//! module that shows the rmcp API it needs.
//!
//! | feature | module | scenarios |
//! |---|---|---|
//! | text, image, audio, embedded-resource, mixed and error results | [`tools::content`] | `tools-call-*` |
//! | log and progress notifications during a call | [`tools::notifications`] | `tools-call-with-logging`, `tools-call-with-progress` |
//! | a request to the client's LLM (sampling) | [`tools::sampling`] | `tools-call-sampling` |
//! | requests to the client's user (elicitation) | [`tools::elicitation`] | `tools-call-elicitation`, `elicitation-sep1034-defaults`, `elicitation-sep1330-enums` |
//! | a hand-written JSON Schema 2020-12 input schema | [`tools::schema`] | `json-schema-2020-12` |
//! | multi round-trip requests (MRTR) for 2026-07-28 clients | [`tools::input_required`], [`tools::mrtr`], [`prompts`] | `input-required-result-*` |
//! | the rules of stateless requests (capabilities, log level, no server requests) | [`tools::stateless`] | `server-stateless` |
//! | tasks whose state every replica shares (SEP-2663) | [`tools::tasks`] | `tasks-*` |
//! | `x-mcp-header` arguments mirrored into `Mcp-Param-*` headers | [`tools::headers`] | `http-custom-header-server-validation` |
//! | a response stream closed for the client to resume (SEP-1699) | [`tools::notifications`] | `server-sse-polling` |
//! | resources, a resource template, subscriptions, `subscriptions/listen` across replicas | [`resources`], [`subscriptions`] | `resources-*`, `server-stateless` |
//! | prompts with arguments, images and embedded resources | [`prompts`] | `prompts-*` |
//! | argument completion | [`completion`] | `completion-complete` |
//! | `logging/setLevel` and the session's log filter | [`logging`] | `logging-set-level` |
//! | binary fixtures (PNG, WAV) | [`media`] | |
//!
//! The handler itself, which wires these modules into rmcp's
//! [`ServerHandler`](rmcp::ServerHandler), is [`Everything`] in [`server`].
//! Run the suite against it with `tests/conformance/run.sh URL` (0.1.16) and
//! `tests/conformance/run.sh URL --requirements 2025-11-25|2026-07-28` (0.2).

pub mod completion;
pub mod logging;
pub mod media;
pub mod prompts;
pub mod request;
pub mod resources;
pub mod server;
pub mod subscriptions;
pub mod tools;

use std::sync::{Arc, OnceLock};

use mcp_session::tools::ServiceTools;
use rmcp::handler::server::router::prompt::PromptRouter;
pub use server::Everything;

// The handler assembled from its parts: the tools and prompts are methods of
// `Everything` (rmcp's macros), defined in their own modules.
impl Default for Everything {
    fn default() -> Self {
        Self::new()
    }
}

impl Everything {
    /// A handler for a new session: every tool and prompt, no log level set,
    /// no subscriptions. The tools and prompts are built once per process
    /// and shared ([`routers`]); only the session's own state is new.
    pub fn new() -> Self {
        let (tools, prompts) = routers();
        Self {
            tools: tools.clone(),
            prompt_router: Arc::clone(prompts),
            log: Arc::default(),
            subscriptions: Arc::default(),
        }
    }
}

/// The tool and prompt routers, built at the first call: building them
/// (every tool's schema rewritten to JSON Schema 2020-12, every name checked)
/// costs many times what serving a request does, and they are the same for
/// every session and every stateless request.
fn routers() -> &'static (ServiceTools<Everything>, Arc<PromptRouter<Everything>>) {
    static ROUTERS: OnceLock<(ServiceTools<Everything>, Arc<PromptRouter<Everything>>)> =
        OnceLock::new();
    ROUTERS.get_or_init(|| {
        (
            ServiceTools::new(tools::router()),
            Arc::new(prompts::router()),
        )
    })
}

/// The port the service listens on when `MCP_SERVER_PORT` is unset.
pub const DEFAULT_PORT: u16 = 9300;
