-- lockgate acquire: lock K and raise its fence register in one atomic step.
-- KEYS[1]     the master metadata record (a hash: inc, floor, hwm)
-- KEYS[2i]    lock key i, KEYS[2i+1] its fence register (i = 1..n)
-- ARGV[1]     owner value
-- ARGV[2]     ttl in ms
-- ARGV[3]     proposed fencing token (decimal, < 2^53)
-- ARGV[4]     '1' when this is a retry inside one acquire request, so the
--             same owner may already hold the keys from the first round
-- ARGV[#ARGV] register retention in ms ('0': registers never expire)
-- Reply {code, value}:
--   {0, token}     granted; every key is set and every register holds token
--   {1, register}  busy: a key is held by another owner
--   {2, register}  stale: token is not above a register (or the floor)
-- A missing register (never created, or expired after its retention) reads
-- as the high-water mark of its bucket: a field 'hw:xx' of the record, xx
-- the first two hex digits of the SHA1 of the register's name, raised by
-- every grant of every key of the bucket (while the field is missing, no key
-- of the bucket was granted here since the record was made, and the
-- record's floor stands in). So a key whose register expired still gets a
-- token above all of its own, and fresh keys compete only within a bucket.
-- A register lives max(retention, ttl) after its last grant or extend, and
-- its expiry is only ever lengthened.
--   {3, 0}         amnesia: the metadata record is missing; no vote
-- Registers and the floor are read with tonumber; tokens stay below 2^53, so
-- Lua doubles hold them exactly. Values are stored as the strings sent, never
-- through tostring, which would round them.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {3, 0}
end
local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
local hwm = tonumber(redis.call('HGET', KEYS[1], 'hwm') or '0')
local t = tonumber(ARGV[3])
local keep = tonumber(ARGV[#ARGV]) or 0
local highest = floor
local busy = false
local function bucket(k) return 'hw:' .. string.sub(redis.sha1hex(k), 1, 2) end
for i = 2, #KEYS, 2 do
  local reg = tonumber(redis.call('GET', KEYS[i + 1])
    or redis.call('HGET', KEYS[1], bucket(KEYS[i + 1])) or floor)
  if reg > highest then highest = reg end
  local cur = redis.call('GET', KEYS[i])
  if cur and (cur ~= ARGV[1] or ARGV[4] ~= '1') then busy = true end
end
if busy then return {1, highest} end
if t <= highest then return {2, highest} end
local life = math.max(keep, tonumber(ARGV[2]))
for i = 2, #KEYS, 2 do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  local left = redis.call('PTTL', KEYS[i + 1])
  redis.call('SET', KEYS[i + 1], ARGV[3])
  if keep > 0 then redis.call('PEXPIRE', KEYS[i + 1], math.max(life, left)) end
  local b = bucket(KEYS[i + 1])
  if t > tonumber(redis.call('HGET', KEYS[1], b) or '0') then
    redis.call('HSET', KEYS[1], b, ARGV[3])
  end
end
if t > hwm then redis.call('HSET', KEYS[1], 'hwm', ARGV[3]) end
return {0, t}
