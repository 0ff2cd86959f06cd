-- lockgate reentrant acquire: a fresh grant (raising the fence register, as
-- acquire.lua does) or one more hold by the owner that already holds K.
-- KEYS[1] the master metadata record; KEYS[2] lock key K; KEYS[3] its fence
-- register; KEYS[4] its hold count
-- ARGV[1] the stored holder value ('rlock:' .. owner)
-- ARGV[2] ttl in ms
-- ARGV[3] proposed fencing token (decimal, < 2^53); used only when fresh
-- ARGV[4] '1' when this is a retry round inside one fresh acquire request
-- ARGV[5] expected hold count: 0 for a fresh grant, else the count the
--         gateway read from a quorum
-- ARGV[6] register retention in ms ('0': registers never expire)
-- Reply {code, a, b}:
--   {0, token, count}  granted; count is the hold count now stored here
--   {1, register, 0}   busy: held by another owner, or by a plain lock
--   {2, register, 0}   stale: fresh, and the token is not above the register
--   {3, 0, 0}          amnesia: no metadata record; no vote
--   {4, count, 0}      the count here is above the expected one (a
--                      concurrent acquire or release of the same owner): no
--                      vote, the gateway reads again
-- A missing register reads as its bucket's high-water mark (see
-- acquire.lua); every grant and every further hold keeps the register alive
-- for max(retention, ttl), only ever lengthening its expiry (a register
-- without one stays without: only a grant, which raises the bucket, gives
-- a register an expiry).
-- A count below the expected one is raised: that master missed an earlier
-- hold, and raising it only delays the release (never hastens it).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {3, 0, 0}
end
local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
local hwm = tonumber(redis.call('HGET', KEYS[1], 'hwm') or '0')
local bucket = 'hw:' .. string.sub(redis.sha1hex(KEYS[3]), 1, 2)
local reg = tonumber(redis.call('GET', KEYS[3])
  or redis.call('HGET', KEYS[1], bucket) or floor)
local highest = floor
if reg > highest then highest = reg end
local want = tonumber(ARGV[5])
local keep = tonumber(ARGV[6]) or 0
local cur = redis.call('GET', KEYS[2])
local function retain()
  local left = redis.call('PTTL', KEYS[3])
  if keep > 0 and left > 0 then
    redis.call('PEXPIRE', KEYS[3], math.max(keep, tonumber(ARGV[2]), left))
  end
end
local function fresh()
  local t = tonumber(ARGV[3])
  if t <= highest then return {2, highest, 0} end
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[2])
  local left = redis.call('PTTL', KEYS[3])
  redis.call('SET', KEYS[3], ARGV[3])
  if keep > 0 then
    redis.call('PEXPIRE', KEYS[3], math.max(keep, tonumber(ARGV[2]), left))
  end
  if t > tonumber(redis.call('HGET', KEYS[1], bucket) or '0') then
    redis.call('HSET', KEYS[1], bucket, ARGV[3])
  end
  if t > hwm then redis.call('HSET', KEYS[1], 'hwm', ARGV[3]) end
  return {0, t, 1}
end
if not cur then
  if want ~= 0 then return {4, 0, 0} end
  return fresh()
end
if cur ~= ARGV[1] then return {1, highest, 0} end
local n = tonumber(redis.call('GET', KEYS[4]) or '0')
-- A plain lock whose owner happens to read 'rlock:...' has no count.
if n < 1 then return {1, highest, 0} end
if want == 0 then
  -- Only this request's own first round may have landed here.
  if ARGV[4] == '1' and n == 1 then return fresh() end
  return {4, n, 0}
end
if n > want then return {4, n, 0} end
retain()
redis.call('SET', KEYS[4], tostring(want + 1), 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {0, highest, want + 1}
