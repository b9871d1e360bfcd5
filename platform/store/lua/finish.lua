-- Finish an execution and answer its parent.
-- KEYS: state, log, outbox, parent-state, parent-log, parent-done
-- ARGV: wid, owner, version, now, finished-event-json, outcome-json, response-id ('' = no parent),
--       response-event-json, parent-wake-msg,
--       the same three JSON values to write instead when cancellation was requested
--       while it ran (an activity's result is then discarded; '' = not so),
--       a stream id of the parent's log ('' = none): the reply then carries the
--       parent's entries after it (a parent waiting in this runner reads its response here),
--       for a root: the outbox message that starts its tree's retention ('' or absent = none),
--       for a workflow that continues as new: the outbox message that creates its successor
--       ('' or absent = none; left out when cancellation won),
--       for a workflow: the last stream id of its own log its runner read and how many entries
--       that is ('' or absent = unchecked)
-- Reply: {'ok', woke-parent, cancelled-instead[, parent-entries]}, or {'behind'} (and the lease
-- released) when the workflow's log no longer holds what its runner read (see `holds`).
local function tail(reply)
  if ARGV[13] ~= '' then
    return {reply[1], reply[2], reply[3], redis.call('XRANGE', KEYS[5], '(' .. ARGV[13], '+')}
  end
  return reply
end
local r = repeated(KEYS[1], ARGV[1])
if r then return tail(r) end
local f = fence(KEYS[1], ARGV[2], ARGV[3])
if f then return {f} end
if ARGV[16] and ARGV[16] ~= '' and not holds(KEYS[2], ARGV[16], ARGV[17]) then return went_back(KEYS[1], ARGV[4]) end
local finished, outcome, response, cancelled = ARGV[5], ARGV[6], ARGV[8], 0
if ARGV[10] ~= '' and redis.call('HGET', KEYS[1], 'cancel') == '1' then
  finished, outcome, response, cancelled = ARGV[10], ARGV[11], ARGV[12], 1
end
xadd(KEYS[2], 'finished', finished, ARGV[4])
redis.call('HSET', KEYS[1], 'status', 'finished', 'outcome', outcome, 'owner', '', 'lock_until', 0,
  'updated_at', ARGV[4], 'finished_at', ARGV[4])
notify_finished(execution_id_of(KEYS[1]))
if ARGV[14] and ARGV[14] ~= '' then emit(KEYS[3], ARGV[14]) end
if cancelled == 0 and ARGV[15] and ARGV[15] ~= '' then emit(KEYS[3], ARGV[15]) end
local woke = 0
if ARGV[7] ~= '' then
  woke = deliver(KEYS[4], KEYS[5], KEYS[6], KEYS[3], ARGV[7], response, ARGV[4], ARGV[9])
end
return tail(accepted(KEYS[1], ARGV[1], {'ok', woke, cancelled}))
