-- A workflow waits for a response: release it (blocked) unless its log grew
-- since the runner last read it, or no longer holds what the runner read
-- (a failover took it back, see `holds`): then it is queued to run again.
-- KEYS: state, log, outbox
-- ARGV: wid, owner, version, now, seen-length, requeue-msg,
--       when the first delay it waits for fires ('' = none; the repair sweep re-arms a timer lost past it),
--       the last stream id the runner read ('' or absent = unchecked)
local r = repeated(KEYS[1], ARGV[1])
if r then return r end
local f = fence(KEYS[1], ARGV[2], ARGV[3])
if f then return {f} end
if redis.call('XLEN', KEYS[2]) ~= tonumber(ARGV[5]) or not holds(KEYS[2], ARGV[8], ARGV[5]) then
  redis.call('HSET', KEYS[1], 'status', 'pending', 'owner', '', 'lock_until', 0, 'updated_at', ARGV[4])
  redis.call('RPUSH', KEYS[3], ARGV[6])
  return accepted(KEYS[1], ARGV[1], {'requeued'})
end
redis.call('HSET', KEYS[1], 'status', 'blocked', 'owner', '', 'lock_until', 0, 'updated_at', ARGV[4])
if ARGV[7] and ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'wake_at', ARGV[7])
else
  redis.call('HDEL', KEYS[1], 'wake_at')
end
return accepted(KEYS[1], ARGV[1], {'blocked'})
