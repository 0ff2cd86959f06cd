-- lockgate extend: compare-and-pexpire, all or nothing over the keys.
-- KEYS[1..n]    lock keys
-- KEYS[n+1..2n] their fence registers, in the same order
-- ARGV[1]    owner value
-- ARGV[2]    ttl in ms
-- ARGV[3]    '0' replaces the remaining ttl with ARGV[2]; '1' adds ARGV[2]
--            to it (redis-py's extend with replace_ttl=False)
-- ARGV[4]    register retention in ms ('0': registers never expire)
-- Reply: the smallest new PTTL in ms, or 0 when any key is not held by owner.
-- A register with an expiry is kept for max(retention, new ttl), never less
-- than it already had: status reads the holder's token from it. A register
-- without one stays without: only a grant, which raises the register's
-- bucket high-water mark (acquire.lua), gives a register an expiry.
local n = #KEYS / 2
for i = 1, n do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
local keep = tonumber(ARGV[4]) or 0
local smallest = -1
for i = 1, n do
  local ttl = tonumber(ARGV[2])
  if ARGV[3] == '1' then
    local left = redis.call('PTTL', KEYS[i])
    if left > 0 then ttl = ttl + left end
  end
  redis.call('PEXPIRE', KEYS[i], ttl)
  local held = redis.call('PTTL', KEYS[n + i])
  if keep > 0 and held > 0 then
    redis.call('PEXPIRE', KEYS[n + i], math.max(keep, ttl, held))
  end
  if smallest < 0 or ttl < smallest then smallest = ttl end
end
return smallest
