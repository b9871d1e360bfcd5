-- KEYS: state, log, outbox, parent-state, parent-log, parent-done
-- ARGV: owner, version, now, finished-event-json, outcome-json, response-id ('' = no parent),
--       response-event-json, parent-wake-msg,
--       and optionally the same three JSON values to write instead when cancellation
--       was requested while it ran (an activity's result is then discarded),
--       and a stream id of the parent's log: the reply then carries the parent's
--       entries after it (a parent waiting in this runner reads its response here)
local f = fence(KEYS[1], ARGV[1], ARGV[2])
if f then return {f} end
local finished, outcome, response, cancelled = ARGV[4], ARGV[5], ARGV[7], 0
if ARGV[9] and ARGV[9] ~= '' and redis.call('HGET', KEYS[1], 'cancel') == '1' then
  finished, outcome, response, cancelled = ARGV[9], ARGV[10], ARGV[11], 1
end
xadd(KEYS[2], 'finished', finished, ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'finished', 'outcome', outcome, 'owner', '', 'lock_until', 0,
  'updated_at', ARGV[3], 'finished_at', ARGV[3])
local woke = 0
if ARGV[6] ~= '' then
  woke = deliver(KEYS[4], KEYS[5], KEYS[6], KEYS[3], ARGV[6], response, ARGV[3], ARGV[8])
end
if ARGV[12] and ARGV[12] ~= '' then
  return {'ok', woke, cancelled, redis.call('XRANGE', KEYS[5], '(' .. ARGV[12], '+')}
end
return {'ok', woke, cancelled}
