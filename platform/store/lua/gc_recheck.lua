-- Which condemned components are still garbage: claimed by no deploy in
-- progress, and named by no revision stored since `platform gc` looked.
-- Claims older than the claim TTL belong to deploys that died: they are dropped
-- here, so that such a deploy, if it still runs, cannot commit (deploy_commit.lua).
-- KEYS: claims, revisions
-- ARGV: claim-ttl-ms, revision numbers gc looked at (comma-separated), revision key prefix, digests...
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
local garbage = {}
for i = 4, #ARGV do garbage[ARGV[i]] = true end
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local digest = string.match(member, ' (.+)$')
  if digest then garbage[digest] = nil end
end
local seen = {}
for n in string.gmatch(ARGV[2], '[^,]+') do seen[n] = true end
for _, n in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if not seen[n] then
    local text = redis.call('GET', ARGV[3] .. n) or ''
    for digest in pairs(garbage) do
      if string.find(text, digest, 1, true) then garbage[digest] = nil end
    end
  end
end
local out = {}
for i = 4, #ARGV do
  if garbage[ARGV[i]] then out[#out + 1] = ARGV[i] end
end
return out
