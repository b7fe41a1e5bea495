//! Table schemas as MCP resources: `postgres://{schema}/{table}/schema`,
//! JSON documents of [`TableSchema`], one per table or view of the user
//! schemas, plus the matching resource template.

use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};

use crate::{
    catalog::{self, TableSchema},
    db::{Access, Database},
    resource_uri::{parse_schema_uri, schema_uri},
};

/// The RFC 6570 template of schema resources.
pub const SCHEMA_TEMPLATE: &str = "postgres://{schema}/{table}/schema";

/// MIME type of the resources.
pub const MIME_JSON: &str = "application/json";

/// Why a resource could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The URI names no table (or is no schema URI at all).
    NotFound(String),
    /// The catalog could not be read (database down, timeout).
    Failed(String),
}

/// Lists one resource per table or view of the user schemas.
///
/// # Errors
/// The message of a failed catalog query.
pub async fn list(db: &Database) -> Result<ListResourcesResult, String> {
    let limits = db.limits();
    let reader = db.settings().readonly_role.clone();
    let tables = db
        .read(Access::Service, move |tx| {
            Box::pin(async move { catalog::list_tables(tx, &reader, None, &limits).await })
        })
        .await?;
    let resources = tables
        .into_iter()
        .map(|table| {
            let description = format!(
                "Columns, types, keys and indexes of the {} {}.{}{}",
                table.kind,
                table.schema,
                table.name,
                table
                    .description
                    .map(|text| format!(": {text}"))
                    .unwrap_or_default()
            );
            Resource::new(
                schema_uri(&table.schema, &table.name),
                format!("{}.{}", table.schema, table.name),
            )
            .with_title(format!("Schema of {}.{}", table.schema, table.name))
            .with_description(description)
            .with_mime_type(MIME_JSON)
        })
        .collect();
    Ok(ListResourcesResult::with_all_items(resources))
}

/// The resource template of table schemas.
pub fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(SCHEMA_TEMPLATE, "table-schema")
            .with_title("Schema of a table")
            .with_description(
                "JSON description of one table or view: columns with types, nullability, \
                 defaults and comments; primary key, foreign keys, unique and check \
                 constraints; indexes. Example: postgres://public/employees/schema",
            )
            .with_mime_type(MIME_JSON),
    ])
}

/// Reads the schema resource `uri`.
///
/// # Errors
/// [`ReadError::NotFound`] for an unknown URI or table, [`ReadError::Failed`]
/// when the catalog cannot be read.
pub async fn read(db: &Database, uri: &str) -> Result<ReadResourceResult, ReadError> {
    let (schema, table) = parse_schema_uri(uri).ok_or_else(|| {
        ReadError::NotFound(format!(
            "`{uri}` is not a table schema resource: use {SCHEMA_TEMPLATE}, e.g. \
             postgres://public/employees/schema (resources/list shows them all)"
        ))
    })?;
    let limits = db.limits();
    let (schema_name, table_name) = (schema.clone(), table.clone());
    let reader = db.settings().readonly_role.clone();
    let found: Vec<TableSchema> = db
        .read(Access::Service, move |tx| {
            Box::pin(async move {
                catalog::describe(tx, &reader, &schema_name, Some(&table_name), &limits).await
            })
        })
        .await
        .map_err(ReadError::Failed)?;
    let Some(described) = found.into_iter().next() else {
        return Err(ReadError::NotFound(format!(
            "no table or view {schema}.{table}: resources/list shows the tables"
        )));
    };
    let text = serde_json::to_string_pretty(&described)
        .map_err(|error| ReadError::Failed(error.to_string()))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(MIME_JSON),
    ]))
}
