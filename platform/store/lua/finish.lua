-- KEYS: state, log, outbox, parent-state, parent-log, parent-done
-- ARGV: owner, version, now, finished-event-json, outcome-json, response-id ('' = no parent),
--       response-event-json, parent-wake-msg
local f = fence(KEYS[1], ARGV[1], ARGV[2])
if f then return {f} end
xadd(KEYS[2], 'finished', ARGV[4], ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'finished', 'outcome', ARGV[5], 'owner', '', 'lock_until', 0,
  'updated_at', ARGV[3], 'finished_at', ARGV[3])
local woke = 0
if ARGV[6] ~= '' then
  woke = deliver(KEYS[4], KEYS[5], KEYS[6], KEYS[3], ARGV[6], ARGV[7], ARGV[3], ARGV[8])
end
return {'ok', woke}
