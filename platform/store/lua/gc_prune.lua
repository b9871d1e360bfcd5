-- Delete the revisions `platform gc` chose, except one that is active now, or
-- was stored or stopped being active less than the grace period ago.
-- KEYS: revisions, active, retired, then the key of each revision
-- ARGV: grace-ms, then the number of each revision
-- Answers the numbers of the revisions deleted.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local grace = tonumber(ARGV[1])
local active = redis.call('GET', KEYS[2])
local pruned = {}
for i = 2, #ARGV do
  local n, key = ARGV[i], KEYS[i + 2]
  local retired = tonumber(redis.call('HGET', KEYS[3], n) or '0')
  local created = tonumber(redis.call('ZSCORE', KEYS[1], n) or '0')
  if n ~= active and redis.call('EXISTS', key) == 1 and now - retired >= grace and now - created >= grace then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], n)
    redis.call('HDEL', KEYS[3], n)
    pruned[#pruned + 1] = n
  end
end
return pruned
