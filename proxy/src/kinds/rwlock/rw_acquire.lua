-- lockgate read-write lock acquire: admit a reader or the writer of one key
-- and raise the key's fence register, in one atomic step.
-- KEYS[1] the master metadata record (a hash: inc, floor, hwm)
-- KEYS[2] readers: a sorted set owner -> expiry (ms, this master's clock)
-- KEYS[3] writer:  a sorted set with at most one member, same scores
-- KEYS[4] tokens:  a hash owner -> fencing token (decimal string)
-- KEYS[5] writer-intent marker: a string (a waiting writer's owner) with a
--         short PX; while it exists new readers are refused
-- KEYS[6] the fence register of the user key, shared with plain locks
-- ARGV[1] owner, ARGV[2] ttl ms, ARGV[3] proposed token (< 2^53)
-- ARGV[4] '1' on a retry inside one request (the owner may already be here)
-- ARGV[5] 'r' (read) or 'w' (write)
-- ARGV[6] '1' when the writer waits: refusal then sets the intent marker
-- ARGV[7] intent marker ttl in ms
-- ARGV[8] register retention in ms ('0': registers never expire)
-- Reply {code, value}, as acquire.lua:
--   {0, token} granted; {1, register} busy; {2, register} stale;
--   {3, 0} amnesia (no metadata record; no vote)
-- A missing register reads as its bucket's high-water mark (see
-- acquire.lua); a grant keeps the register for max(retention, ttl), only
-- ever lengthening its expiry. Every other key here expires with its
-- members (the sets and the tokens hash) or on its own PX (the marker).
-- Expiry uses this master's own clock (TIME), so expired holders vanish
-- here exactly when the master's PX-based plain locks would.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {3, 0}
end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
for z = 2, 3 do
  local gone = redis.call('ZRANGEBYSCORE', KEYS[z], '-inf', now)
  for _, o in ipairs(gone) do redis.call('HDEL', KEYS[4], o) end
  redis.call('ZREMRANGEBYSCORE', KEYS[z], '-inf', now)
end
local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
local hwm = tonumber(redis.call('HGET', KEYS[1], 'hwm') or '0')
local bucket = 'hw:' .. string.sub(redis.sha1hex(KEYS[6]), 1, 2)
local reg = tonumber(redis.call('GET', KEYS[6])
  or redis.call('HGET', KEYS[1], bucket) or floor)
local highest = floor
if reg > highest then highest = reg end
local owner = ARGV[1]
local retry = ARGV[4] == '1'
local as_reader = redis.call('ZSCORE', KEYS[2], owner)
local as_writer = redis.call('ZSCORE', KEYS[3], owner)
local readers = redis.call('ZCARD', KEYS[2])
local writers = redis.call('ZCARD', KEYS[3])
local busy = false
if ARGV[5] == 'w' then
  -- Any live reader excludes a writer (a reader's owner upgrading is busy
  -- too: upgrades deadlock two readers that both try).
  if readers > 0 then busy = true end
  if writers > 0 and not (as_writer and retry) then busy = true end
else
  if writers > 0 then busy = true end
  if as_reader and not retry then busy = true end
  -- Writer preference: a waiting writer's marker refuses new readers; a
  -- reader already admitted here in an earlier round of this request keeps
  -- its place, so a retry cannot be starved by the marker it coexisted with.
  if not as_reader and redis.call('EXISTS', KEYS[5]) == 1 then busy = true end
end
if busy then
  if ARGV[5] == 'w' and ARGV[6] == '1' then
    redis.call('SET', KEYS[5], owner, 'PX', ARGV[7])
  end
  return {1, highest}
end
local t = tonumber(ARGV[3])
if t <= highest then return {2, highest} end
local ttl = tonumber(ARGV[2])
local z = 2
if ARGV[5] == 'w' then z = 3 end
redis.call('ZADD', KEYS[z], now + ttl, owner)
redis.call('HSET', KEYS[4], owner, ARGV[3])
local left = redis.call('PTTL', KEYS[6])
redis.call('SET', KEYS[6], ARGV[3])
local keep = tonumber(ARGV[8]) or 0
if keep > 0 then redis.call('PEXPIRE', KEYS[6], math.max(keep, ttl, left)) end
if t > tonumber(redis.call('HGET', KEYS[1], bucket) or '0') then
  redis.call('HSET', KEYS[1], bucket, ARGV[3])
end
-- The structures outlive every member by at most one ttl.
for _, k in ipairs({KEYS[z], KEYS[4]}) do
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
if ARGV[5] == 'w' and redis.call('GET', KEYS[5]) == owner then
  redis.call('DEL', KEYS[5])
end
if t > hwm then redis.call('HSET', KEYS[1], 'hwm', ARGV[3]) end
return {0, t}
