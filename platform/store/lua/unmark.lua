-- Forget a dirty tree only if nobody marked it again since we looked.
-- KEYS: dirty-zset   ARGV: root, score-seen
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
