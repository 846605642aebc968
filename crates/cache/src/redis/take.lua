-- Adds to a windowed counter only if the total stays within the maximum (RedisCounters::take).
-- The window (the key's expiry) starts when the key is created.
-- KEYS[1] the key; ARGV[1] amount; ARGV[2] max; ARGV[3] the window in ms (>= 1).
-- Returns {taken 0|1, total, ms until the window ends (0 when there is none)}.
local amount = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local total = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if total + amount > max then
  if ttl < 0 then ttl = 0 end
  return {0, string.format('%d', total), ttl}
end
if ttl < 0 then
  -- A new window (or a key that somehow lost its expiry: it gets one now).
  redis.call('SET', KEYS[1], string.format('%d', total + amount), 'PX', ARGV[3])
  ttl = tonumber(ARGV[3])
else
  redis.call('INCRBY', KEYS[1], ARGV[1])
end
return {1, string.format('%d', total + amount), ttl}
