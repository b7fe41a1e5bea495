//! Hostile input to `run_readonly_query`: writes, DDL, several statements
//! (the `COMMIT; DROP TABLE …` escape of the reference Postgres MCP server
//! and its relatives), role and setting changes, runaway statements, huge
//! results, server-side programs and files, side-effect functions. Each is
//! refused, capped, or runs and is rolled back; afterwards the data and the
//! schema are unchanged (checksum) and the pool still answers.

mod common;

use std::path::Path;

use common::{PgCluster, expect_err};
use postgres::{
    Database,
    tools::{
        employees::{EmployeeQuery, query_employees},
        readonly::run_readonly_query,
    },
};
use serde_json::json;

/// What must become of a hostile statement.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// A tool error containing one of these fragments (SQLSTATE or reason).
    Refused(&'static [&'static str]),
    /// It runs, and the rollback discards its effect (checked by the checksum).
    RolledBack,
}

use Outcome::{Refused, RolledBack};

const NOT_A_QUERY: &[&str] = &["refused: the statement returns no rows"];
const MULTIPLE: &[&str] = &["42601", "multiple commands"];
const READ_ONLY: &[&str] = &["25006", "42501"];
const DENIED: &[&str] = &["42501"];

/// The table: name, SQL, expected outcome.
const HOSTILE: &[(&str, &str, Outcome)] = &[
    // Writes.
    (
        "insert",
        "INSERT INTO departments (code, name, location, cost_center, budget) \
         VALUES ('EVIL', 'Evil', 'Nowhere', 'CC-0', 0)",
        Refused(NOT_A_QUERY),
    ),
    (
        "insert returning",
        "INSERT INTO departments (code, name, location, cost_center, budget) \
         VALUES ('EVIL', 'Evil', 'Nowhere', 'CC-0', 0) RETURNING id",
        Refused(READ_ONLY),
    ),
    (
        "update returning",
        "UPDATE employees SET salary = 1 RETURNING id",
        Refused(READ_ONLY),
    ),
    ("delete", "DELETE FROM employees", Refused(NOT_A_QUERY)),
    (
        "delete in a CTE",
        "WITH gone AS (DELETE FROM employees RETURNING *) SELECT count(*) FROM gone",
        Refused(READ_ONLY),
    ),
    (
        "merge",
        "MERGE INTO departments d USING (SELECT 1 AS id) s ON d.id = s.id \
         WHEN MATCHED THEN DELETE",
        Refused(NOT_A_QUERY),
    ),
    (
        "explain analyze delete",
        "EXPLAIN ANALYZE DELETE FROM employees",
        Refused(READ_ONLY),
    ),
    (
        "select for update",
        "SELECT * FROM employees FOR UPDATE",
        Refused(READ_ONLY),
    ),
    // DDL.
    ("drop table", "DROP TABLE employees", Refused(NOT_A_QUERY)),
    (
        "create table",
        "CREATE TABLE stolen (id int)",
        Refused(NOT_A_QUERY),
    ),
    (
        "alter table",
        "ALTER TABLE employees ADD COLUMN pwned int",
        Refused(NOT_A_QUERY),
    ),
    (
        "truncate",
        "TRUNCATE employees CASCADE",
        Refused(NOT_A_QUERY),
    ),
    (
        "create temp table",
        "CREATE TEMP TABLE scratch AS SELECT * FROM employees",
        Refused(NOT_A_QUERY),
    ),
    (
        "select into",
        "SELECT * INTO TEMP scratch FROM employees",
        Refused(NOT_A_QUERY),
    ),
    (
        "grant",
        "GRANT ALL ON employees TO mcp_readonly",
        Refused(NOT_A_QUERY),
    ),
    (
        "alter role",
        "ALTER ROLE mcp_readonly SUPERUSER",
        Refused(NOT_A_QUERY),
    ),
    ("vacuum", "VACUUM employees", Refused(NOT_A_QUERY)),
    // Several statements: the reference server's escape and relatives.
    (
        "commit; drop table",
        "COMMIT; DROP TABLE employees",
        Refused(MULTIPLE),
    ),
    (
        "commit; drop table (lowercase, comments)",
        "/* hi */ commit ; -- bye\n drop table employees;",
        Refused(MULTIPLE),
    ),
    (
        "rollback; delete",
        "ROLLBACK; DELETE FROM employees",
        Refused(MULTIPLE),
    ),
    (
        "select; drop",
        "SELECT 1; DROP TABLE employees",
        Refused(MULTIPLE),
    ),
    (
        "end; begin read write; update",
        "END; BEGIN READ WRITE; UPDATE employees SET salary = 1; COMMIT",
        Refused(MULTIPLE),
    ),
    // Transaction control and settings, alone.
    ("commit", "COMMIT", Refused(NOT_A_QUERY)),
    ("rollback", "ROLLBACK", Refused(NOT_A_QUERY)),
    (
        "set session characteristics",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        Refused(NOT_A_QUERY),
    ),
    (
        "set transaction read write",
        "SET TRANSACTION READ WRITE",
        Refused(NOT_A_QUERY),
    ),
    ("reset role", "RESET ROLE", Refused(NOT_A_QUERY)),
    (
        "set role postgres",
        "SET ROLE postgres",
        Refused(NOT_A_QUERY),
    ),
    (
        "set statement_timeout",
        "SET statement_timeout = 0",
        Refused(NOT_A_QUERY),
    ),
    (
        "set_config role",
        "SELECT set_config('role', 'postgres', false)",
        Refused(DENIED),
    ),
    (
        "set_config session_authorization",
        "SELECT set_config('session_authorization', 'postgres', false)",
        Refused(DENIED),
    ),
    (
        "set_config transaction_read_only",
        "SELECT set_config('transaction_read_only', 'off', false)",
        Refused(&["25001", "read-write mode"]),
    ),
    (
        "set_config role, then query_to_xml on pg_authid",
        "SELECT query_to_xml('SELECT rolname, rolpassword FROM pg_authid', true, false, '') \
         FROM (SELECT set_config('role', 'postgres', true)) s",
        Refused(DENIED),
    ),
    (
        "set_config statement_timeout mid-statement",
        "SELECT set_config('statement_timeout', '0', false), pg_sleep(3)",
        Refused(&["57014"]),
    ),
    (
        "set_config default_transaction_read_only",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        RolledBack,
    ),
    // Runaway statements and huge results.
    (
        "pg_sleep beyond the timeout",
        "SELECT pg_sleep(60)",
        Refused(&["57014"]),
    ),
    (
        "ten million rows",
        "SELECT generate_series(1, 10000000)",
        Refused(&["PG_MAX_ROWS"]),
    ),
    (
        "ten megabytes",
        "SELECT repeat('x', 10000000)",
        Refused(&["PG_MAX_RESULT_BYTES"]),
    ),
    (
        "cross join bomb",
        "SELECT count(*) FROM employees a, employees b, employees c",
        Refused(&["57014"]),
    ),
    // Server-side programs and files.
    (
        "copy to program",
        "COPY employees TO PROGRAM 'touch /tmp/mcp-postgres-pwned'",
        Refused(NOT_A_QUERY),
    ),
    (
        "copy to file",
        "COPY (SELECT * FROM employees) TO '/tmp/mcp-postgres-pwned'",
        Refused(NOT_A_QUERY),
    ),
    (
        "copy from",
        "COPY employees FROM '/etc/passwd'",
        Refused(NOT_A_QUERY),
    ),
    (
        "pg_read_file",
        "SELECT pg_read_file('/etc/passwd')",
        Refused(DENIED),
    ),
    ("pg_ls_dir", "SELECT pg_ls_dir('.')", Refused(DENIED)),
    (
        "lo_import",
        "SELECT lo_import('/etc/passwd')",
        Refused(DENIED),
    ),
    (
        "lo_export",
        "SELECT lo_export(1, '/tmp/mcp-postgres-pwned')",
        Refused(DENIED),
    ),
    ("lo_creat", "SELECT lo_creat(-1)", RolledBack),
    // Side-effect and privileged functions.
    (
        "terminate the service's own backends",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'postgres'",
        Refused(DENIED),
    ),
    ("pg_reload_conf", "SELECT pg_reload_conf()", Refused(DENIED)),
    (
        "dblink",
        "SELECT * FROM dblink('host=127.0.0.1 user=postgres', 'DELETE FROM employees') AS t(x text)",
        Refused(&["42883"]),
    ),
    (
        "nextval",
        "SELECT nextval('employees_id_seq')",
        Refused(READ_ONLY),
    ),
    (
        "setval",
        "SELECT setval('employees_id_seq', 1)",
        Refused(READ_ONLY),
    ),
    ("pg_authid", "SELECT * FROM pg_authid", Refused(DENIED)),
    (
        "read a table without a grant",
        "SELECT * FROM pg_catalog.pg_statistic",
        Refused(DENIED),
    ),
    ("pg_notify", "SELECT pg_notify('hr', 'hello')", RolledBack),
    (
        "session advisory lock",
        "SELECT pg_advisory_lock(4242)",
        RolledBack,
    ),
    // Procedural code.
    (
        "do block",
        "DO $$ BEGIN DELETE FROM employees; END $$",
        Refused(NOT_A_QUERY),
    ),
    (
        "call a writing procedure",
        "CALL public.raise_salaries()",
        Refused(NOT_A_QUERY),
    ),
    (
        "call a writing function",
        "SELECT public.fire_everyone()",
        Refused(READ_ONLY),
    ),
    (
        "security definer function owned by the superuser",
        "SELECT public.definer_delete()",
        Refused(READ_ONLY),
    ),
    // Other statements that are not queries.
    ("lock", "LOCK TABLE employees", Refused(NOT_A_QUERY)),
    (
        "prepare",
        "PREPARE wipe AS DELETE FROM employees",
        Refused(NOT_A_QUERY),
    ),
    ("listen", "LISTEN hr", Refused(NOT_A_QUERY)),
    (
        "declare with hold",
        "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM employees",
        Refused(NOT_A_QUERY),
    ),
    (
        "placeholders",
        "SELECT * FROM employees WHERE id = $1",
        Refused(&["placeholder"]),
    ),
];

