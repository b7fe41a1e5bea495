//! `run_readonly_query`: one untrusted SQL statement, safe by construction.
//!
//! Layers, each of which alone stops a class of attack:
//!
//! 1. **Role**: the statement runs as the read-only role, which may only
//!    SELECT the HR tables (`sql/readonly_role.sql`). With
//!    `PG_READONLY_PASSWORD` the role logs in itself, so that nothing in a
//!    statement can climb back to a more privileged role; otherwise
//!    `SET LOCAL ROLE`, refused for a superuser session ([`crate::db`]).
//! 2. **Read-only transaction**: `START TRANSACTION READ ONLY`, always
//!    rolled back: the server refuses every write, DDL and `nextval`.
//! 3. **One statement**: the text is sent as one extended-protocol Parse
//!    message, which PostgreSQL rejects when it holds more than one statement
//!    (`COMMIT; DROP TABLE …` fails before anything runs).
//! 4. **Queries only**: a statement the server describes as returning no
//!    rows (transaction control, `SET`, `RESET`, `COPY`, `DO`, `CALL`,
//!    `LOCK`, DDL, DML without `RETURNING`, …) is refused without running.
//! 5. **Bounds**: a transaction-local `statement_timeout`; rows are fetched
//!    from a portal at most `PG_MAX_ROWS + 1` at a time; the JSON result is
//!    capped at `PG_MAX_RESULT_BYTES`; a client-side deadline cancels a
//!    statement the server does not stop.
//! 6. **Clean connection**: after the rollback, session advisory locks are
//!    released; a connection in doubt is discarded, not pooled.

use std::pin::pin;

use futures::TryStreamExt;
use rmcp::{
    Json,
    handler::server::wrapper::Parameters,
    schemars::{self, JsonSchema},
    tool, tool_router,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    config::Limits,
    db::{Access, Database},
    errors, json_rows,
    server::PostgresServer,
};

/// Longest accepted SQL text, in bytes.
pub const MAX_SQL_BYTES: usize = 100_000;

/// Arguments of `run_readonly_query`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadOnlyQuery {
    /// Exactly one SQL query, values written inline, e.g.
    /// "SELECT d.name, count(*), avg(e.salary)::numeric(12,2) FROM employees e JOIN departments d ON d.id = e.department_id GROUP BY d.name ORDER BY 2 DESC".
    pub sql: String,
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResultColumn {
    /// Column name (`?column?` for unnamed expressions: name them with AS).
    pub name: String,
    /// PostgreSQL type name, e.g. `int4`, `numeric`, `text`, `date`.
    #[serde(rename = "type")]
    pub type_name: String,
}

/// The result of `run_readonly_query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueryResult {
    /// The columns, in order.
    pub columns: Vec<ResultColumn>,
    /// The rows; each is an array of values in column order. numeric and
    /// money are exact decimal strings, dates and timestamps ISO 8601
    /// (timestamptz in UTC), json as JSON, SQL NULL as null.
    pub rows: Vec<Vec<Value>>,
    /// Number of rows.
    pub row_count: usize,
}

/// Runs one untrusted statement under every layer of the module docs.
///
/// # Errors
/// The tool error message: a refused statement, a cap hit, a timeout, the
/// server's error with its SQLSTATE, or an unreachable database.
pub async fn run_readonly_query(db: &Database, sql: &str) -> Result<QueryResult, String> {
    let sql = sql.trim();
    if sql.is_empty() {
        return Err("sql is empty: send one SELECT statement".into());
    }
    if sql.len() > MAX_SQL_BYTES {
        return Err(format!(
            "sql is longer than {MAX_SQL_BYTES} bytes: send a shorter statement"
        ));
    }
    let limits = db.limits();
    let sql = sql.to_owned();
    let started = std::time::Instant::now();
    let result = db
        .read(Access::ReadOnlyRole, move |tx| {
            Box::pin(async move {
                let failed = |error: tokio_postgres::Error| errors::query_error(&error, &limits);
                let statement = tx.prepare(&sql).await.map_err(failed)?;
                if !statement.params().is_empty() {
                    return Err(format!(
                        "refused: the statement has {} parameter placeholder(s) ($1 …); write \
                         the values inline instead",
                        statement.params().len()
                    ));
                }
                if statement.columns().is_empty() {
                    return Err(
                        "refused: the statement returns no rows, so it is not a query. Only one \
                         SELECT (or WITH … SELECT, VALUES, TABLE, SHOW, EXPLAIN) is allowed; \
                         writes, DDL, transaction control (BEGIN, COMMIT, ROLLBACK), SET, RESET, \
                         COPY, DO, CALL, LOCK, PREPARE, LISTEN and NOTIFY are not."
                            .to_owned(),
                    );
                }
                let columns = statement
                    .columns()
                    .iter()
                    .map(|column| ResultColumn {
                        name: column.name().to_owned(),
                        type_name: column.type_().name().to_owned(),
                    })
                    .collect();
                let portal = tx.bind(&statement, &[]).await.map_err(failed)?;
                let fetch = i32::try_from(limits.max_rows.saturating_add(1)).unwrap_or(i32::MAX);
                let mut stream = pin!(tx.query_portal_raw(&portal, fetch).await.map_err(failed)?);
                let mut rows = Vec::new();
                let mut bytes = 0usize;
                while let Some(row) = stream.try_next().await.map_err(failed)? {
                    if rows.len() == limits.max_rows {
                        return Err(row_cap_message(&limits));
                    }
                    // Refuse a row that is huge on the wire already, before decoding it
                    // into an even larger JSON value.
                    if json_rows::row_wire_size(&row).map_err(failed)? > limits.max_result_bytes {
                        return Err(byte_cap_message(&limits, rows.len()));
                    }
                    let values = json_rows::row_values(&row).map_err(failed)?;
                    bytes += serde_json::to_vec(&values).map_or(0, |json| json.len()) + 1;
                    if bytes > limits.max_result_bytes {
                        return Err(byte_cap_message(&limits, rows.len()));
                    }
                    rows.push(values);
                }
                Ok(QueryResult {
                    columns,
                    row_count: rows.len(),
                    rows,
                })
            })
        })
        .await;
    let elapsed_ms = started.elapsed().as_millis();
    match &result {
        Ok(result) => tracing::info!(rows = result.row_count, elapsed_ms, "run_readonly_query"),
        Err(error) => tracing::info!(elapsed_ms, %error, "run_readonly_query refused or failed"),
    }
    result
}

