//! `query_employees`: the employee directory with filters, sorting and paging.
//!
//! The SQL text is assembled only from fixed fragments of this file: every
//! filter value is bound as a parameter (`$1`, `$2`, …), and the sort column
//! comes from the [`SortColumn`] whitelist, so no input reaches the SQL text.

use chrono::NaiveDate;
use rmcp::{
    Json,
    handler::server::wrapper::Parameters,
    schemars::{self, JsonSchema},
    tool, tool_router,
};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Row, types::ToSql};

use crate::{
    config::Limits,
    db::{Access, Database},
    errors,
    server::PostgresServer,
};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;

/// Longest accepted text filter, in characters.
const MAX_FILTER_CHARS: usize = 200;

/// Columns `query_employees` can sort by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortColumn {
    /// Employee id (hiring order of the seed data).
    #[default]
    Id,
    /// First name.
    FirstName,
    /// Last name, then first name.
    LastName,
    /// Job title.
    Title,
    /// Department name.
    Department,
    /// Hire date.
    HireDate,
    /// Yearly salary.
    Salary,
}

impl SortColumn {
    /// The ORDER BY expression: fixed SQL per variant.
    fn sql(self) -> &'static [&'static str] {
        match self {
            Self::Id => &["e.id"],
            Self::FirstName => &["e.first_name"],
            Self::LastName => &["e.last_name", "e.first_name"],
            Self::Title => &["e.title"],
            Self::Department => &["d.name"],
            Self::HireDate => &["e.hire_date"],
            Self::Salary => &["e.salary"],
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending: A→Z, oldest first, lowest first.
    #[default]
    Asc,
    /// Descending: Z→A, newest first, highest first.
    Desc,
}

impl SortOrder {
    fn sql(self) -> &'static str {
        match self {
            Self::Asc => "ASC",
            Self::Desc => "DESC",
        }
    }
}

/// Filters, sort and page of `query_employees`. Every field is optional;
/// filters combine with AND.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EmployeeQuery {
    /// Department name or code, case-insensitive, exact: e.g. "Engineering" or "ENG".
    pub department: Option<String>,
    /// Part of the full name ("first last"), case-insensitive: e.g. "smith" or "mary j".
    pub name_contains: Option<String>,
    /// Part of the job title, case-insensitive: e.g. "engineer" matches "Senior Software Engineer".
    pub title: Option<String>,
    /// Hired on or after this date, YYYY-MM-DD, e.g. "2020-01-01".
    pub hired_from: Option<String>,
    /// Hired on or before this date, YYYY-MM-DD, e.g. "2020-12-31".
    pub hired_to: Option<String>,
    /// Yearly salary at least this much (USD), e.g. 100000.
    pub salary_min: Option<f64>,
    /// Yearly salary at most this much (USD), e.g. 150000.
    pub salary_max: Option<f64>,
    /// true: current employees only; false: former employees only; omit for both.
    pub active: Option<bool>,
    /// Sort column (default id); ties are broken by id.
    pub sort_by: Option<SortColumn>,
    /// Sort direction, asc (default) or desc.
    pub sort_order: Option<SortOrder>,
    /// Employees per page, default 50, at most PG_QUERY_LIMIT_CAP (500 by default).
    pub limit: Option<u32>,
    /// Employees to skip before the page starts (default 0): the next page is offset + limit.
    pub offset: Option<u32>,
}

/// One employee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Employee {
    /// Employee id.
    pub id: i32,
    /// HR number, e.g. E00042.
    pub employee_number: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Work e-mail address.
    pub email: String,
    /// Phone number, if known.
    pub phone: Option<String>,
    /// Job title.
    pub title: String,
    /// Department name.
    pub department: String,
    /// Department id.
    pub department_id: i32,
    /// Id of the direct manager (none for the CEO).
    pub manager_id: Option<i32>,
    /// Full name of the direct manager.
    pub manager_name: Option<String>,
    /// Hire date, YYYY-MM-DD.
    pub hire_date: String,
    /// Last working day, YYYY-MM-DD, for former employees.
    pub termination_date: Option<String>,
    /// Yearly salary as an exact decimal string, e.g. "85000.00".
    pub salary: String,
    /// Currency of the salary, e.g. USD.
    pub currency: String,
    /// full_time, part_time, contractor or intern.
    pub employment_type: String,
    /// Whether the person is still employed.
    pub is_active: bool,
}

