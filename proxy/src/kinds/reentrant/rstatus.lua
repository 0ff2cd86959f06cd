-- lockgate reentrant status: one master's view of a reentrant lock.
-- KEYS[1] the master metadata record; KEYS[2] lock key K; KEYS[3] its fence
-- register; KEYS[4] its hold count
-- Reply:
--   {3}                                 amnesia: no metadata record; no vote
--   {1}                                 K is not held here
--   {0, value, register, pttl, count}   held; count 0 for a plain lock
if redis.call('EXISTS', KEYS[1]) == 0 then return {3} end
local cur = redis.call('GET', KEYS[2])
if not cur then return {1} end
local reg = redis.call('GET', KEYS[3]) or redis.call('HGET', KEYS[1], 'floor') or '0'
local n = tonumber(redis.call('GET', KEYS[4]) or '0')
return {0, cur, reg, redis.call('PTTL', KEYS[2]), n}
