//! The hub as an MCP server: an rmcp [`ServerHandler`] whose tools,
//! prompts and resources are its upstreams', served by `mcp-session` (so
//! any hub replica serves any downstream session).
//!
//! Each request is routed by the endpoint it came to ([`Hub::scope`]) and
//! sent upstream in the session of its caller's context key, with what the
//! upstream sends meanwhile relayed back ([`DownstreamRelay`]). An upstream
//! that cannot be reached makes a tool call a tool error naming it
//! (`isError: true`), so the model sees why; an error the upstream itself
//! answered is passed on as it is.

use std::sync::Arc;

use futures::StreamExt;
use http::{HeaderMap, request::Parts};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams,
        CompleteResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
        InputRequiredResult, JsonRpcMessage, ListPromptsResult, ListResourceTemplatesResult,
        ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
        ReadResourceRequestParams, ReadResourceResponse, Reference, ServerCapabilities,
        ServerConfig, ServerJsonRpcMessage, SubscribeRequestParams, SubscriptionFilter,
        UnsubscribeRequestParams,
    },
    service::{RequestContext, SubscriptionContext},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use tokio_util::sync::CancellationToken;

use crate::{
    catalog::ListKind,
    config::{Sharing, UpstreamTransport},
    context_key::Principal,
    hub::{Hub, RouteError, Scope},
    pending::{self, Next, PendingCall, QueueRelay},
    relay::{DownstreamRelay, SubscriptionRelay},
    upstream::{
        CallError, Route,
        http::{ListenEnd, NoRelay},
    },
};

/// The hub's handler; one per downstream session (cheap: an `Arc`).
#[derive(Clone)]
pub struct HubServer {
    hub: Arc<Hub>,
}

impl HubServer {
    /// The handler of `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

/// What routing needs of a downstream request.
#[derive(Clone)]
struct Downstream {
    path: String,
    headers: HeaderMap,
    user: String,
    subject: String,
    session: Option<String>,
}

impl Downstream {
    fn of(context: &RequestContext<RoleServer>) -> Self {
        let parts = context.extensions.get::<Parts>();
        let caller = mcp_session::session::caller(context);
        Self {
            path: parts.map_or_else(|| "/mcp".to_owned(), |p| p.uri.path().to_owned()),
            headers: parts.map(|p| p.headers.clone()).unwrap_or_default(),
            user: caller.user_hash.to_string(),
            subject: caller.subject,
            session: mcp_session::session::current(context).map(|s| s.id().to_owned()),
        }
    }

    fn principal(&self) -> Principal<'_> {
        Principal {
            user: &self.user,
            subject: &self.subject,
            session: self.session.as_deref(),
        }
    }
}

fn route_error(error: RouteError) -> McpError {
    match error {
        RouteError::UnknownEndpoint(_) => McpError::invalid_request(error.to_string(), None),
        _ => McpError::invalid_params(error.to_string(), None),
    }
}

/// A protocol error for `error` (the upstream's own error passed on).
fn call_error(error: CallError) -> McpError {
    match error {
        CallError::Rpc { error, .. } => serde_json::from_value(error).unwrap_or_else(|_| {
            McpError::internal_error("the upstream answered an unreadable error", None)
        }),
        other => McpError::internal_error(other.to_string(), None),
    }
}

fn to_params<T: Serialize>(params: &T) -> Result<Value, McpError> {
    serde_json::to_value(params).map_err(|e| McpError::internal_error(e.to_string(), None))
}

/// An upstream's result of a request that may ask for input (MRTR): the
/// complete result, or the `input_required` one for a 2026-07-28 client.
fn from_result_or_input<T: DeserializeOwned, R: From<T> + From<InputRequiredResult>>(
    server: &str,
    result: Value,
) -> Result<R, McpError> {
    if result.get("resultType").and_then(Value::as_str) == Some("input_required") {
        return from_result::<InputRequiredResult>(server, result).map(Into::into);
    }
    from_result::<T>(server, result).map(Into::into)
}

fn from_result<T: DeserializeOwned>(server: &str, result: Value) -> Result<T, McpError> {
    serde_json::from_value(result).map_err(|error| {
        McpError::internal_error(
            format!("upstream `{server}` answered a result the hub cannot read: {error}"),
            None,
        )
    })
}

