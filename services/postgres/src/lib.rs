//! # postgres: the MCP postgres service
//!
//! Tools over an HR database (departments and employees) for models, served
//! by [`mcp_session`] over Streamable HTTP (`/mcp`) and HTTP+SSE (`/sse`):
//!
//! - `query_employees`: filters, sorting and paging, every value bound as a
//!   parameter ([`tools::employees`]);
//! - `get_employee_schema`: tables, columns and keys from the catalog
//!   ([`tools::schema`], [`catalog`]);
//! - `run_readonly_query`: one untrusted SQL statement behind several
//!   independent guards ([`tools::readonly`]);
//! - resources `postgres://{schema}/{table}/schema` ([`resources`]).
//!
//! Layers: [`config`] (environment) → [`tls`] + [`db`] (pools, read-only
//! transactions) → [`tools`], [`resources`] → [`server`] (the rmcp
//! handler). [`json_rows`] turns result rows of any type into JSON;
//! [`errors`] writes the messages a model reads when something fails.
//!
//! The sample database and the read-only role are in `services/postgres/sql/`;
//! `docs/services/postgres.md` describes the service for operators.

pub mod catalog;
pub mod config;
pub mod db;
pub mod errors;
pub mod json_rows;
pub mod resource_uri;
pub mod resources;
pub mod server;
pub mod tls;
pub mod tools;
pub mod wire_guard;

pub use config::{ReadOnlyLogin, Settings};
pub use db::Database;
pub use server::PostgresServer;

use std::sync::Arc;

use mcp_session::tools::ServiceTools;

// The handler assembled from its parts: the tools are methods of
// `PostgresServer` (rmcp's macros), defined in `tools`.
impl PostgresServer {
    /// A server with every tool, over `db`.
    pub fn new(db: Arc<Database>) -> Self {
        let tools = ServiceTools::new(tools::router(&db.limits()));
        Self { db, tools }
    }
}
