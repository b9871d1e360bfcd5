-- Remove a sorted-set member only if its score is still the one the caller
-- read: a tree marked dirty again, or a timer re-armed for a later time (a
-- retry re-arms the same member), stays.
-- KEYS: zset   ARGV: member, score-seen
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
