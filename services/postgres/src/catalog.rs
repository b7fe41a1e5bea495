//! Table schemas read from the system catalog (`pg_catalog`): columns and
//! their types, nullability, defaults and comments; primary, foreign, unique
//! and check constraints; indexes.
//!
//! Every query is parameterised; names are only ever bound as values.
//!
//! Only what the read-only role may read is described: tables and views on
//! which it holds `SELECT` (on the table or on some of its columns), and of
//! those only the columns it may select. The schema a model sees is then the
//! schema `run_readonly_query` can query, and the structure of a table an
//! operator kept from that role stays hidden too. When the role does not
//! exist (run_readonly_query cannot work at all), everything is described.

use std::collections::BTreeMap;

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Row, Transaction, types::ToSql};

use crate::{config::Limits, errors, resource_uri};

/// A table or view, as `get_employee_schema` and the schema resources show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TableSchema {
    /// Schema (namespace) of the table, e.g. `public`.
    pub schema: String,
    /// Table name, e.g. `employees`.
    pub name: String,
    /// `table`, `partitioned table`, `view`, `materialized view` or `foreign table`.
    pub kind: String,
    /// The table's comment, if any.
    pub description: Option<String>,
    /// The planner's row estimate (from the last ANALYZE), if known.
    pub estimated_rows: Option<i64>,
    /// URI of this schema as an MCP resource.
    pub resource_uri: String,
    /// Columns in table order.
    pub columns: Vec<ColumnSchema>,
    /// Columns of the primary key, in key order; empty when there is none.
    pub primary_key: Vec<String>,
    /// Foreign keys: which columns reference which table.
    pub foreign_keys: Vec<ForeignKey>,
    /// Unique constraints (besides the primary key).
    pub unique_constraints: Vec<UniqueConstraint>,
    /// Check constraints, with their SQL.
    pub check_constraints: Vec<CheckConstraint>,
    /// Indexes, with their definitions.
    pub indexes: Vec<IndexInfo>,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ColumnSchema {
    /// Column name.
    pub name: String,
    /// SQL type as PostgreSQL prints it, e.g. `numeric(12,2)`, `character varying(254)`.
    pub data_type: String,
    /// Whether the column may be NULL.
    pub nullable: bool,
    /// Default expression or identity/generation clause, if any.
    pub default: Option<String>,
    /// The column's comment, if any.
    pub description: Option<String>,
}

/// A foreign key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ForeignKey {
    /// Constraint name.
    pub name: String,
    /// Referencing columns of this table.
    pub columns: Vec<String>,
    /// Schema of the referenced table.
    pub references_schema: String,
    /// Referenced table.
    pub references_table: String,
    /// Referenced columns, in the order of `columns`.
    pub references_columns: Vec<String>,
    /// Full definition, with ON DELETE / ON UPDATE actions.
    pub definition: String,
}

/// A unique constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UniqueConstraint {
    /// Constraint name.
    pub name: String,
    /// Columns whose combination is unique.
    pub columns: Vec<String>,
}

/// A check constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckConstraint {
    /// Constraint name.
    pub name: String,
    /// The condition, e.g. `CHECK ((salary > (0)::numeric))`.
    pub definition: String,
}

/// An index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IndexInfo {
    /// Index name.
    pub name: String,
    /// `CREATE INDEX` statement that defines it.
    pub definition: String,
    /// Whether it enforces uniqueness.
    pub unique: bool,
    /// Whether it backs the primary key.
    pub primary: bool,
}

/// A table's identity, as listed for resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Kind, as in [`TableSchema::kind`].
    pub kind: String,
    /// Comment, if any.
    pub description: Option<String>,
}

const TABLES: &str = "\
SELECT c.oid, n.nspname::text, c.relname::text,
       CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                      WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                      ELSE 'foreign table' END,
       obj_description(c.oid, 'pg_class'),
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT c.relispartition
  AND ($1::text IS NULL OR n.nspname = $1)
  AND ($2::text IS NULL OR c.relname = $2)
  AND CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = $3)
           THEN has_any_column_privilege($3, c.oid, 'SELECT') ELSE true END
ORDER BY n.nspname, c.relname";

const COLUMNS: &str = "\
SELECT a.attrelid, a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       CASE a.attidentity
           WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY'
           WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY'
           ELSE CASE WHEN a.attgenerated = 's'
                     THEN 'GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                     ELSE pg_get_expr(d.adbin, d.adrelid) END
       END,
       col_description(a.attrelid, a.attnum),
       CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = $2)
            THEN has_column_privilege($2, a.attrelid, a.attnum, 'SELECT') ELSE true END
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

const CONSTRAINTS: &str = "\
SELECT con.conrelid, con.conname::text, con.contype::text,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k (attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       fn.nspname::text, fc.relname::text,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.confkey) WITH ORDINALITY AS k (attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       pg_get_constraintdef(con.oid)
FROM pg_constraint con
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = ANY($1) AND con.contype IN ('p', 'f', 'u', 'c')
ORDER BY con.conrelid, con.contype, con.conname";

const INDEXES: &str = "\
SELECT i.indrelid, c.relname::text, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)),
       i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = ANY($1)
ORDER BY i.indrelid, c.relname";

type Result<T> = std::result::Result<T, String>;

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
    limits: &Limits,
) -> Result<T> {
    row.try_get(index)
        .map_err(|error| errors::query_error(&error, limits))
}

