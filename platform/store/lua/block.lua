-- A workflow waits for a response: release it (blocked) unless its log grew
-- since the runner last read it, or no longer holds what the runner read
-- (a failover took it back): then it is queued to run again. A workflow that
-- unloads because it was paused (`paused` = '1') is released pending, since
-- what it read but did not act on must run on resume; a paused one is not
-- queued (resume.lua queues it).
-- KEYS: state, log, outbox
-- ARGV: wid, owner, version, now, seen-length, requeue-msg,
--       when the first delay it waits for fires ('' = none; the repair sweep re-arms a timer lost past it),
--       the last stream id the runner read ('' or absent = unchecked), paused ('1' or absent)
-- Reply: {'blocked'}, {'requeued'} (the caller delivers requeue-msg), {'paused'} (released pending, not queued).
local r = repeated(KEYS[1], ARGV[1])
if r then return r end
local f = fence(KEYS[1], ARGV[2], ARGV[3])
if f then return {f} end
if ARGV[9] == '1' or redis.call('XLEN', KEYS[2]) ~= tonumber(ARGV[5]) or not holds(KEYS[2], ARGV[8], ARGV[5]) then
  redis.call('HSET', KEYS[1], 'status', 'pending', 'owner', '', 'lock_until', 0, 'updated_at', ARGV[4])
  if redis.call('HGET', KEYS[1], 'paused') == '1' then return accepted(KEYS[1], ARGV[1], {'paused'}) end
  emit(KEYS[3], ARGV[6])
  return accepted(KEYS[1], ARGV[1], {'requeued'})
end
redis.call('HSET', KEYS[1], 'status', 'blocked', 'owner', '', 'lock_until', 0, 'updated_at', ARGV[4])
if ARGV[7] and ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'wake_at', ARGV[7])
else
  redis.call('HDEL', KEYS[1], 'wake_at')
end
return accepted(KEYS[1], ARGV[1], {'blocked'})
