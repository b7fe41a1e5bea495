# Interop check of one protocol generation through a fleet, with the official
# MCP Python SDK's high-level `Client`: in `stateless` mode it pins protocol
# 2026-07-28 (no initialize, per-request _meta), in `session` mode it forces
# the initialize handshake (a 2025-xx session with Mcp-Session-Id). It lists
# the tools once, then makes N calls alternating `greet` (the text is checked
# exactly) and `test_simple_text`, and checks that the version in use is the
# one asked for. Run by services/everything/tests/sdk_generations.rs.
#
# Usage: generations_client.py URL MODE CALLS
#   URL    http://127.0.0.1:PORT/mcp
#   MODE   stateless | session
#   CALLS  how many tool calls
#
# Prints one JSON line {"sdk","mode","protocolVersion","calls","errors",
# "firstError"}; exits 0 iff no call failed (1 otherwise, 2 for bad usage).

from __future__ import annotations

import asyncio
import json
import sys

from mcp import Client

STATELESS = "2026-07-28"


async def run(url: str, mode: str, calls: int) -> dict:
    pinned = STATELESS if mode == "stateless" else "legacy"
    errors = 0
    first_error = None

    def fail(message: str) -> None:
        nonlocal errors, first_error
        errors += 1
        if first_error is None:
            first_error = message

    async with Client(url, mode=pinned) as client:
        version = client.protocol_version
        if mode == "stateless" and version != STATELESS:
            fail(f"asked for {STATELESS}, the client uses {version}")
        if mode == "session" and version >= STATELESS:
            fail(f"asked for a session, the client uses {version}")
        tools = {tool.name for tool in (await client.list_tools()).tools}
        for needed in ("greet", "test_simple_text"):
            if needed not in tools:
                fail(f"tools/list lacks {needed}")
        for i in range(calls):
            try:
                if i % 2 == 0:
                    result = await client.call_tool("greet", {"name": f"n{i}"})
                    text = result.content[0].text if result.content else None
                    if result.is_error or text != f"Hello, n{i}!":
                        fail(f"greet n{i}: {result}")
                else:
                    result = await client.call_tool("test_simple_text", {})
                    if result.is_error or not result.content or not result.content[0].text:
                        fail(f"test_simple_text: {result}")
            except Exception as error:  # noqa: BLE001 - every failure counts
                fail(f"call {i}: {type(error).__name__}: {error}")
    return {
        "sdk": "python",
        "mode": mode,
        "protocolVersion": version,
        "calls": calls,
        "errors": errors,
        "firstError": first_error,
    }


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[2] not in ("stateless", "session"):
        print(__doc__ or "usage: generations_client.py URL stateless|session CALLS", file=sys.stderr)
        return 2
    summary = asyncio.run(run(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    print(json.dumps(summary))
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
