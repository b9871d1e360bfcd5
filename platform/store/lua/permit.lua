-- Admit one lease of a limited function (store/limits.py), or say until when not.
-- KEYS: running (zset member -> permit end ms), rate (string: earliest next start ms); one slot per function
-- ARGV: member, now, ttl-ms, max-running (0: none), interval-ms (0: none)
-- Replies {'ok'}, {'full', earliest permit end}, or {'rate', next start}.
-- A permit ends at its lease's end unless renewed with it, so the permits of
-- a runner that died free themselves; those are dropped here first.
local now = tonumber(ARGV[2])
local max = tonumber(ARGV[4])
local interval = tonumber(ARGV[5])
if max > 0 then
  if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
    -- Held already (this admission's reply was lost and it was sent again): renewed, not counted twice.
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
    return {'ok'}
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= max then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {'full', first[2]}
  end
end
if interval > 0 then
  local next_start = tonumber(redis.call('GET', KEYS[2]) or '0')
  if next_start > now then return {'rate', tostring(next_start)} end
  redis.call('SET', KEYS[2], now + interval, 'PX', interval + 60000)
end
if max > 0 then redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1]) end
return {'ok'}
