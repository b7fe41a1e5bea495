-- Deletes a key only if it still holds the value the caller saw
-- (services/hub/src/upstream/store.rs): a stale upstream session id that
-- another replica has not replaced yet, or a single-flight lock this
-- replica still holds.
--
-- KEYS[1]  mcp:upstream:session:<serverName>:<contextKey>, or
--          mcp:upstream:lock:<serverName>:<contextKey>
-- ARGV[1]  the value seen
--
-- Returns 1 when the key was deleted, 0 when it held something else or
-- nothing.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
