-- Reserves a place for a new client session in its user's index, atomically:
-- drops the ids that expired, counts the rest, and adds the new id only if
-- the user has fewer than the limit (so concurrent creations on several hub
-- replicas cannot pass it).
-- KEYS[1]: mcp_client_session_index:<user_hash>
-- ARGV[1]: now (Unix ms), ARGV[2]: the new id's expiry (Unix ms),
-- ARGV[3]: the new id, ARGV[4]: the limit, ARGV[5]: the index's TTL (ms).
-- Returns 1 when reserved, 0 when the user is at the limit.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
