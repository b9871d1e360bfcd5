-- Re-pin a waiting workflow to a verified digest, or record why not.
-- KEYS: state, log
-- ARGV: wid, from-digest, to-digest, verified-length, now, event-type, event-json, revision, component
local r = repeated(KEYS[1], ARGV[1], 'u')
if r then return r end
local s = redis.call('HMGET', KEYS[1], 'status', 'digest', 'lock_until')
if not s[1] then return {'missing'} end
if s[1] == 'finished' then return {'finished'} end
if s[2] ~= ARGV[2] then return {'moved', s[2]} end
if s[1] == 'running' and tonumber(s[3] or '0') > tonumber(ARGV[5]) then return {'busy'} end
if redis.call('XLEN', KEYS[2]) ~= tonumber(ARGV[4]) then return {'grew'} end
xadd(KEYS[2], ARGV[6], ARGV[7], ARGV[5])
if ARGV[6] == 'upgraded' then
  redis.call('HSET', KEYS[1], 'digest', ARGV[3], 'rev', ARGV[8], 'component', ARGV[9], 'updated_at', ARGV[5])
  -- Fence out a runner whose lock expired while it still ran the old code.
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return accepted(KEYS[1], ARGV[1], {'ok'}, 'u')
