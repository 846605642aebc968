-- Joins a set whose members expire (RedisMembership::join): a sorted set, each member scored
-- by the server time (ms) at which it leaves. Drops the expired, counts, refuses at the
-- maximum unless already a member, adds; the key outlives its last member by nothing.
-- KEYS[1] the set; ARGV[1] member; ARGV[2] max; ARGV[3] ttl in ms (>= 1).
-- Returns the members after joining, or -1 when full.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
local member = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not member then
  if count >= tonumber(ARGV[2]) then return -1 end
  count = count + 1
end
redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return count
