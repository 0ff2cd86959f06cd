-- lockgate semaphore acquire: admit one holder into one permit slot of a
-- counting semaphore and raise the key's fence register, atomically.
-- KEYS[1] the master metadata record (a hash: inc, floor, hwm)
-- KEYS[2] holders: a sorted set owner -> expiry (ms, this master's clock)
-- KEYS[3] tokens:  a hash owner -> fencing token (decimal string)
-- KEYS[4] slots:   a hash owner -> permit slot (0 .. permits-1)
-- KEYS[5] permits: the permit count stored while the semaphore is in use
-- KEYS[6] the fence register of the user key, shared with plain locks
-- ARGV[1] owner, ARGV[2] ttl ms, ARGV[3] proposed token (< 2^53)
-- ARGV[4] '1' on a retry inside one request (the owner may already be here)
-- ARGV[5] permits (a positive integer), ARGV[6] the slot asked for
-- ARGV[7] register retention in ms ('0': registers never expire)
-- Reply {code, value, free}: free lists the slots no other live holder
-- occupies here, so the gateway can ask for one that is free on a quorum.
--   {0, token, free} granted; {1, register, free} busy (slot taken);
--   {2, register, free} stale; {3, 0} amnesia (no record; no vote);
--   {4, permits} the semaphore is in use here with another permit count
-- A missing register reads as its bucket's high-water mark (see
-- acquire.lua); a grant keeps the register for max(retention, ttl), only
-- ever lengthening its expiry. The holders, tokens, slots and permit count
-- live at most one ttl past their last member's grant or extend.
-- Each slot is a mutex: a master admits at most one live holder per slot.
-- A count of live holders alone would not do: with majority quorums, three
-- holders admitted on {m1,m2}, {m2,m3} and {m1,m3} leave two per master.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {3, 0}
end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, o in ipairs(gone) do
  redis.call('HDEL', KEYS[3], o)
  redis.call('HDEL', KEYS[4], o)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local live = redis.call('ZRANGE', KEYS[2], 0, -1)
local permits = tonumber(ARGV[5])
if #live > 0 then
  local stored = tonumber(redis.call('GET', KEYS[5]) or ARGV[5])
  if stored ~= permits then return {4, stored} end
end
local owner = ARGV[1]
local mine = false
local taken = {}
for _, o in ipairs(live) do
  if o == owner then
    mine = true
  else
    local s = tonumber(redis.call('HGET', KEYS[4], o) or '-1')
    taken[s] = true
  end
end
local free = {}
for s = 0, permits - 1 do
  if not taken[s] then free[#free + 1] = s end
end
local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
local hwm = tonumber(redis.call('HGET', KEYS[1], 'hwm') or '0')
local bucket = 'hw:' .. string.sub(redis.sha1hex(KEYS[6]), 1, 2)
local reg = tonumber(redis.call('GET', KEYS[6])
  or redis.call('HGET', KEYS[1], bucket) or floor)
local highest = floor
if reg > highest then highest = reg end
local slot = tonumber(ARGV[6])
if (mine and ARGV[4] ~= '1') or taken[slot] or slot >= permits then
  return {1, highest, free}
end
local t = tonumber(ARGV[3])
if t <= highest then return {2, highest, free} end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now + ttl, owner)
redis.call('HSET', KEYS[3], owner, ARGV[3])
redis.call('HSET', KEYS[4], owner, ARGV[6])
redis.call('SET', KEYS[5], ARGV[5])
local left = redis.call('PTTL', KEYS[6])
redis.call('SET', KEYS[6], ARGV[3])
local keep = tonumber(ARGV[7]) or 0
if keep > 0 then redis.call('PEXPIRE', KEYS[6], math.max(keep, ttl, left)) end
if t > tonumber(redis.call('HGET', KEYS[1], bucket) or '0') then
  redis.call('HSET', KEYS[1], bucket, ARGV[3])
end
for k = 2, 5 do
  if redis.call('PTTL', KEYS[k]) < ttl then redis.call('PEXPIRE', KEYS[k], ttl) end
end
if t > hwm then redis.call('HSET', KEYS[1], 'hwm', ARGV[3]) end
return {0, t, free}
