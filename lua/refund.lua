--[[
refund.lua: adjusts an admitted request's charge by a signed number of units,
on exactly the periods it was taken from. A negative delta gives units back
(a route's `refund_on`, a request the gateway refused after charging it, a
`release` of a lifetime quota, or a cost settled below its reserve:
`cost.from_response`); a positive delta charges the excess of a settled cost
over its reserve, ignoring every limit (the work was done: the count may
pass the limit, and the next requests are denied). A counter that has moved
on to a newer period, or has expired, is left alone; a count never goes
below zero. When a ledger backs the counters, the adjusted counts go into
the subject's usage marker at a fresh version of the subject (see
lua/consume.lua), creating the marker (and listing it in the usage index)
if a flush cleared it since the charge: the next flush then moves the
ledger to what was charged, down as well as up, also after a flush that
copied the earlier count.

KEYS (built by src/redis/keys.ts; one subject, so one hash tag)
  KEYS[1..n]  the counters charged: HASHes with p (period start, epoch
              seconds) and n (units used), as lua/consume.lua writes them
  KEYS[n+1]   optional: the subject's usage marker (a HASH, see consume.lua)
  KEYS[n+2]   with the usage marker: the subject's hydration marker (its
              version counter, a STRING)
  KEYS[n+3]   with the usage marker: the usage index (a SET, see consume.lua)

ARGV
  ARGV[1]     delta: units to add to every counter (a non-zero integer;
              negative gives back, never below zero)
  ARGV[2]     n: the number of counters
  ARGV[2+i]   period start the charge of KEYS[i] was taken from (epoch seconds)
  ARGV[2+n+i] with the usage marker: KEYS[i]'s counterId (`w:hour`)
  ARGV[3+2n]  with the usage marker: how long a marker this script creates
              lives (ms), as consume.lua's usage_marker_ttl_ms

Reply: integer, how many counters were adjusted.

Only HSET on existing counters: the TTLs consume.lua set stay, and an
adjustment never creates a counter. Nothing adjusted, nothing written.
]]

local delta = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local marker_key = KEYS[n + 1]
local marker_fields = { 'HSET', marker_key }
local refunded = 0
for i = 1, n do
  local counter = redis.call('HMGET', KEYS[i], 'p', 'n')
  if counter[1] and tonumber(counter[1]) == tonumber(ARGV[2 + i]) then
    local remaining = (tonumber(counter[2]) or 0) + delta
    if remaining < 0 then remaining = 0 end
    redis.call('HSET', KEYS[i], 'n', remaining)
    refunded = refunded + 1
    if marker_key then
      marker_fields[#marker_fields + 1] = ARGV[2 + i] .. ':' .. ARGV[2 + n + i]
      marker_fields[#marker_fields + 1] = remaining
    end
  end
end

-- The usage marker: the new absolute counts at a fresh version, in one HSET
-- (a flush that read the marker before this refund then cannot clear it).
-- Every field new (`_v` included) means the marker was absent: give it its
-- lifetime and its place in the index, as consume.lua does. A version
-- counter that was absent (Redis lost the subject) is left absent, so that
-- consume.lua rehydrates; the counters are then gone too.
if marker_key and refunded > 0 then
  local version = redis.call('INCR', KEYS[n + 2])
  if version == 1 then
    redis.call('DEL', KEYS[n + 2])
  else
    marker_fields[#marker_fields + 1] = '_v'
    marker_fields[#marker_fields + 1] = version
    if redis.call(unpack(marker_fields)) == refunded + 1 then
      redis.call('PEXPIRE', marker_key, tonumber(ARGV[3 + 2 * n]))
      redis.call('SADD', KEYS[n + 3], marker_key)
    end
  end
end
return refunded
