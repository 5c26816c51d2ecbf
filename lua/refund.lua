--[[
refund.lua: gives an admitted request's charge back to exactly the periods it
was taken from (a route's `refund_on`, or a request the gateway refused after
charging it). A counter that has moved on to a newer period, or has expired,
is left alone; a count never goes below zero. When a ledger backs the
counters, the subject's usage marker is lowered to the refunded counts, so the
next flush copies what was admitted (a flush that ran between the charge and
the refund has already copied the higher count: the ledger keeps the
highest count it saw).

KEYS (built by src/redis/keys.ts; one subject, so one hash tag)
  KEYS[1..n]  the counters charged: HASHes with p (period start, epoch
              seconds) and n (units used), as lua/consume.lua writes them
  KEYS[n+1]   optional: the subject's usage marker (a HASH, see consume.lua)

ARGV
  ARGV[1]     cost: units to give back to every counter (positive integer)
  ARGV[2]     n: the number of counters
  ARGV[2+i]   period start the charge of KEYS[i] was taken from (epoch seconds)
  ARGV[2+n+i] with the usage marker: KEYS[i]'s counterId (`w:hour`)

Reply: integer, how many counters were given the cost back.

Only HSET on existing hashes: the TTLs consume.lua set stay, and a refund
never creates a key. Only the marker's fields that are there are lowered.
]]

local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local marker_key = KEYS[n + 1]
local marker_changed = false
local refunded = 0
for i = 1, n do
  local counter = redis.call('HMGET', KEYS[i], 'p', 'n')
  if counter[1] and tonumber(counter[1]) == tonumber(ARGV[2 + i]) then
    local remaining = (tonumber(counter[2]) or 0) - cost
    if remaining < 0 then remaining = 0 end
    redis.call('HSET', KEYS[i], 'n', remaining)
    refunded = refunded + 1
    if marker_key then
      local field = ARGV[2 + i] .. ':' .. ARGV[2 + n + i]
      if redis.call('HEXISTS', marker_key, field) == 1 then
        redis.call('HSET', marker_key, field, remaining)
        marker_changed = true
      end
    end
  end
end
-- A flush that read the marker before this refund must not clear it.
if marker_changed then redis.call('HINCRBY', marker_key, '_v', 1) end
return refunded