/// One page of matching employees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmployeePage {
    /// The employees of this page, in the requested order.
    pub employees: Vec<Employee>,
    /// Number of matching employees over all pages.
    pub total: i64,
    /// Offset of this page.
    pub offset: i64,
    /// Page size applied (the requested limit, capped).
    pub limit: i64,
    /// Whether more matches follow this page (request offset + limit next).
    pub has_more: bool,
    /// The order applied, e.g. "salary DESC, id ASC".
    pub order: String,
    /// Remarks about the request, e.g. that the limit was capped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

const SELECT: &str = "\
SELECT e.id, e.employee_number, e.first_name, e.last_name, e.email, e.phone, e.title,
       d.name AS department, e.department_id, e.manager_id,
       m.first_name || ' ' || m.last_name AS manager_name,
       e.hire_date, e.termination_date, e.salary::text AS salary, e.currency,
       e.employment_type, e.is_active, count(*) OVER () AS total
FROM employees e
JOIN departments d ON d.id = e.department_id
LEFT JOIN employees m ON m.id = e.manager_id";

const COUNT: &str = "\
SELECT count(*)
FROM employees e
JOIN departments d ON d.id = e.department_id";

type Param = Box<dyn ToSql + Sync + Send>;

/// A validated request: the WHERE clause with its bound values, the ORDER
/// BY clause, and the page.
pub struct PlannedQuery {
    /// The data query, with `$n` placeholders only.
    pub sql: String,
    /// The count query (same filters), used when the page is empty.
    pub count_sql: String,
    /// The values of the filters, `$1` .. `$n`.
    params: Vec<Param>,
    /// Page size applied.
    pub limit: i64,
    /// Offset applied.
    pub offset: i64,
    /// Human-readable order.
    pub order: String,
    /// Remark for the caller.
    pub note: Option<String>,
}

impl std::fmt::Debug for PlannedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedQuery")
            .field("sql", &self.sql)
            .field("params", &self.params.len())
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// Escapes LIKE wildcards so that the text matches literally.
fn like_pattern(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

fn text_filter(name: &str, value: Option<&String>) -> Result<Option<String>, String> {
    let Some(value) = value
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
    else {
        return Ok(None);
    };
    if value.chars().count() > MAX_FILTER_CHARS {
        return Err(format!(
            "{name} is longer than {MAX_FILTER_CHARS} characters: shorten it"
        ));
    }
    Ok(Some(value.to_owned()))
}

fn date_filter(name: &str, value: Option<&String>) -> Result<Option<NaiveDate>, String> {
    let Some(value) = value
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
    else {
        return Ok(None);
    };
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| format!("{name} `{value}` is not a date: write YYYY-MM-DD, e.g. 2020-01-31"))
}

fn salary_filter(name: &str, value: Option<f64>) -> Result<Option<f64>, String> {
    match value {
        Some(value) if !value.is_finite() || value < 0.0 => Err(format!(
            "{name} must be a non-negative number of USD per year, e.g. 100000"
        )),
        other => Ok(other),
    }
}

