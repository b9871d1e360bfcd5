-- Remove a fired timer only if it was not armed again since it was read
-- (a retry re-arms the same member with a later time).
-- KEYS: timers-zset   ARGV: member, score-seen
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
