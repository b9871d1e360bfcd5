-- Create an execution (idempotent by id) and queue its outbox messages.
-- KEYS: state, log, outbox
-- ARGV: wid, created-event-json, at, outbox-count, outbox..., field, value, ...
-- Reply: {'created'}, also to a repeat of the same write; {'exists', ffqn, params, tags} otherwise.
local e = redis.call('HMGET', KEYS[1], 'ffqn', 'params', 'cwid', 'tags')
if e[1] then
  if ARGV[1] ~= '' and e[3] == ARGV[1] then return {'created'} end
  return {'exists', e[1], e[2], e[4] or ''}
end
local n = tonumber(ARGV[4])
local fields = {'cwid', ARGV[1]}
for i = 5 + n, #ARGV do fields[#fields + 1] = ARGV[i] end
create(KEYS[1], KEYS[2], ARGV[2], ARGV[3], fields)
for i = 5, 4 + n do emit(KEYS[3], ARGV[i]) end
return {'created'}
