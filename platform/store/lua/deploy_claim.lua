-- A deploy claims the components it is about to store, before it writes their
-- bytes: `platform gc` leaves claimed components alone (see store/garbage.py).
-- KEYS: claims   ARGV: members ("<token> <digest>")
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
return now