/// `params` as the upstream takes them: with the request's `_meta` (rmcp
/// takes it out of the params into `context.meta`; the upstream needs it,
/// the progress token above all), and, for an upstream with sessions,
/// without what only 2026-07-28 requests carry (the protocol keys of
/// `_meta`, `inputResponses`, `requestState`).
fn upstream_params(
    upstream: &crate::config::Upstream,
    mut params: Value,
    context: &RequestContext<RoleServer>,
) -> Value {
    let Some(object) = params.as_object_mut() else {
        return params;
    };
    if !object.contains_key("_meta")
        && let Ok(meta) = serde_json::to_value(&context.meta)
        && meta.as_object().is_some_and(|meta| !meta.is_empty())
    {
        object.insert("_meta".to_owned(), meta);
    }
    if upstream.transport != UpstreamTransport::Stateless {
        object.remove("inputResponses");
        object.remove("requestState");
        if let Some(meta) = object.get_mut("_meta").and_then(Value::as_object_mut) {
            meta.retain(|key, _| !key.starts_with("io.modelcontextprotocol/"));
            if meta.is_empty() {
                object.remove("_meta");
            }
        }
    }
    params
}

/// `value` with its `name` field set to `name`.
fn renamed(mut value: Value, name: String) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.insert("name".to_owned(), Value::String(name));
    }
    value
}

