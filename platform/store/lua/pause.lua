-- Pause an execution: no runner locks it again until it is resumed (lock.lua).
-- What it is doing now it finishes: a running activity's attempt, a running
-- workflow's step up to its next wait (it then unloads). Responses and fired
-- timers still reach its log while it is paused, but do not wake it
-- (`deliver` in the prelude): resume.lua queues it if it has work by then.
-- Holds no lease, so it never bumps the fencing token: a runner that runs it
-- now still writes the step it is in.
-- KEYS: state, log
-- ARGV: wid, now
-- Reply: {'paused', status-when-paused}, also to a repeat; {'already'};
--        {'missing'}; {'finished'}; {'stub'} (a stub never runs: nothing to pause).
local r = repeated(KEYS[1], ARGV[1], 'p')
if r then return r end
local s = redis.call('HMGET', KEYS[1], 'status', 'kind', 'paused')
if not s[1] then return {'missing'} end
if s[1] == 'finished' then return {'finished'} end
if s[2] == 'stub' then return {'stub'} end
if s[3] == '1' then return {'already'} end
redis.call('HSET', KEYS[1], 'paused', '1', 'updated_at', ARGV[2])
xadd(KEYS[2], 'paused', cjson.encode({status = s[1]}), ARGV[2])
return accepted(KEYS[1], ARGV[1], {'paused', s[1]}, 'p')
