-- Finish a stub execution with a result supplied from outside (PUT
-- /v1/executions/{id}/result, `platform executions complete`) and answer its
-- parent exactly as finish.lua does (the same `deliver`).
-- A stub holds no lease, so its fence is its state: a stub that has not
-- finished. Nothing else writes a stub but cancel.lua, which finishes it at
-- once too: whichever of the two runs first wins, the other finds it finished.
-- KEYS: state, log, outbox, parent-state, parent-log, parent-done
-- ARGV: wid, now, finished-event-json, outcome-json, response-id ('' = no parent),
--       response-event-json, parent-wake-msg,
--       for a root: the outbox message that starts its tree's retention ('' = none)
-- Reply: {'ok', woke-parent}, also to a repeat of the same write; {'missing'};
--        {'not_stub', kind}; {'finished', outcome-json} (the caller compares it).
local r = repeated(KEYS[1], ARGV[1], 'r')
if r then return r end
local s = redis.call('HMGET', KEYS[1], 'status', 'kind', 'outcome')
if not s[1] then return {'missing'} end
if s[2] ~= 'stub' then return {'not_stub', s[2] or ''} end
if s[1] == 'finished' then return {'finished', s[3] or ''} end
xadd(KEYS[2], 'finished', ARGV[3], ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'finished', 'outcome', ARGV[4], 'owner', '', 'lock_until', 0,
  'updated_at', ARGV[2], 'finished_at', ARGV[2])
notify_finished(execution_id_of(KEYS[1]))
if ARGV[8] ~= '' then emit(KEYS[3], ARGV[8]) end
local woke = 0
if ARGV[5] ~= '' then
  woke = deliver(KEYS[4], KEYS[5], KEYS[6], KEYS[3], ARGV[5], ARGV[6], ARGV[2], ARGV[7])
end
return accepted(KEYS[1], ARGV[1], {'ok', woke}, 'r')
