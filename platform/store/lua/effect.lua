-- One effect of an outbox message on one key: a queue entry (XADD), a timer
-- or an index entry (ZADD). It belongs to a write Redis already accepted, and
-- the writer removes the message from the outbox in the same round trip, so
-- it must not be refused when Redis is over maxmemory (loaded with
-- `flags=allow-oom`, see scripts.py): a few bytes past the limit, never a lost effect.
-- KEYS: the key   ARGV: XADD or ZADD, then the command's arguments after the key
local command = ARGV[1]
if command ~= 'XADD' and command ~= 'ZADD' then
  return redis.error_reply('ERR effect.lua runs XADD or ZADD only, not ' .. tostring(command))
end
return redis.call(command, KEYS[1], unpack(ARGV, 2))
