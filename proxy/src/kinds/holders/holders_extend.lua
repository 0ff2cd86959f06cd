-- lockgate holders extend (read-write locks and semaphores): give one live
-- owner a new expiry of now + ttl on this master's clock.
-- KEYS[1..c]   companion keys that must live as long as the holders (the
--              tokens hash; a semaphore's slots hash and permit count)
-- KEYS[c+1..n] holder sorted sets (owner -> expiry ms)
-- ARGV[1] owner, ARGV[2] ttl ms, ARGV[3] c
-- Reply: the new ttl in ms, or 0 when the owner holds no live place here.
-- An expired owner is never revived: its place may already be someone's.
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local ttl = tonumber(ARGV[2])
local c = tonumber(ARGV[3])
for i = c + 1, #KEYS do
  local s = redis.call('ZSCORE', KEYS[i], ARGV[1])
  if s and tonumber(s) > now then
    redis.call('ZADD', KEYS[i], 'XX', now + ttl, ARGV[1])
    for k = 1, c do
      if redis.call('PTTL', KEYS[k]) < ttl then redis.call('PEXPIRE', KEYS[k], ttl) end
    end
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
    return ttl
  end
end
return 0
