-- Re-pin a waiting workflow to a verified digest, or record why not.
-- KEYS: state, log
-- ARGV: from-digest, to-digest, verified-length, now, event-type, event-json, revision, component
local s = redis.call('HMGET', KEYS[1], 'status', 'digest', 'lock_until')
if not s[1] then return {'missing'} end
if s[1] == 'finished' then return {'finished'} end
if s[2] ~= ARGV[1] then return {'moved', s[2]} end
if s[1] == 'running' and tonumber(s[3] or '0') > tonumber(ARGV[4]) then return {'busy'} end
if redis.call('XLEN', KEYS[2]) ~= tonumber(ARGV[3]) then return {'grew'} end
xadd(KEYS[2], ARGV[5], ARGV[6], ARGV[4])
if ARGV[5] == 'upgraded' then
  redis.call('HSET', KEYS[1], 'digest', ARGV[2], 'rev', ARGV[7], 'component', ARGV[8], 'updated_at', ARGV[4])
  -- Fence out a runner whose lock expired while it still ran the old code.
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return {'ok'}
