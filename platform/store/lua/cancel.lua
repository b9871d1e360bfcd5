-- Request cancellation. A pending activity or external execution, and a stub waiting for its
-- result (never run: nobody else would finish it), is finished as cancelled at once;
-- a workflow is queued so a runner cancels its children and then finishes it;
-- a running execution's runner learns it from a message on CANCEL_CHANNEL
-- (or its next lock extension) and stops its attempt.
-- KEYS: state, log, outbox, parent-state, parent-log, parent-done
-- ARGV: wid, now, cancel-event-json, self-msg, finished-event-json, outcome-json,
--       response-id ('' = no parent), response-event-json, parent-wake-msg,
--       for a root: the outbox message that starts its tree's retention ('' or absent = none)
local r = repeated(KEYS[1], ARGV[1], 'c')
if r then return r end
local s = redis.call('HMGET', KEYS[1], 'status', 'kind', 'cancel')
if not s[1] then return {'missing'} end
if s[1] == 'finished' then return {'finished'} end
if s[3] == '1' then return {'already'} end
redis.call('HSET', KEYS[1], 'cancel', '1', 'updated_at', ARGV[2])
xadd(KEYS[2], 'cancel_requested', ARGV[3], ARGV[2])
if ((s[2] == 'activity' or s[2] == 'external') and s[1] == 'pending') or s[2] == 'stub' then
  xadd(KEYS[2], 'finished', ARGV[5], ARGV[2])
  redis.call('HSET', KEYS[1], 'status', 'finished', 'outcome', ARGV[6], 'owner', '', 'lock_until', 0,
    'finished_at', ARGV[2])
  notify_finished(execution_id_of(KEYS[1]))
  if ARGV[10] and ARGV[10] ~= '' then emit(KEYS[3], ARGV[10]) end
  local woke = 0
  if ARGV[7] ~= '' then
    woke = deliver(KEYS[4], KEYS[5], KEYS[6], KEYS[3], ARGV[7], ARGV[8], ARGV[2], ARGV[9])
  end
  return accepted(KEYS[1], ARGV[1], {'cancelled', woke}, 'c')
end
if s[1] == 'blocked' or s[1] == 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'pending', 'not_before', 0)
  emit(KEYS[3], ARGV[4])
  return accepted(KEYS[1], ARGV[1], {'requested', 1}, 'c')
end
-- Running: whoever runs it stops it (see CANCEL_CHANNEL).
notify_cancel(execution_id_of(KEYS[1]))
return accepted(KEYS[1], ARGV[1], {'requested', 0}, 'c')
