-- wrk script: one stateless (protocol 2026-07-28) tools/call per request, the
-- independent cross-check of mcp-load's stateless numbers (scripts/bench.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "add"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":40},'
  .. '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"result":42') then
    wrk.thread:stop()
    io.stderr:write("unexpected response: " .. status .. " " .. body .. "\n")
  end
end
