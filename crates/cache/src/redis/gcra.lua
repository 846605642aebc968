-- GCRA over one or more keys (RedisRateLimiter::check and ::check_all), in order, each all
-- or nothing, stopping at the first refusal (the keys before it keep what they took). The
-- time is the server's, read once, so replicas with skewed clocks agree. Each key holds its
-- theoretical arrival time (TAT) in microseconds.
-- KEYS[i] the i-th key; ARGV[3i-2] t, one cell's interval in µs (>= 1); ARGV[3i-1] burst
-- (>= 1); ARGV[3i] the cost (>= 1).
-- Returns, per key checked, {allowed 0|1, remaining, µs until whole, µs until the cost fits
-- or -1}, flattened; fewer keys than given when one refused.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local out = {}
for i, key in ipairs(KEYS) do
  local t = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local n = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', key))
  if tat == nil or tat < now then tat = now end
  local capacity = t * burst
  local remaining = math.floor((now + capacity - tat) / t)
  if n > burst then
    table.insert(out, 0); table.insert(out, remaining)
    table.insert(out, tat - now); table.insert(out, -1)
    return out
  end
  local allow_at = tat + t * n - capacity
  if allow_at > now then
    table.insert(out, 0); table.insert(out, remaining)
    table.insert(out, tat - now); table.insert(out, allow_at - now)
    return out
  end
  tat = tat + t * n
  redis.call('SET', key, string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
  table.insert(out, 1); table.insert(out, math.floor((now + capacity - tat) / t))
  table.insert(out, tat - now); table.insert(out, -1)
end
return out