impl HubServer {
    /// The route of the request of `context` to `upstream`; for an upstream
    /// shared per downstream session, with the relay of the upstream
    /// session's own stream (see `upstream::listener`).
    fn route<'a>(
        &self,
        upstream: &'a crate::config::Upstream,
        downstream: &Downstream,
        context: &RequestContext<RoleServer>,
    ) -> Route<'a> {
        let mut route = self
            .hub
            .route(upstream, downstream.principal(), &downstream.headers);
        if context
            .protocol_version()
            .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
        {
            route = route.for_mrtr_client();
        }
        if upstream.sharing == Sharing::Session && downstream.session.is_some() {
            route.with_listener(Arc::new(self.relay(context, upstream)))
        } else {
            route
        }
    }

    fn relay(
        &self,
        context: &RequestContext<RoleServer>,
        upstream: &crate::config::Upstream,
    ) -> DownstreamRelay {
        DownstreamRelay {
            peer: context.peer.clone(),
            server: upstream.name.clone(),
            answer_within: upstream.timeout,
            catalog: self.hub.catalog.clone(),
        }
    }

    /// Sends `method` through `route` with the downstream request's
    /// cancellation and relay.
    async fn forward(
        &self,
        route: &Route<'_>,
        method: &str,
        params: Value,
        context: &RequestContext<RoleServer>,
    ) -> Result<Value, CallError> {
        let params = upstream_params(route.upstream, params, context);
        let relay = Arc::new(self.relay(context, route.upstream));
        self.hub
            .forward(route, method, params, relay, &context.ct)
            .await
    }

    /// A list: aggregated with `<server><sep>` names (`rename`), or the
    /// one upstream's page as it is.
    async fn list(
        &self,
        kind: ListKind,
        rename: bool,
        request: Option<PaginatedRequestParams>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Value, McpError> {
        let downstream = Downstream::of(context);
        match self.hub.scope(&downstream.path).map_err(route_error)? {
            Scope::Transparent(upstream) => {
                let route = self.route(upstream, &downstream, context);
                let params = request.map_or(Ok(json!({})), |r| to_params(&r))?;
                self.forward(&route, kind.method(), params, context)
                    .await
                    .map_err(call_error)
            }
            Scope::Aggregate(members) => {
                let items: Vec<Value> = self
                    .hub
                    .aggregate(members, kind, downstream.principal(), &downstream.headers)
                    .await
                    .into_iter()
                    .map(|(server, item)| {
                        if !rename {
                            return item;
                        }
                        let name = item.get("name").and_then(Value::as_str).unwrap_or("");
                        let name = self.hub.join(&server, name);
                        renamed(item, name)
                    })
                    .collect();
                Ok(json!({ kind.field(): items }))
            }
        }
    }

    /// A request of a 2026-07-28 client (`tools/call`, `prompts/get`,
    /// `resources/read`) to an upstream with sessions, which may ask for
    /// input meanwhile: run as a pending call (see [`pending`](crate::pending));
    /// the client's retry carries the pending call's id as its
    /// `requestState`, and its answers as `inputResponses`. What the client
    /// gets next: `Ok(Err(input_required))`, or the request's outcome.
    async fn pending_request(
        &self,
        upstream: &crate::config::Upstream,
        downstream: &Downstream,
        method: &'static str,
        params: Value,
        context: &RequestContext<RoleServer>,
    ) -> Result<Result<Value, InputRequiredResult>, McpError> {
        let store = self.hub.upstreams.store().clone();
        let internal = |error: crate::upstream::store::StoreError| {
            McpError::internal_error(error.to_string(), None)
        };
        let call = match params.get("requestState").and_then(Value::as_str) {
            Some(state) => {
                if !pending::is_id(state) {
                    return Err(McpError::invalid_params(
                        "requestState is not one this hub handed out",
                        None,
                    ));
                }
                let call = PendingCall::new(store, &downstream.user, state, upstream.timeout);
                if !call.exists().await.map_err(internal)? {
                    return Err(McpError::invalid_params(
                        "the request of this requestState is unknown or expired: make it again",
                        None,
                    ));
                }
                let answers = params
                    .get("inputResponses")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                call.answer(&answers).await.map_err(internal)?;
                call
            }
            None => {
                let call = PendingCall::new(
                    store,
                    &downstream.user,
                    &pending::new_id(),
                    upstream.timeout,
                );
                call.open().await.map_err(internal)?;
                let params = upstream_params(upstream, params, context);
                let (hub, task_call, owned) = (self.hub.clone(), call.clone(), downstream.clone());
                let name = upstream.name.clone();
                tokio::spawn(async move {
                    let Some(upstream) = hub.config.servers.get(&name) else {
                        return;
                    };
                    let route = hub.route(upstream, owned.principal(), &owned.headers);
                    let relay = Arc::new(QueueRelay::new(task_call.clone()));
                    let outcome = hub
                        .forward(&route, method, params, relay, &CancellationToken::new())
                        .await;
                    task_call.finish(&outcome).await;
                });
                call
            }
        };
        match call.next().await {
            Next::Input(requests) => from_result::<InputRequiredResult>(
                &upstream.name,
                json!({"resultType": "input_required", "inputRequests": requests,
                       "requestState": call.id()}),
            )
            .map(Err),
            Next::Done(Ok(result)) => Ok(Ok(result)),
            Next::Done(Err(CallError::Rpc { error, .. })) => Err(call_error(CallError::Rpc {
                server: upstream.name.clone(),
                error,
            })),
            Next::Done(Err(error)) => Err(McpError::internal_error(error.to_string(), None)),
        }
    }

    /// A request that may ask for input (MRTR: `prompts/get`,
    /// `resources/read`) to `upstream`: a pending call for a 2026-07-28
    /// client of an upstream with sessions, else forwarded; the complete
    /// result `T`, or `input_required`.
    async fn request_with_input<T, R>(
        &self,
        upstream: &crate::config::Upstream,
        downstream: &Downstream,
        method: &'static str,
        params: Value,
        context: &RequestContext<RoleServer>,
    ) -> Result<R, McpError>
    where
        T: DeserializeOwned,
        R: From<T> + From<InputRequiredResult>,
    {
        let route = self.route(upstream, downstream, context);
        let result = if Self::is_pending(&route) {
            match self
                .pending_request(upstream, downstream, method, params, context)
                .await?
            {
                Ok(result) => result,
                Err(input) => return Ok(input.into()),
            }
        } else {
            self.forward(&route, method, params, context)
                .await
                .map_err(call_error)?
        };
        from_result_or_input::<T, R>(&upstream.name, result)
    }

    /// Whether a request to `upstream` on `route` runs as a pending call
    /// (a 2026-07-28 client, an upstream with sessions).
    fn is_pending(route: &Route<'_>) -> bool {
        route.client_mrtr() && route.upstream.transport != UpstreamTransport::Stateless
    }

    /// Relays a stateless upstream's `subscriptions/listen` stream, opened
    /// with the client's `filter`, to `sink` until it ends.
    async fn listen_stateless(
        &self,
        upstream: &crate::config::Upstream,
        route: &Route<'_>,
        filter: Value,
        sink: rmcp::service::SubscriptionSink,
    ) {
        let mut stream = match self.hub.upstreams.listen(route, filter).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(upstream = %upstream.name, %error, "subscriptions/listen not opened upstream");
                return;
            }
        };
        while let Some(message) = stream.next().await {
            let Some(method) = message.get("method").and_then(Value::as_str) else {
                continue;
            };
            if method == "notifications/subscriptions/acknowledged" {
                continue; // the client had the hub's own
            }
            self.hub.catalog.changed(&upstream.name, method);
            if let Ok(JsonRpcMessage::Notification(notification)) =
                serde_json::from_value::<ServerJsonRpcMessage>(message)
                && let Err(error) = sink.send(notification.notification).await
            {
                tracing::debug!(upstream = %upstream.name, %error, "a change notification not relayed");
            }
        }
    }

    /// Relays the changes of an upstream with sessions to `sink`: subscribes
    /// its session to the client's resources that are the upstream's
    /// (`resources/subscribe`), and relays the session's own stream, opened
    /// again when the upstream closes it, until the client is gone or
    /// another client holds the stream.
    async fn listen_session(
        &self,
        upstream: &crate::config::Upstream,
        route: &Route<'_>,
        downstream: &Downstream,
        uris: &[String],
        sink: rmcp::service::SubscriptionSink,
    ) {
        let never = CancellationToken::new();
        for uri in uris {
            let ours = match self.hub.scope(&downstream.path) {
                Ok(Scope::Transparent(_)) => true,
                Ok(Scope::Aggregate(members)) => self
                    .hub
                    .resource_owner(members, uri, downstream.principal(), &downstream.headers)
                    .await
                    .is_ok_and(|owner| owner.name == upstream.name),
                Err(_) => false,
            };
            if ours
                && let Err(error) = self
                    .hub
                    .upstreams
                    .request(
                        route,
                        "resources/subscribe",
                        json!({"uri": uri}),
                        Arc::new(NoRelay),
                        &never,
                    )
                    .await
            {
                tracing::debug!(upstream = %upstream.name, %error, "resources/subscribe refused upstream");
            }
        }
        let relay = Arc::new(SubscriptionRelay {
            sink,
            server: upstream.name.clone(),
            catalog: self.hub.catalog.clone(),
        });
        loop {
            match self
                .hub
                .upstreams
                .listen_session(route, relay.clone())
                .await
            {
                Ok(ListenEnd::Closed) => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await
                }
                Ok(end) => {
                    tracing::debug!(upstream = %upstream.name, ?end, "upstream session stream not relayed any more");
                    return;
                }
                Err(error) => {
                    tracing::warn!(upstream = %upstream.name, %error, "upstream session stream not opened");
                    return;
                }
            }
        }
    }

    /// The upstream serving the resource `uri` on the request's endpoint.
    async fn resource_upstream<'a>(
        &'a self,
        downstream: &Downstream,
        uri: &str,
    ) -> Result<&'a crate::config::Upstream, McpError> {
        match self.hub.scope(&downstream.path).map_err(route_error)? {
            Scope::Transparent(upstream) => Ok(upstream),
            Scope::Aggregate(members) => self
                .hub
                .resource_owner(members, uri, downstream.principal(), &downstream.headers)
                .await
                .map_err(route_error),
        }
    }

    /// Sends `method` with `params` to `upstream` for the request of
    /// `context`; the result, or the upstream's error passed on.
    async fn send(
        &self,
        upstream: &crate::config::Upstream,
        downstream: &Downstream,
        method: &str,
        params: Value,
        context: &RequestContext<RoleServer>,
    ) -> Result<Value, McpError> {
        let route = self.route(upstream, downstream, context);
        self.forward(&route, method, params, context)
            .await
            .map_err(call_error)
    }

    /// The upstream and its own name for an aggregated or transparent
    /// `name` of `kind` on the request's endpoint.
    fn target<'a>(
        &'a self,
        downstream: &Downstream,
        kind: &'static str,
        name: &'a str,
    ) -> Result<(&'a crate::config::Upstream, &'a str), McpError> {
        match self.hub.scope(&downstream.path).map_err(route_error)? {
            Scope::Transparent(upstream) => Ok((upstream, name)),
            Scope::Aggregate(members) => {
                let named = self.hub.split(members, kind, name).map_err(route_error)?;
                Ok((named.upstream, named.name))
            }
        }
    }
}

