-- An attempt failed and will be retried at `retry-at`.
-- KEYS: state, log, outbox
-- ARGV: wid, owner, version, now, attempt-failed-event-json, retry-at, timer-msg
local r = repeated(KEYS[1], ARGV[1])
if r then return r end
local f = fence(KEYS[1], ARGV[2], ARGV[3])
if f then return {f} end
xadd(KEYS[2], 'attempt_failed', ARGV[5], ARGV[4])
redis.call('HSET', KEYS[1], 'status', 'pending', 'owner', '', 'lock_until', 0, 'not_before', ARGV[6],
  'updated_at', ARGV[4])
if redis.call('HGET', KEYS[1], 'kind') == 'workflow' then
  -- a workflow's attempt grows here, not at each resume (see lock.lua)
  redis.call('HINCRBY', KEYS[1], 'attempt', 1)
end
emit(KEYS[3], ARGV[7])
return accepted(KEYS[1], ARGV[1], {'ok'})
