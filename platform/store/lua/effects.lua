-- Effects of outbox messages on one key, many at once: queue entries (XADD),
-- timers and index entries (ZADD), and the removal of delivered messages from
-- an outbox (LREM). They belong to writes Redis already accepted, so they must
-- not be refused when Redis is over maxmemory (loaded with `flags=allow-oom`,
-- see scripts.py): a few bytes past the limit, never a lost effect.
-- KEYS: the key
-- ARGV: 'XADD', then execution ids (an entry `id ID` each);
--       'ZADD', then 'NX' or '-', then score and member pairs;
--       'LREM', then the outbox messages to remove (one occurrence each);
--       'SADD', then members (the priority classes in use)
local mode = ARGV[1]
if mode == 'XADD' then
  for i = 2, #ARGV do redis.call('XADD', KEYS[1], '*', 'id', ARGV[i]) end
elseif mode == 'ZADD' and ARGV[2] == 'NX' then
  for i = 3, #ARGV, 2 do redis.call('ZADD', KEYS[1], 'NX', ARGV[i], ARGV[i + 1]) end
elseif mode == 'ZADD' then
  for i = 3, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
elseif mode == 'LREM' then
  for i = 2, #ARGV do redis.call('LREM', KEYS[1], 1, ARGV[i]) end
elseif mode == 'SADD' then
  for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
else
  return redis.error_reply('ERR effects.lua runs XADD, ZADD, LREM or SADD, not ' .. tostring(mode))
end
return #ARGV - 1
