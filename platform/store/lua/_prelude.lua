-- Shared by every script (prepended when loaded). All keys of one call live in
-- one execution tree, so each script touches a single cluster slot.
--
-- The write protocol (see README "Guarantees"):
--  1. fenced or nothing: a refused write returns before its first write command;
--  2. safe to re-send: a write carries an id (`wid`); the state remembers the
--     last accepted one with its reply, and a repeat is answered from there;
--  3. effects on other slots (queues, timers, indexes) are outbox messages that
--     the writer carries out only after the script answered ok; on one server
--     with one shard, the script carries most of them out itself (`emit`).
--
-- `DIRECT` is set ahead of this prelude (store/scripts.py `source`): nil, or
-- on one server with one shard, the shard's key prefix and the priorities
-- key and separator that `emit` needs to name keys the way store/shards.py does,
-- and the prefixes of the messages the writer takes for carried out (`prefixes`).

-- A number from a message, written back exactly (cjson reads numbers as doubles;
-- Redis would format one as %.14g).
local function num(x)
  return string.format('%.17g', x)
end

-- Whether the writer takes `m` for one this script carries out (store/outbox.py
-- `applies_directly`, by the same prefixes).
local function outbox_applies_directly(m)
  for _, prefix in ipairs(DIRECT.prefixes) do
    if string.sub(m, 1, #prefix) == prefix then return true end
  end
  return false
end

-- One effect of a message carried out by the script itself: false when the
-- server refused it (say a key of the wrong type), so the message goes to the
-- outbox after all, where the writer and the sweeps treat it as ever. Every
-- effect may be carried out twice (NX, sets), so a partial one is harmless.
local function done(reply)
  return not (type(reply) == 'table' and reply.err)
end

-- Carry out outbox message `m` (store/outbox.py `queue_effects` says what
-- each kind does), or false when it is not one this script carries out.
local function apply(m)
  local ok, d = pcall(cjson.decode, m)
  if not ok or type(d) ~= 'table' then return false end
  local op = d.op
  if op == 'enqueue' and type(d.ffqn) == 'string' and type(d.id) == 'string' then
    local name = d.ffqn
    if type(d.p) == 'string' then
      name = name .. DIRECT.separator .. d.p
      -- Named before its entry is read: readers then read this class's queues too.
      if not done(redis.pcall('SADD', DIRECT.priorities, d.p)) then return false end
    end
    return done(redis.pcall('XADD', DIRECT.shard .. 'q:' .. name, '*', 'id', d.id))
  elseif op == 'index' and type(d.at) == 'number' and type(d.id) == 'string' then
    local at = num(d.at)
    if not done(redis.pcall('ZADD', DIRECT.shard .. 'executions', 'NX', at, d.id)) then return false end
    if not d.done and not done(redis.pcall('ZADD', DIRECT.shard .. 'active', 'NX', at, d.id)) then return false end
    if type(d.tags) == 'table' then
      for _, tag in ipairs(d.tags) do
        if not done(redis.pcall('ZADD', DIRECT.shard .. 'tag:' .. tag, 'NX', at, d.id)) then return false end
      end
    end
    -- The successor is listed first: an unfinished chain is never missing from `active`.
    if type(d.replaces) == 'string' then return done(redis.pcall('ZREM', DIRECT.shard .. 'active', d.replaces)) end
    return true
  elseif op == 'expire' and type(d.at) == 'number' and type(d.id) == 'string' then
    return done(redis.pcall('ZADD', DIRECT.shard .. 'expiry', num(d.at), d.id))
  elseif op == 'timer' and type(d.k) == 'string' and type(d.at) == 'number' then
    return done(redis.pcall('ZADD', DIRECT.shard .. 'timers', num(d.at), d.k))
  end
  return false
end

-- Put outbox message `m` in the tree's outbox for the writer to carry out, or,
-- when this script may touch any key (one server: `DIRECT` is set), carry it
-- out now if it is one it knows (store/outbox.py `applies_directly` says
-- which: the writer leaves those out of what it delivers, and marks the tree
-- dirty only for the others).
local function emit(outbox, m)
  if DIRECT then
    if apply(m) then return end
    if outbox_applies_directly(m) then
      -- The writer will not deliver it, and may have written no dirty mark:
      -- this mark makes the scheduler's sweep deliver it (store/outbox.py).
      local t = redis.call('TIME')
      local root = string.match(outbox, '{([^}]*)}') or ''
      redis.call('ZADD', DIRECT.shard .. 'dirty', num(tonumber(t[1]) * 1000000 + tonumber(t[2])), root .. '|lua' .. t[1] .. t[2])
    end
  end
  redis.call('RPUSH', outbox, m)
end

-- nil when the caller still holds the execution, else why not.
local function fence(state_key, owner, version)
  local v = redis.call('HMGET', state_key, 'version', 'owner', 'status')
  if not v[1] then return 'missing' end
  if v[3] == 'finished' then return 'finished' end
  if v[1] ~= version or v[2] ~= owner then return 'fenced' end
  return nil
end

-- The reply remembered for write `wid`, when this write was already accepted
-- (its first reply was lost and the client sent it again). Writers that do
-- not hold the lease (cancel, upgrade) remember theirs under another `slot`,
-- so they never hide a lease holder's last write.
local function repeated(state_key, wid, slot)
  if not wid or wid == '' then return nil end
  slot = slot or 'w'
  local w = redis.call('HMGET', state_key, slot .. 'id', slot .. 'reply')
  if w[1] == wid and w[2] and w[2] ~= '' then return cjson.decode(w[2]) end
  return nil
end

-- Remember the reply of accepted write `wid` and return it.
local function accepted(state_key, wid, reply, slot)
  if wid and wid ~= '' then
    slot = slot or 'w'
    redis.call('HSET', state_key, slot .. 'id', wid, slot .. 'reply', cjson.encode(reply))
  end
  return reply
end

-- Whether a log still holds the `length` entries a runner read, up to
-- `last_seen`, as its start: true when the entries after `last_seen` make up
-- the rest (the log is append-only, so the count tells). A failover can take
-- a log back past what a runner read (the master acknowledged entries its
-- replica never had); the runner must then not write on from what it
-- remembers, but replay from the log. No `last_seen` (an older caller): true.
local function holds(log_key, last_seen, length)
  if not last_seen or last_seen == '' then return true end
  local after = redis.call('XRANGE', log_key, '(' .. last_seen, '+')
  return redis.call('XLEN', log_key) == tonumber(length) + #after
end

-- The lease of a runner whose log went back (see `holds`): released, pending
-- again, for any runner to replay from the log. The caller queues it.
local function went_back(state_key, at)
  redis.call('HSET', state_key, 'status', 'pending', 'owner', '', 'lock_until', 0, 'updated_at', at)
  return {'behind'}
end

local function xadd(log_key, t, d, at)
  return redis.call('XADD', log_key, '*', 't', t, 'd', d, 'at', at)
end

-- Append a response to a parent's log once per response id; wake the parent
-- (pending + outbox message) when it was blocked. Returns 1 when woken.
-- A paused parent (pause.lua) gets the response and becomes pending, but is
-- not queued: resume.lua queues it.
local function deliver(pstate, plog, pdone, outbox, response_id, data, at, wake_msg)
  if redis.call('EXISTS', pstate) == 0 then return 0 end
  if redis.call('HSETNX', pdone, response_id, at) == 0 then return 0 end
  local p = redis.call('HMGET', pstate, 'status', 'paused')
  if p[1] == 'finished' then return 0 end
  xadd(plog, 'response', data, at)
  if p[1] == 'blocked' then
    redis.call('HSET', pstate, 'status', 'pending', 'updated_at', at)
    if p[2] == '1' then return 0 end
    emit(outbox, wake_msg)
    return 1
  end
  return 0
end

-- Write a new execution: its state hash and its `created` event.
local function create(state_key, log_key, created, at, fields)
  redis.call('HSET', state_key, unpack(fields))
  xadd(log_key, 'created', created, at)
end

local function push_all(list_key, messages)
  for _, m in ipairs(messages) do emit(list_key, m) end
end

-- Finish notifications. Every script that writes an execution's `finished`
-- event calls notify_finished(id) in the same call, after the write: waiters
-- (one subscriber per gateway process) then learn of it without reading the
-- log. The channel is `keys.FINISHED_CHANNEL` in Python; a test keeps the two
-- equal. A notification is a hint, not a record: waiters read the state after
-- they (re)subscribe and again now and then, so a lost one only delays them.
local FINISHED_CHANNEL = 'dolmen:finished'

-- The execution id in a state key `dolmen:{<root>}:<id>:state` (keys.state).
local function execution_id_of(state_key)
  return string.match(state_key, '^[^{]*{[^}]*}:(.+):state$')
end

-- Publish that execution `id` has finished (nothing when id is nil, so a key
-- of an unexpected shape can never make a script fail after its writes).
local function notify_finished(id)
  if id then redis.call('PUBLISH', FINISHED_CHANNEL, id) end
end

-- Cancellation requests of running executions, published by cancel.lua: the
-- runner running one stops its attempt (or the activity a workflow runs
-- inline) at once. `keys.CANCEL_CHANNEL` in Python. Also a hint: a runner
-- that missed it learns of the request when it next extends its lock.
local CANCEL_CHANNEL = 'dolmen:cancel'

local function notify_cancel(id)
  if id then redis.call('PUBLISH', CANCEL_CHANNEL, id) end
end
