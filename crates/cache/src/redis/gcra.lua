-- GCRA over one or more keys (RedisRateLimiter::check_all, RedisAdmission::admit), in order,
-- each all or nothing, stopping at the first refusal (the keys before it keep what they
-- took), after reading some counters (an admission's). The time is the server's, read once,
-- so replicas with skewed clocks agree. Each rate key holds its theoretical arrival time
-- (TAT) in microseconds.
-- ARGV[1] c, how many counters come first; KEYS[1..c] the counters to read; KEYS[c+i] the
-- i-th rate key, with ARGV[3i-1] t, one cell's interval in µs (>= 1), ARGV[3i] burst (>= 1)
-- and ARGV[3i+1] the cost (>= 1).
-- Returns each counter's total (-1 where it has none), then per rate key checked {allowed
-- 0|1, remaining, µs until whole, µs until the cost fits or -1}, flattened; fewer rate keys
-- than given when one refused.
if redis.replicate_commands then redis.replicate_commands() end
local counters = tonumber(ARGV[1])
local out = {}
for i = 1, counters do
  out[i] = tonumber(redis.call('GET', KEYS[i])) or -1
end
if #KEYS == counters then return out end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
for i = 1, #KEYS - counters do
  local key = KEYS[counters + i]
  local t = tonumber(ARGV[3 * i - 1])
  local burst = tonumber(ARGV[3 * i])
  local n = tonumber(ARGV[3 * i + 1])
  local tat = tonumber(redis.call('GET', key))
  if tat == nil or tat < now then tat = now end
  local capacity = t * burst
  local remaining = math.floor((now + capacity - tat) / t)
  if n > burst then
    out[#out + 1] = 0; out[#out + 1] = remaining
    out[#out + 1] = tat - now; out[#out + 1] = -1
    return out
  end
  local allow_at = tat + t * n - capacity
  if allow_at > now then
    out[#out + 1] = 0; out[#out + 1] = remaining
    out[#out + 1] = tat - now; out[#out + 1] = allow_at - now
    return out
  end
  tat = tat + t * n
  redis.call('SET', key, string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
  out[#out + 1] = 1; out[#out + 1] = math.floor((now + capacity - tat) / t)
  out[#out + 1] = tat - now; out[#out + 1] = -1
end
return out
