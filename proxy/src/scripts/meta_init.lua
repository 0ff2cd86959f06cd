-- lockgate metadata (re)seed: create the record only if it is still missing,
-- so concurrent gateways seeding the same master cannot lower its floor.
-- KEYS[1] the master metadata record
-- ARGV[1] new incarnation id, ARGV[2] floor (decimal token)
-- Reply: 1 created, 0 already present.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'inc', ARGV[1], 'floor', ARGV[2], 'hwm', ARGV[2])
return 1
