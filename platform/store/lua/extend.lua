-- Extend a lease (idempotent: sending it twice sets the same expiry).
-- KEYS: state
-- ARGV: owner, version, now, ttl-ms
local f = fence(KEYS[1], ARGV[1], ARGV[2])
if f then return {f} end
redis.call('HSET', KEYS[1], 'lock_until', tonumber(ARGV[3]) + tonumber(ARGV[4]))
return {'ok', redis.call('HGET', KEYS[1], 'cancel') or '0'}
