-- KEYS: state, log
-- ARGV: owner, now, ttl-ms
-- A workflow's reply also carries its whole log: the runner replays it next.
local s = redis.call('HMGET', KEYS[1], 'status', 'lock_until', 'version', 'not_before', 'attempt', 'kind')
if not s[1] then return {'missing'} end
if s[1] == 'finished' then return {'finished'} end
if s[1] == 'blocked' then return {'blocked'} end
local now = tonumber(ARGV[2])
if s[1] == 'running' and tonumber(s[2] or '0') > now then return {'locked', s[2]} end
if s[4] and tonumber(s[4]) > now then return {'early', s[4]} end
local version = tonumber(s[3] or '0') + 1
-- Attempts count an activity's tries; a workflow is locked again at every resume.
local attempt = tonumber(s[5] or '0')
if s[6] ~= 'workflow' or attempt == 0 then attempt = attempt + 1 end
redis.call('HSET', KEYS[1], 'status', 'running', 'owner', ARGV[1], 'lock_until', now + tonumber(ARGV[3]),
  'version', version, 'attempt', attempt, 'updated_at', now)
if s[6] == 'workflow' and KEYS[2] then
  return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('XRANGE', KEYS[2], '-', '+')}
end
return {'ok', redis.call('HGETALL', KEYS[1])}
