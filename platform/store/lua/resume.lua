-- Resume a paused execution. When it has work (pending: a response or a
-- fired timer arrived while it was paused, a retry is due, or it never ran;
-- or running on a lease that expired meanwhile), it is queued again through
-- the outbox. A pending execution whose retry is not due yet is left to its
-- timer; a blocked one waits for its responses as before.
-- KEYS: state, log, outbox
-- ARGV: wid, now, enqueue-msg
-- Reply: {'resumed', queued 0/1}, also to a repeat; {'already'} (not paused);
--        {'missing'}; {'finished'}.
local r = repeated(KEYS[1], ARGV[1], 'p')
if r then return r end
local s = redis.call('HMGET', KEYS[1], 'status', 'paused', 'lock_until', 'not_before')
if not s[1] then return {'missing'} end
if s[1] == 'finished' then return {'finished'} end
if s[2] ~= '1' then return {'already'} end
local now = tonumber(ARGV[2])
local queued = 0
if (s[1] == 'pending' and tonumber(s[4] or '0') <= now) or (s[1] == 'running' and tonumber(s[3] or '0') <= now) then
  queued = 1
end
redis.call('HDEL', KEYS[1], 'paused')
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
xadd(KEYS[2], 'resumed', cjson.encode({queued = queued == 1}), ARGV[2])
if queued == 1 then emit(KEYS[3], ARGV[3]) end
return accepted(KEYS[1], ARGV[1], {'resumed', queued}, 'p')
