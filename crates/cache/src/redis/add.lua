-- Adds to one or more windowed counters unconditionally (RedisCounters::add and ::add_many);
-- a new key gets the window.
-- KEYS[i] the i-th key; ARGV[1] the window in ms (>= 1); ARGV[i + 1] the i-th amount.
-- Returns the totals, in order.
local totals = {}
for i, key in ipairs(KEYS) do
  local total = redis.call('INCRBY', key, ARGV[i + 1])
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
  end
  table.insert(totals, total)
end
return totals
