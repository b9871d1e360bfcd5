-- A workflow waits for a response: release it (blocked) unless its log grew
-- since the runner last read it, in which case it is queued to run again.
-- KEYS: state, log, outbox
-- ARGV: owner, version, now, seen-length, requeue-msg
local f = fence(KEYS[1], ARGV[1], ARGV[2])
if f then return {f} end
if redis.call('XLEN', KEYS[2]) ~= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'status', 'pending', 'owner', '', 'lock_until', 0, 'updated_at', ARGV[3])
  redis.call('RPUSH', KEYS[3], ARGV[5])
  return {'requeued'}
end
redis.call('HSET', KEYS[1], 'status', 'blocked', 'owner', '', 'lock_until', 0, 'updated_at', ARGV[3])
return {'blocked'}
