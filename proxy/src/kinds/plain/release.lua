-- lockgate release: compare-and-delete. Fence registers are never touched.
-- KEYS[1..n] lock keys; ARGV[1] owner value.
-- Reply: how many of the keys were held by the owner and deleted.
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    n = n + redis.call('DEL', KEYS[i])
  end
end
return n