/// Validates `query` and builds its SQL.
///
/// # Errors
/// A message naming the invalid field and what to send instead.
pub fn plan(query: &EmployeeQuery, limits: &Limits) -> Result<PlannedQuery, String> {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut bind = |template: &str, value: Param| {
        params.push(value);
        clauses.push(template.replace("$?", &format!("${}", params.len())));
    };
    if let Some(department) = text_filter("department", query.department.as_ref())? {
        bind(
            "(lower(d.name) = lower($?) OR lower(d.code) = lower($?))",
            Box::new(department),
        );
    }
    if let Some(name) = text_filter("name_contains", query.name_contains.as_ref())? {
        bind(
            "(e.first_name || ' ' || e.last_name) ILIKE $?",
            Box::new(like_pattern(&name)),
        );
    }
    if let Some(title) = text_filter("title", query.title.as_ref())? {
        bind("e.title ILIKE $?", Box::new(like_pattern(&title)));
    }
    let hired_from = date_filter("hired_from", query.hired_from.as_ref())?;
    let hired_to = date_filter("hired_to", query.hired_to.as_ref())?;
    if let (Some(from), Some(to)) = (hired_from, hired_to)
        && from > to
    {
        return Err(format!(
            "hired_from ({from}) is after hired_to ({to}): swap them"
        ));
    }
    if let Some(from) = hired_from {
        bind("e.hire_date >= $?", Box::new(from));
    }
    if let Some(to) = hired_to {
        bind("e.hire_date <= $?", Box::new(to));
    }
    let salary_min = salary_filter("salary_min", query.salary_min)?;
    let salary_max = salary_filter("salary_max", query.salary_max)?;
    if let (Some(min), Some(max)) = (salary_min, salary_max)
        && min > max
    {
        return Err(format!(
            "salary_min ({min}) is greater than salary_max ({max}): swap them"
        ));
    }
    if let Some(min) = salary_min {
        bind("e.salary >= $?::float8::numeric", Box::new(min));
    }
    if let Some(max) = salary_max {
        bind("e.salary <= $?::float8::numeric", Box::new(max));
    }
    if let Some(active) = query.active {
        bind("e.is_active = $?", Box::new(active));
    }

    let requested = query.limit.unwrap_or(DEFAULT_LIMIT);
    if requested == 0 {
        return Err("limit must be at least 1".into());
    }
    let cap = limits.query_limit_cap;
    let (limit, note) = if requested > cap {
        (
            cap,
            Some(format!(
                "limit {requested} exceeds the cap of {cap} (PG_QUERY_LIMIT_CAP): returned {cap} \
                 per page; page on with offset"
            )),
        )
    } else {
        (requested, None)
    };
    let offset = query.offset.unwrap_or(0);

    let column = query.sort_by.unwrap_or_default();
    let direction = query.sort_order.unwrap_or_default().sql();
    let mut order: Vec<String> = column
        .sql()
        .iter()
        .map(|expression| format!("{expression} {direction}"))
        .collect();
    if column != SortColumn::Id {
        order.push("e.id ASC".into());
    }
    let order = order.join(", ");

    let where_sql = if clauses.is_empty() {
        "TRUE".to_owned()
    } else {
        clauses.join("\n  AND ")
    };
    let count = params.len();
    Ok(PlannedQuery {
        sql: format!(
            "{SELECT}\nWHERE {where_sql}\nORDER BY {order}\nLIMIT ${} OFFSET ${}",
            count + 1,
            count + 2
        ),
        count_sql: format!("{COUNT}\nWHERE {where_sql}"),
        params,
        limit: i64::from(limit),
        offset: i64::from(offset),
        order: order.replace("e.", "").replace("d.name", "department"),
        note,
    })
}

fn employee(row: &Row) -> Result<Employee, tokio_postgres::Error> {
    Ok(Employee {
        id: row.try_get("id")?,
        employee_number: row.try_get("employee_number")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        title: row.try_get("title")?,
        department: row.try_get("department")?,
        department_id: row.try_get("department_id")?,
        manager_id: row.try_get("manager_id")?,
        manager_name: row.try_get("manager_name")?,
        hire_date: row.try_get::<_, NaiveDate>("hire_date")?.to_string(),
        termination_date: row
            .try_get::<_, Option<NaiveDate>>("termination_date")?
            .map(|date| date.to_string()),
        salary: row.try_get("salary")?,
        currency: row.try_get("currency")?,
        employment_type: row.try_get("employment_type")?,
        is_active: row.try_get("is_active")?,
    })
}

/// Runs `query_employees`.
///
/// # Errors
/// The tool error message: invalid arguments, or the database's failure.
pub async fn query_employees(db: &Database, query: &EmployeeQuery) -> Result<EmployeePage, String> {
    let limits = db.limits();
    let planned = plan(query, &limits)?;
    db.read(Access::Service, move |tx| {
        Box::pin(async move {
            let failed = |error: tokio_postgres::Error| errors::query_error(&error, &limits);
            let mut values: Vec<&(dyn ToSql + Sync)> = planned
                .params
                .iter()
                .map(|value| value.as_ref() as &(dyn ToSql + Sync))
                .collect();
            values.push(&planned.limit);
            values.push(&planned.offset);
            let rows = tx.query(&planned.sql, &values).await.map_err(failed)?;
            let employees = rows
                .iter()
                .map(employee)
                .collect::<Result<Vec<_>, _>>()
                .map_err(failed)?;
            let total: i64 = match rows.first() {
                Some(row) => row.try_get("total").map_err(failed)?,
                None if planned.offset == 0 => 0,
                None => tx
                    .query_one(&planned.count_sql, &values[..values.len() - 2])
                    .await
                    .and_then(|row| row.try_get(0))
                    .map_err(failed)?,
            };
            Ok(EmployeePage {
                has_more: planned.offset + (employees.len() as i64) < total,
                employees,
                total,
                offset: planned.offset,
                limit: planned.limit,
                order: planned.order,
                note: planned.note,
            })
        })
    })
    .await
}

