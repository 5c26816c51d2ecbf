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

Giving credits back (a receipt that paid credits, adjusted down): ARGV
then always has ARGV[2+n+i] and ARGV[3+2n] (ignored without a marker), and
  ARGV[4+2n]  1 when the usage marker keys KEYS[n+1..n+3] are given, else 0
  ARGV[5+2n]  credit units to give back (positive integer)
  ARGV[6+2n]  the month the credits were spent in: its start, epoch seconds
  ARGV[7+2n]  the month's spend counterId (`c:search:month`), for the marker
  ARGV[8+2n]  now_override_ms: epoch ms instead of TIME (tests only; '' in
              production), which decides what is expired
with the last two KEYS
  KEYS[#KEYS-1]  the subject's credit balance of the metric (a HASH with
                 a:<id>, u:<id>, x:<id> per grant; see lua/consume.lua)
  KEYS[#KEYS]    the metric's monthly credit spend counter (p and n)
The units go back to the grants in force that have units spent, in the
reverse of consume.lua's spending order (never-expiring first, highest id
first, then the latest expiry: what went out last comes back first); an
expired grant gets nothing back, and no grant goes below 0 spent. The spend
counter loses them if it still counts that month. The marker records each
changed grant under `0:g:<id>` and the spend under `<month start>:<id>`.
src/core/credits.ts creditsToGiveBack is the same rule in TypeScript.

Reply: integer, how many counters (grants and the spend counter included)
were adjusted.

Only HSET on existing counters: the TTLs consume.lua set stay, and an
adjustment never creates a counter. Nothing adjusted, nothing written.
]]

local delta = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local gives_credits = ARGV[5 + 2 * n] ~= nil
local marker_key = KEYS[n + 1]
if gives_credits and ARGV[4 + 2 * n] ~= '1' then marker_key = nil end
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

if gives_credits then
  local left = tonumber(ARGV[5 + 2 * n])
  local now_ms = tonumber(ARGV[8 + 2 * n])
  if not now_ms then
    local time = redis.call('TIME')
    now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  end
  local balance_key = KEYS[#KEYS - 1]
  local fields = redis.call('HGETALL', balance_key)
  local grants = {}
  local by_id = {}
  for f = 1, #fields, 2 do
    local kind, id = string.match(fields[f], '^(%a):(%d+)$')
    if kind then
      local grant = by_id[id]
      if not grant then
        grant = { id = id, num = tonumber(id), a = 0, u = 0, x = 0 }
        by_id[id] = grant
        grants[#grants + 1] = grant
      end
      grant[kind] = tonumber(fields[f + 1])
    end
  end
  local spent = {}
  for _, grant in ipairs(grants) do
    if grant.u > 0 and (grant.x == 0 or grant.x > now_ms) then spent[#spent + 1] = grant end
  end
  -- The reverse of the spending order: never-expiring (x = 0) first, then the latest expiry; highest id first.
  table.sort(spent, function(a, b)
    local ea = a.x == 0 and math.huge or a.x
    local eb = b.x == 0 and math.huge or b.x
    if ea ~= eb then return ea > eb end
    return a.num > b.num
  end)
  local given = 0
  for _, grant in ipairs(spent) do
    if left == 0 then break end
    local back = math.min(left, grant.u)
    left = left - back
    given = given + back
    redis.call('HSET', balance_key, 'u:' .. grant.id, grant.u - back)
    refunded = refunded + 1
    if marker_key then
      marker_fields[#marker_fields + 1] = '0:g:' .. grant.id
      marker_fields[#marker_fields + 1] = grant.u - back
    end
  end
  local spend_key = KEYS[#KEYS]
  local month = ARGV[6 + 2 * n]
  local spend = redis.call('HMGET', spend_key, 'p', 'n')
  if spend[1] and tonumber(spend[1]) == tonumber(month) then
    local count = (tonumber(spend[2]) or 0) - tonumber(ARGV[5 + 2 * n])
    if count < 0 then count = 0 end
    redis.call('HSET', spend_key, 'n', count)
    refunded = refunded + 1
    if marker_key then
      marker_fields[#marker_fields + 1] = month .. ':' .. ARGV[7 + 2 * n]
      marker_fields[#marker_fields + 1] = count
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
