-- The repair sweep found an execution that looked neither queued, locked nor
-- timed: mark it requeued (so the next sweep waits again) only if nothing
-- changed since it was read; the caller then enqueues it.
-- KEYS: state   ARGV: status-seen, version-seen, updated-at-seen, now
local s = redis.call('HMGET', KEYS[1], 'status', 'version', 'updated_at', 'ffqn')
if not s[1] then return {'missing'} end
if s[1] ~= ARGV[1] or (s[2] or '0') ~= ARGV[2] or (s[3] or '0') ~= ARGV[3] then return {'changed'} end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[4])
return {'ok', s[4]}
