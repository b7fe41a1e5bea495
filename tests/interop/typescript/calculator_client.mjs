// Interop check of the calculator MCP service with the official MCP TypeScript
// SDK: connects over Streamable HTTP or the legacy HTTP+SSE transport, lists
// the tools, calls every one of them and checks the results. Run by
// services/calculator/tests/interop.rs and interop_replicas.rs (see
// scripts/test.sh).
//
// Usage: node calculator_client.mjs URL TRANSPORT [--calls N [--pause-ms P]]
//   URL        http://127.0.0.1:PORT/mcp (streamable-http) or .../sse (sse)
//   TRANSPORT  streamable-http | sse
//   --calls N  after those checks, N more tool calls in the same session,
//              cycling through the tools with varying arguments, each result
//              checked exactly; the summary then has "calls": N, "errors": 0
//   --pause-ms P  waits P ms between those calls (a session that lasts while
//              the test restarts replicas under it)
//
// Environment:
//   MCP_TOOL_PREFIX  put before every tool name (default none): the client then
//                    talks to the calculator through a hub that names its tools
//                    `calculator__add` (services/hub/tests/sdk_clients.rs)
//   MCP_SERVER_NAME  the serverInfo.name expected (default calculator; the hub's
//                    is hub)
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

const PREFIX = process.env.MCP_TOOL_PREFIX ?? "";
const SERVER_NAME = process.env.MCP_SERVER_NAME ?? "calculator";

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
// With --calls N: longest wait for one call, and the time budget per call on
// top of TIMEOUT_MS.
const CALL_TIMEOUT_MS = 10_000;
const MS_PER_CALL = 250;
// With --calls N: the run stops after this many failed calls (the rest would
// most likely fail the same way).
const MAX_ERRORS = 10;

class Mismatch extends Error {}

function check(condition, message) {
  if (!condition) throw new Mismatch(message);
}

function textOf(result) {
  return (result.content ?? []).map((item) => item.text ?? "").join("\n");
}

