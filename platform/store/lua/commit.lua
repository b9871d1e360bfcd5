-- A workflow appends the requests its code made and creates the executions
-- they start (children in the same tree), atomically and fenced.
-- KEYS: state, log, outbox, then (state, log) of each created execution
-- ARGV: owner, version, now, spec-json {events: [[type, json, at]...],
--       creates: [{created: json, fields: [k, v, ...]}...], outbox: [msg...], state: [k, v, ...]},
--       last-seen-stream-id
-- Returns the log entries after last-seen-stream-id: ours, and any response
-- that others appended since the runner last read the log.
local f = fence(KEYS[1], ARGV[1], ARGV[2])
if f then return {f} end
local spec = cjson.decode(ARGV[4])
for i = 1, #spec.creates do
  if redis.call('EXISTS', KEYS[2 + 2 * i]) == 1 then return {'conflict', KEYS[2 + 2 * i]} end
end
for _, e in ipairs(spec.events) do xadd(KEYS[2], e[1], e[2], e[3]) end
for i, c in ipairs(spec.creates) do create(KEYS[2 + 2 * i], KEYS[3 + 2 * i], c.created, ARGV[3], c.fields) end
for _, m in ipairs(spec.outbox) do redis.call('RPUSH', KEYS[3], m) end
if #spec.state > 0 then redis.call('HSET', KEYS[1], unpack(spec.state)) end
return {'ok', redis.call('XRANGE', KEYS[2], '(' .. ARGV[5], '+')}
