// Interop check of the calculator MCP service with the official MCP TypeScript
// SDK: connects over Streamable HTTP or the legacy HTTP+SSE transport, lists
// the tools, calls every one of them and checks the results. Run by
// services/calculator/tests/interop.rs (see scripts/test.sh).
//
// Usage: node calculator_client.mjs URL TRANSPORT
//   URL        http://127.0.0.1:PORT/mcp (streamable-http) or .../sse (sse)
//   TRANSPORT  streamable-http | sse
//
// Prints one JSON summary line on success; exits 1 with a message saying what
// did not match otherwise (2 for a usage error).

import { readFileSync } from "node:fs";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";

// The SDK's "exports" map hides its package.json: read it from node_modules.
const SDK_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/@modelcontextprotocol/sdk/package.json", import.meta.url), "utf8"),
).version;

const TOOLS = [
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
];

// [tool, arguments, expected result, expected expression]
const CALLS = [
  ["add", { a: 2, b: 40 }, 42, "2 + 40 = 42"],
  ["subtract", { a: 10, b: 3 }, 7, "10 - 3 = 7"],
  ["multiply", { a: 6, b: 7 }, 42, "6 × 7 = 42"],
  ["divide", { a: 10, b: 4 }, 2.5, "10 ÷ 4 = 2.5"],
  ["modulo", { a: 17, b: 5 }, 2, "17 mod 5 = 2"],
  ["power", { base: 2, exponent: 10 }, 1024, "2^10 = 1024"],
  ["sqrt", { x: 16 }, 4, "√16 = 4"],
  ["absolute", { x: -7.5 }, 7.5, "|-7.5| = 7.5"],
  ["round", { x: 3.14159, decimals: 2 }, 3.14, "round(3.14159, 2) = 3.14"],
  ["sum", { values: [1, 2, 3.5] }, 6.5, "sum(1, 2, 3.5) = 6.5"],
  ["average", { values: [2, 4, 9] }, 5, "mean(2, 4, 9) = 5"],
];

// [tool, arguments, text the error message must contain]
const TOOL_ERRORS = [
  ["divide", { a: 1, b: 0 }, "division by zero"],
  ["sqrt", { x: -4 }, "not a real number"],
];

const INVALID_PARAMS = -32602;
const TIMEOUT_MS = 45_000;

class Mismatch extends Error {}

function check(condition, message) {
  if (!condition) throw new Mismatch(message);
}

function textOf(result) {
  return (result.content ?? []).map((item) => item.text ?? "").join("\n");
}

async function exercise(client) {
  const server = client.getServerVersion();
  check(server?.name === "calculator", `initialize: serverInfo.name is ${JSON.stringify(server?.name)}, expected "calculator"`);

  const { tools } = await client.listTools();
  const names = new Set(tools.map((tool) => tool.name));
  const missing = TOOLS.filter((name) => !names.has(name));
  check(missing.length === 0, `tools/list: missing ${missing.join(", ")} (got ${[...names].sort().join(", ")})`);
  // An outputSchema is optional (MCP 2025-06-18, Server Features §Tools); where
  // the server declares one, the SDK validates structuredContent against it.
  const outputSchemas = tools.filter((tool) => tool.outputSchema !== undefined).length;

  let calls = 0;
  for (const [name, args, expected, expression] of CALLS) {
    const result = await client.callTool({ name, arguments: args });
    calls += 1;
    const where = `tools/call ${name} ${JSON.stringify(args)}`;
    check(!result.isError, `${where}: isError is true: ${textOf(result)}`);
    const structured = result.structuredContent;
    check(structured && typeof structured === "object", `${where}: no structuredContent (got ${JSON.stringify(structured)})`);
    const got = structured.result;
    check(
      typeof got === "number" && Math.abs(got - expected) <= 1e-12,
      `${where}: structuredContent.result is ${JSON.stringify(got)}, expected ${expected}`,
    );
    check(
      structured.operation === name,
      `${where}: structuredContent.operation is ${JSON.stringify(structured.operation)}, expected ${JSON.stringify(name)}`,
    );
    check(
      structured.expression === expression,
      `${where}: structuredContent.expression is ${JSON.stringify(structured.expression)}, expected ${JSON.stringify(expression)}`,
    );
    // The text content renders the same object for clients without structured output.
    let rendered;
    try {
      rendered = JSON.parse(textOf(result));
    } catch (error) {
      throw new Mismatch(`${where}: text content is not the JSON of the result: ${error.message}`);
    }
    check(rendered.result === got, `${where}: text content ${JSON.stringify(rendered)} differs from structuredContent`);
  }

  for (const [name, args, message] of TOOL_ERRORS) {
    const result = await client.callTool({ name, arguments: args });
    calls += 1;
    const where = `tools/call ${name} ${JSON.stringify(args)}`;
    check(result.isError === true, `${where}: expected isError true, got ${JSON.stringify(result)}`);
    check(textOf(result).includes(message), `${where}: error text ${JSON.stringify(textOf(result))} lacks ${JSON.stringify(message)}`);
  }

  // Arguments of the wrong type are a protocol error, not a tool result.
  let invalid;
  try {
    invalid = await client.callTool({ name: "add", arguments: { a: "two", b: 40 } });
  } catch (error) {
    check(error instanceof McpError, `tools/call add with a="two": expected an McpError, got ${error}`);
    check(
      error.code === INVALID_PARAMS,
      `tools/call add with a="two": JSON-RPC error ${error.code}, expected ${INVALID_PARAMS}`,
    );
  }
  check(
    invalid === undefined,
    `tools/call add with a="two": expected JSON-RPC error ${INVALID_PARAMS}, got result ${JSON.stringify(invalid)}`,
  );
  calls += 1;

  return {
    server: `${server.name} ${server.version}`,
    tools: names.size,
    output_schemas: outputSchemas,
    calls,
  };
}

async function main(url, transportName) {
  const transport =
    transportName === "streamable-http"
      ? new StreamableHTTPClientTransport(new URL(url))
      : new SSEClientTransport(new URL(url));
  const client = new Client({ name: "calculator-interop-typescript", version: "1.0.0" });
  await client.connect(transport);
  try {
    const summary = await exercise(client);
    // SSEClientTransport keeps the negotiated version in a private field.
    const protocolVersion = transport.protocolVersion ?? transport._protocolVersion;
    if (transportName === "streamable-http") {
      await transport.terminateSession();
    }
    return { ...summary, ...(protocolVersion ? { protocol_version: protocolVersion } : {}) };
  } finally {
    await client.close();
  }
}

const [url, transportName] = process.argv.slice(2);
if (process.argv.length !== 4 || !["streamable-http", "sse"].includes(transportName)) {
  console.error("usage: node calculator_client.mjs URL streamable-http|sse");
  process.exit(2);
}
const label = `typescript @modelcontextprotocol/sdk ${SDK_VERSION}, ${transportName} ${url}`;
const timer = setTimeout(() => {
  console.error(`FAIL (${label}): no answer within ${TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, TIMEOUT_MS);
try {
  const summary = await main(url, transportName);
  clearTimeout(timer);
  console.log(
    JSON.stringify({ ok: true, sdk: "typescript", sdk_version: SDK_VERSION, transport: transportName, ...summary }),
  );
  process.exit(0);
} catch (error) {
  clearTimeout(timer);
  const details = error instanceof Mismatch ? error.message : `${error?.name ?? "Error"}: ${error?.message ?? error}`;
  console.error(`FAIL (${label}): ${details}`);
  process.exit(1);
}
