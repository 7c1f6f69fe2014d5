-- GCRA: one bucket of ARGV[2] requests refilling one request every ARGV[1]
-- microseconds. KEYS[1] holds the theoretical arrival time (TAT) in
-- microseconds of the server's clock. Answers {allowed (0/1), remaining,
-- retry_after_us, reset_us}.
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + interval
-- A request is allowed while the TAT stays within burst intervals ahead.
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
-- The key lives until the bucket is full again (PX in milliseconds).
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
local remaining = math.floor((now - allow_at) / interval)
return {1, remaining, 0, new_tat - now}
