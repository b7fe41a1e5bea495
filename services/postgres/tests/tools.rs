//! The tools and resources against a real PostgreSQL with the sample data:
//! every filter of `query_employees`, sorting and paging, the catalog, the
//! resources, JSON conversion and the caps of `run_readonly_query`.

mod common;

use common::{PgCluster, expect_err};
use postgres::{
    resources,
    tools::{
        employees::{EmployeeQuery, SortColumn, SortOrder, query_employees},
        readonly::run_readonly_query,
        schema::{SchemaRequest, get_employee_schema},
    },
};
use serde_json::{Value, json};

fn count(cluster: &PgCluster, condition: &str) -> i64 {
    cluster
        .psql(
            common::DATABASE,
            &format!(
                "SELECT count(*) FROM employees e JOIN departments d ON d.id = e.department_id \
                 WHERE {condition}"
            ),
        )
        .parse()
        .expect("a count")
}

#[tokio::test]
async fn every_filter_matches_an_independent_count() {
    let cluster = PgCluster::shared();
    let db = cluster.database();
    let cases: Vec<(EmployeeQuery, &str)> = vec![
        (EmployeeQuery::default(), "true"),
        (
            EmployeeQuery {
                department: Some("engineering".into()),
                ..EmployeeQuery::default()
            },
            "d.name = 'Engineering'",
        ),
        (
            EmployeeQuery {
                department: Some("HR".into()),
                ..EmployeeQuery::default()
            },
            "d.code = 'HR'",
        ),
        (
            EmployeeQuery {
                name_contains: Some("SMITH".into()),
                ..EmployeeQuery::default()
            },
            "(e.first_name || ' ' || e.last_name) ILIKE '%smith%'",
        ),
        (
            EmployeeQuery {
                name_contains: Some("mary j".into()),
                ..EmployeeQuery::default()
            },
            "(e.first_name || ' ' || e.last_name) ILIKE '%mary j%'",
        ),
        (
            EmployeeQuery {
                name_contains: Some("o'b".into()),
                ..EmployeeQuery::default()
            },
            "e.last_name LIKE 'O''B%'",
        ),
        (
            EmployeeQuery {
                title: Some("engineer".into()),
                ..EmployeeQuery::default()
            },
            "e.title ILIKE '%engineer%'",
        ),
        (
            EmployeeQuery {
                hired_from: Some("2020-01-01".into()),
                hired_to: Some("2020-12-31".into()),
                ..EmployeeQuery::default()
            },
            "e.hire_date BETWEEN '2020-01-01' AND '2020-12-31'",
        ),
        (
            EmployeeQuery {
                hired_to: Some("2013-06-30".into()),
                ..EmployeeQuery::default()
            },
            "e.hire_date <= '2013-06-30'",
        ),
        (
            EmployeeQuery {
                salary_min: Some(150000.0),
                salary_max: Some(200000.0),
                ..EmployeeQuery::default()
            },
            "e.salary BETWEEN 150000 AND 200000",
        ),
        (
            EmployeeQuery {
                salary_min: Some(250000.5),
                ..EmployeeQuery::default()
            },
            "e.salary >= 250000.5",
        ),
        (
            EmployeeQuery {
                active: Some(false),
                ..EmployeeQuery::default()
            },
            "NOT e.is_active",
        ),
        (
            EmployeeQuery {
                department: Some("Sales".into()),
                title: Some("account".into()),
                hired_from: Some("2015-01-01".into()),
                salary_min: Some(80000.0),
                active: Some(true),
                ..EmployeeQuery::default()
            },
            "d.name = 'Sales' AND e.title ILIKE '%account%' AND e.hire_date >= '2015-01-01' \
             AND e.salary >= 80000 AND e.is_active",
        ),
        (
            EmployeeQuery {
                name_contains: Some("100%_".into()),
                ..EmployeeQuery::default()
            },
            "false",
        ),
        (
            EmployeeQuery {
                department: Some("Nonexistent".into()),
                ..EmployeeQuery::default()
            },
            "false",
        ),
    ];
    for (query, condition) in cases {
        let expected = count(&cluster, condition);
        let page = query_employees(&db, &query)
            .await
            .unwrap_or_else(|error| panic!("{query:?}: {error}"));
        assert_eq!(page.total, expected, "{query:?} vs {condition}");
        assert_eq!(page.employees.len() as i64, expected.min(50), "{query:?}");
        assert_eq!(page.has_more, expected > 50, "{query:?}");
        if expected > 0 {
            assert!(
                expected < 3000 || condition == "true",
                "{condition} filters nothing"
            );
        }
        for employee in &page.employees {
            if let Some(department) = &query.department
                && department.len() > 3
            {
                assert!(employee.department.eq_ignore_ascii_case(department));
            }
            if let Some(min) = query.salary_min {
                assert!(employee.salary.parse::<f64>().unwrap() >= min);
            }
            if let Some(active) = query.active {
                assert_eq!(employee.is_active, active);
                assert_eq!(employee.termination_date.is_none(), active);
            }
        }
    }
}

