-- KEYS: state, log, outbox
-- ARGV: created-event-json, at, outbox-count, outbox..., field, value, ...
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', redis.call('HGET', KEYS[1], 'ffqn'), redis.call('HGET', KEYS[1], 'params')}
end
local n = tonumber(ARGV[3])
local fields = {}
for i = 4 + n, #ARGV do fields[#fields + 1] = ARGV[i] end
create(KEYS[1], KEYS[2], ARGV[1], ARGV[2], fields)
for i = 4, 3 + n do redis.call('RPUSH', KEYS[3], ARGV[i]) end
return {'created'}