/// Functions that write, created by the superuser before the baseline.
const FIXTURES: &str = "\
CREATE OR REPLACE PROCEDURE public.raise_salaries() LANGUAGE sql
    AS $$ UPDATE employees SET salary = salary * 2 $$;
CREATE OR REPLACE FUNCTION public.fire_everyone() RETURNS bigint LANGUAGE sql
    AS $$ WITH gone AS (DELETE FROM employees RETURNING 1) SELECT count(*) FROM gone $$;
CREATE OR REPLACE FUNCTION public.definer_delete() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$ WITH gone AS (DELETE FROM employees RETURNING 1) SELECT count(*) FROM gone $$;";

async fn pool_still_answers(db: &Database, after: &str) {
    let result = run_readonly_query(db, "SELECT count(*) AS n FROM employees")
        .await
        .unwrap_or_else(|error| panic!("after {after}: read-only pool broken: {error}"));
    assert_eq!(result.rows[0][0], json!(3000), "after {after}");
    let page = query_employees(db, &EmployeeQuery::default())
        .await
        .unwrap_or_else(|error| panic!("after {after}: main pool broken: {error}"));
    assert_eq!(page.total, 3000, "after {after}");
}

#[tokio::test]
async fn hostile_statements_are_refused_capped_or_rolled_back() {
    assert!(HOSTILE.len() >= 15);
    let cluster = PgCluster::shared();
    cluster.psql(common::DATABASE, FIXTURES);
    let db = cluster.database();
    // Make sure the main pool has superuser sessions for the
    // pg_terminate_backend case to aim at.
    pool_still_answers(&db, "setup").await;
    let baseline = cluster.checksum();

    let mut report = Vec::new();
    for (name, sql, outcome) in HOSTILE {
        let result = run_readonly_query(&db, sql).await;
        match (outcome, &result) {
            (Refused(fragments), Err(message)) => {
                assert!(
                    fragments.iter().any(|fragment| message.contains(fragment)),
                    "{name}: `{sql}` failed, but not with {fragments:?}: {message}"
                );
            }
            (Refused(_), Ok(rows)) => panic!("{name}: `{sql}` was not refused: {rows:?}"),
            (RolledBack, Ok(_)) => {}
            (RolledBack, Err(message)) => panic!("{name}: `{sql}` should run: {message}"),
        }
        report.push(format!(
            "{name}: {}",
            result.map_or_else(|message| message, |_| "ran, rolled back".into())
        ));
        pool_still_answers(&db, name).await;
        assert_eq!(cluster.checksum(), baseline, "{name} changed the data");
    }
    eprintln!("{}", report.join("\n"));

    assert!(!Path::new("/tmp/mcp-postgres-pwned").exists());
    // Session state did not survive into later calls on pooled connections.
    for _ in 0..6 {
        let shown = run_readonly_query(
            &db,
            "SELECT current_setting('default_transaction_read_only') AS d, \
                    current_setting('transaction_read_only') AS t, current_user AS u",
        )
        .await
        .unwrap();
        assert_eq!(
            shown.rows[0],
            [json!("on"), json!("on"), json!("mcp_readonly")]
        );
    }
    assert_eq!(
        cluster.psql(common::DATABASE, "SELECT pg_try_advisory_lock(4242)"),
        "t",
        "the advisory lock was released"
    );
}

