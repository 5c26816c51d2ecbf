--[[
undo-charge.lua: undoes the charge of one consume call, by the request id it
was sent with, when the gateway never got its reply (a timeout, a dropped
connection) and so refused or forwarded the request without the store's
answer. It applies only if that call charged (its charge record exists),
and only once: the record is deleted with the refund.

KEYS (built by src/redis/keys.ts; one subject, so one hash tag)
  KEYS[1..n]  the subject's counters the call was given (policies, then
              meters), in the order consume.lua was given them (HASHes with
              p and n)
  KEYS[n+1]   the subject's usage marker (see lua/consume.lua)
  KEYS[n+2]   the charge records the call was sent to (a HASH, see
              lua/consume.lua): field request id =
              `<cost>,<period start 1>,…,<period start n>` (epoch seconds)
  KEYS[n+3]   the subject's hydration marker (its version counter, a
              STRING; see lua/consume.lua); used only with track_usage
  KEYS[n+4]   the usage index (a SET, see lua/consume.lua); used only with
              track_usage
  KEYS[n+5]   optional: the Idempotency-Key record the call was sent with
              (a HASH, see lua/consume.lua); given only when ARGV[5+n] is
              not empty
  KEYS[#KEYS-1], KEYS[#KEYS]  with ARGV[6+n]: the subject's credit balance
              of the metric covering the call's policies and that metric's
              monthly credit spend counter (see lua/consume.lua)

ARGV
  ARGV[1]     n: number of counters
  ARGV[2]     track_usage: 1 when a ledger backs the counters (lower the
              usage marker to the refunded counts), else 0
  ARGV[2+i]   counter i's counterId (`w:hour`), for the usage marker
  ARGV[3+n]   the request id the call was sent with
  ARGV[4+n]   how long a usage marker this script creates lives (ms), as
              consume.lua's usage_marker_ttl_ms
  ARGV[5+n]   the attempt id the call was sent with, when it had an
              Idempotency-Key (KEYS[n+5]); else the empty string (or absent)
  ARGV[6+n]   optional: when a policy of the call was covered by credits,
              the spend counter's counterId (`c:search:month`), for the
              usage marker; the last two KEYS are then the credit keys

Reply: integer. -1 when there is no charge record: the call charged nothing
(it was denied, never ran, or was undone already), or the record expired.
Otherwise how many counters were given the cost back (a counter that moved on
to a newer period, or expired, is left alone); a count never goes below 0.
Credits the call spent (its charge record names the units taken of each
grant) go back to exactly those grants, and the month's spend counter loses
them if it still counts that month; neither goes below 0, and they are not
in the reply's count.

With track_usage, the refunded counts go into the usage marker at a fresh
version of the subject, creating the marker if a flush cleared it (as
lua/refund.lua does): the next flush lowers the ledger to them, also when
another instance's flusher copied the charge first, and a flush that read
the marker before cannot clear it.

With an attempt id, the record is deleted while it is still that attempt's
in-flight mark (`a` = ARGV[5+n], no `s`; as lua/settle-idempotency.lua
releases it), charge record or not: a retry with that key is then decided
afresh instead of refused as in flight for an admission the client never saw.
]]

local n = tonumber(ARGV[1])
local track_usage = ARGV[2] == '1'
local usage_marker_key = KEYS[n + 1]
local charge_records_key = KEYS[n + 2]
local request_id = ARGV[3 + n]
local attempt_id = ARGV[5 + n]
local spend_counter_id = ARGV[6 + n]

if attempt_id and attempt_id ~= '' then
  local idempotency_key = KEYS[n + 5]
  if redis.call('HGET', idempotency_key, 'a') == attempt_id and redis.call('HEXISTS', idempotency_key, 's') == 0 then
    redis.call('DEL', idempotency_key)
  end
end

local record = redis.call('HGET', charge_records_key, request_id)
if not record then return -1 end

local fields = {}
for value in string.gmatch(record, '[^,]+') do fields[#fields + 1] = value end
local cost = tonumber(fields[1])

local refunded = 0
-- Marker fields written: one per counter refunded, grant and spend counter.
local marker_changes = 0
local marker_fields = { 'HSET', usage_marker_key }
for i = 1, n do
  local period_start = fields[i + 1]
  local counter = redis.call('HMGET', KEYS[i], 'p', 'n')
  if period_start and counter[1] and tonumber(counter[1]) == tonumber(period_start) then
    local remaining = (tonumber(counter[2]) or 0) - cost
    if remaining < 0 then remaining = 0 end
    redis.call('HSET', KEYS[i], 'n', remaining)
    marker_fields[#marker_fields + 1] = period_start .. ':' .. ARGV[2 + i]
    marker_fields[#marker_fields + 1] = remaining
    refunded = refunded + 1
    marker_changes = marker_changes + 1
  end
end

-- Credits the call spent: `<credits>,<month start>,<grant id>:<units>,…` after the period starts.
local credits = tonumber(fields[n + 2] or '')
if credits and credits > 0 and spend_counter_id then
  local balance_key, spend_key = KEYS[#KEYS - 1], KEYS[#KEYS]
  for f = n + 4, #fields do
    local id, units = string.match(fields[f], '^(%d+):(%d+)$')
    local spent = id and tonumber(redis.call('HGET', balance_key, 'u:' .. id) or '')
    if spent then
      local left = spent - tonumber(units)
      if left < 0 then left = 0 end
      redis.call('HSET', balance_key, 'u:' .. id, left)
      marker_fields[#marker_fields + 1] = '0:g:' .. id
      marker_fields[#marker_fields + 1] = left
      marker_changes = marker_changes + 1
    end
  end
  local month = fields[n + 3]
  local spend = redis.call('HMGET', spend_key, 'p', 'n')
  if spend[1] and tonumber(spend[1]) == tonumber(month) then
    local count = (tonumber(spend[2]) or 0) - credits
    if count < 0 then count = 0 end
    redis.call('HSET', spend_key, 'n', count)
    marker_fields[#marker_fields + 1] = month .. ':' .. spend_counter_id
    marker_fields[#marker_fields + 1] = count
    marker_changes = marker_changes + 1
  end
end

-- The usage marker, as lua/refund.lua writes it: the refunded counts at a
-- fresh version; a marker this creates gets its lifetime and index entry.
if track_usage and marker_changes > 0 then
  local version = redis.call('INCR', KEYS[n + 3])
  if version == 1 then
    redis.call('DEL', KEYS[n + 3])
  else
    marker_fields[#marker_fields + 1] = '_v'
    marker_fields[#marker_fields + 1] = version
    if redis.call(unpack(marker_fields)) == marker_changes + 1 then
      redis.call('PEXPIRE', usage_marker_key, tonumber(ARGV[4 + n]))
      redis.call('SADD', KEYS[n + 4], usage_marker_key)
    end
  end
end
redis.call('HDEL', charge_records_key, request_id)
return refunded
