--[[
refund.lua: gives an admitted request's charge back to exactly the periods it
was taken from (a route's `refund_on`). A counter that has moved on to a newer
period, or has expired, is left alone; a count never goes below zero.

KEYS (built by src/redis/keys.ts; one subject, so one hash tag)
  KEYS[1..n]  the counters charged: HASHes with p (period start, epoch
              seconds) and n (units used), as lua/consume.lua writes them

ARGV
  ARGV[1]     cost: units to give back to every counter (positive integer)
  ARGV[1+i]   period start the charge of KEYS[i] was taken from (epoch seconds)

Reply: integer, how many counters were given the cost back.

Only HSET on an existing hash: the TTL consume.lua set stays, and a refund
never creates a key.
]]

local cost = tonumber(ARGV[1])
local refunded = 0
for i = 1, #KEYS do
  local counter = redis.call('HMGET', KEYS[i], 'p', 'n')
  if counter[1] and tonumber(counter[1]) == tonumber(ARGV[1 + i]) then
    local remaining = (tonumber(counter[2]) or 0) - cost
    if remaining < 0 then remaining = 0 end
    redis.call('HSET', KEYS[i], 'n', remaining)
    refunded = refunded + 1
  end
end
return refunded