#[tokio::test]
async fn terminating_its_own_backend_costs_one_call_only() {
    let cluster = PgCluster::shared();
    let db = cluster.database();
    let message = expect_err(
        run_readonly_query(&db, "SELECT pg_terminate_backend(pg_backend_pid())").await,
        "self-termination",
    );
    assert!(
        message.contains("57P01") || message.contains("closed"),
        "{message}"
    );
    pool_still_answers(&db, "self-termination").await;
}

#[tokio::test]
async fn set_role_is_refused_for_a_superuser_login() {
    let cluster = PgCluster::shared();
    // DATABASE_URL logs in as the superuser and no PG_READONLY_PASSWORD:
    // SET ROLE could be undone from inside a statement, so the tool refuses.
    let settings = postgres::Settings::for_url(&cluster.superuser_url()).unwrap();
    let db = Database::new(settings).unwrap();
    let message = expect_err(
        run_readonly_query(&db, "SELECT 1").await,
        "superuser SET ROLE",
    );
    assert!(message.contains("superuser"), "{message}");
    assert!(message.contains("PG_READONLY_PASSWORD"), "{message}");
    assert!(!message.contains(common::SUPERUSER_PASSWORD), "{message}");
    // The fixed tools keep working.
    let page = query_employees(&db, &EmployeeQuery::default())
        .await
        .unwrap();
    assert_eq!(page.total, 3000);
}

#[tokio::test]
async fn a_service_logged_in_as_the_readonly_role_uses_set_role_safely() {
    let cluster = PgCluster::shared();
    let settings = postgres::Settings::for_url(&cluster.readonly_url()).unwrap();
    let db = Database::new(settings).unwrap();
    let who = run_readonly_query(&db, "SELECT current_user, session_user")
        .await
        .unwrap();
    assert_eq!(who.rows[0], [json!("mcp_readonly"), json!("mcp_readonly")]);
    for (sql, code) in [
        ("SELECT set_config('role', 'postgres', true)", "42501"),
        ("COMMIT; DROP TABLE employees", "42601"),
        ("UPDATE employees SET salary = 1 RETURNING id", "25006"),
        ("RESET ROLE", "no rows"),
    ] {
        let message = expect_err(run_readonly_query(&db, sql).await, sql);
        assert!(message.contains(code), "{sql}: {message}");
    }
    let page = query_employees(&db, &EmployeeQuery::default())
        .await
        .unwrap();
    assert_eq!(page.total, 3000);
}
