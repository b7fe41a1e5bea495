-- One API request slot of the fleet-wide VirusTotal quota, taken atomically
-- (services/virustotal/src/quota/redis.rs; the rules: src/quota/mod.rs).
--
-- KEYS[1]  mcp_vt_quota:{<key_id>}:minute   sorted set: one member per request
--                                           granted in the last 60 s, scored
--                                           by its time (Unix ms)
-- KEYS[2]  mcp_vt_quota:{<key_id>}:day      hash: day (days since the epoch,
--                                           UTC), count (requests that day)
-- KEYS[3]  mcp_vt_quota:{<key_id>}:backoff  string, set with an expiry after
--                                           the API answered 429
-- ARGV[1]  requests per minute, 0 = no limit
-- ARGV[2]  requests per UTC day, 0 = no limit
-- ARGV[3]  a member name unique to this request
--
-- Returns {1, "ok", 0} when the slot is granted (and counted), else
-- {0, window, wait_ms}: the rule that refused ("backoff", "day", "minute")
-- and the milliseconds until it lets a request through.
--
-- Time comes from the server (TIME), one clock for every replica; scripts
-- replicate their effects (Redis 5+), so reading the clock is allowed.
local minute_ms, day_ms = 60000, 86400000
local per_minute = tonumber(ARGV[1])
local per_day = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local backoff = redis.call('PTTL', KEYS[3])
if backoff > 0 then
  return {0, 'backoff', backoff}
end

local today = math.floor(now / day_ms)
local until_midnight = day_ms - (now % day_ms)
local used = 0
local day_fields = redis.call('HMGET', KEYS[2], 'day', 'count')
if tonumber(day_fields[1]) == today then
  used = tonumber(day_fields[2]) or 0
end
if per_day > 0 and used >= per_day then
  return {0, 'day', until_midnight}
end

if per_minute > 0 then
  -- Requests exactly 60 s old no longer count.
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - minute_ms)
  local in_window = redis.call('ZCARD', KEYS[1])
  if in_window >= per_minute then
    -- The slot frees when the request keeping the window full turns 60 s old.
    local blocking = redis.call('ZRANGE', KEYS[1], in_window - per_minute, in_window - per_minute, 'WITHSCORES')
    return {0, 'minute', tonumber(blocking[2]) + minute_ms - now}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], minute_ms)
end

redis.call('HSET', KEYS[2], 'day', today, 'count', used + 1)
redis.call('PEXPIRE', KEYS[2], until_midnight + minute_ms)
return {1, 'ok', 0}
