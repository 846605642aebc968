-- Keeps a live member for another ttl (RedisMembership::refresh); an expired or absent member
-- stays out (it must join again, within the maximum).
-- KEYS[1] the set; ARGV[1] member; ARGV[2] ttl in ms (>= 1).
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if score and score > now then
  redis.call('ZADD', KEYS[1], 'XX', string.format('%d', now + ttl), ARGV[1])
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return 0
