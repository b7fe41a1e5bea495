# Interop check of the postgres MCP service with the official MCP Python SDK,
# meant to run through several replicas behind a load balancer: connects over
# Streamable HTTP or the legacy HTTP+SSE transport, lists the tools, calls
# query_employees many times with varying filters, sorts, limits and offsets
# and checks that every answer is consistent with the request and with every
# other answer (same totals, same row at the same position, identical results
# for identical calls), then calls get_employee_schema and run_readonly_query
# once each. Run by services/postgres/tests/replicas.rs (see scripts/test.sh).
#
# Usage: postgres_client.py URL TRANSPORT [--calls N]
#   URL        http://HOST:PORT/mcp (streamable-http) or .../sse (sse)
#   TRANSPORT  streamable-http | sse
#   --calls N  query_employees calls to make (default 50)
#
# Prints one JSON summary line on success; exits 1 with a message saying what
# did not match otherwise (2 for a usage error).

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
from decimal import Decimal
from importlib.metadata import version
from typing import Any

from mcp import ClientSession
from mcp.client.sse import sse_client

try:  # mcp >= 1.24 (the only name in 2.x)
    from mcp.client.streamable_http import streamable_http_client as _streamable_http
except ImportError:  # older 1.x releases
    from mcp.client.streamable_http import streamablehttp_client as _streamable_http

TOOLS = {"query_employees", "get_employee_schema", "run_readonly_query"}

# Department codes of the sample data (services/postgres/sql/seed.sql).
DEPARTMENT_CODES = {
    "exec": "Executive",
    "eng": "Engineering",
    "sales": "Sales",
    "mkt": "Marketing",
    "fin": "Finance",
    "hr": "Human Resources",
    "sup": "Customer Support",
    "ops": "Operations",
    "legal": "Legal",
    "prod": "Product",
    "data": "Data Science",
}

# Filter sets the calls cycle through (ASCII text only, so that Python's
# lower() agrees with PostgreSQL's ILIKE whatever the database's locale).
FILTERS: list[dict[str, Any]] = [
    {},
    {"department": "Engineering"},
    {"department": "legal"},
    {"department": "DATA", "active": True},
    {"name_contains": "son"},
    {"name_contains": "o'brien"},
    {"title": "engineer"},
    {"title": "Manager", "hired_to": "2019-06-30"},
    {"active": False},
    {"department": "Sales", "active": True, "salary_min": 90000},
    {"hired_from": "2018-01-01", "hired_to": "2020-12-31"},
    {"salary_min": 100000, "salary_max": 150000},
    {"department": "sup", "title": "senior", "sort_by": "salary"},
    {"name_contains": "mary j", "active": True},
    {"title": "intern", "salary_max": 40000},
]

# (sort_by, sort_order); None leaves the argument out (the defaults: id, asc).
SORTS: list[tuple[str | None, str | None]] = [
    (None, None),
    ("salary", "desc"),
    ("hire_date", "asc"),
    ("last_name", None),
    ("department", "desc"),
    ("id", "desc"),
    ("first_name", "asc"),
    ("title", "desc"),
    ("salary", "asc"),
    ("hire_date", "desc"),
]

LIMITS = [1, 3, 5, 10, 25, 50, 100, None]

# Sorts whose order the client checks itself (text sorts depend on the
# database's collation; their consistency is checked across calls instead).
CHECKED_SORTS = {
    "id": lambda row: (row["id"],),
    "salary": lambda row: (Decimal(row["salary"]),),
    "hire_date": lambda row: (row["hire_date"],),
}


class Mismatch(Exception):
    """The server answered something other than what the test expects."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def field(obj: Any, snake: str, camel: str) -> Any:
    """Reads a result field under its 2.x (snake_case) or 1.x (camelCase) name."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def text_of(result: Any) -> str:
    return "\n".join(getattr(item, "text", "") for item in result.content)


