// Lists the tools of an MCP server over Streamable HTTP with the official
// TypeScript SDK, the way an application does on connection: the SDK compiles
// every tool's output schema with Ajv, which warns on stderr about anything it
// does not understand (such as `unknown format "uint" ignored in schema`).
// Run by mcp_testkit::tool_schemas::typescript_tools, which fails on any
// output on stderr.
//
// Usage: node list_tools.mjs URL [HEADER: VALUE]...
// Prints {"tools": [...]} (the tools/list result, all pages) on stdout.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, ...headerArgs] = process.argv.slice(2);
if (!url) {
  console.error("usage: node list_tools.mjs URL [HEADER: VALUE]...");
  process.exit(2);
}
const headers = {};
for (const arg of headerArgs) {
  const colon = arg.indexOf(":");
  headers[arg.slice(0, colon).trim()] = arg.slice(colon + 1).trim();
}

const client = new Client({ name: "list-tools", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
await client.connect(transport);
const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools);
  cursor = page.nextCursor;
} while (cursor);
await client.close();
process.stdout.write(JSON.stringify({ tools }) + "\n");
