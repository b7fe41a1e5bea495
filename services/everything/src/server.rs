//! [`Everything`], the service's rmcp [`ServerHandler`]: it declares the
//! server's capabilities and routes each MCP method to the module that
//! implements it.
//!
//! | method | implemented by |
//! |---|---|
//! | `tools/list`, `tools/call` | [`tools`](crate::tools), through `#[tool_handler]` and [`ServiceTools`] (strict arguments) |
//! | `prompts/list`, `prompts/get` | [`prompts`](crate::prompts), through its `PromptRouter` (the request's `inputResponses` and `requestState` handed to the prompt as a [`PromptInput`] extension) |
//! | `resources/list`, `resources/templates/list`, `resources/read` | [`resources`] |
//! | `resources/subscribe`, `resources/unsubscribe`, `subscriptions/listen` | [`subscriptions`] |
//! | `tasks/get`, `tasks/update`, `tasks/cancel` | [`mcp_session::tasks`] (the tasks of the [`tools::tasks`](crate::tools::tasks) tools, in the fleet's task store) |
//! | `completion/complete` | [`completion`] |
//! | `logging/setLevel` | [`logging`](crate::logging) |
//! | `ping`, `initialize` | rmcp |
//!
//! `mcp-session` makes one handler per session *per replica* with
//! [`Everything::new`]. Session state that every replica must see (the log
//! level, the subscribed URIs) is kept in the session's record through
//! [`mcp_session::session::SessionContext`]; the handler's own fields hold
//! what only its replica needs (the watcher task of a subscription).

// rmcp marks logging deprecated (SEP-2577 drops it from protocol 2026-07-28);
// the protocol revisions of sessions (up to 2025-11-25) define it.
#![allow(deprecated)]

use std::sync::Arc;

use mcp_session::tools::ServiceTools;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{prompt::PromptContext, router::prompt::PromptRouter},
    model::{
        CacheScope, CancelTaskParams, CompleteRequestParams, CompleteResult,
        GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult, Implementation,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
        SubscriptionFilter, UnsubscribeRequestParams, UpdateTaskParams,
    },
    service::{RequestContext, SubscriptionContext},
    tool_handler,
};

use crate::{
    completion,
    logging::LogFilter,
    request::{PromptInput, is_stateless},
    resources,
    subscriptions::{self, Subscriptions},
};

/// The everything MCP server: one instance per session.
#[derive(Debug, Clone)]
pub struct Everything {
    pub(crate) tools: ServiceTools<Self>,
    pub(crate) prompt_router: Arc<PromptRouter<Self>>,
    /// The session's log level, set by `logging/setLevel`.
    pub(crate) log: Arc<LogFilter>,
    /// The session's resource subscriptions and their watcher.
    pub(crate) subscriptions: Arc<Subscriptions>,
}

#[tool_handler(router = self.tools)]
impl ServerHandler for Everything {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("everything", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Reference MCP server: every tool, resource, resource template and prompt \
                 of the MCP conformance suite. Tools named test_* each show one protocol \
                 feature (content types, logging, progress, sampling, elicitation); \
                 resources live under test://.",
            )
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let mut result = ListPromptsResult::with_all_items(self.prompt_router.list_all());
        (result.ttl_ms, result.cache_scope) = cache_hints(&context);
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        context.extensions.insert(PromptInput {
            responses: request.input_responses,
            state: request.request_state,
        });
        let prompt = PromptContext::new(self, request.name, request.arguments, context);
        self.prompt_router.get_prompt(prompt).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut result = ListResourcesResult::with_all_items(resources::list());
        (result.ttl_ms, result.cache_scope) = cache_hints(&context);
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let mut result = ListResourceTemplatesResult::with_all_items(resources::templates());
        (result.ttl_ms, result.cache_scope) = cache_hints(&context);
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        resources::read(&request.uri).map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.subscribe(&context, &request.uri).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.unsubscribe(&context, &request.uri).await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(subscriptions::accepted_filter(requested))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        subscriptions::listen(context).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        mcp_session::tasks::get(&context, &request.task_id).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        mcp_session::tasks::update(&context, &request.task_id, request.input_responses).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        mcp_session::tasks::cancel(&context, &request.task_id).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        completion::complete(&request)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.log.set(&context, request.level).await
    }
}

/// The caching hints of the service's lists for the request `context`
/// (MCP 2026-07-28, Server Features §Caching; none for older revisions):
/// the prompts, resources and templates are the same for every caller
/// (`public`), and a new deployment may change them at any moment, so no
/// freshness is promised (`ttlMs: 0`, as rmcp's `tools/list`).
fn cache_hints(context: &RequestContext<RoleServer>) -> (Option<u64>, Option<CacheScope>) {
    if is_stateless(context) {
        (Some(0), Some(CacheScope::Public))
    } else {
        (None, None)
    }
}
