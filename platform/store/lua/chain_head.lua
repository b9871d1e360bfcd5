-- Move a continue-as-new chain's head forward: the latest execution of the
-- chain that starts at the key's hash tag, as "<chain-index> <execution-id>".
-- An effect of an accepted write (allow-oom); delivered out of order (the
-- sweep may bring an older one late), it never moves the head back. Expires
-- `ttl-ms` after the last move: about when the chain's last execution is removed.
-- KEYS: head   ARGV: chain-index, execution-id, ttl-ms
local current = redis.call('GET', KEYS[1])
if current and tonumber(string.match(current, '^(%d+)')) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
return 1
