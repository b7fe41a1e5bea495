//! [`ServiceContext`]: what the service lends every request it serves (and
//! every message that reaches a handler here from another replica), found
//! by tools in the request's extensions.
//!
//! One `Arc`, inserted once per request: as four extensions of the request
//! it cost every request a copy of a map and four allocations
//! (`scripts/callgrind.sh`). It holds its values by type, as extensions do,
//! so that this module depends on none of the modules that read it.

use std::sync::Arc;

use axum::http::Extensions;
use rmcp::{RoleServer, service::RequestContext};

/// The service's shared values that tools reach through their request, by
/// type (`Arc<ToolsContext>`, `Arc<RequestStateConfig>`, `Arc<TaskRuntime>`,
/// the `Fleet`: see `McpServer::bind`).
pub(crate) struct ServiceContext(Extensions);

impl ServiceContext {
    /// A context lending `values`.
    pub(crate) fn new(values: Extensions) -> Self {
        Self(values)
    }

    /// The value of type `T` lent to the request `context` came with;
    /// `None` for a request that did not come over HTTP or the fleet bus,
    /// or a type the service lends none of.
    pub(crate) fn lent<T: Clone + Send + Sync + 'static>(
        context: &RequestContext<RoleServer>,
    ) -> Option<T> {
        mcp_session_core::session::request_extension::<Arc<Self>>(context)
            .and_then(|service| service.0.get::<T>().cloned())
    }
}
