--[[
reset-counters.lua: an admin reset of a subject's counters: deletes them
and, when a ledger backs them, records the reset for the ledger at a fresh
version of the subject (see lua/consume.lua), in the same step. The usage
marker's field of each counter's current period becomes 0 (created if
absent) and `_v` that version: charges made before the reset and not
flushed yet can no longer be flushed over the reset (their counts are
replaced), a flush that read the marker before cannot clear it, and the
next flush writes the 0 at the new version, so the ledger gets the reset
even if the caller's own write of it (db/usage.ts resetUsage) is lost.

KEYS (built by src/redis/keys.ts; one subject, so one hash tag)
  KEYS[1..n]  the counters to delete: HASHes with p (period start, epoch
              seconds) and n, as lua/consume.lua writes them
  KEYS[n+1]   the subject's usage marker (a HASH, see consume.lua)
  KEYS[n+2]   the subject's hydration marker (its version counter, a STRING)
  KEYS[n+3]   the usage index (a SET, see consume.lua)
              (KEYS[n+1..n+3] are used only with track_usage)

ARGV
  ARGV[1]     n: the number of counters
  ARGV[2]     track_usage: 1 when a ledger backs the counters, else 0
  ARGV[2+i]   KEYS[i]'s counterId (`w:hour`)
  ARGV[2+n+i] the start of KEYS[i]'s current period (epoch seconds): only a
              counter of that period gets a 0 in the marker (one in its
              grace after its period ended is deleted, its period's ledger
              row left alone)
  ARGV[3+2n]  how long a usage marker this script creates lives (ms), as
              consume.lua's usage_marker_ttl_ms

Reply: integer, the version the reset took (at least 2); 0 without
track_usage, or when the version counter was absent (Redis lost the
subject: it stays absent, so consume.lua rehydrates it first).
]]

local n = tonumber(ARGV[1])
local track_usage = ARGV[2] == '1'
local marker_key = KEYS[n + 1]
local marker_fields = { 'HSET', marker_key }
local zeroed = 0
for i = 1, n do
  local period_start = redis.call('HGET', KEYS[i], 'p')
  if period_start and tonumber(period_start) == tonumber(ARGV[2 + n + i]) then
    marker_fields[#marker_fields + 1] = ARGV[2 + n + i] .. ':' .. ARGV[2 + i]
    marker_fields[#marker_fields + 1] = 0
    zeroed = zeroed + 1
  end
  redis.call('DEL', KEYS[i])
end
if not track_usage then return 0 end

local version = redis.call('INCR', KEYS[n + 2])
if version == 1 then
  redis.call('DEL', KEYS[n + 2])
  return 0
end
-- No counter of its current period, nothing for the ledger to lower (and a
-- marker of only `_v` would never be flushed away).
if zeroed == 0 then return version end
marker_fields[#marker_fields + 1] = '_v'
marker_fields[#marker_fields + 1] = version
if redis.call(unpack(marker_fields)) == zeroed + 1 then
  redis.call('PEXPIRE', marker_key, tonumber(ARGV[3 + 2 * n]))
  redis.call('SADD', KEYS[n + 3], marker_key)
end
return version
