-- A workflow appends the requests its code made and creates the executions
-- they start (children in the same tree), atomically and fenced.
-- KEYS: state, log, outbox, then (state, log) of each created execution
-- ARGV: wid, owner, version, now, spec-json {events: [[type, json, at]...],
--       creates: [{created: json, fields: [k, v, ...]}...], outbox: [msg...], state: [k, v, ...]},
--       last-seen-stream-id, how many entries the runner read up to it ('' = unchecked)
-- Returns the log entries after last-seen-stream-id: ours, and any response
-- that others appended since the runner last read the log; {'behind'} (and
-- the lease released) when the log no longer holds what the runner read.
local r = repeated(KEYS[1], ARGV[1])
if r then return {'ok', redis.call('XRANGE', KEYS[2], '(' .. ARGV[6], '+')} end
local f = fence(KEYS[1], ARGV[2], ARGV[3])
if f then return {f} end
if ARGV[7] and ARGV[7] ~= '' and not holds(KEYS[2], ARGV[6], ARGV[7]) then return went_back(KEYS[1], ARGV[4]) end
local spec = cjson.decode(ARGV[5])
for i = 1, #spec.creates do
  if redis.call('EXISTS', KEYS[2 + 2 * i]) == 1 then return {'conflict', KEYS[2 + 2 * i]} end
end
for _, e in ipairs(spec.events) do xadd(KEYS[2], e[1], e[2], e[3]) end
for i, c in ipairs(spec.creates) do create(KEYS[2 + 2 * i], KEYS[3 + 2 * i], c.created, ARGV[4], c.fields) end
push_all(KEYS[3], spec.outbox)
if #spec.state > 0 then redis.call('HSET', KEYS[1], unpack(spec.state)) end
accepted(KEYS[1], ARGV[1], {'ok'})
return {'ok', redis.call('XRANGE', KEYS[2], '(' .. ARGV[6], '+')}
