-- Request cancellation. A pending activity is finished as cancelled at once;
-- a workflow is queued so a runner cancels its children and then finishes it;
-- a running activity learns it from its lock extension and stops.
-- KEYS: state, log, outbox, parent-state, parent-log, parent-done
-- ARGV: now, cancel-event-json, self-msg, finished-event-json, outcome-json,
--       response-id ('' = no parent), response-event-json, parent-wake-msg
local s = redis.call('HMGET', KEYS[1], 'status', 'kind', 'cancel')
if not s[1] then return {'missing'} end
if s[1] == 'finished' then return {'finished'} end
if s[3] == '1' then return {'already'} end
redis.call('HSET', KEYS[1], 'cancel', '1', 'updated_at', ARGV[1])
xadd(KEYS[2], 'cancel_requested', ARGV[2], ARGV[1])
if s[2] == 'activity' and s[1] == 'pending' then
  xadd(KEYS[2], 'finished', ARGV[4], ARGV[1])
  redis.call('HSET', KEYS[1], 'status', 'finished', 'outcome', ARGV[5], 'owner', '', 'lock_until', 0,
    'finished_at', ARGV[1])
  if ARGV[6] ~= '' then
    deliver(KEYS[4], KEYS[5], KEYS[6], KEYS[3], ARGV[6], ARGV[7], ARGV[1], ARGV[8])
  end
  return {'cancelled'}
end
if s[1] == 'blocked' or s[1] == 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'pending', 'not_before', 0)
  redis.call('RPUSH', KEYS[3], ARGV[3])
end
return {'requested'}
