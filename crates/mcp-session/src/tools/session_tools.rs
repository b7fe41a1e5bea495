//! The session tools every service serves beside its own: `health_check`,
//! `get_user_sessions` and (for admins) `get_session_analytics`.
//!
//! [`ServiceTools::new`](super::ServiceTools::new) adds them to a service's
//! tools:
//!
//! ```rust,ignore
//! impl Calculator {
//!     pub fn new() -> Self {
//!         Self { tools: ServiceTools::new(Self::tool_router()) }
//!     }
//! }
//! ```
//!
//! and a service opts out with
//! [`ServiceTools::without_session_tools`](super::ServiceTools::without_session_tools);
//! a handler with a plain rmcp
//! router joins them with `router + session_tools()` (and removes one tool
//! with `ToolRouter::remove_route`). The tools answer with structured content
//! (MCP 2025-06-18, Server Features §Tools, Structured Content) and need
//! nothing from the service's own handler: they read the caller and the
//! server from the request the tool call arrived with.
//!
//! | tool | who | returns |
//! |---|---|---|
//! | `health_check` | anyone | store reachable, replica, version, uptime, the caller's session count (and the service's, for admins) |
//! | `get_user_sessions` | anyone | the caller's own live sessions: id, transport, protocol version, created, last access, TTL left |
//! | `get_session_analytics` | admins | counts by transport, protocol version, replica; users; age distribution |

use std::{borrow::Cow, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData, RoleServer,
    handler::server::{
        common::{schema_for_empty_input, schema_for_output},
        router::tool::{ToolRoute, ToolRouter},
        tool::ToolCallContext,
    },
    model::{CallToolResponse, CallToolResult, ContentBlock, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::{
    analytics::{SessionAnalytics, analyze},
    views::SessionSummary,
};
use crate::{
    fleet::Fleet,
    identity::Caller,
    service_context::ServiceContext,
    service_info::ServiceInfo,
    session::{self, SessionContext},
};

/// Name of the health tool.
pub const HEALTH_CHECK: &str = "health_check";
/// Name of the caller's sessions tool.
pub const GET_USER_SESSIONS: &str = "get_user_sessions";
/// Name of the admins' analytics tool.
pub const GET_SESSION_ANALYTICS: &str = "get_session_analytics";

/// The session store as `health_check` found it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StoreHealth {
    /// `memory` or `redis`.
    pub backend: String,
    /// Whether the store answered.
    pub reachable: bool,
    /// Why it did not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Session counts in `health_check`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionCounts {
    /// The caller's live sessions (all replicas).
    pub yours: usize,
    /// HTTP+SSE streams open on this replica.
    pub open_sse_streams_on_replica: usize,
    /// Every live session of the service (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
}

/// The output of `health_check`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the session store does not answer.
    pub status: String,
    /// The service name.
    pub service: String,
    /// The service version.
    pub version: String,
    /// The replica that answered.
    pub replica: String,
    /// Seconds since this replica started.
    pub uptime_seconds: u64,
    /// The session store.
    pub store: StoreHealth,
    /// Session counts.
    pub sessions: SessionCounts,
}

/// The output of `get_user_sessions`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UserSessions {
    /// The caller's user hash: the owner of the sessions.
    pub user_hash: String,
    /// How the caller authenticated: `jwt`, `api_key` or `anonymous`.
    pub principal: String,
    /// Number of sessions listed.
    pub count: usize,
    /// The caller's live sessions, oldest first.
    pub sessions: Vec<SessionSummary>,
}

/// What the session tools read of their server: it travels in the
/// extensions of every request (and of every message forwarded from another
/// replica), so a tool finds its server through the request it serves.
pub(crate) struct ToolsContext {
    pub(crate) service: Arc<ServiceInfo>,
    pub(crate) fleet: Fleet,
    pub(crate) session_ttl: Duration,
}

/// What a session tool needs: its server, the caller, the session.
struct ToolEnv {
    server: Arc<ToolsContext>,
    caller: Caller,
    session: Option<SessionContext>,
}

fn environment(context: &RequestContext<RoleServer>) -> Result<ToolEnv, ErrorData> {
    let server = ServiceContext::lent::<Arc<ToolsContext>>(context).ok_or_else(|| {
        ErrorData::internal_error("session tools are only available over HTTP", None)
    })?;
    Ok(ToolEnv {
        server,
        caller: session::caller(context),
        session: session::current(context),
    })
}

fn structured<T: Serialize>(value: &T) -> Result<CallToolResponse, ErrorData> {
    let value = serde_json::to_value(value)
        .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
    Ok(CallToolResult::structured(value).into())
}

