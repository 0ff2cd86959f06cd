-- lockgate holders release (read-write locks and semaphores): remove one
-- owner from every holder set. Fence registers are never touched.
-- KEYS[1] tokens hash, KEYS[2] writer-intent marker (or any key when
-- ARGV[2] is '0'), KEYS[3..n] holder sorted sets (owner -> expiry ms)
-- ARGV[1] owner; ARGV[2] '1' also deletes the marker when it is the owner's
-- (a waiting writer giving up)
-- Reply: 1 when the owner held a live place here and lost it, else 0.
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local n = 0
for i = 3, #KEYS do
  local s = redis.call('ZSCORE', KEYS[i], ARGV[1])
  if s then
    if tonumber(s) > now then n = 1 end
    redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] == '1' and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return n
