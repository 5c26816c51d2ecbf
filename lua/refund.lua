--[[
refund.lua: adjusts an admitted request's charge by a signed number of units,
on exactly the periods it was taken from. A negative delta gives units back
(a route's `refund_on`, a request the gateway refused after charging it, or a
cost settled below its reserve: `cost.from_response`); a positive delta
charges the excess of a settled cost over its reserve, ignoring every limit
(the work was done: the count may pass the limit, and the next requests are
denied). A counter that has moved on to a newer period, or has expired, is
left alone; a count never goes below zero. When a ledger backs the counters,
the subject's usage marker gets the adjusted counts, so the next flush
copies what was charged (a flush that ran between the charge and a refund
has already copied the higher count: the ledger keeps the highest count it
saw; a raise after such a flush writes its field again, so the ledger sees
it).

KEYS (built by src/redis/keys.ts; one subject, so one hash tag)
  KEYS[1..n]  the counters charged: HASHes with p (period start, epoch
              seconds) and n (units used), as lua/consume.lua writes them
  KEYS[n+1]   optional: the subject's usage marker (a HASH, see consume.lua)
  KEYS[n+2]   with the usage marker: the usage index of the subject's slot
              (a SET, see consume.lua); written only when a raise creates
              the marker

ARGV
  ARGV[1]     delta: units to add to every counter (a non-zero integer;
              negative gives back, never below zero)
  ARGV[2]     n: the number of counters
  ARGV[2+i]   period start the charge of KEYS[i] was taken from (epoch seconds)
  ARGV[2+n+i] with the usage marker: KEYS[i]'s counterId (`w:hour`)
  ARGV[3+2n]  with the usage marker: usage_marker_ttl_ms, the lifetime a
              raise gives a marker it creates (as consume.lua's ARGV[7])

Reply: integer, how many counters were adjusted.

Only HSET on existing hashes: the TTLs consume.lua set stay, and an
adjustment never creates a counter. A refund lowers only the marker's fields
that are there; a raise writes its fields whether or not they are.
]]

local delta = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local marker_key = KEYS[n + 1]
local marker_changed = false
local refunded = 0
for i = 1, n do
  local counter = redis.call('HMGET', KEYS[i], 'p', 'n')
  if counter[1] and tonumber(counter[1]) == tonumber(ARGV[2 + i]) then
    local remaining = (tonumber(counter[2]) or 0) + delta
    if remaining < 0 then remaining = 0 end
    redis.call('HSET', KEYS[i], 'n', remaining)
    refunded = refunded + 1
    if marker_key then
      local field = ARGV[2 + i] .. ':' .. ARGV[2 + n + i]
      if delta > 0 or redis.call('HEXISTS', marker_key, field) == 1 then
        redis.call('HSET', marker_key, field, remaining)
        marker_changed = true
      end
    end
  end
end
-- A flush that read the marker before this refund must not clear it.
if marker_changed and redis.call('HINCRBY', marker_key, '_v', 1) == 1 then
  -- Only a raise gets here (the marker was flushed since the charge): give
  -- it the lifetime and the index entry consume.lua gives a new marker.
  redis.call('PEXPIRE', marker_key, tonumber(ARGV[3 + 2 * n]))
  redis.call('SADD', KEYS[n + 2], marker_key)
end
return refunded
