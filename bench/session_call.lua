-- wrk script: the session mode (protocol 2025-06-18) of mcp-load, for the
-- independent cross-check of its numbers (scripts/bench.sh). Run it with one
-- connection per thread (-t N -c N): each connection opens its own session
-- (initialize, notifications/initialized), then calls `add` in a loop with
-- its Mcp-Session-Id. Any answer but a 200 with the result 42 (or the 202 of
-- the notification) stops the thread and is printed.
local session = nil
local step = "initialize"
local accept = "application/json, text/event-stream"

local initialize = '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
  .. '"capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}'
local initialized = '{"jsonrpc":"2.0","method":"notifications/initialized"}'
local call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":40}}}'

function request()
  local headers = { ["Content-Type"] = "application/json", ["Accept"] = accept }
  if step == "initialize" then
    return wrk.format("POST", nil, headers, initialize)
  end
  headers["Mcp-Session-Id"] = session
  headers["MCP-Protocol-Version"] = "2025-06-18"
  if step == "initialized" then
    return wrk.format("POST", nil, headers, initialized)
  end
  return wrk.format("POST", nil, headers, call)
end

local function fail(status, body)
  io.stderr:write("unexpected response in step " .. step .. ": " .. status .. " " .. body .. "\n")
  wrk.thread:stop()
end

function response(status, headers, body)
  if step == "initialize" then
    session = headers["mcp-session-id"] or headers["Mcp-Session-Id"]
    if status ~= 200 or session == nil then return fail(status, body) end
    step = "initialized"
  elseif step == "initialized" then
    if status ~= 202 then return fail(status, body) end
    step = "call"
  elseif status ~= 200 or not string.find(body, '"result":42') then
    fail(status, body)
  end
end
