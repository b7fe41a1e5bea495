//! [`PostgresServer`], the rmcp handler: the tools of [`crate::tools`] and
//! the schema resources of [`crate::resources`], over one shared
//! [`Database`].

use std::sync::Arc;

use mcp_session::tools::ServiceTools;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        Implementation, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
    tool_handler,
};

use crate::{db::Database, resources};

/// The postgres MCP server. Cloning is cheap (two `Arc`s): build one at
/// start-up and hand clones to `mcp_session::serve`'s factory.
#[derive(Clone)]
pub struct PostgresServer {
    pub(crate) db: Arc<Database>,
    pub(crate) tools: ServiceTools<Self>,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl PostgresServer {
    /// The database the tools query.
    pub fn db(&self) -> &Database {
        &self.db
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for PostgresServer {
    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        resources::list(&self.db)
            .await
            .map_err(|message| ErrorData::internal_error(message, None))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match resources::read(&self.db, &request.uri).await {
            Ok(result) => Ok(result.into()),
            Err(resources::ReadError::NotFound(message)) => {
                Err(ErrorData::resource_not_found(message, None))
            }
            Err(resources::ReadError::Failed(message)) => {
                Err(ErrorData::internal_error(message, None))
            }
        }
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("postgres", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "HR database (PostgreSQL): departments and employees. Use query_employees to find \
             employees by department, name, title, hire date or salary, with sorting and \
             paging; get_employee_schema (or the resources postgres://public/{table}/schema) \
             for the tables, columns and keys; run_readonly_query for one read-only SQL query \
             when the filters are not enough (aggregates, joins). Errors come back as tool \
             errors that say what to change.",
        )
    }
}
