-- lockgate metadata record: create, re-seed or adopt it.
-- KEYS[1] the master metadata record (a hash)
-- KEYS[2] the record's name in key layout 1 ('adopt' deletes it)
-- ARGV[1] mode: 'init', 'reseed', 'setifempty' or 'adopt'
-- ARGV[2] new incarnation id, ARGV[3] floor (decimal token)
-- ARGV[4] master id, ARGV[5] layout version, ARGV[6] master set ('' none)
-- ARGV[7] the master's replication id now (written by 'adopt' only where
-- it creates the record)
-- ARGV[8] ('reseed' only) the replication id the record must still carry
--
-- 'init' creates the record only if it is still missing, so concurrent
-- gateways seeding the same master cannot lower its floor. 'reseed' (a
-- promoted replica) replaces the record of a server whose replication
-- history changed, only if it still names the old history, keeping its
-- master id and set. 'adopt' (the operator's master-set change) rewrites
-- the set and layout of a record, creating it where only a layout-1
-- record is (an upgrade), and deletes the layout-1 record. 'setifempty' records the set
-- of a fresh deployment where none is recorded yet. Floors and marks only
-- rise.
-- Reply: 1 written, 0 nothing to do (another gateway got there first).
local mode = ARGV[1]
local exists = redis.call('EXISTS', KEYS[1]) == 1
if mode == 'init' then
  if exists then return 0 end
  redis.call('HSET', KEYS[1], 'inc', ARGV[2], 'floor', ARGV[3], 'hwm', ARGV[3],
    'id', ARGV[4], 'layout', ARGV[5], 'set', ARGV[6], 'replid', ARGV[7])
  return 1
end
if mode == 'adopt' and not exists then
  if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
  redis.call('HSET', KEYS[1], 'inc', ARGV[2], 'floor', ARGV[3], 'hwm', ARGV[3],
    'id', ARGV[4], 'layout', ARGV[5], 'set', ARGV[6], 'replid', ARGV[7])
  redis.call('DEL', KEYS[2])
  return 1
end
if not exists then return 0 end
local function raise(field)
  local cur = tonumber(redis.call('HGET', KEYS[1], field) or '0') or 0
  if tonumber(ARGV[3]) > cur then redis.call('HSET', KEYS[1], field, ARGV[3]) end
end
if mode == 'reseed' then
  if (redis.call('HGET', KEYS[1], 'replid') or '') ~= ARGV[8] then return 0 end
  raise('floor')
  raise('hwm')
  redis.call('HSET', KEYS[1], 'inc', ARGV[2], 'replid', ARGV[7])
  return 1
end
if mode == 'setifempty' then
  if (redis.call('HGET', KEYS[1], 'set') or '') ~= '' then return 0 end
  redis.call('HSET', KEYS[1], 'set', ARGV[6])
  return 1
end
if mode == 'adopt' then
  raise('floor')
  raise('hwm')
  if redis.call('HEXISTS', KEYS[1], 'id') == 0 then
    redis.call('HSET', KEYS[1], 'id', ARGV[4])
  end
  redis.call('HSET', KEYS[1], 'layout', ARGV[5], 'set', ARGV[6])
  redis.call('DEL', KEYS[2])
  return 1
end
return redis.error_reply('ERR unknown meta_init mode')