async function exercise(client) {
  const server = client.getServerVersion();
  check(server?.name === SERVER_NAME, `initialize: serverInfo.name is ${JSON.stringify(server?.name)}, expected ${JSON.stringify(SERVER_NAME)}`);

  const { tools } = await client.listTools();
  const names = new Set(
    tools.filter((tool) => tool.name.startsWith(PREFIX)).map((tool) => tool.name.slice(PREFIX.length)),
  );
  const missing = TOOLS.filter((name) => !names.has(name));
  check(missing.length === 0, `tools/list: missing ${missing.join(", ")} (got ${[...names].sort().join(", ")})`);
  // An outputSchema is optional (MCP 2025-06-18, Server Features §Tools); where
  // the server declares one, the SDK validates structuredContent against it.
  const outputSchemas = tools.filter((tool) => tool.outputSchema !== undefined).length;

  let calls = 0;
  for (const [name, args, expected, expression] of CALLS) {
    const result = await client.callTool({ name: PREFIX + name, arguments: args });
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
    const result = await client.callTool({ name: PREFIX + name, arguments: args });
    calls += 1;
    const where = `tools/call ${name} ${JSON.stringify(args)}`;
    check(result.isError === true, `${where}: expected isError true, got ${JSON.stringify(result)}`);
    check(textOf(result).includes(message), `${where}: error text ${JSON.stringify(textOf(result))} lacks ${JSON.stringify(message)}`);
  }

  // Arguments of the wrong type are a protocol error, not a tool result.
  let invalid;
  try {
    invalid = await client.callTool({ name: `${PREFIX}add`, arguments: { a: "two", b: 40 } });
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

// --- --calls N: a long session ---------------------------------------------

// Renders a number the way the calculator writes it in an expression.
function num(x) {
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(Math.trunc(x) + 0);
  return String(x);
}

// The calculator's rounding: half away from zero, in doubles.
function roundHalfAway(x, decimals) {
  const scale = 10 ** decimals;
  const scaled = x * scale;
  let whole = Math.trunc(scaled);
  if (Math.abs(scaled - whole) >= 0.5) whole += Math.sign(scaled);
  return whole / scale;
}

// Call number k of a long session: [tool, arguments, result, expression].
// Cycles through the 11 tools; the arguments vary with k and are chosen so
// that every result is computed in doubles exactly as the server computes it.
function plannedCall(k) {
  const tool = CALLS[k % CALLS.length][0];
  switch (tool) {
    case "add": {
      const [a, b] = [k, k * 0.5 + 1];
      return [tool, { a, b }, a + b, `${num(a)} + ${num(b)} = ${num(a + b)}`];
    }
    case "subtract": {
      const [a, b] = [k, 2 * k + 3];
      return [tool, { a, b }, a - b, `${num(a)} - ${num(b)} = ${num(a - b)}`];
    }
    case "multiply": {
      const [a, b] = [k + 1, k % 2 ? -0.5 : 1.25];
      return [tool, { a, b }, a * b, `${num(a)} × ${num(b)} = ${num(a * b)}`];
    }
    case "divide": {
      const [a, b] = [k, k % 2 ? 4 : -8];
      return [tool, { a, b }, a / b, `${num(a)} ÷ ${num(b)} = ${num(a / b)}`];
    }
    case "modulo": {
      const [a, b] = [3 * k + 1, (k % 5) + 2];
      return [tool, { a, b }, a % b, `${num(a)} mod ${num(b)} = ${num(a % b)}`];
    }
    case "power": {
      const [base, exponent] = [(k % 7) - 3, k % 4];
      const result = base ** exponent;
      return [tool, { base, exponent }, result, `${num(base)}^${num(exponent)} = ${num(result)}`];
    }
    case "sqrt": {
      const root = (k + 1) * 0.5;
      const x = root * root;
      return [tool, { x }, root, `√${num(x)} = ${num(root)}`];
    }
    case "absolute": {
      const x = -(k * 0.25) - 1;
      return [tool, { x }, Math.abs(x), `|${num(x)}| = ${num(Math.abs(x))}`];
    }
    case "round": {
      const x = (k + 0.375) * (k % 2 ? -1 : 1);
      const decimals = k % 4;
      const result = roundHalfAway(x, decimals);
      return [tool, { x, decimals }, result, `round(${num(x)}, ${decimals}) = ${num(result)}`];
    }
    case "sum": {
      const values = [k, 0.5, -(k % 3) + 0, 2.25];
      const result = values.reduce((total, value) => total + value, 0);
      return [tool, { values }, result, `sum(${values.map(num).join(", ")}) = ${num(result)}`];
    }
    default: {
      const values = Array.from({ length: (k % 4) + 1 }, (_, i) => k + 2 * i);
      const result = values.reduce((total, value) => total + value, 0) / values.length;
      return [tool, { values }, result, `mean(${values.map(num).join(", ")}) = ${num(result)}`];
    }
  }
}

// Makes call k and checks its result exactly; returns what was wrong, if anything.
async function oneCall(client, k) {
  const [name, args, expected, expression] = plannedCall(k);
  const where = `call ${k + 1}: tools/call ${name} ${JSON.stringify(args)}`;
  let result;
  try {
    result = await client.callTool({ name: PREFIX + name, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS });
  } catch (error) {
    const code = error?.code === undefined ? "" : ` (code ${error.code})`;
    return `${where}: threw ${error?.name ?? "Error"}${code}: ${error?.message ?? error}`;
  }
  if (result.isError) return `${where}: isError is true: ${textOf(result)}`;
  const structured = result.structuredContent;
  if (!structured || typeof structured !== "object") {
    return `${where}: no structuredContent (got ${JSON.stringify(result)})`;
  }
  if (typeof structured.result !== "number" || structured.result !== expected) {
    return `${where}: structuredContent.result is ${JSON.stringify(structured.result)}, expected ${expected} (${JSON.stringify(structured)})`;
  }
  if (structured.operation !== name || structured.expression !== expression) {
    return `${where}: structuredContent is ${JSON.stringify(structured)}, expected operation ${JSON.stringify(name)}, expression ${JSON.stringify(expression)}`;
  }
  let rendered;
  try {
    rendered = JSON.parse(textOf(result));
  } catch (error) {
    return `${where}: text content ${JSON.stringify(textOf(result))} is not JSON: ${error.message}`;
  }
  if (
    rendered?.result !== structured.result ||
    rendered.operation !== structured.operation ||
    rendered.expression !== structured.expression
  ) {
    return `${where}: text content ${JSON.stringify(rendered)} differs from structuredContent ${JSON.stringify(structured)}`;
  }
  return undefined;
}

// Makes `count` more tool calls in the session; throws a Mismatch listing the failed ones.
async function longSession(client, count, pauseMs) {
  const deadline = Date.now() + TIMEOUT_MS + (MS_PER_CALL + pauseMs) * count;
  const failures = [];
  let made = 0;
  for (let k = 0; k < count; k += 1) {
    if (Date.now() > deadline) {
      failures.push(`out of time after ${made} calls`);
      break;
    }
    made += 1;
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const failure = await oneCall(client, k);
    if (failure !== undefined) {
      failures.push(failure);
      if (failures.length >= MAX_ERRORS) break;
    }
  }
  if (failures.length > 0) {
    const stopped = made < count ? ` (stopped after ${made} of ${count} calls)` : "";
    throw new Mismatch(`${failures.length} of ${made} calls failed${stopped}: ${failures.join(" | ")}`);
  }
  return { calls: count, errors: 0 };
}

async function main(url, transportName, extraCalls, pauseMs) {
  const transport =
    transportName === "streamable-http"
      ? new StreamableHTTPClientTransport(new URL(url))
      : new SSEClientTransport(new URL(url));
  const client = new Client({ name: "calculator-interop-typescript", version: "1.0.0" });
  await client.connect(transport);
  try {
    let summary = await exercise(client);
    if (extraCalls !== undefined) {
      const { calls: checks, ...rest } = summary;
      summary = { ...rest, checks, ...(await longSession(client, extraCalls, pauseMs)) };
    }
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

const USAGE = "usage: node calculator_client.mjs URL streamable-http|sse [--calls N [--pause-ms P]]";
const [url, transportName, ...options] = process.argv.slice(2);
let extraCalls;
let pauseMs = 0;
if ((options.length === 2 || options.length === 4) && options[0] === "--calls") {
  extraCalls = /^[0-9]+$/.test(options[1]) ? Number(options[1]) : -1;
  if (!Number.isSafeInteger(extraCalls) || extraCalls < 0) {
    console.error(`${USAGE}: --calls takes a number >= 0, got ${JSON.stringify(options[1])}`);
    process.exit(2);
  }
  if (options.length === 4) {
    pauseMs = options[2] === "--pause-ms" && /^[0-9]+$/.test(options[3]) ? Number(options[3]) : -1;
    if (!Number.isSafeInteger(pauseMs) || pauseMs < 0) {
      console.error(`${USAGE}: --pause-ms takes a number >= 0`);
      process.exit(2);
    }
  }
} else if (options.length !== 0) {
  console.error(USAGE);
  process.exit(2);
}
if (!["streamable-http", "sse"].includes(transportName)) {
  console.error(USAGE);
  process.exit(2);
}
const label = `typescript @modelcontextprotocol/sdk ${SDK_VERSION}, ${transportName} ${url}`;
// The whole run's budget: the checks, plus the time allowed for --calls N.
const budgetMs =
  TIMEOUT_MS + (extraCalls === undefined ? 0 : TIMEOUT_MS + (MS_PER_CALL + pauseMs) * extraCalls);
const timer = setTimeout(() => {
  console.error(`FAIL (${label}): no answer within ${budgetMs / 1000} s`);
  process.exit(1);
}, budgetMs);
try {
  const summary = await main(url, transportName, extraCalls, pauseMs);
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
