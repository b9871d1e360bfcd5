-- Lock an execution for one attempt (a lease that ends at lock_until), unless it is paused.
-- KEYS: state, log
-- ARGV: wid, owner, now, ttl-ms[, known-stream-id, known-length]
-- Taking over an expired lease records the lost attempt (`attempt_lost`) and
-- counts it, so an execution whose runners keep dying runs out of attempts.
-- A workflow's reply also carries its log: the runner replays it next. A
-- runner that holds the first known-length entries up to known-stream-id gets
-- only the entries after them, marked 'tail' (the log is append-only, so the
-- count alone tells whether what it holds is still the log's start).
local s = redis.call('HMGET', KEYS[1], 'status', 'lock_until', 'version', 'not_before', 'attempt', 'kind',
  'owner', 'wid', 'paused', 'cancel')
if not s[1] then return {'missing'} end
local function reply()
  if s[6] == 'workflow' and KEYS[2] then
    if ARGV[5] and ARGV[5] ~= '' then
      local tail = redis.call('XRANGE', KEYS[2], '(' .. ARGV[5], '+')
      if redis.call('XLEN', KEYS[2]) == tonumber(ARGV[6]) + #tail then
        return {'ok', redis.call('HGETALL', KEYS[1]), tail, 'tail'}
      end
    end
    return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('XRANGE', KEYS[2], '-', '+')}
  end
  return {'ok', redis.call('HGETALL', KEYS[1])}
end
if s[1] == 'running' and s[7] == ARGV[2] and s[8] == ARGV[1] then return reply() end -- a repeat
if s[1] == 'finished' then return {'finished'} end
if s[1] == 'blocked' then return {'blocked'} end
-- Paused (pause.lua): never locked until resumed, which queues it again; a
-- cancellation still goes through (a workflow's runner cancels its children).
if s[9] == '1' and s[10] ~= '1' then return {'paused'} end
local now = tonumber(ARGV[3])
if s[1] == 'running' and tonumber(s[2] or '0') > now then return {'locked', s[2]} end
if s[4] and tonumber(s[4]) > now then return {'early', s[4]} end
local version = tonumber(s[3] or '0') + 1
-- Attempts count an activity's tries; a workflow is locked again at every
-- resume, so its attempt grows only when one is lost here or fails (fail.lua).
local attempt = tonumber(s[5] or '0')
local lost = s[1] == 'running'
if s[6] ~= 'workflow' or attempt == 0 or lost then attempt = attempt + 1 end
if lost then
  xadd(KEYS[2], 'attempt_lost', cjson.encode({attempt = tonumber(s[5] or '0'), owner = s[7] or '',
    lock_until = tonumber(s[2] or '0')}), ARGV[3])
end
redis.call('HSET', KEYS[1], 'status', 'running', 'owner', ARGV[2], 'lock_until', now + tonumber(ARGV[4]),
  'version', version, 'attempt', attempt, 'updated_at', now, 'wid', ARGV[1], 'wreply', '')
-- Which lock took over a lost attempt: the runner counts its takeovers (a metric).
if lost then redis.call('HSET', KEYS[1], 'lost_v', version) end
return reply()
