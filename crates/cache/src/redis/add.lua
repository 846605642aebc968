-- Adds to a windowed counter unconditionally (RedisCounters::add); a new key gets the window.
-- KEYS[1] the key; ARGV[1] amount; ARGV[2] the window in ms (>= 1). Returns the total.
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return total
