--[[
peek.lua: reads a subject's counters and the time, charging nothing (the
admin and self-service usage views). The caller works out the periods from
the returned time with src/core/calendar.ts (the same calendar as
lua/consume.lua, tested against it), so the calendar is not repeated here.

KEYS (built by src/redis/keys.ts; one subject, so one hash tag)
  KEYS[1..n]  the counters: HASHes with p (period start, epoch seconds) and n
              (units used), as lua/consume.lua writes them

ARGV
  ARGV[1]     now_override_ms: epoch ms to report instead of TIME; tests
              only, the empty string in production

Reply: a flat array
  [1]         now (epoch ms)
  then per counter i, 2 entries starting at 2 + 2(i-1):
      period_start  p of the counter (epoch seconds), or -1 when absent
      used          n of the counter, or 0 when absent

Read-only: it may run on a replica and never creates or touches a key.
]]

local now_ms
if ARGV[1] ~= '' then
  now_ms = tonumber(ARGV[1])
else
  local time = redis.call('TIME')
  now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local reply = { now_ms }
for i = 1, #KEYS do
  local counter = redis.call('HMGET', KEYS[i], 'p', 'n')
  reply[#reply + 1] = tonumber(counter[1]) or -1
  reply[#reply + 1] = tonumber(counter[2]) or 0
end
return reply
