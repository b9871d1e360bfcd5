-- Make a stored revision the active one (rollback); remember when the previous
-- one stopped being active. Answers 0 when the revision does not exist (pruned).
-- KEYS: revision, active, retired   ARGV: number
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if old and old ~= ARGV[1] then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[3], old, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
return 1
