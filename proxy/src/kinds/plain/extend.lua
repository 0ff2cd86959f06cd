-- lockgate extend: compare-and-pexpire, all or nothing over the keys.
-- KEYS[1..n] lock keys
-- ARGV[1]    owner value
-- ARGV[2]    ttl in ms
-- ARGV[3]    '0' replaces the remaining ttl with ARGV[2]; '1' adds ARGV[2]
--            to it (redis-py's extend with replace_ttl=False)
-- Reply: the smallest new PTTL in ms, or 0 when any key is not held by owner.
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
local smallest = -1
for i = 1, #KEYS do
  local ttl = tonumber(ARGV[2])
  if ARGV[3] == '1' then
    local left = redis.call('PTTL', KEYS[i])
    if left > 0 then ttl = ttl + left end
  end
  redis.call('PEXPIRE', KEYS[i], ttl)
  if smallest < 0 or ttl < smallest then smallest = ttl end
end
return smallest
