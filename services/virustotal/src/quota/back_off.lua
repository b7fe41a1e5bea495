-- Pauses every replica's API requests after a 429 from the API
-- (services/virustotal/src/quota/redis.rs): sets the back-off marker for
-- ARGV[1] milliseconds unless a longer back-off is already running.
--
-- KEYS[1]  mcp_vt_quota:{<key_id>}:backoff
-- ARGV[1]  the back-off, in milliseconds (at least 1)
--
-- Returns the back-off's remaining milliseconds after the call.
local wanted = tonumber(ARGV[1])
local remaining = redis.call('PTTL', KEYS[1])
if remaining < wanted then
  redis.call('SET', KEYS[1], '429', 'PX', wanted)
  return wanted
end
return remaining
