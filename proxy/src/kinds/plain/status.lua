-- lockgate status: one master's view of a lock, for quorum reads.
-- KEYS[1] the master metadata record, KEYS[2] lock key, KEYS[3] fence register
-- Reply:
--   {3}                          amnesia: no metadata record; no vote
--   {1}                          the key is not held here
--   {0, owner, register, pttl}   held; register as the decimal string stored
if redis.call('EXISTS', KEYS[1]) == 0 then return {3} end
local cur = redis.call('GET', KEYS[2])
if not cur then return {1} end
local reg = redis.call('GET', KEYS[3]) or redis.call('HGET', KEYS[1], 'floor') or '0'
return {0, cur, reg, redis.call('PTTL', KEYS[2])}