impl ServerHandler for HubServer {
    #[allow(deprecated)] // logging (SEP-2577), still what 2025-11-25 clients use
    fn get_info(&self) -> ServerConfig {
        // What any upstream may offer: a request for what the upstream
        // behind it lacks gets the upstream's own error.
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("hub", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "The tools, prompts and resources of several MCP servers. On /mcp and \
                 /mcp/<group>, names are <server>{}<name>; /mcp/<server> serves one server \
                 with its own names.",
                self.hub.config.name_separator
            ))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let result = self.list(ListKind::Tools, true, request, &context).await?;
        from_result("hub", result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let downstream = Downstream::of(&context);
        let (upstream, name) = self.target(&downstream, "tool", &request.name)?;
        let route = self.route(upstream, &downstream, &context);
        let params = renamed(to_params(&request)?, name.to_owned());
        if Self::is_pending(&route) {
            return match self
                .pending_request(upstream, &downstream, "tools/call", params, &context)
                .await
            {
                Ok(Ok(result)) => {
                    from_result::<CallToolResult>(&upstream.name, result).map(Into::into)
                }
                Ok(Err(input)) => Ok(input.into()),
                Err(error) if error.code == rmcp::model::ErrorCode::INTERNAL_ERROR => Ok(
                    CallToolResult::error(vec![ContentBlock::text(error.message.to_string())])
                        .into(),
                ),
                Err(error) => Err(error),
            };
        }
        match self.forward(&route, "tools/call", params, &context).await {
            Ok(result) => from_result_or_input::<CallToolResult, _>(&upstream.name, result),
            Err(CallError::Rpc { error, .. }) => Err(call_error(CallError::Rpc {
                server: upstream.name.clone(),
                error,
            })),
            Err(error @ (CallError::Upstream { .. } | CallError::Store { .. })) => {
                Ok(CallToolResult::error(vec![ContentBlock::text(error.to_string())]).into())
            }
            Err(CallError::Cancelled) => {
                Err(McpError::internal_error("cancelled by the client", None))
            }
        }
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let result = self
            .list(ListKind::Prompts, true, request, &context)
            .await?;
        from_result("hub", result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let downstream = Downstream::of(&context);
        let (upstream, name) = self.target(&downstream, "prompt", &request.name)?;
        let params = renamed(to_params(&request)?, name.to_owned());
        self.request_with_input::<rmcp::model::GetPromptResult, _>(
            upstream,
            &downstream,
            "prompts/get",
            params,
            &context,
        )
        .await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let result = self
            .list(ListKind::Resources, false, request, &context)
            .await?;
        from_result("hub", result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let result = self
            .list(ListKind::ResourceTemplates, false, request, &context)
            .await?;
        from_result("hub", result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let downstream = Downstream::of(&context);
        let upstream = self.resource_upstream(&downstream, &request.uri).await?;
        self.request_with_input::<rmcp::model::ReadResourceResult, _>(
            upstream,
            &downstream,
            "resources/read",
            to_params(&request)?,
            &context,
        )
        .await
    }

    /// `logging/setLevel` goes to every upstream of the endpoint (an
    /// upstream without logging, or unreachable, is skipped).
    #[allow(deprecated)] // logging (SEP-2577), still what 2025-11-25 clients use
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let downstream = Downstream::of(&context);
        let params = to_params(&request)?;
        let upstreams: Vec<&crate::config::Upstream> =
            match self.hub.scope(&downstream.path).map_err(route_error)? {
                Scope::Transparent(upstream) => {
                    return self
                        .send(upstream, &downstream, "logging/setLevel", params, &context)
                        .await
                        .map(drop);
                }
                Scope::Aggregate(members) => members
                    .iter()
                    .filter_map(|name| self.hub.config.servers.get(name))
                    .collect(),
            };
        for upstream in upstreams {
            if let Err(error) = self
                .send(
                    upstream,
                    &downstream,
                    "logging/setLevel",
                    params.clone(),
                    &context,
                )
                .await
            {
                tracing::debug!(upstream = %upstream.name, %error, "logging/setLevel not taken");
            }
        }
        Ok(())
    }

    /// `completion/complete` goes to the upstream of the prompt or resource
    /// it refers to.
    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let downstream = Downstream::of(&context);
        let mut params = to_params(&request)?;
        let upstream = match &request.r#ref {
            Reference::Prompt(prompt) => {
                let (upstream, name) = self.target(&downstream, "prompt", &prompt.name)?;
                params["ref"]["name"] = Value::String(name.to_owned());
                upstream
            }
            Reference::Resource(resource) => {
                self.resource_upstream(&downstream, &resource.uri).await?
            }
            _ => {
                return Err(McpError::invalid_params(
                    "a completion refers to a prompt (ref/prompt) or a resource (ref/resource)",
                    None,
                ));
            }
        };
        let result = self
            .send(
                upstream,
                &downstream,
                "completion/complete",
                params,
                &context,
            )
            .await?;
        from_result(&upstream.name, result)
    }

