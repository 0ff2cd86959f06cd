-- lockgate holders status (read-write locks and semaphores): one master's
-- view of the live holders, for quorum reads. Read only.
-- KEYS[1] the metadata record, KEYS[2] tokens hash, KEYS[3] an extra
-- string (the permit count of a semaphore, the intent marker of a
-- read-write lock), KEYS[4..n] holder sorted sets (owner -> expiry ms)
-- Reply:
--   {3}                               amnesia: no metadata record; no vote
--   {0, extra, set_1, ..., set_k}     extra is '' when missing; each set is
--                                     a flat list owner, token, pttl_ms of
--                                     its live members
if redis.call('EXISTS', KEYS[1]) == 0 then return {3} end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local out = {0, redis.call('GET', KEYS[3]) or ''}
for i = 4, #KEYS do
  local live = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. now, '+inf', 'WITHSCORES')
  local flat = {}
  for j = 1, #live, 2 do
    flat[#flat + 1] = live[j]
    flat[#flat + 1] = redis.call('HGET', KEYS[2], live[j]) or '0'
    flat[#flat + 1] = tonumber(live[j + 1]) - now
  end
  out[#out + 1] = flat
end
return out
