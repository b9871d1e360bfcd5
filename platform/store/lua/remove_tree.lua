-- Remove one finished execution tree: each execution's state, log and
-- `done` hash, and the tree's outbox, in one call on one slot (the keys share
-- the root's hash tag). Refused, changing nothing, unless the root exists,
-- every execution the caller found is finished with the log length it read
-- (only an unfinished workflow creates children, so none was created since),
-- and the outbox is empty (every message it held was delivered).
-- It leaves a tombstone naming what the global indexes still list, which the
-- caller removes once it cleaned them (store/trees.py).
-- KEYS: outbox, tombstone, then (state, log, done) of each execution, the root first
-- ARGV: tombstone-json, tombstone-ttl-s, then the log length read of each execution
-- Reply: {'removed', n} | {'missing'} | {'unfinished', i} | {'changed', i} | {'outbox'}
local n = (#KEYS - 2) / 3
if redis.call('EXISTS', KEYS[3]) == 0 then return {'missing'} end
if redis.call('LLEN', KEYS[1]) > 0 then return {'outbox'} end
for i = 1, n do
  local status = redis.call('HGET', KEYS[3 * i], 'status')
  if status and status ~= 'finished' then return {'unfinished', i} end
  if redis.call('XLEN', KEYS[3 * i + 1]) ~= tonumber(ARGV[2 + i]) then return {'changed', i} end
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
for i = 1, n do redis.call('UNLINK', KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]) end
redis.call('UNLINK', KEYS[1])
return {'removed', n}
