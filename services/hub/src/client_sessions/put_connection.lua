-- Writes one connection into a client session, only if the session exists
-- (its hash has the `meta` field), and renews the session's TTL.
-- KEYS[1]: mcp_client_session:<user_hash>:<id>
-- ARGV[1]: the field (server:<name>), ARGV[2]: the connection (JSON),
-- ARGV[3]: the TTL in milliseconds.
-- Returns 1 when written, 0 when the session is gone.
if redis.call('HEXISTS', KEYS[1], 'meta') == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
