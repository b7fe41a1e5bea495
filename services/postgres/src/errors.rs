//! Tool error messages: what went wrong, with the SQLSTATE, and what to
//! change. They become tool results flagged `isError`, read by a model, so
//! each one ends with advice it can act on. None carries a password.

use std::time::Duration;

use deadpool_postgres::{PoolError, TimeoutType};
use tokio_postgres::error::{DbError, SqlState};

use crate::config::Limits;

/// Describes a failed statement.
pub fn query_error(error: &tokio_postgres::Error, limits: &Limits) -> String {
    match error.as_db_error() {
        Some(db) => db_error(db, limits),
        None if error.is_closed() => "the database connection closed during the statement \
             (the server restarted, or the connection was terminated); retry the call"
            .to_owned(),
        None => format!(
            "database communication failed: {error}; retry the call, and if it keeps failing \
             the database is unreachable"
        ),
    }
}

/// Describes an error the server reported.
pub fn db_error(db: &DbError, limits: &Limits) -> String {
    let code = db.code();
    let mut message = format!("SQLSTATE {}: {}", code.code(), db.message());
    if let Some(detail) = db.detail() {
        message.push_str(&format!(" (detail: {detail})"));
    }
    if let Some(tokio_postgres::error::ErrorPosition::Original(position)) = db.position() {
        message.push_str(&format!(" (at character {position})"));
    }
    if let Some(hint) = db.hint() {
        message.push_str(&format!(" (hint: {hint})"));
    }
    message.push_str(". ");
    message.push_str(&advice(code, db.message(), limits));
    message
}

/// What to change, by SQLSTATE.
fn advice(code: &SqlState, message: &str, limits: &Limits) -> String {
    let class = &code.code()[..2];
    if *code == SqlState::QUERY_CANCELED {
        return format!(
            "The statement ran longer than the statement timeout of {} ms \
             (PG_STATEMENT_TIMEOUT_MS): make it cheaper (filter with WHERE, add LIMIT, \
             aggregate) or ask the operator to raise PG_STATEMENT_TIMEOUT_MS.",
            limits.statement_timeout.as_millis()
        );
    }
    if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        return "Only reading is allowed: INSERT, UPDATE, DELETE, MERGE, DDL, nextval(), \
                locking reads and other writes are refused. Rewrite it as a plain SELECT."
            .into();
    }
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        return "The read-only role may only SELECT from the tables get_employee_schema lists; \
                other tables, administrative functions and role changes are off limits."
            .into();
    }
    if *code == SqlState::SYNTAX_ERROR && message.contains("multiple commands") {
        return "Send exactly one SQL statement: no second statement after a `;`.".into();
    }
    if *code == SqlState::SYNTAX_ERROR {
        return "Fix the SQL syntax near the position given.".into();
    }
    if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::UNDEFINED_COLUMN {
        return "Check the table and column names with get_employee_schema.".into();
    }
    if *code == SqlState::UNDEFINED_FUNCTION {
        return "No function of that name takes these argument types: check the name, or add \
                explicit casts (e.g. value::numeric)."
            .into();
    }
    if *code == SqlState::INVALID_PASSWORD || class == "28" {
        return "The database refused the login: check the user and password in DATABASE_URL \
                (or PG_READONLY_ROLE and PG_READONLY_PASSWORD)."
            .into();
    }
    if *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
    {
        return "A concurrent transaction got in the way: retry the call.".into();
    }
    match class {
        "22" => "A value is invalid for its type or out of range: check literals, casts and \
                 date formats (YYYY-MM-DD)."
            .into(),
        "08" => "The connection to the database failed: retry the call; if it keeps failing \
                 the database is unreachable."
            .into(),
        "57" => "The server is shutting down or restarting, or ended the connection: retry in \
                 a moment."
            .into(),
        "53" => "The server ran out of resources: make the query smaller (fewer rows, fewer \
                 joins)."
            .into(),
        "54" => "The statement exceeds a server limit: simplify it.".into(),
        "25" => "Transactions and their settings are managed by the service: send one plain \
                 query."
            .into(),
        "42" => "Fix the statement: names, types or grouping are wrong.".into(),
        _ => "Change the statement and retry.".into(),
    }
}

/// Describes a failure to get a connection from a pool for `target`
/// (`user@host:port/db`).
pub fn pool_error(error: &PoolError, target: &str, connect_timeout: Duration) -> String {
    match error {
        PoolError::Timeout(TimeoutType::Wait) => "all database connections are busy \
             (PG_POOL_SIZE): retry in a moment"
            .to_owned(),
        PoolError::Timeout(_) => format!(
            "cannot connect to the database at {target} within {} ms: check that PostgreSQL is \
             running and reachable, and the host and port in DATABASE_URL",
            connect_timeout.as_millis()
        ),
        PoolError::Backend(error) => match error.as_db_error() {
            Some(db) => format!(
                "cannot connect to the database at {target}: SQLSTATE {}: {}. Check the user, \
                 password and database name in DATABASE_URL (and PG_READONLY_ROLE / \
                 PG_READONLY_PASSWORD for run_readonly_query).",
                db.code().code(),
                db.message()
            ),
            None => format!(
                "cannot connect to the database at {target}: {error}. Check that PostgreSQL is \
                 running, and the host, port and sslmode in DATABASE_URL; then retry."
            ),
        },
        PoolError::Closed => "the database pool is closed: the service is shutting down".into(),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            format!("cannot connect to the database at {target}: {error}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_errors_say_what_to_check() {
        let limits = Duration::from_millis(1500);
        let message = pool_error(
            &PoolError::Timeout(TimeoutType::Create),
            "app@db:5432/hr",
            limits,
        );
        assert!(message.contains("app@db:5432/hr"), "{message}");
        assert!(message.contains("1500 ms"), "{message}");
        let message = pool_error(&PoolError::Timeout(TimeoutType::Wait), "x", limits);
        assert!(message.contains("PG_POOL_SIZE"), "{message}");
    }
}