#[tokio::test]
async fn employees_carry_department_manager_and_exact_salary() {
    let cluster = PgCluster::shared();
    let db = cluster.database();
    let page = query_employees(
        &db,
        &EmployeeQuery {
            limit: Some(2),
            ..EmployeeQuery::default()
        },
    )
    .await
    .unwrap();
    let ceo = &page.employees[0];
    assert_eq!(ceo.id, 1);
    assert_eq!(ceo.title, "Chief Executive Officer");
    assert_eq!(ceo.department, "Executive");
    assert_eq!(ceo.manager_id, None);
    assert_eq!(ceo.salary, "420000.00");
    assert_eq!(ceo.hire_date, "2012-01-02");
    assert_eq!(ceo.email, "eleanor.whitfield@example.com");
    let vp = &page.employees[1];
    assert_eq!(vp.manager_id, Some(1));
    assert_eq!(vp.manager_name.as_deref(), Some("Eleanor Whitfield"));
    assert_eq!(page.total, 3000);
    assert!(page.has_more);
}

#[tokio::test]
async fn sorting_and_paging_walk_every_match_once() {
    let cluster = PgCluster::shared();
    let db = cluster.database();
    let engineering = count(&cluster, "d.name = 'Engineering'");
    let mut seen = Vec::new();
    let mut previous: Option<(String, i32)> = None;
    let mut offset = 0;
    loop {
        let page = query_employees(
            &db,
            &EmployeeQuery {
                department: Some("Engineering".into()),
                sort_by: Some(SortColumn::Salary),
                sort_order: Some(SortOrder::Desc),
                limit: Some(200),
                offset: Some(offset),
                ..EmployeeQuery::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(page.total, engineering);
        assert_eq!(page.order, "salary DESC, id ASC");
        for employee in &page.employees {
            let salary = employee.salary.parse::<f64>().unwrap();
            if let Some((previous_salary, previous_id)) = &previous {
                let previous_salary = previous_salary.parse::<f64>().unwrap();
                assert!(
                    salary < previous_salary
                        || (salary == previous_salary && employee.id > *previous_id),
                    "order broken at {employee:?}"
                );
            }
            previous = Some((employee.salary.clone(), employee.id));
            seen.push(employee.id);
        }
        if !page.has_more {
            break;
        }
        offset += 200;
    }
    assert_eq!(seen.len() as i64, engineering);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen.len() as i64,
        engineering,
        "a row appeared on two pages"
    );

    for (column, expected_first) in [
        (SortColumn::Id, json!(1)),
        (SortColumn::HireDate, json!("2012-01-02")),
        (SortColumn::Department, json!("Customer Support")),
    ] {
        let page = query_employees(
            &db,
            &EmployeeQuery {
                sort_by: Some(column),
                limit: Some(1),
                ..EmployeeQuery::default()
            },
        )
        .await
        .unwrap();
        let first = serde_json::to_value(&page.employees[0]).unwrap();
        let field = match column {
            SortColumn::Id => "id",
            SortColumn::HireDate => "hire_date",
            _ => "department",
        };
        assert_eq!(first[field], expected_first, "{column:?}");
    }
    let by_name = query_employees(
        &db,
        &EmployeeQuery {
            sort_by: Some(SortColumn::LastName),
            limit: Some(500),
            ..EmployeeQuery::default()
        },
    )
    .await
    .unwrap();
    let names: Vec<(String, String)> = by_name
        .employees
        .iter()
        .map(|e| (e.last_name.clone(), e.first_name.clone()))
        .collect();
    let expected_first = cluster.psql(
        common::DATABASE,
        "SELECT last_name || ',' || first_name FROM employees ORDER BY last_name, first_name, id \
         LIMIT 1",
    );
    assert_eq!(format!("{},{}", names[0].0, names[0].1), expected_first);
    assert!(names.windows(2).all(|pair| pair[0] <= pair[1]));

    let capped = query_employees(
        &db,
        &EmployeeQuery {
            limit: Some(10_000),
            ..EmployeeQuery::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(capped.limit, 500);
    assert_eq!(capped.employees.len(), 500);
    assert!(capped.note.unwrap().contains("PG_QUERY_LIMIT_CAP"));

    let beyond = query_employees(
        &db,
        &EmployeeQuery {
            offset: Some(5000),
            ..EmployeeQuery::default()
        },
    )
    .await
    .unwrap();
    assert!(beyond.employees.is_empty());
    assert_eq!(beyond.total, 3000);
    assert!(!beyond.has_more);
}

#[tokio::test]
async fn the_schema_comes_from_the_catalog() {
    let cluster = PgCluster::shared();
    let db = cluster.database();
    let schema = get_employee_schema(&db, &SchemaRequest::default())
        .await
        .unwrap();
    let names: Vec<&str> = schema.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["departments", "employees"]);
    let employees = &schema.tables[1];
    assert_eq!(employees.primary_key, ["id"]);
    assert_eq!(employees.kind, "table");
    assert_eq!(employees.resource_uri, "postgres://public/employees/schema");
    let column = |name: &str| {
        employees
            .columns
            .iter()
            .find(|column| column.name == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    assert_eq!(column("salary").data_type, "numeric(12,2)");
    assert!(!column("salary").nullable);
    assert!(column("manager_id").nullable);
    assert_eq!(column("hire_date").data_type, "date");
    assert_eq!(column("email").data_type, "character varying(254)");
    assert_eq!(
        column("id").default.as_deref(),
        Some("GENERATED BY DEFAULT AS IDENTITY")
    );
    assert!(column("manager_id").description.is_some());
    let fks: Vec<(String, Vec<String>, String, Vec<String>)> = employees
        .foreign_keys
        .iter()
        .map(|fk| {
            (
                fk.name.clone(),
                fk.columns.clone(),
                fk.references_table.clone(),
                fk.references_columns.clone(),
            )
        })
        .collect();
    assert_eq!(
        fks,
        [
            (
                "employees_department_id_fkey".to_owned(),
                vec!["department_id".to_owned()],
                "departments".to_owned(),
                vec!["id".to_owned()]
            ),
            (
                "employees_manager_id_fkey".to_owned(),
                vec!["manager_id".to_owned()],
                "employees".to_owned(),
                vec!["id".to_owned()]
            ),
        ]
    );
    assert!(
        employees
            .unique_constraints
            .iter()
            .any(|unique| unique.columns == ["email"])
    );
    assert!(
        employees
            .check_constraints
            .iter()
            .any(|check| check.definition.contains("salary > "))
    );
    assert!(
        employees
            .indexes
            .iter()
            .any(|index| index.name == "employees_hire_date_idx" && !index.unique)
    );

    let one = get_employee_schema(
        &db,
        &SchemaRequest {
            table: Some("departments".into()),
        },
    )
    .await
    .unwrap();
    assert_eq!(one.tables.len(), 1);
    assert_eq!(one.tables[0].primary_key, ["id"]);

    let message = expect_err(
        get_employee_schema(
            &db,
            &SchemaRequest {
                table: Some("salaries".into()),
            },
        )
        .await,
        "unknown table",
    );
    assert!(message.contains("departments, employees"), "{message}");
}

#[tokio::test]
async fn table_schemas_are_resources() {
    let cluster = PgCluster::shared();
    let db = cluster.database();
    let listed = resources::list(&db).await.unwrap();
    let uris: Vec<&str> = listed.resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "postgres://public/departments/schema",
            "postgres://public/employees/schema"
        ]
    );
    assert!(
        listed
            .resources
            .iter()
            .all(|r| r.mime_type.as_deref() == Some("application/json"))
    );
    let templates = resources::templates();
    assert_eq!(
        templates.resource_templates[0].uri_template,
        "postgres://{schema}/{table}/schema"
    );

    let read = resources::read(&db, "postgres://public/employees/schema")
        .await
        .unwrap();
    let text = match &read.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents {
            text, mime_type, ..
        } => {
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            text.clone()
        }
        other => panic!("expected text, got {other:?}"),
    };
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema["name"], "employees");
    assert_eq!(schema["primary_key"], json!(["id"]));

    for missing in [
        "postgres://public/salaries/schema",
        "postgres://public/employees",
        "file:///etc/passwd",
    ] {
        match resources::read(&db, missing).await {
            Err(resources::ReadError::NotFound(message)) => {
                assert!(message.contains("resources/list") || message.contains("template"))
            }
            other => panic!("{missing}: expected not found, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn rows_of_every_common_type_become_json() {
    let cluster = PgCluster::shared();
    let db = cluster.database();
    let result = run_readonly_query(
        &db,
        "SELECT 42::int2 AS small, 7::int4 AS int, 9007199254740993::int8 AS big, \
                1.5::float4 AS real, 0.1::float8 AS double, 'NaN'::float8 AS nan, \
                123456789.123456789::numeric AS num, '-0.001'::numeric(10,4) AS neg, \
                'Infinity'::numeric AS inf, 12.34::money AS cash, \
                'héllo'::text AS txt, 'ab'::char(4) AS padded, true AS yes, NULL::int AS nothing, \
                DATE '2024-02-29' AS day, 'infinity'::date AS forever, \
                TIMESTAMP '2024-02-29 13:45:01.25' AS ts, \
                TIMESTAMPTZ '2024-02-29 13:45:01+02' AS tstz, TIME '08:30' AS t, \
                INTERVAL '1 year 2 months 3 days 04:05:06.5' AS iv, \
                '{\"a\": [1, null]}'::jsonb AS doc, '[1,2]'::json AS arr, \
                'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, '\\x01ff'::bytea AS raw, \
                '10.1.2.3/16'::inet AS net, ARRAY[[1,2],[3,NULL]] AS matrix, \
                ARRAY['x','y'] AS texts, ROW(1, 'two') AS rec, \
                'a fat cat'::tsvector AS vec",
    )
    .await
    .unwrap();
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    let row: serde_json::Map<String, Value> = names
        .iter()
        .map(|name| name.to_string())
        .zip(result.rows[0].iter().cloned())
        .collect();
    let expected = json!({
        "small": 42, "int": 7, "big": 9007199254740993_i64, "real": 1.5, "double": 0.1,
        "nan": "NaN", "num": "123456789.123456789", "neg": "-0.0010", "inf": "Infinity",
        "cash": "12.34", "txt": "héllo", "padded": "ab  ", "yes": true, "nothing": null,
        "day": "2024-02-29", "forever": "infinity", "ts": "2024-02-29T13:45:01.250",
        "tstz": "2024-02-29T11:45:01Z", "t": "08:30:00", "iv": "P1Y2M3DT4H5M6.5S",
        "doc": {"a": [1, null]}, "arr": [1, 2], "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "raw": "\\x01ff", "net": "10.1.2.3/16", "matrix": [[1, 2], [3, null]],
        "texts": ["x", "y"], "rec": {"f1": 1, "f2": "two"}
    });
    for (name, value) in expected.as_object().unwrap() {
        assert_eq!(&row[name], value, "column {name}");
    }
    let vec = row["vec"].as_str().unwrap();
    assert!(vec.contains("tsvector") && vec.contains("::text"), "{vec}");
    assert_eq!(result.columns[2].type_name, "int8");

    // numeric text matches PostgreSQL's own rendering, digit for digit.
    let check = run_readonly_query(
        &db,
        "SELECT v, v::text FROM (VALUES (0::numeric), (0.00), (1e-20), \
         (-12345678901234567890.5), (10000), (99990000.0001), (1.10)) t(v) \
         UNION ALL SELECT salary, salary::text FROM employees",
    )
    .await
    .unwrap();
    for row in &check.rows {
        assert_eq!(row[0], row[1]);
    }
}

#[tokio::test]
async fn readonly_queries_answer_what_the_filters_cannot() {
    let cluster = PgCluster::shared();
    let db = cluster.database();
    let result = run_readonly_query(
        &db,
        "SELECT d.name, count(*) AS headcount, avg(e.salary)::numeric(12,2) AS avg_salary \
         FROM employees e JOIN departments d ON d.id = e.department_id \
         GROUP BY d.name ORDER BY headcount DESC;",
    )
    .await
    .unwrap();
    assert_eq!(result.row_count, 11);
    assert_eq!(result.rows[0][0], "Engineering");
    assert_eq!(
        result.rows[0][1],
        json!(count(&cluster, "d.name = 'Engineering'"))
    );
    assert_eq!(result.columns[2].type_name, "numeric");

    for sql in [
        "SHOW statement_timeout",
        "EXPLAIN SELECT * FROM employees",
        "VALUES (1)",
    ] {
        run_readonly_query(&db, sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }
    let shown = run_readonly_query(&db, "SHOW transaction_read_only")
        .await
        .unwrap();
    assert_eq!(shown.rows[0][0], "on");
    let who = run_readonly_query(&db, "SELECT current_user, session_user")
        .await
        .unwrap();
    assert_eq!(who.rows[0], [json!("mcp_readonly"), json!("mcp_readonly")]);
}

#[tokio::test]
async fn query_errors_carry_the_sqlstate_and_advice() {
    let cluster = PgCluster::shared();
    let db = cluster.database();
    let cases = [
        ("SELECT * FROM employes", "42P01", "get_employee_schema"),
        (
            "SELECT salry FROM employees",
            "42703",
            "get_employee_schema",
        ),
        ("SELEC 1", "42601", "syntax"),
        ("SELECT 1/0", "22012", "value"),
        ("SELECT $1::int", "parameter", "inline"),
        ("", "empty", "SELECT"),
        ("SELECT pg_sleep(5)", "57014", "PG_STATEMENT_TIMEOUT_MS"),
        (
            "SELECT g FROM generate_series(1, 10000) g",
            "PG_MAX_ROWS",
            "LIMIT",
        ),
        (
            "SELECT repeat('x', 100000) FROM generate_series(1, 100)",
            "PG_MAX_RESULT_BYTES",
            "LIMIT",
        ),
    ];
    for (sql, code, advice) in cases {
        let message = expect_err(run_readonly_query(&db, sql).await, sql);
        assert!(message.contains(code), "{sql}: {message}");
        assert!(message.contains(advice), "{sql}: {message}");
    }
    // Each failure left the pool usable.
    let result = run_readonly_query(&db, "SELECT count(*) FROM employees")
        .await
        .unwrap();
    assert_eq!(result.rows[0][0], json!(3000));
}

/// Red-team finding 11: `get_employee_schema` and the schema resources
/// describe what the read-only role may read, nothing more: a table it has
/// no grant on is absent, and of a table it may read only some columns of,
/// the other columns and the constraints and indexes naming them are too.
#[tokio::test]
async fn the_schema_shows_only_what_the_read_only_role_may_read() {
    let cluster = PgCluster::start();
    cluster.psql(
        common::DATABASE,
        "CREATE TABLE salary_audit (id int PRIMARY KEY, note text); \
         CREATE TABLE badges (id int PRIMARY KEY, holder text NOT NULL, pin_code text, \
                              CONSTRAINT pin_code_digits CHECK (pin_code ~ '^[0-9]+$')); \
         CREATE UNIQUE INDEX badges_pin_code ON badges (pin_code); \
         CREATE INDEX badges_holder ON badges (holder); \
         GRANT SELECT (id, holder) ON badges TO mcp_readonly;",
    );
    let db = cluster.database();
    let schema = get_employee_schema(&db, &SchemaRequest::default())
        .await
        .unwrap();
    let names: Vec<&str> = schema.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["badges", "departments", "employees"]);
    let badges = &schema.tables[0];
    let columns: Vec<&str> = badges.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["id", "holder"]);
    let indexes: Vec<&str> = badges.indexes.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(indexes, ["badges_holder", "badges_pkey"]);
    assert!(badges.check_constraints.is_empty());
    let json = serde_json::to_string(&schema).unwrap();
    assert!(
        !json.contains("pin_code") && !json.contains("salary_audit"),
        "{json}"
    );
    // Asking for the hidden table by name: not there, and not named.
    let error = expect_err(
        get_employee_schema(
            &db,
            &SchemaRequest {
                table: Some("salary_audit".into()),
            },
        )
        .await,
        "a table the read-only role cannot read",
    );
    assert!(error.contains("no table `salary_audit`"), "{error}");
    assert!(error.contains("badges, departments, employees"), "{error}");
    // What it shows, the read-only role can query.
    let rows = run_readonly_query(&db, "SELECT id, holder FROM badges").await;
    assert!(rows.is_ok(), "{rows:?}");
}
