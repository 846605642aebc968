-- Starts a window at a value unless the key has one (RedisCounters::seed).
-- KEYS[1] the key; ARGV[1] the value; ARGV[2] the window in ms (>= 1). Returns the total.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return tonumber(ARGV[1])
end
return tonumber(redis.call('GET', KEYS[1]))
