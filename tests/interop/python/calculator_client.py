# Interop check of the calculator MCP service with the official MCP Python SDK:
# connects over Streamable HTTP or the legacy HTTP+SSE transport, lists the
# tools, calls every one of them and checks the results. Run by
# services/calculator/tests/interop.rs and interop_replicas.rs (see
# scripts/test.sh).
#
# Usage: calculator_client.py URL TRANSPORT [--calls N]
#   URL        http://127.0.0.1:PORT/mcp (streamable-http) or .../sse (sse)
#   TRANSPORT  streamable-http | sse
#   --calls N  after those checks, N more tool calls in the same session,
#              cycling through the tools with varying arguments, each result
#              checked exactly; the summary then has "calls": N, "errors": 0
#
# Environment:
#   MCP_CLIENT_HEADERS  a JSON object of HTTP headers sent with every request
#                       of the session, e.g. {"Authorization": "Bearer ..."} or
#                       {"X-API-Key": "..."}: how a client authenticates (read
#                       from the environment so that no credential is on the
#                       command line). The summary then has "user_sessions":
#                       what get_user_sessions answered at the end (principal,
#                       user hash, the ids listed, the current session's id).
#   MCP_TOOL_PREFIX     put before every tool name (default none): the client
#                       then talks to the calculator through a hub that names
#                       its tools `calculator__add` (services/hub/tests/sdk_clients.rs)
#   MCP_SERVER_NAME     the serverInfo.name expected (default calculator; the
#                       hub's is hub)
#
# Prints one JSON summary line on success; exits 1 with a message saying what
# did not match otherwise (2 for a usage error).

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import os
import sys
from importlib.metadata import version
from typing import Any

from mcp import ClientSession
from mcp.client.sse import sse_client

try:  # mcp 2.x speaks HTTP through httpx2
    import httpx2 as _httpx
except ImportError:  # 1.x: httpx
    import httpx as _httpx

try:  # mcp >= 1.24 (the only name in 2.x)
    from mcp.client.streamable_http import streamable_http_client as _streamable_http
except ImportError:  # older 1.x releases
    from mcp.client.streamable_http import streamablehttp_client as _streamable_http

try:
    from mcp.shared.exceptions import MCPError as _McpError
except ImportError:  # 1.x
    from mcp.shared.exceptions import McpError as _McpError

TOOLS = {
    "add",
    "subtract",
    "multiply",
    "divide",
    "modulo",
    "power",
    "sqrt",
    "absolute",
    "round",
    "sum",
    "average",
}

# (tool, arguments, expected result, expected expression)
CALLS: list[tuple[str, dict[str, Any], float, str]] = [
    ("add", {"a": 2, "b": 40}, 42, "2 + 40 = 42"),
    ("subtract", {"a": 10, "b": 3}, 7, "10 - 3 = 7"),
    ("multiply", {"a": 6, "b": 7}, 42, "6 × 7 = 42"),
    ("divide", {"a": 10, "b": 4}, 2.5, "10 ÷ 4 = 2.5"),
    ("modulo", {"a": 17, "b": 5}, 2, "17 mod 5 = 2"),
    ("power", {"base": 2, "exponent": 10}, 1024, "2^10 = 1024"),
    ("sqrt", {"x": 16}, 4, "√16 = 4"),
    ("absolute", {"x": -7.5}, 7.5, "|-7.5| = 7.5"),
    ("round", {"x": 3.14159, "decimals": 2}, 3.14, "round(3.14159, 2) = 3.14"),
    ("sum", {"values": [1, 2, 3.5]}, 6.5, "sum(1, 2, 3.5) = 6.5"),
    ("average", {"values": [2, 4, 9]}, 5, "mean(2, 4, 9) = 5"),
]

# (tool, arguments, text the error message must contain)
TOOL_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("divide", {"a": 1, "b": 0}, "division by zero"),
    ("sqrt", {"x": -4}, "not a real number"),
]

INVALID_PARAMS = -32602
PREFIX = os.environ.get("MCP_TOOL_PREFIX", "")
SERVER_NAME = os.environ.get("MCP_SERVER_NAME", "calculator")
TIMEOUT_SECONDS = 45
# With --calls N: longest wait for one call, and the time budget per call on
# top of TIMEOUT_SECONDS.
CALL_TIMEOUT_SECONDS = 10
SECONDS_PER_CALL = 0.25
# With --calls N: the run stops after this many failed calls (the rest would
# most likely fail the same way).
MAX_ERRORS = 10


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