    /// `subscriptions/listen` (MCP 2026-07-28): everything asked is
    /// accepted; what the endpoint's stateless upstreams can tell comes
    /// from them (see [`listen`](Self::listen)).
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    /// Relays the change notifications of the endpoint's upstreams to the
    /// client (dropping the lists they change here) until it cancels: a
    /// stateless upstream's from a `subscriptions/listen` stream opened with
    /// the client's filter, an upstream with sessions' from its session's
    /// own stream, after `resources/subscribe` of the client's resources
    /// that are its. HTTP+SSE and stdio upstreams are not listened to (their
    /// one stream belongs to every request on the connection).
    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let request = context.request_context();
        let downstream = Downstream::of(request);
        let upstreams: Vec<&crate::config::Upstream> =
            match self.hub.scope(&downstream.path).map_err(route_error)? {
                Scope::Transparent(upstream) => vec![upstream],
                Scope::Aggregate(members) => members
                    .iter()
                    .filter_map(|name| self.hub.config.servers.get(name))
                    .collect(),
            };
        let filter = to_params(context.accepted())?;
        let uris: Vec<String> = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let relays = upstreams.into_iter().map(|upstream| {
            let route = self.route(upstream, &downstream, request);
            let (filter, sink) = (filter.clone(), context.sink().clone());
            let uris = uris.clone();
            let downstream = &downstream;
            async move {
                match upstream.transport {
                    UpstreamTransport::Stateless => {
                        self.listen_stateless(upstream, &route, filter, sink).await;
                    }
                    UpstreamTransport::StreamableHttp => {
                        self.listen_session(upstream, &route, downstream, &uris, sink)
                            .await;
                    }
                    // Their one stream is shared by every request on the
                    // connection: nothing to listen to apart.
                    UpstreamTransport::Sse | UpstreamTransport::Stdio => {}
                }
            }
        });
        let relayed = futures::future::join_all(relays);
        tokio::select! {
            _ = relayed => context.cancelled().await,
            () = context.cancelled() => {}
        }
        Ok(())
    }

    #[allow(deprecated)] // still the way of 2025-11-25 clients
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let downstream = Downstream::of(&context);
        let upstream = self.resource_upstream(&downstream, &request.uri).await?;
        self.send(
            upstream,
            &downstream,
            "resources/subscribe",
            to_params(&request)?,
            &context,
        )
        .await
        .map(drop)
    }

    #[allow(deprecated)] // still the way of 2025-11-25 clients
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let downstream = Downstream::of(&context);
        let upstream = self.resource_upstream(&downstream, &request.uri).await?;
        self.send(
            upstream,
            &downstream,
            "resources/unsubscribe",
            to_params(&request)?,
            &context,
        )
        .await
        .map(drop)
    }
}
