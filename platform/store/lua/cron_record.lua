-- Record a cron schedule's handled tick, never moving it back: two schedulers
-- that handled ticks out of order leave the later one (store/cron_state.py).
-- KEYS: the schedule's state hash   ARGV: handled tick ms, fired tick ms or ''
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '')
if last == nil or tonumber(ARGV[1]) > last then redis.call('HSET', KEYS[1], 'last', ARGV[1]) end
if ARGV[2] ~= '' then
  local fired = tonumber(redis.call('HGET', KEYS[1], 'fired') or '')
  if fired == nil or tonumber(ARGV[2]) > fired then redis.call('HSET', KEYS[1], 'fired', ARGV[2]) end
end
return 1
