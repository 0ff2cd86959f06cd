-- lockgate reentrant extend: compare-and-pexpire K and its hold count.
-- KEYS[1] lock key K; KEYS[2] its hold count
-- ARGV[1] the stored holder value ('rlock:' .. owner); ARGV[2] ttl in ms
-- Reply: the new PTTL in ms, or 0 when K is not held reentrantly by owner.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return tonumber(ARGV[2])