def plan_calls(count: int) -> list[dict[str, Any]]:
    """`count` argument sets: every filter set with several sorts and pages,
    every fifth call an exact repeat of an earlier one, and call 24 a limit
    above the cap."""
    rng = random.Random(20240229)
    calls: list[dict[str, Any]] = []
    fresh = 0  # calls that are not repeats, to cycle through every filter set
    for index in range(count):
        if index == 23:
            # One limit above the cap: the page is capped and `note` says so.
            calls.append({"sort_by": "id", "limit": 100000, "offset": 2900})
            continue
        if index % 5 == 4:
            calls.append(dict(calls[rng.randrange(index)]))
            continue
        arguments = dict(FILTERS[fresh % len(FILTERS)])
        if "sort_by" not in arguments:
            sort_by, sort_order = SORTS[(fresh // len(FILTERS) + fresh) % len(SORTS)]
            if sort_by is not None:
                arguments["sort_by"] = sort_by
            if sort_order is not None:
                arguments["sort_order"] = sort_order
        limit = LIMITS[rng.randrange(len(LIMITS))]
        if limit is not None:
            arguments["limit"] = limit
        offset = rng.choice([0, 0, 0, 0, 1, 2, 5, 7, 10, 20, 49, 150, 1000, 5000])
        if offset:
            arguments["offset"] = offset
        calls.append(arguments)
        fresh += 1
    return calls


def filter_key(arguments: dict[str, Any]) -> str:
    paging = {"sort_by", "sort_order", "limit", "offset"}
    return json.dumps({k: v for k, v in arguments.items() if k not in paging}, sort_keys=True)


def order_key(arguments: dict[str, Any]) -> str:
    return json.dumps(
        [filter_key(arguments), arguments.get("sort_by", "id"), arguments.get("sort_order", "asc")]
    )


def check_row(where: str, arguments: dict[str, Any], row: dict[str, Any]) -> None:
    """Checks that one employee matches every filter of the request."""
    name = f"{row.get('first_name')} {row.get('last_name')}"
    what = f"{where}: employee {row.get('id')} ({name})"
    department = arguments.get("department")
    if department is not None:
        wanted = DEPARTMENT_CODES.get(department.lower(), department)
        check(row["department"].lower() == wanted.lower(), f"{what}: department {row['department']!r}")
    if "name_contains" in arguments:
        check(arguments["name_contains"].lower() in name.lower(), f"{what}: name does not match")
    if "title" in arguments:
        check(arguments["title"].lower() in row["title"].lower(), f"{what}: title {row['title']!r}")
    if "hired_from" in arguments:
        check(row["hire_date"] >= arguments["hired_from"], f"{what}: hired {row['hire_date']}")
    if "hired_to" in arguments:
        check(row["hire_date"] <= arguments["hired_to"], f"{what}: hired {row['hire_date']}")
    salary = Decimal(row["salary"])
    if "salary_min" in arguments:
        check(salary >= Decimal(arguments["salary_min"]), f"{what}: salary {row['salary']}")
    if "salary_max" in arguments:
        check(salary <= Decimal(arguments["salary_max"]), f"{what}: salary {row['salary']}")
    if "active" in arguments:
        check(row["is_active"] is arguments["active"], f"{what}: is_active {row['is_active']}")
        check(
            (row["termination_date"] is None) is arguments["active"],
            f"{what}: termination_date {row['termination_date']} with is_active {row['is_active']}",
        )


class Consistency:
    """What earlier answers said, which later answers must agree with."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.positions: dict[str, dict[int, int]] = {}
        self.answers: dict[str, Any] = {}
        self.employees: dict[int, Any] = {}

    def page(self, where: str, arguments: dict[str, Any], page: dict[str, Any], cap: int | None) -> None:
        employees = page.get("employees")
        check(isinstance(employees, list), f"{where}: no employees array in {page!r}")
        total, offset, limit = page.get("total"), page.get("offset"), page.get("limit")
        check(
            all(isinstance(value, int) for value in (total, offset, limit)),
            f"{where}: total/offset/limit not integers: {total!r} {offset!r} {limit!r}",
        )
        requested = arguments.get("limit", 50)
        check(offset == arguments.get("offset", 0), f"{where}: offset {offset}, requested {arguments.get('offset', 0)}")
        check(1 <= limit <= requested, f"{where}: limit {limit}, requested {requested}")
        if limit < requested:
            check(cap is None or limit == cap, f"{where}: limit capped at {limit}, other pages say {cap}")
            check("PG_QUERY_LIMIT_CAP" in (page.get("note") or ""), f"{where}: capped limit without a note: {page!r}")
        else:
            check(page.get("note") is None, f"{where}: unexpected note {page.get('note')!r}")
        check(len(employees) <= limit, f"{where}: {len(employees)} employees, limit {limit}")
        expected = max(0, min(limit, total - offset))
        check(len(employees) == expected, f"{where}: {len(employees)} employees, expected {expected} (total {total})")
        check(page.get("has_more") is (offset + len(employees) < total), f"{where}: has_more {page.get('has_more')}")

        key = filter_key(arguments)
        known = self.totals.setdefault(key, total)
        check(total == known, f"{where}: total {total}, an earlier call with the same filters said {known}")

        ids = [row.get("id") for row in employees]
        check(len(set(ids)) == len(ids), f"{where}: duplicate ids {ids}")
        for row in employees:
            check_row(where, arguments, row)
            # The same employee must look the same in every answer.
            seen = self.employees.setdefault(row["id"], row)
            check(seen == row, f"{where}: employee {row['id']} differs between answers: {seen!r} vs {row!r}")

        sort_by = arguments.get("sort_by", "id")
        descending = arguments.get("sort_order") == "desc"
        if sort_by in CHECKED_SORTS:
            keys = [CHECKED_SORTS[sort_by](row) for row in employees]
            for before, after, first, second in zip(keys, keys[1:], employees, employees[1:]):
                in_order = after < before if descending else after > before
                tie = after == before and second["id"] > first["id"]
                check(
                    in_order or tie,
                    f"{where}: employees {first['id']} and {second['id']} out of {sort_by} order",
                )

        # The row at an absolute position is the same whatever the page.
        positions = self.positions.setdefault(order_key(arguments), {})
        for index, employee_id in enumerate(ids):
            earlier = positions.setdefault(offset + index, employee_id)
            check(
                earlier == employee_id,
                f"{where}: position {offset + index} holds employee {employee_id}, earlier {earlier}",
            )

        # An identical call gets an identical answer.
        same = self.answers.setdefault(json.dumps(arguments, sort_keys=True), page)
        check(same == page, f"{where}: differs from the answer to the identical earlier call")


async def call(session: ClientSession, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(name, arguments)
    where = f"tools/call {name} {json.dumps(arguments)}"
    check(not field(result, "is_error", "isError"), f"{where}: isError is true: {text_of(result)}")
    structured = field(result, "structured_content", "structuredContent")
    check(isinstance(structured, dict), f"{where}: no structuredContent (got {structured!r})")
    try:
        rendered = json.loads(text_of(result))
    except ValueError as error:
        raise Mismatch(f"{where}: text content is not the JSON of the result: {error}") from None
    check(rendered == structured, f"{where}: text content differs from structuredContent")
    return structured


async def exercise(session: ClientSession, calls: int) -> dict[str, Any]:
    init = await session.initialize()
    server = field(init, "server_info", "serverInfo")
    check(server.name == "postgres", f"initialize: serverInfo.name is {server.name!r}, expected 'postgres'")

    listed = await session.list_tools()
    names = {tool.name for tool in listed.tools}
    check(TOOLS <= names, f"tools/list: missing {sorted(TOOLS - names)} (got {sorted(names)})")
    missing_schemas = [t.name for t in listed.tools if field(t, "output_schema", "outputSchema") is None]
    check(not missing_schemas, f"tools/list: no outputSchema for {missing_schemas}")

    consistency = Consistency()
    cap: int | None = None
    rows = 0
    for index, arguments in enumerate(plan_calls(calls)):
        where = f"query_employees call {index + 1}/{calls} {json.dumps(arguments)}"
        page = await call(session, "query_employees", arguments)
        consistency.page(where, arguments, page, cap)
        if page["limit"] < arguments.get("limit", 50):
            cap = page["limit"]
        rows += len(page["employees"])

    schema = await call(session, "get_employee_schema", {})
    tables = {table.get("name"): table for table in schema.get("tables", [])}
    check({"departments", "employees"} <= set(tables), f"get_employee_schema: tables {sorted(tables)}")
    employees_table = tables["employees"]
    check(employees_table.get("primary_key") == ["id"], f"get_employee_schema: employees key {employees_table.get('primary_key')}")
    columns = {column.get("name") for column in employees_table.get("columns", [])}
    check(
        {"id", "first_name", "last_name", "salary", "department_id", "hire_date"} <= columns,
        f"get_employee_schema: employees columns {sorted(columns)}",
    )

    counted = await call(session, "run_readonly_query", {"sql": "SELECT count(*) FROM employees"})
    count_rows = counted.get("rows")
    check(
        isinstance(count_rows, list) and len(count_rows) == 1 and len(count_rows[0]) == 1,
        f"run_readonly_query: rows {count_rows!r}",
    )
    count = count_rows[0][0]
    check(isinstance(count, int) and count > 0, f"run_readonly_query: count {count!r}")
    unfiltered = consistency.totals.get(filter_key({}))
    check(
        unfiltered is None or unfiltered == count,
        f"run_readonly_query: count(*) is {count}, query_employees without filters said total {unfiltered}",
    )

    return {
        "server": f"{server.name} {server.version}",
        "protocol_version": field(init, "protocol_version", "protocolVersion"),
        "tools": sorted(names),
        "query_employees_calls": calls,
        "calls": calls + 2,
        "rows": rows,
        "distinct_employees": len(consistency.employees),
        "filter_sets": len(consistency.totals),
        "limit_cap": cap,
        "employee_count": count,
    }


def flatten(error: BaseException) -> list[BaseException]:
    nested = getattr(error, "exceptions", None)
    if not nested:
        return [error]
    return [leaf for inner in nested for leaf in flatten(inner)]


async def main(url: str, transport: str, calls: int) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        if transport == "streamable-http":
            # 2.x yields (read, write); 1.x yields (read, write, get_session_id).
            streams = await stack.enter_async_context(_streamable_http(url))
        else:
            streams = await stack.enter_async_context(sse_client(url))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        summary = await asyncio.wait_for(exercise(session, calls), 30 + calls)
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="postgres MCP service check with the MCP Python SDK")
    parser.add_argument("url")
    parser.add_argument("transport", choices=["streamable-http", "sse"])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()  # exits 2 on a usage error
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    try:
        summary = asyncio.run(main(args.url, args.transport, args.calls))
    except Exception as error:  # noqa: BLE001 - every failure becomes one clear line
        # anyio wraps failures in exception groups: report their leaves.
        leaves = flatten(error)
        mismatches = [leaf for leaf in leaves if isinstance(leaf, Mismatch)]
        shown = mismatches or leaves
        details = "; ".join(str(leaf) if isinstance(leaf, Mismatch) else f"{type(leaf).__name__}: {leaf}" for leaf in shown)
        print(f"FAIL (python mcp {version('mcp')}, {args.transport} {args.url}): {details}", file=sys.stderr)
        sys.exit(1)
    print(
        json.dumps(
            {"ok": True, "sdk": "python", "sdk_version": version("mcp"), "transport": args.transport, **summary},
            ensure_ascii=False,
        )
    )