async def exercise(session: ClientSession) -> dict[str, Any]:
    init = await session.initialize()
    server = field(init, "server_info", "serverInfo")
    check(server.name == SERVER_NAME, f"initialize: serverInfo.name is {server.name!r}, expected {SERVER_NAME!r}")

    listed = await session.list_tools()
    names = {tool.name[len(PREFIX) :] for tool in listed.tools if tool.name.startswith(PREFIX)}
    check(TOOLS <= names, f"tools/list: missing {sorted(TOOLS - names)} (got {sorted(names)})")
    # An outputSchema is optional (MCP 2025-06-18, Server Features §Tools); where
    # the server declares one, the SDK validates structuredContent against it.
    output_schemas = sum(1 for tool in listed.tools if field(tool, "output_schema", "outputSchema") is not None)

    calls = 0
    for name, arguments, expected, expression in CALLS:
        result = await session.call_tool(PREFIX + name, arguments)
        calls += 1
        where = f"tools/call {name} {json.dumps(arguments)}"
        check(not field(result, "is_error", "isError"), f"{where}: isError is true: {text_of(result)}")
        structured = field(result, "structured_content", "structuredContent")
        check(isinstance(structured, dict), f"{where}: no structuredContent (got {structured!r})")
        got = structured.get("result")
        check(
            isinstance(got, (int, float)) and math.isclose(got, expected, rel_tol=0, abs_tol=1e-12),
            f"{where}: structuredContent.result is {got!r}, expected {expected}",
        )
        check(
            structured.get("operation") == name,
            f"{where}: structuredContent.operation is {structured.get('operation')!r}, expected {name!r}",
        )
        check(
            structured.get("expression") == expression,
            f"{where}: structuredContent.expression is {structured.get('expression')!r}, expected {expression!r}",
        )
        # The text content renders the same object for clients without structured output.
        try:
            rendered = json.loads(text_of(result))
        except ValueError as error:
            raise Mismatch(f"{where}: text content is not the JSON of the result: {error}") from None
        check(rendered.get("result") == got, f"{where}: text content {rendered!r} differs from structuredContent")

    for name, arguments, message in TOOL_ERRORS:
        result = await session.call_tool(PREFIX + name, arguments)
        calls += 1
        where = f"tools/call {name} {json.dumps(arguments)}"
        check(bool(field(result, "is_error", "isError")), f"{where}: expected isError true, got {result!r}")
        check(message in text_of(result), f"{where}: error text {text_of(result)!r} lacks {message!r}")

    # Arguments of the wrong type are a protocol error, not a tool result.
    try:
        result = await session.call_tool(PREFIX + "add", {"a": "two", "b": 40})
    except _McpError as error:
        check(
            error.error.code == INVALID_PARAMS,
            f"tools/call add with a='two': JSON-RPC error {error.error.code}, expected {INVALID_PARAMS}",
        )
    else:
        raise Mismatch(f"tools/call add with a='two': expected JSON-RPC error {INVALID_PARAMS}, got result {result!r}")
    calls += 1

    return {
        "server": f"{server.name} {server.version}",
        "protocol_version": field(init, "protocol_version", "protocolVersion"),
        "tools": len(names),
        "output_schemas": output_schemas,
        "calls": calls,
    }


# --- --calls N: a long session ---------------------------------------------


def num(x: float) -> str:
    """Renders a number the way the calculator writes it in an expression."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def round_half_away(x: float, decimals: int) -> float:
    """The calculator's rounding: half away from zero, in doubles."""
    scale = 10.0**decimals
    scaled = x * scale
    whole = float(math.trunc(scaled))
    if abs(scaled - whole) >= 0.5:
        whole += math.copysign(1.0, scaled)
    return whole / scale


