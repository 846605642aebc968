-- GCRA for one key, all or nothing (RedisRateLimiter::check). The time is the server's, so
-- replicas with skewed clocks agree. The key holds the theoretical arrival time (TAT) in
-- microseconds.
-- KEYS[1] the key; ARGV[1] t, one cell's interval in µs (>= 1); ARGV[2] burst (>= 1);
-- ARGV[3] the cost (>= 1).
-- Returns {allowed 0|1, remaining, µs until whole, µs until the cost fits or -1}.
if redis.replicate_commands then redis.replicate_commands() end
local t = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local capacity = t * burst
local remaining = math.floor((now + capacity - tat) / t)
if n > burst then
  return {0, remaining, tat - now, -1}
end
local allow_at = tat + t * n - capacity
if allow_at > now then
  return {0, remaining, tat - now, allow_at - now}
end
tat = tat + t * n
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
return {1, math.floor((now + capacity - tat) / t), tat - now, -1}