fn tool_error(message: impl Into<String>) -> Result<CallToolResponse, ErrorData> {
    Ok(CallToolResult::error(vec![ContentBlock::text(message.into())]).into())
}

async fn health_check(context: RequestContext<RoleServer>) -> Result<CallToolResponse, ErrorData> {
    let env = environment(&context)?;
    let (server, store) = (&env.server, env.server.fleet.store());
    let (reachable, error) = match store.ping().await {
        Ok(()) => (true, None),
        Err(error) => (false, Some(error.to_string())),
    };
    let yours = if reachable {
        store
            .list(&env.caller.user_hash)
            .await
            .map_or(0, |sessions| sessions.len())
    } else {
        0
    };
    let total = if reachable && env.caller.is_admin {
        analyze(store.as_ref())
            .await
            .ok()
            .map(|analytics| analytics.total_sessions)
    } else {
        None
    };
    structured(&Health {
        status: if reachable { "ok" } else { "degraded" }.to_owned(),
        service: server.service.name.clone(),
        version: server.service.version.clone(),
        replica: server.service.replica_id.clone(),
        uptime_seconds: server.service.started.elapsed().as_secs(),
        store: StoreHealth {
            backend: store.backend().to_owned(),
            reachable,
            error,
        },
        sessions: SessionCounts {
            yours,
            open_sse_streams_on_replica: server.fleet.sse_streams().len(),
            total,
        },
    })
}

async fn get_user_sessions(
    context: RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let env = environment(&context)?;
    let sessions = match env.server.fleet.store().list(&env.caller.user_hash).await {
        Ok(sessions) => sessions,
        Err(error) => return tool_error(format!("cannot list your sessions: {error}")),
    };
    let current = env.session.as_ref().map(SessionContext::id);
    let sessions: Vec<SessionSummary> = sessions
        .iter()
        .map(|session| {
            let mut summary = SessionSummary::of(session, env.server.session_ttl);
            summary.current = Some(Some(summary.id.as_str()) == current);
            summary
        })
        .collect();
    structured(&UserSessions {
        user_hash: env.caller.user_hash.to_string(),
        principal: env.caller.kind.as_str().to_owned(),
        count: sessions.len(),
        sessions,
    })
}

async fn get_session_analytics(
    context: RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let env = environment(&context)?;
    if !env.caller.is_admin {
        return tool_error(
            "get_session_analytics is for administrators: authenticate with a token carrying one of JWT_ADMIN_ROLES or an API key listed in ADMIN_API_KEYS",
        );
    }
    match analyze(env.server.fleet.store().as_ref()).await {
        Ok(analytics) => structured(&analytics),
        Err(error) => tool_error(format!("cannot read the sessions: {error}")),
    }
}

fn read_only() -> ToolAnnotations {
    ToolAnnotations::from_raw(None, Some(true), Some(false), Some(true), Some(false))
}

type ToolFn =
    fn(RequestContext<RoleServer>) -> BoxFuture<'static, Result<CallToolResponse, ErrorData>>;

fn route<S: Send + Sync + 'static>(tool: Tool, call: ToolFn) -> ToolRoute<S> {
    ToolRoute::new_dyn(tool, move |context: ToolCallContext<'_, S>| {
        call(context.request_context)
    })
}

/// The three session tools as a router for any service `S`, to merge into
/// the service's own with `+` (see the module docs).
pub fn session_tools<S: Send + Sync + 'static>() -> ToolRouter<S> {
    let tool = |name: &'static str, description: &'static str| {
        Tool::new(Cow::Borrowed(name), description, schema_for_empty_input())
            .with_annotations(read_only())
    };
    ToolRouter::new()
        .with_route(route(
            tool(
                HEALTH_CHECK,
                "Check that this MCP service is healthy: whether its session store answers, which replica and version answered, its uptime, and how many live sessions you hold.",
            )
            .with_raw_output_schema(schema_for_output::<Health>()),
            |context| Box::pin(health_check(context)),
        ))
        .with_route(route(
            tool(
                GET_USER_SESSIONS,
                "List your own live MCP sessions on this service (never other users'): id, transport, protocol version, client, creation and last-access times, and seconds left before each expires.",
            )
            .with_raw_output_schema(schema_for_output::<UserSessions>()),
            |context| Box::pin(get_user_sessions(context)),
        ))
        .with_route(route(
            tool(
                GET_SESSION_ANALYTICS,
                "Administrators only: counts over every live session of the service, by transport, protocol version and replica, the number of users, and the distribution of session ages.",
            )
            .with_raw_output_schema(schema_for_output::<SessionAnalytics>()),
            |context| Box::pin(get_session_analytics(context)),
        ))
}
