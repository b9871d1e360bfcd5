-- Store a revision (and make it the active one), provided every claim of its
-- deploy is still there. Keys of the {deploy} slot only.
-- KEYS: revision, revisions, active, retired, claims
-- ARGV: number, revision-json, created-at, activate (1/0), claim members...
-- A claim is gone only when `platform gc` dropped it as abandoned (store/garbage.py):
-- the deploy's components may have been collected since, so nothing is stored.
if redis.call('EXISTS', KEYS[1]) == 1 then return 'ok' end -- a re-sent call whose reply was lost
for i = 5, #ARGV do
  if not redis.call('ZSCORE', KEYS[5], ARGV[i]) then return 'claim_lost' end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] == '1' then
  local old = redis.call('GET', KEYS[3])
  redis.call('SET', KEYS[3], ARGV[1])
  if old and old ~= ARGV[1] then
    local t = redis.call('TIME')
    redis.call('HSET', KEYS[4], old, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  end
end
for i = 5, #ARGV do redis.call('ZREM', KEYS[5], ARGV[i]) end
return 'ok'