/// The tool description, with the configured cap.
pub fn description(limits: &Limits) -> String {
    format!(
        "Search the HR employee directory (employees with their department and manager) with \
         filters, sorting and paging. All filters are optional and combine with AND: \
         department (name or code, e.g. \"Engineering\" or \"ENG\"), name_contains (part of the \
         full name, case-insensitive), title (part of the job title, case-insensitive), \
         hired_from / hired_to (YYYY-MM-DD, inclusive), salary_min / salary_max (yearly USD, \
         inclusive), active (true: current employees only). sort_by: id, first_name, \
         last_name, title, department, hire_date or salary; sort_order: asc or desc. limit \
         (default {DEFAULT_LIMIT}, at most {cap}) and offset page through the matches: `total` \
         counts all matches and `has_more` says whether to request offset + limit next. \
         Salaries are exact decimal strings. For counts, averages, groupings or anything \
         these filters cannot express, use run_readonly_query.",
        cap = limits.query_limit_cap
    )
}

#[tool_router(router = employees_router, vis = "pub(crate)")]
impl PostgresServer {
    #[tool(
        description = "Search the HR employee directory with filters (department, name, title, hire dates, salary range, active), sorting and paging.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn query_employees(
        &self,
        Parameters(query): Parameters<EmployeeQuery>,
    ) -> Result<Json<EmployeePage>, String> {
        query_employees(self.db(), &query).await.map(Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_reach_the_sql_text() {
        let hostile = "x'); DROP TABLE employees; --";
        let planned = plan(
            &EmployeeQuery {
                department: Some(hostile.into()),
                name_contains: Some(hostile.into()),
                title: Some(hostile.into()),
                hired_from: Some("2020-01-01".into()),
                hired_to: Some("2021-01-01".into()),
                salary_min: Some(1.0),
                salary_max: Some(2.0),
                active: Some(true),
                sort_by: Some(SortColumn::Salary),
                sort_order: Some(SortOrder::Desc),
                limit: Some(10),
                offset: Some(20),
            },
            &Limits::default(),
        )
        .unwrap();
        assert!(!planned.sql.contains("DROP"), "{}", planned.sql);
        assert!(planned.sql.contains("$9 OFFSET $10"), "{}", planned.sql);
        assert!(planned.sql.contains("ORDER BY e.salary DESC, e.id ASC"));
        assert_eq!(planned.params.len(), 8);
        assert_eq!(planned.order, "salary DESC, id ASC");
    }

    #[test]
    fn like_wildcards_match_literally() {
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn limits_are_capped_and_checked() {
        let limits = Limits {
            query_limit_cap: 100,
            ..Limits::default()
        };
        let planned = plan(
            &EmployeeQuery {
                limit: Some(1000),
                ..EmployeeQuery::default()
            },
            &limits,
        )
        .unwrap();
        assert_eq!(planned.limit, 100);
        assert!(planned.note.unwrap().contains("PG_QUERY_LIMIT_CAP"));
        let planned = plan(&EmployeeQuery::default(), &limits).unwrap();
        assert_eq!((planned.limit, planned.offset), (50, 0));
    }

    #[test]
    fn invalid_arguments_are_explained() {
        let cases = [
            (
                EmployeeQuery {
                    hired_from: Some("01/02/2020".into()),
                    ..EmployeeQuery::default()
                },
                "YYYY-MM-DD",
            ),
            (
                EmployeeQuery {
                    hired_from: Some("2021-01-01".into()),
                    hired_to: Some("2020-01-01".into()),
                    ..EmployeeQuery::default()
                },
                "swap",
            ),
            (
                EmployeeQuery {
                    salary_min: Some(10.0),
                    salary_max: Some(5.0),
                    ..EmployeeQuery::default()
                },
                "swap",
            ),
            (
                EmployeeQuery {
                    salary_min: Some(-1.0),
                    ..EmployeeQuery::default()
                },
                "non-negative",
            ),
            (
                EmployeeQuery {
                    limit: Some(0),
                    ..EmployeeQuery::default()
                },
                "at least 1",
            ),
            (
                EmployeeQuery {
                    title: Some("x".repeat(201)),
                    ..EmployeeQuery::default()
                },
                "longer than",
            ),
        ];
        for (query, expected) in cases {
            let message = plan(&query, &Limits::default()).unwrap_err();
            assert!(message.contains(expected), "{message}");
        }
    }
}