def planned_call(k: int) -> tuple[str, dict[str, Any], float, str]:
    """Call number k of a long session: (tool, arguments, result, expression).

    Cycles through the 11 tools; the arguments vary with k and are chosen so
    that every result is computed in doubles exactly as the server computes it.
    """
    tool = CALLS[k % len(CALLS)][0]
    if tool == "add":
        a, b = k, k * 0.5 + 1
        return tool, {"a": a, "b": b}, a + b, f"{num(a)} + {num(b)} = {num(a + b)}"
    if tool == "subtract":
        a, b = k, 2 * k + 3
        return tool, {"a": a, "b": b}, float(a - b), f"{num(a)} - {num(b)} = {num(a - b)}"
    if tool == "multiply":
        a, b = k + 1, -0.5 if k % 2 else 1.25
        return tool, {"a": a, "b": b}, a * b, f"{num(a)} × {num(b)} = {num(a * b)}"
    if tool == "divide":
        a, b = k, 4 if k % 2 else -8
        return tool, {"a": a, "b": b}, a / b, f"{num(a)} ÷ {num(b)} = {num(a / b)}"
    if tool == "modulo":
        a, b = 3 * k + 1, k % 5 + 2
        result = math.fmod(a, b)
        return tool, {"a": a, "b": b}, result, f"{num(a)} mod {num(b)} = {num(result)}"
    if tool == "power":
        base, exponent = k % 7 - 3, k % 4
        result = float(base) ** exponent
        return tool, {"base": base, "exponent": exponent}, result, f"{num(base)}^{num(exponent)} = {num(result)}"
    if tool == "sqrt":
        root = (k + 1) * 0.5
        x = root * root
        return tool, {"x": x}, root, f"√{num(x)} = {num(root)}"
    if tool == "absolute":
        x = -(k * 0.25) - 1
        return tool, {"x": x}, abs(x), f"|{num(x)}| = {num(abs(x))}"
    if tool == "round":
        x = (k + 0.375) * (-1 if k % 2 else 1)
        decimals = k % 4
        result = round_half_away(x, decimals)
        return tool, {"x": x, "decimals": decimals}, result, f"round({num(x)}, {decimals}) = {num(result)}"
    if tool == "sum":
        values = [k, 0.5, -(k % 3), 2.25]
        result = sum(float(v) for v in values)
        listed = ", ".join(num(v) for v in values)
        return tool, {"values": values}, result, f"sum({listed}) = {num(result)}"
    # average
    values = [k + 2 * i for i in range(k % 4 + 1)]
    result = sum(float(v) for v in values) / len(values)
    listed = ", ".join(num(v) for v in values)
    return tool, {"values": values}, result, f"mean({listed}) = {num(result)}"


