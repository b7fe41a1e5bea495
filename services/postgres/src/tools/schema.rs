//! `get_employee_schema`: the HR tables as the catalog describes them.

use rmcp::{
    Json,
    handler::server::wrapper::Parameters,
    schemars::{self, JsonSchema},
    tool, tool_router,
};
use serde::{Deserialize, Serialize};

use crate::{
    catalog::{self, TableSchema},
    db::{Access, Database},
    server::PostgresServer,
};

/// The schema holding the HR tables.
pub const HR_SCHEMA: &str = "public";

/// Arguments of `get_employee_schema`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaRequest {
    /// Only this table, e.g. "employees"; omit for every table.
    pub table: Option<String>,
}

/// The HR database's tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmployeeSchema {
    /// The PostgreSQL schema described, `public`.
    pub schema: String,
    /// Its tables and views, by name.
    pub tables: Vec<TableSchema>,
}

/// Runs `get_employee_schema`.
///
/// # Errors
/// The tool error message: an unknown table, or the database's failure.
pub async fn get_employee_schema(
    db: &Database,
    request: &SchemaRequest,
) -> Result<EmployeeSchema, String> {
    let limits = db.limits();
    let table = request
        .table
        .as_deref()
        .map(str::trim)
        .filter(|table| !table.is_empty())
        .map(str::to_owned);
    let wanted = table.clone();
    let reader = db.settings().readonly_role.clone();
    let tables = db
        .read(Access::Service, move |tx| {
            Box::pin(async move {
                let tables =
                    catalog::describe(tx, &reader, HR_SCHEMA, wanted.as_deref(), &limits).await?;
                if tables.is_empty()
                    && let Some(wanted) = wanted
                {
                    let known = catalog::list_tables(tx, &reader, Some(HR_SCHEMA), &limits).await?;
                    let names: Vec<String> = known.into_iter().map(|table| table.name).collect();
                    return Err(format!(
                        "no table `{wanted}` in schema {HR_SCHEMA}: the tables are {}",
                        if names.is_empty() {
                            "none (load services/postgres/sql/load.sh)".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ));
                }
                Ok(tables)
            })
        })
        .await?;
    Ok(EmployeeSchema {
        schema: HR_SCHEMA.to_owned(),
        tables,
    })
}

#[tool_router(router = schema_router, vis = "pub(crate)")]
impl PostgresServer {
    #[tool(
        description = "Describe the HR database, read live from the PostgreSQL catalog: for each table (departments, employees) its columns with SQL types, nullability, defaults and comments; the primary key; foreign keys (employees.department_id → departments.id, employees.manager_id → employees.id); unique and check constraints; indexes. Call it before writing SQL for run_readonly_query. Optional `table` limits the answer to one table. The same documents are resources at postgres://public/{table}/schema.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_employee_schema(
        &self,
        Parameters(request): Parameters<SchemaRequest>,
    ) -> Result<Json<EmployeeSchema>, String> {
        get_employee_schema(self.db(), &request).await.map(Json)
    }
}
