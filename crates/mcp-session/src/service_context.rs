//! [`ServiceContext`]: what the service lends every request it serves (and
//! every message that reaches a handler here from another replica), found
//! by tools in the request's extensions.
//!
//! One `Arc`, inserted once per request: as four extensions it cost every
//! request a copy of a map and four allocations (`scripts/callgrind.sh`).

use std::sync::Arc;

use rmcp::{RoleServer, service::RequestContext};

use crate::{
    fleet::Fleet, request_state::RequestStateConfig, tasks::TaskRuntime,
    tools::session_tools::ToolsContext,
};

/// The service's shared state that tools reach through their request.
pub(crate) struct ServiceContext {
    /// What the session tools report and manage.
    pub(crate) tools: Arc<ToolsContext>,
    /// The keys that seal MRTR `requestState` (MCP 2026-07-28).
    pub(crate) request_state: Arc<RequestStateConfig>,
    /// The fleet, for change notifications to `subscriptions/listen`
    /// streams.
    pub(crate) fleet: Fleet,
    /// The runtime of tasks (MCP 2025-11-25, Tasks).
    pub(crate) tasks: Arc<TaskRuntime>,
}

impl ServiceContext {
    /// The context of the request `context` came with; `None` for a
    /// request that did not come over HTTP or the fleet bus.
    pub(crate) fn of(context: &RequestContext<RoleServer>) -> Option<Arc<Self>> {
        mcp_session_core::session::request_extension::<Arc<Self>>(context)
    }
}