async def one_call(session: ClientSession, k: int) -> str | None:
    """Makes call k and checks its result exactly; returns what was wrong, if anything."""
    name, arguments, expected, expression = planned_call(k)
    where = f"call {k + 1}: tools/call {name} {json.dumps(arguments)}"
    try:
        result = await session.call_tool(PREFIX + name, arguments, read_timeout_seconds=CALL_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - every failure is counted and reported
        leaves = flatten(error)
        return f"{where}: raised " + "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in leaves)
    try:
        is_error = field(result, "is_error", "isError")
        structured = field(result, "structured_content", "structuredContent")
    except AttributeError:
        return f"{where}: not a tool result: {result!r}"
    if is_error:
        return f"{where}: isError is true: {text_of(result)}"
    if not isinstance(structured, dict):
        return f"{where}: no structuredContent (got {structured!r})"
    got = structured.get("result")
    if not isinstance(got, (int, float)) or isinstance(got, bool) or float(got) != expected:
        return f"{where}: structuredContent.result is {got!r}, expected {expected!r} ({structured!r})"
    if structured.get("operation") != name or structured.get("expression") != expression:
        return f"{where}: structuredContent is {structured!r}, expected operation {name!r}, expression {expression!r}"
    try:
        rendered = json.loads(text_of(result))
    except ValueError as error:
        return f"{where}: text content {text_of(result)!r} is not JSON: {error}"
    if rendered != structured:
        return f"{where}: text content {rendered!r} differs from structuredContent {structured!r}"
    return None


async def long_session(session: ClientSession, count: int) -> dict[str, Any]:
    """Makes `count` more tool calls in the session; raises Mismatch listing the failed ones."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_SECONDS + SECONDS_PER_CALL * count
    failures: list[str] = []
    made = 0
    for k in range(count):
        if loop.time() > deadline:
            failures.append(f"out of time after {made} calls")
            break
        made += 1
        try:
            failure = await asyncio.wait_for(one_call(session, k), CALL_TIMEOUT_SECONDS + 5)
        except TimeoutError:
            failure = f"call {k + 1}: no answer within {CALL_TIMEOUT_SECONDS + 5} s"
        if failure is not None:
            failures.append(failure)
            if len(failures) >= MAX_ERRORS:
                break
    if failures:
        stopped = f" (stopped after {made} of {count} calls)" if made < count else ""
        raise Mismatch(f"{len(failures)} of {made} calls failed{stopped}: " + " | ".join(failures))
    return {"calls": count, "errors": 0}


def flatten(error: BaseException) -> list[BaseException]:
    nested = getattr(error, "exceptions", None)
    if not nested:
        return [error]
    return [leaf for inner in nested for leaf in flatten(inner)]


def client_headers() -> dict[str, str] | None:
    """The headers of MCP_CLIENT_HEADERS (None when unset); exits 2 when it is no JSON object of strings."""
    text = os.environ.get("MCP_CLIENT_HEADERS")
    if not text:
        return None
    try:
        headers = json.loads(text)
    except ValueError:
        headers = None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        print("MCP_CLIENT_HEADERS must be a JSON object of header names to strings", file=sys.stderr)
        sys.exit(2)
    return headers


async def open_streamable_http(url: str, headers: dict[str, str] | None, stack: contextlib.AsyncExitStack) -> Any:
    """Enters the Streamable HTTP client, sending `headers` with every request; its streams.

    2.x takes an HTTP client configured with the headers (`http_client=`),
    closed by `stack` after the transport; 1.x takes `headers=`.
    """
    if headers is None:
        return await stack.enter_async_context(_streamable_http(url))
    if "http_client" in inspect.signature(_streamable_http).parameters:
        # The SDK's own timeouts for MCP: 30 s, and 300 s to read a stream.
        client = await stack.enter_async_context(
            _httpx.AsyncClient(headers=headers, timeout=_httpx.Timeout(30.0, read=300.0))
        )
        return await stack.enter_async_context(_streamable_http(url, http_client=client))
    return await stack.enter_async_context(_streamable_http(url, headers=headers))


async def own_sessions(session: ClientSession) -> dict[str, Any]:
    """Calls get_user_sessions and checks its shape: exactly one session is the current one."""
    result = await session.call_tool("get_user_sessions", {})
    where = "tools/call get_user_sessions"
    check(not field(result, "is_error", "isError"), f"{where}: isError is true: {text_of(result)}")
    listed = field(result, "structured_content", "structuredContent")
    check(isinstance(listed, dict), f"{where}: no structuredContent (got {listed!r})")
    sessions = listed.get("sessions") or []
    check(listed.get("count") == len(sessions), f"{where}: count {listed.get('count')!r} for {len(sessions)} sessions")
    current = [entry["id"] for entry in sessions if entry.get("current") is True]
    check(len(current) == 1, f"{where}: {len(current)} sessions marked current, expected 1: {listed!r}")
    for entry in sessions:
        check(
            entry.get("user_hash") == listed.get("user_hash"),
            f"{where}: session {entry.get('id')!r} belongs to {entry.get('user_hash')!r}, not the caller",
        )
        check(
            isinstance(entry.get("ttl_seconds"), int) and entry["ttl_seconds"] > 0,
            f"{where}: session {entry.get('id')!r} has no TTL left: {entry!r}",
        )
    return {
        "principal": listed.get("principal"),
        "user_hash": listed.get("user_hash"),
        "ids": sorted(entry["id"] for entry in sessions),
        "current": current[0],
    }


async def main(url: str, transport: str, extra_calls: int | None) -> dict[str, Any]:
    headers = client_headers()
    async with contextlib.AsyncExitStack() as stack:
        if transport == "streamable-http":
            # 2.x yields (read, write); 1.x yields (read, write, get_session_id).
            streams = await open_streamable_http(url, headers, stack)
        else:
            streams = await stack.enter_async_context(sse_client(url, headers=headers))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        summary = await asyncio.wait_for(exercise(session), TIMEOUT_SECONDS)
        if extra_calls is not None:
            summary["checks"] = summary.pop("calls")
            summary.update(await long_session(session, extra_calls))
        # Through a hub, the session tools would describe the hub's upstream
        # session, not this one.
        if headers is not None and not PREFIX:
            summary["user_sessions"] = await asyncio.wait_for(own_sessions(session), TIMEOUT_SECONDS)
    return summary


def parse_arguments(argv: list[str]) -> tuple[str, str, int | None]:
    """URL, TRANSPORT and the N of --calls N (None without it); exits 2 on a usage error."""
    usage = f"usage: {argv[0]} URL streamable-http|sse [--calls N]"
    arguments = argv[1:]
    extra_calls = None
    if len(arguments) == 4 and arguments[2] == "--calls":
        try:
            extra_calls = int(arguments[3])
        except ValueError:
            extra_calls = -1
        if extra_calls < 0:
            print(f"{usage}: --calls takes a number >= 0, got {arguments[3]!r}", file=sys.stderr)
            sys.exit(2)
        arguments = arguments[:2]
    if len(arguments) != 2 or arguments[1] not in ("streamable-http", "sse"):
        print(usage, file=sys.stderr)
        sys.exit(2)
    return arguments[0], arguments[1], extra_calls


if __name__ == "__main__":
    url, transport, extra_calls = parse_arguments(sys.argv)
    try:
        summary = asyncio.run(main(url, transport, extra_calls))
    except Exception as error:  # noqa: BLE001 - every failure becomes one clear line
        # anyio wraps failures in exception groups: report their leaves.
        leaves = flatten(error)
        mismatches = [leaf for leaf in leaves if isinstance(leaf, Mismatch)]
        shown = mismatches or leaves
        details = "; ".join(str(leaf) if isinstance(leaf, Mismatch) else f"{type(leaf).__name__}: {leaf}" for leaf in shown)
        print(f"FAIL (python mcp {version('mcp')}, {transport} {url}): {details}", file=sys.stderr)
        sys.exit(1)
    print(
        json.dumps(
            {"ok": True, "sdk": "python", "sdk_version": version("mcp"), "transport": transport, **summary},
            ensure_ascii=False,
        )
    )
