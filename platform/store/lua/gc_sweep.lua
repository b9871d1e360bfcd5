-- Delete a component's bytes if `platform gc`'s mark on them is still this
-- run's: a deploy that stores the component removes the mark first.
-- KEYS: blob, condemned   ARGV: token
-- Answers the bytes freed, or -1 when the mark is not this run's.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local size = redis.call('STRLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return size