async fn table_rows(
    tx: &Transaction<'_>,
    reader: &str,
    schema: Option<&str>,
    table: Option<&str>,
    limits: &Limits,
) -> Result<Vec<Row>> {
    tx.query(TABLES, &[&schema, &table, &reader])
        .await
        .map_err(|error| errors::query_error(&error, limits))
}

/// Tables and views of the user schemas (all but the system ones) that the
/// role `reader` may select from, optionally only those of `schema`.
///
/// # Errors
/// The tool error message of a failed catalog query.
pub async fn list_tables(
    tx: &Transaction<'_>,
    reader: &str,
    schema: Option<&str>,
    limits: &Limits,
) -> Result<Vec<TableName>> {
    table_rows(tx, reader, schema, None, limits)
        .await?
        .iter()
        .map(|row| {
            Ok(TableName {
                schema: get(row, 1, limits)?,
                name: get(row, 2, limits)?,
                kind: get(row, 3, limits)?,
                description: get(row, 4, limits)?,
            })
        })
        .collect()
}

/// Full schemas of the tables of `schema` (or only `table` there), as the
/// role `reader` may see them: its tables, their columns it may select.
///
/// # Errors
/// The tool error message of a failed catalog query.
pub async fn describe(
    tx: &Transaction<'_>,
    reader: &str,
    schema: &str,
    table: Option<&str>,
    limits: &Limits,
) -> Result<Vec<TableSchema>> {
    let mut tables = BTreeMap::new();
    let mut order = Vec::new();
    for row in table_rows(tx, reader, Some(schema), table, limits).await? {
        let oid: u32 = get(&row, 0, limits)?;
        let schema: String = get(&row, 1, limits)?;
        let name: String = get(&row, 2, limits)?;
        order.push(oid);
        tables.insert(
            oid,
            TableSchema {
                resource_uri: resource_uri::schema_uri(&schema, &name),
                schema,
                name,
                kind: get(&row, 3, limits)?,
                description: get(&row, 4, limits)?,
                estimated_rows: get(&row, 5, limits)?,
                columns: Vec::new(),
                primary_key: Vec::new(),
                foreign_keys: Vec::new(),
                unique_constraints: Vec::new(),
                check_constraints: Vec::new(),
                indexes: Vec::new(),
            },
        );
    }
    if order.is_empty() {
        return Ok(Vec::new());
    }
    let query = |sql: &'static str| {
        let order = &order;
        async move {
            tx.query(sql, &[order as &(dyn ToSql + Sync)])
                .await
                .map_err(|error| errors::query_error(&error, limits))
        }
    };
    let columns = tx
        .query(COLUMNS, &[&order as &(dyn ToSql + Sync), &reader])
        .await
        .map_err(|error| errors::query_error(&error, limits))?;
    // Columns the reader may not select, by table: neither they nor the
    // constraints and indexes naming them are shown.
    let mut hidden: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for row in columns {
        let oid = get::<u32>(&row, 0, limits)?;
        let Some(table) = tables.get_mut(&oid) else {
            continue;
        };
        let name: String = get(&row, 1, limits)?;
        if !get::<bool>(&row, 6, limits)? {
            hidden.entry(oid).or_default().push(name);
            continue;
        }
        table.columns.push(ColumnSchema {
            name,
            data_type: get(&row, 2, limits)?,
            nullable: get(&row, 3, limits)?,
            default: get(&row, 4, limits)?,
            description: get(&row, 5, limits)?,
        });
    }
    let no_columns = Vec::new();
    let shows = |oid: u32, columns: &[String]| {
        let hidden = hidden.get(&oid).unwrap_or(&no_columns);
        columns.iter().all(|column| !hidden.contains(column))
    };
    for row in query(CONSTRAINTS).await? {
        let oid = get::<u32>(&row, 0, limits)?;
        let Some(table) = tables.get_mut(&oid) else {
            continue;
        };
        let name: String = get(&row, 1, limits)?;
        let kind: String = get(&row, 2, limits)?;
        let columns: Vec<String> = get(&row, 3, limits)?;
        if !shows(oid, &columns) {
            continue;
        }
        let definition: String = get(&row, 7, limits)?;
        match kind.as_str() {
            "p" => table.primary_key = columns,
            "u" => table
                .unique_constraints
                .push(UniqueConstraint { name, columns }),
            "c" => table
                .check_constraints
                .push(CheckConstraint { name, definition }),
            _ => table.foreign_keys.push(ForeignKey {
                name,
                columns,
                references_schema: get::<Option<String>>(&row, 4, limits)?.unwrap_or_default(),
                references_table: get::<Option<String>>(&row, 5, limits)?.unwrap_or_default(),
                references_columns: get(&row, 6, limits)?,
                definition,
            }),
        }
    }
    for row in query(INDEXES).await? {
        let oid = get::<u32>(&row, 0, limits)?;
        let columns: Vec<String> = get(&row, 5, limits)?;
        // An expression or a predicate may name any column: shown only when
        // no column of the table is hidden.
        let has_expressions: bool = get(&row, 6, limits)?;
        if !shows(oid, &columns) || (has_expressions && hidden.contains_key(&oid)) {
            continue;
        }
        if let Some(table) = tables.get_mut(&oid) {
            table.indexes.push(IndexInfo {
                name: get(&row, 1, limits)?,
                definition: get(&row, 2, limits)?,
                unique: get(&row, 3, limits)?,
                primary: get(&row, 4, limits)?,
            });
        }
    }
    Ok(order.iter().filter_map(|oid| tables.remove(oid)).collect())
}
