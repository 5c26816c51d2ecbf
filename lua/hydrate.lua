--[[
hydrate.lua: restores a subject's counters from the usage ledger after Redis
lost them (a restart without persistence, FLUSHALL, a failover to an empty
node), then sets the subject's hydration marker so lua/consume.lua decides
again. Each counter becomes the larger of what Redis holds and what the
ledger counted for the same period, so running it twice, or after charges,
never lowers a count.

The hydration marker is also the subject's version counter (see
lua/consume.lua): it is set to 1 + the highest of the ledger's highest
version of the subject, the marker's own value (another instance hydrated
and charged meanwhile) and the usage marker's `_v` (unflushed changes),
and at least 2 (consume.lua's INCR answers 1 only for an absent marker). So
versions keep growing across a loss of Redis, and what is charged after it
replaces the ledger's rows.

KEYS (built by src/redis/keys.ts; one subject, so one hash tag)
  KEYS[1..n]  the counters the ledger has rows for in their current periods:
              HASHes with p (period start, epoch seconds) and n (units used)
  KEYS[n+1]   the subject's hydration marker (a STRING, the version counter)
  KEYS[n+2]   the subject's usage marker (a HASH, see consume.lua); read only

ARGV
  ARGV[1]          marker_ttl_ms: how long the marker lives (ms): to the end
                   of the longest current period, plus a grace
  ARGV[2+3(i-1)]   the period start of KEYS[i]'s ledger row (epoch seconds)
  ARGV[3+3(i-1)]   the ledger's count for that period (units)
  ARGV[4+3(i-1)]   how long KEYS[i] lives if this script creates it (ms);
                   0 for a lifetime counter, which never expires
  ARGV[2+3n]       the ledger's highest version of the subject (0 for none)

Reply: integer, how many counters were raised.

A counter already in a newer period than the ledger row is left alone.
]]

local raised = 0
local n = #KEYS - 2
for i = 1, n do
  local period_start = tonumber(ARGV[2 + 3 * (i - 1)])
  local count = tonumber(ARGV[3 + 3 * (i - 1)])
  local counter = redis.call('HMGET', KEYS[i], 'p', 'n')
  local p = tonumber(counter[1])
  if p == period_start then
    if (tonumber(counter[2]) or 0) < count then
      redis.call('HSET', KEYS[i], 'n', count)
      raised = raised + 1
    end
  elseif p == nil or p < period_start then
    redis.call('HSET', KEYS[i], 'p', period_start, 'n', count)
    local ttl_ms = tonumber(ARGV[4 + 3 * (i - 1)])
    if ttl_ms > 0 then redis.call('PEXPIRE', KEYS[i], ttl_ms) end
    raised = raised + 1
  end
end
local version = math.max(
  tonumber(ARGV[2 + 3 * n]),
  tonumber(redis.call('GET', KEYS[n + 1])) or 0,
  tonumber(redis.call('HGET', KEYS[n + 2], '_v')) or 0,
  1
) + 1
redis.call('SET', KEYS[n + 1], version, 'PX', tonumber(ARGV[1]))
return raised
