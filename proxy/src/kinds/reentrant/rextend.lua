-- lockgate reentrant extend: compare-and-pexpire K and its hold count.
-- KEYS[1] lock key K; KEYS[2] its hold count; KEYS[3] its fence register
-- ARGV[1] the stored holder value ('rlock:' .. owner); ARGV[2] ttl in ms
-- ARGV[3] register retention in ms ('0': registers never expire)
-- Reply: the new PTTL in ms, or 0 when K is not held reentrantly by owner.
-- A register with an expiry is kept for max(retention, ttl), never less
-- than it already had: status reads the holder's token from it (one without
-- stays without, see extend.lua).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local keep = tonumber(ARGV[3]) or 0
local left = redis.call('PTTL', KEYS[3])
if keep > 0 and left > 0 then
  redis.call('PEXPIRE', KEYS[3], math.max(keep, tonumber(ARGV[2]), left))
end
return tonumber(ARGV[2])
