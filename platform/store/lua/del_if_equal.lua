-- Delete a string key only while it holds the value the caller names: an
-- idempotency key still bound to a removed execution, not to a newer one.
-- KEYS: key   ARGV: value
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
