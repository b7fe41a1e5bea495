//! An unreachable or stopped database, and a wrong password: every tool
//! answers promptly with a tool error that says what to check, never with
//! the password; when the database comes back, the pools recover.

mod common;

use std::time::{Duration, Instant};

use common::{PgCluster, expect_err, free_port};
use postgres::{
    Database, Settings, resources,
    tools::{
        employees::{EmployeeQuery, query_employees},
        readonly::run_readonly_query,
        schema::{SchemaRequest, get_employee_schema},
    },
};

/// Every tool's error for `db`, each within `within`.
async fn all_tool_errors(db: &Database, within: Duration) -> Vec<String> {
    let started = Instant::now();
    let messages = vec![
        expect_err(
            query_employees(db, &EmployeeQuery::default()).await,
            "query_employees",
        ),
        expect_err(
            get_employee_schema(db, &SchemaRequest::default()).await,
            "get_employee_schema",
        ),
        expect_err(
            run_readonly_query(db, "SELECT 1").await,
            "run_readonly_query",
        ),
        expect_err(resources::list(db).await, "resources/list"),
    ];
    assert!(
        started.elapsed() < within,
        "the errors took {:?}",
        started.elapsed()
    );
    messages
}

#[tokio::test]
async fn a_stopped_database_is_a_clear_tool_error_and_recovery_is_automatic() {
    let cluster = PgCluster::start();
    let db = cluster.database();
    assert_eq!(
        query_employees(&db, &EmployeeQuery::default())
            .await
            .unwrap()
            .total,
        3000
    );
    run_readonly_query(&db, "SELECT 1").await.unwrap();

    cluster.stop();
    for message in all_tool_errors(&db, Duration::from_secs(30)).await {
        assert!(
            message.contains("cannot connect to the database") || message.contains("closed"),
            "{message}"
        );
        assert!(!message.contains(common::SUPERUSER_PASSWORD), "{message}");
        assert!(!message.contains(common::READONLY_PASSWORD), "{message}");
    }
    let message = expect_err(
        query_employees(&db, &EmployeeQuery::default()).await,
        "still down",
    );
    assert!(
        message.contains(&format!("127.0.0.1:{}", cluster.port)),
        "{message}"
    );
    assert!(message.contains("DATABASE_URL"), "{message}");

    cluster.restart();
    assert_eq!(
        query_employees(&db, &EmployeeQuery::default())
            .await
            .unwrap()
            .total,
        3000
    );
    run_readonly_query(&db, "SELECT 1").await.unwrap();
}

#[tokio::test]
async fn nothing_listening_is_reported_within_the_connect_timeout() {
    let port = free_port();
    let mut settings =
        Settings::for_url(&format!("postgres://app:hunter2@127.0.0.1:{port}/hr")).unwrap();
    settings.connect_timeout = Duration::from_millis(800);
    let db = Database::new(settings).unwrap();
    for message in all_tool_errors(&db, Duration::from_secs(10)).await {
        assert!(
            message.contains(&format!(
                "cannot connect to the database at app@127.0.0.1:{port}/hr"
            )),
            "{message}"
        );
        assert!(message.contains("running"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}

#[tokio::test]
async fn a_wrong_password_names_the_sqlstate_not_the_password() {
    let cluster = PgCluster::shared();
    let url = cluster
        .superuser_url()
        .replace(common::SUPERUSER_PASSWORD, "wrong-password-123");
    let db = Database::new(
        Settings::for_url(&url)
            .unwrap()
            .with_readonly_password("wrong-readonly-456"),
    )
    .unwrap();
    for message in all_tool_errors(&db, Duration::from_secs(30)).await {
        assert!(message.contains("28P01"), "{message}");
        assert!(message.contains("password"), "{message}");
        assert!(!message.contains("wrong-password-123"), "{message}");
        assert!(!message.contains("wrong-readonly-456"), "{message}");
    }
}
