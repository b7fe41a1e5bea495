// Interop check of one protocol generation through a fleet, with the official
// MCP TypeScript SDK v2 client (@modelcontextprotocol/client): in `stateless`
// mode it pins protocol 2026-07-28 (versionNegotiation { pin }: no
// initialize, per-request _meta), in `session` mode it runs the 2025
// initialize handshake (a session with Mcp-Session-Id). It lists the tools
// once, then makes N calls alternating `greet` (the text is checked exactly)
// and `test_simple_text`, and checks that the version in use is the one asked
// for. Run by services/everything/tests/sdk_generations.rs.
//
// Usage: node generations_client.mjs URL MODE CALLS
//   URL    http://127.0.0.1:PORT/mcp
//   MODE   stateless | session
//   CALLS  how many tool calls
//
// Prints one JSON line {"sdk","mode","protocolVersion","calls","errors",
// "firstError"}; exits 0 iff no call failed (1 otherwise, 2 for bad usage).

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const STATELESS = "2026-07-28";
const [url, mode, callsText] = process.argv.slice(2);
const calls = Number(callsText);
if (!url || !["stateless", "session"].includes(mode) || !Number.isInteger(calls)) {
  console.error("usage: node generations_client.mjs URL stateless|session CALLS");
  process.exit(2);
}

let errors = 0;
let firstError = null;
function fail(message) {
  errors += 1;
  firstError ??= message;
}

const client = new Client(
  { name: "generations-client", version: "1.0.0" },
  mode === "stateless" ? { versionNegotiation: { mode: { pin: STATELESS } } } : {},
);
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const version = client.getNegotiatedProtocolVersion();
const era = client.getProtocolEra();
if (mode === "stateless" && (version !== STATELESS || era !== "modern")) {
  fail(`asked for ${STATELESS}, the client uses ${version} (${era})`);
}
if (mode === "session" && (era !== "legacy" || version >= STATELESS)) {
  fail(`asked for a session, the client uses ${version} (${era})`);
}
const tools = new Set((await client.listTools()).tools.map((tool) => tool.name));
for (const needed of ["greet", "test_simple_text"]) {
  if (!tools.has(needed)) fail(`tools/list lacks ${needed}`);
}
for (let i = 0; i < calls; i++) {
  try {
    if (i % 2 === 0) {
      const result = await client.callTool({ name: "greet", arguments: { name: `n${i}` } });
      if (result.isError || result.content?.[0]?.text !== `Hello, n${i}!`) {
        fail(`greet n${i}: ${JSON.stringify(result)}`);
      }
    } else {
      const result = await client.callTool({ name: "test_simple_text", arguments: {} });
      if (result.isError || !result.content?.[0]?.text) {
        fail(`test_simple_text: ${JSON.stringify(result)}`);
      }
    }
  } catch (error) {
    fail(`call ${i}: ${error?.name}: ${error?.message}`);
  }
}
await client.close();
console.log(
  JSON.stringify({ sdk: "typescript", mode, protocolVersion: version, calls, errors, firstError }),
);
process.exit(errors === 0 ? 0 : 1);
