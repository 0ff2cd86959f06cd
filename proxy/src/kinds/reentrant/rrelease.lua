-- lockgate reentrant release: drop one hold; the last one deletes K.
-- KEYS[1] the master metadata record; KEYS[2] lock key K; KEYS[3] its hold
-- count
-- ARGV[1] the stored holder value ('rlock:' .. owner)
-- ARGV[2] the hold count the gateway read from a quorum (>= 1)
-- Reply {code, value}:
--   {0, remaining}  one hold dropped; remaining 0 means K was deleted
--   {1, 0}          K is not held by this owner here
--   {3, 0}          amnesia: no metadata record; no vote
--   {4, count}      the count here is above the expected one (a concurrent
--                   acquire of the same owner): no vote, read again
-- A count below the expected one is set to expected - 1, as if it had seen
-- every hold: the quorum's count is the truth. Fence registers are never
-- touched.
if redis.call('EXISTS', KEYS[1]) == 0 then return {3, 0} end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {1, 0} end
local n = tonumber(redis.call('GET', KEYS[3]) or '0')
if n < 1 then return {1, 0} end
local want = tonumber(ARGV[2])
if n > want then return {4, n} end
if want <= 1 then
  redis.call('DEL', KEYS[2], KEYS[3])
  return {0, 0}
end
redis.call('SET', KEYS[3], tostring(want - 1), 'KEEPTTL')
return {0, want - 1}
