# Interop check of the calculator MCP service with the official MCP Python SDK:
# connects over Streamable HTTP or the legacy HTTP+SSE transport, lists the
# tools, calls every one of them and checks the results. Run by
# services/calculator/tests/interop.rs (see scripts/test.sh).
#
# Usage: calculator_client.py URL TRANSPORT
#   URL        http://127.0.0.1:PORT/mcp (streamable-http) or .../sse (sse)
#   TRANSPORT  streamable-http | sse
#
# Prints one JSON summary line on success; exits 1 with a message saying what
# did not match otherwise (2 for a usage error).

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
from importlib.metadata import version
from typing import Any

from mcp import ClientSession
from mcp.client.sse import sse_client

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
TIMEOUT_SECONDS = 45


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
    check(server.name == "calculator", f"initialize: serverInfo.name is {server.name!r}, expected 'calculator'")

    listed = await session.list_tools()
    names = {tool.name for tool in listed.tools}
    check(TOOLS <= names, f"tools/list: missing {sorted(TOOLS - names)} (got {sorted(names)})")
    # An outputSchema is optional (MCP 2025-06-18, Server Features §Tools); where
    # the server declares one, the SDK validates structuredContent against it.
    output_schemas = sum(1 for tool in listed.tools if field(tool, "output_schema", "outputSchema") is not None)

    calls = 0
    for name, arguments, expected, expression in CALLS:
        result = await session.call_tool(name, arguments)
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
        result = await session.call_tool(name, arguments)
        calls += 1
        where = f"tools/call {name} {json.dumps(arguments)}"
        check(bool(field(result, "is_error", "isError")), f"{where}: expected isError true, got {result!r}")
        check(message in text_of(result), f"{where}: error text {text_of(result)!r} lacks {message!r}")

    # Arguments of the wrong type are a protocol error, not a tool result.
    try:
        result = await session.call_tool("add", {"a": "two", "b": 40})
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


def flatten(error: BaseException) -> list[BaseException]:
    nested = getattr(error, "exceptions", None)
    if not nested:
        return [error]
    return [leaf for inner in nested for leaf in flatten(inner)]


async def main(url: str, transport: str) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        if transport == "streamable-http":
            # 2.x yields (read, write); 1.x yields (read, write, get_session_id).
            streams = await stack.enter_async_context(_streamable_http(url))
        else:
            streams = await stack.enter_async_context(sse_client(url))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        summary = await asyncio.wait_for(exercise(session), TIMEOUT_SECONDS)
    return summary


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("streamable-http", "sse"):
        print(f"usage: {sys.argv[0]} URL streamable-http|sse", file=sys.stderr)
        sys.exit(2)
    url, transport = sys.argv[1], sys.argv[2]
    try:
        summary = asyncio.run(main(url, transport))
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
