# The comparison point of the benchmarks: the same `add` tool on the official
# Python MCP SDK's server (pinned `mcp` from tests/interop/python), over
# Streamable HTTP, the system our users run today.
#
# Usage: python_server.py PORT [--stateless]
#   --stateless  stateless_http=True: no sessions (the workaround users apply
#                to survive load balancers without stickiness)

import sys

from mcp.server.mcpserver import MCPServer


def main() -> None:
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--stateless"):
        print("usage: python_server.py PORT [--stateless]", file=sys.stderr)
        sys.exit(2)
    port = int(sys.argv[1])
    stateless = len(sys.argv) == 3
    server = MCPServer("calculator-python")

    @server.tool(description="Add two numbers: returns a + b.")
    def add(a: float, b: float) -> float:
        return a + b

    server.run(
        transport="streamable-http",
        host="127.0.0.1",
        port=port,
        stateless_http=stateless,
    )


if __name__ == "__main__":
    main()
