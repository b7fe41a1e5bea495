//! The service's MCP tools, one file each:
//!
//! - [`employees`]: `query_employees`, the directory with filters and paging;
//! - [`schema`]: `get_employee_schema`, the tables from the catalog;
//! - [`readonly`]: `run_readonly_query`, one guarded read-only statement.
//!
//! Each file holds the tool's arguments and result types, a plain async
//! function with its logic (called by the tests too), and the `#[tool]`
//! method that wraps it; [`router`] merges their routers.

pub mod employees;
pub mod readonly;
pub mod schema;

use std::borrow::Cow;

use rmcp::handler::server::router::tool::ToolRouter;

use crate::{config::Limits, server::PostgresServer};

/// Every tool of the service, with descriptions that state the configured
/// limits.
pub fn router(limits: &Limits) -> ToolRouter<PostgresServer> {
    let mut router = PostgresServer::employees_router()
        + PostgresServer::schema_router()
        + PostgresServer::readonly_router();
    for (name, description) in [
        ("query_employees", employees::description(limits)),
        ("run_readonly_query", readonly::description(limits)),
    ] {
        if let Some(route) = router.map.get_mut(name) {
            route.attr.description = Some(Cow::Owned(description));
        }
    }
    router
}
