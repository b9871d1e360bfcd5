-- Write a forked execution: its state, its copied log, the responses it already
-- holds and the children it starts again, all in its own new tree.
-- KEYS: state, log, done, outbox, then (state, log) of each child
-- ARGV: wid, at, spec-json {state: [k, v, ...], events: [[type, json, at]...],
--       delivered: [response-id...], children: [{created: json, fields: [...]}...], outbox: [msg...]}
-- Reply: {'created'}, also to a repeat of the same write; {'exists'} when the id is taken.
local e = redis.call('HGET', KEYS[1], 'cwid')
if e then
  if e == ARGV[1] then return {'created'} end
  return {'exists'}
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
local spec = cjson.decode(ARGV[3])
for i = 1, #spec.children do
  if redis.call('EXISTS', KEYS[3 + 2 * i]) == 1 then return {'exists'} end
end
redis.call('HSET', KEYS[1], 'cwid', ARGV[1], unpack(spec.state))
for _, ev in ipairs(spec.events) do xadd(KEYS[2], ev[1], ev[2], ev[3]) end
for _, rid in ipairs(spec.delivered) do redis.call('HSET', KEYS[3], rid, ARGV[2]) end
for i, c in ipairs(spec.children) do create(KEYS[3 + 2 * i], KEYS[4 + 2 * i], c.created, ARGV[2], c.fields) end
push_all(KEYS[4], spec.outbox)
return {'created'}