fn row_cap_message(limits: &Limits) -> String {
    format!(
        "the result has more than {max} rows, the cap (PG_MAX_ROWS): aggregate (count, avg, \
         GROUP BY), filter with WHERE, or add LIMIT {max}",
        max = limits.max_rows
    )
}

fn byte_cap_message(limits: &Limits, rows: usize) -> String {
    format!(
        "the result exceeds {} bytes of JSON, the cap (PG_MAX_RESULT_BYTES), after {rows} rows: \
         select fewer or shorter columns (e.g. left(text, 100)), or add LIMIT",
        limits.max_result_bytes
    )
}

/// The tool description, with the configured limits.
pub fn description(limits: &Limits) -> String {
    format!(
        "Run ONE read-only SQL query against the HR database (PostgreSQL) for questions \
         query_employees cannot answer: counts, averages, GROUP BY, joins, window functions, \
         CTEs. Call get_employee_schema first for the tables and columns (departments, \
         employees). ALLOWED: exactly one SELECT, WITH … SELECT, VALUES, TABLE, SHOW or EXPLAIN \
         statement, with values written inline (no $1 placeholders); a single trailing `;` is \
         fine. REFUSED: a second statement (`SELECT 1; SELECT 2`), any write (INSERT, UPDATE, \
         DELETE, MERGE, also inside WITH), DDL (CREATE, ALTER, DROP, TRUNCATE, temp tables), \
         transaction control (BEGIN, COMMIT, ROLLBACK), SET / RESET / SET ROLE, COPY, DO, \
         CALL, LOCK, PREPARE, LISTEN / NOTIFY, SELECT … FOR UPDATE, nextval / setval, and \
         privileged functions (server files, signalling other sessions, large objects, \
         dblink). Only the HR tables are readable. LIMITS: the statement is cancelled after \
         {timeout_ms} ms; more than {max_rows} rows or more than {max_bytes} bytes of JSON is \
         an error, so aggregate or add LIMIT. RESULT: `columns` (name, type) and `rows` as \
         arrays in column order; numeric values are exact decimal strings, dates and \
         timestamps ISO 8601 (timestamptz in UTC), json as JSON, NULL as null; give computed \
         columns a name with AS. Errors carry the SQLSTATE and what to change.",
        timeout_ms = limits.statement_timeout.as_millis(),
        max_rows = limits.max_rows,
        max_bytes = limits.max_result_bytes,
    )
}

#[tool_router(router = readonly_router, vis = "pub(crate)")]
impl PostgresServer {
    #[tool(
        description = "Run ONE read-only SQL query (SELECT, WITH … SELECT, VALUES, TABLE, SHOW, EXPLAIN) against the HR database; writes, DDL, transaction control, SET, COPY, DO, CALL and multiple statements are refused; time, rows and result size are capped.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn run_readonly_query(
        &self,
        Parameters(ReadOnlyQuery { sql }): Parameters<ReadOnlyQuery>,
    ) -> Result<Json<QueryResult>, String> {
        run_readonly_query(self.db(), &sql).await.map(Json)
    }
}
