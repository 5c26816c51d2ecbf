--[[
consume.lua: decides one request against every policy (rate window or metered
quota) that applies to it, atomically, and charges all of them or none.

Periods are calendar-aligned in UTC: second, minute, hour and day by
arithmetic on epoch milliseconds, month from the 1st at 00:00 UTC to the next
1st (28-31 days, proleptic Gregorian leap years). The time is Redis TIME, so
every gateway instance agrees on the boundaries. src/core/calendar.ts computes
the same periods; test/integration/redis-calendar.test.ts checks one against
the other.

KEYS (built by src/redis/keys.ts; all in the subject's Cluster slot)
  KEYS[1..n]  one counter per policy or meter: a HASH with
                p = start of the period counted (epoch seconds)
                n = units used in that period
              and, for a policy with thresholds (`t` options), once one of
              its events was emitted:
                e = `<period start>:<h>:<x>`: in that period its
                    thresholds up to h percent were emitted (0: none), and
                    its exhaustion if x is 1 (a percent, not a position,
                    so a reload that changes the thresholds keeps it
                    meaningful: a new threshold at or below h is not
                    emitted this period);
                    an `e` of another period than the current counts as
                    none (it may outlive its period when the counter was
                    rewritten without thresholds, or by hydrate.lua)
              A counter whose p is not the current period start counts as 0
              and is overwritten when charged.
  KEYS[n+1]   the subject's usage marker (a HASH): what changed since the
              ledger flusher last copied it, as fields
                `<period start, epoch seconds>:<counterId>` = absolute count
              plus `_v`, the subject's version (KEYS[n+2]) at the latest
              change: the ledger stores the counts at that version, and the
              flusher deletes the marker only if `_v` is still what it read.
              Written only when ARGV[6] is 1.
  KEYS[n+2]   the subject's hydration marker (a STRING), which is also its
              version counter: present once the counters were restored from
              the ledger since Redis last lost them (lua/hydrate.lua sets it
              above the ledger's highest version); every call INCRs it and a
              charge takes the new value as its version. Used only when
              ARGV[6] is 1.
  KEYS[n+3]   the usage index (a SET of usage marker keys, shared by subjects;
              on a Cluster the one of the subject's slot): the marker's key
              is added with every charge, so any ledger flusher finds it.
              Written only when ARGV[6] is 1.
  KEYS[n+4]   the subject's charge records of this minute (a HASH, request
              id → what that call charged, plus `_c` = 1 marking that its
              lifetime is set): written on every admission, so that a call
              whose reply the gateway lost can be undone by its id
              (lua/undo-charge.lua)
  KEYS[n+5 .. n+4+k]  the keys the options (ARGV[8]) use, k = ARGV[9]
              (0 without options needing keys). Credits (`c` options) use
              two, at KEYS[n+4+j] and KEYS[n+5+j] (j named by the option):
                the subject's credit balance of the metric (a HASH, one
                  set of fields per grant <id>:
                    a:<id> = units granted
                    u:<id> = units spent of it
                    x:<id> = epoch ms it expires at, 0 for never;
                  written by lua/add-credits.lua, never expiring)
                the metric's monthly credit spend counter (a HASH with p
                  and n like KEYS[1..n], `c:<metric>:month`)
              Events (the `e` option) use one, at KEYS[n+4+j]: the event
              stream (a STREAM shared by subjects; on a Cluster the one of
              the subject's slot, like the usage index), each entry
                id <event id> type <type> ts <epoch ms> data <JSON>
              (src/core/quota-events.ts encodeStreamFields)
  KEYS[n+5+k] optional: the Idempotency-Key record (a HASH) with
                f = the fingerprint of the request that took the key
                a = the attempt id of that request
              and, once its response completed (lua/settle-idempotency.lua),
                s = status, h = headers (JSON), b = body
              Without s the key is in flight. Given only with ARGV[12+3n].

ARGV
  ARGV[1]     cost: units to charge every policy (positive integer)
  ARGV[2]     now_override_ms: epoch ms to use instead of TIME; tests only,
              the empty string in production
  ARGV[3]     in_flight_ttl_ms: how long an admission's in-flight mark on
              its Idempotency-Key lives until settled (ms)
  ARGV[4]     expiry_grace_ms: a counter expires this long after its period
              ends (ms)
  ARGV[5]     n: number of policies and meters (the number of counter KEYS)
  ARGV[6]     track_usage: 1 when a ledger backs the counters (check the
              hydration marker, write the usage marker), else 0
  ARGV[7]     usage_marker_ttl_ms: how long an unflushed usage marker lives
              after its first charge (ms)
  ARGV[8]     options: the empty string for plain policies (the steady
              path parses nothing), else `;`-separated entries naming a
              policy by its index i (1-based, KEYS order):
                `o,<i>,<max>,<overage counterId>`  policy i allows overage:
                    up to max units past its limit are admitted; the marker
                    records the units past the limit under the overage
                    counterId (`o:search:month`)
                `c,<i>,<j>,<spend counterId>`  policy i is covered by
                    credits: when it has no room for the cost, the cost is
                    charged to the credit balance KEYS[n+4+j] instead (policy
                    i is not charged), spending grants soonest-expiring
                    first, never-expiring last, then lowest id; the spend is
                    counted in KEYS[n+5+j] (the current month) and the
                    marker records each grant's spent units under
                    `0:g:<id>` and the month's spend under `<month
                    start>:<spend counterId>`. Every `c` option of a call
                    names the same j (a policy list has one metric)
                `e,<j>,<max length>,<plan>`  events are on: they are
                    appended to the stream KEYS[n+4+j], trimmed to about
                    max length entries (XADD MAXLEN ~); plan is the plan's
                    name for the events' data ('' for none: null); the
                    subject is then the last ARGV
                `t,<i>,<u1>:<u2>:…,<p1>:<p2>:…,<name>`  policy i (named
                    `name` in events) has thresholds: p1 < p2 < … percent,
                    reached at u1 ≤ u2 ≤ … units (ceil(limit × p / 100),
                    computed when the config loads). Only with `e`
  ARGV[9]     k: the number of option KEYS (KEYS[n+5 .. n+4+k])
  ARGV[10+3(i-1)]  policy i's window: second | minute | hour | day | month |
                   lifetime (one period from the epoch that never ends: its
                   counter never expires)
  ARGV[11+3(i-1)]  policy i's limit: units per period (positive integer), or
                   0 for a meter: charged with the others, never limiting
  ARGV[12+3(i-1)]  policy i's counterId (`w:hour`), for the usage marker
  ARGV[10+3n] charge_record_ttl_ms: how long the charge records live after
              the minute's first one was written (ms); the caller covers the
              minute itself in it
  ARGV[11+3n] request_id: this call's id, the charge record's field
  ARGV[12+3n] with the Idempotency-Key record: the request's fingerprint (hex)
  ARGV[13+3n] with the Idempotency-Key record: this attempt's id, stored in `a`
  ARGV[#ARGV] with an `e` option: the subject (for the events' data and ids)

As sent, ARGV is shorter, and the script rebuilds the layout above before
reading it: the arguments that do not change between a subject's calls
travel as one (src/redis/scripts.ts builds it once per subject and list of
policies), so that the client encodes and Redis parses 14 fewer arguments
per call with three policies:
  sent[1..3]  ARGV[1..3] (cost, now_override_ms, in_flight_ttl_ms)
  sent[4]     ARGV[6] (track_usage)
  sent[5]     ARGV[4], ARGV[5], ARGV[7], ARGV[8], ARGV[9], ARGV[10 .. 10+3n],
              in that order, each followed by a newline but the last (no
              field holds a newline; ARGV[8] may be empty)
  sent[6..]   ARGV[11+3n ..] (request_id, then what follows it)

Reply, when the Idempotency-Key record exists (nothing decided or charged):
  { -2 }                          its fingerprint differs from ARGV[12+3n]
  { -3 }                          same fingerprint, still in flight
  { -4, status, headers, body }   same fingerprint, completed: the response
{ -1 } when track_usage is 1 and the hydration marker is absent (its INCR
answered 1; the script deletes it again): nothing was decided or charged;
restore the counters (lua/hydrate.lua) and call again. Otherwise a flat array of integers
  [1] allowed   1 if admitted (and charged), else 0
  [2] reserved  always 0 (was the replay flag of the old idempotency record)
  [3] n         number of entries that follow (policies, then meters)
  then per policy or meter i, 6 integers starting at 4 + 6(i-1):
      limit           units per period
      remaining       units left after this decision, at least 0; for a
                      policy allowing overage, limit - used, so negative
                      once past the limit (minus the overage units)
      reset_seconds   whole seconds to the period end, rounded up, at least
                      1; 0 for lifetime (never resets)
      period_seconds  length of the period (a month is 28-31 days); 0 for
                      lifetime
      period_start    start of the period (epoch seconds; 0 for lifetime);
                      a refund names it
      violated        1 if this policy had no room for the cost, else 0;
                      2 if it had none and the admission charged its cost
                      to credits instead (the policy was not charged)
  then, only when ARGV[8] has `c` options, 2 more integers:
      balance         the credit units left in force after this decision
      credits_charged units this decision charged to credits (0 or cost)

Events (only with an `e` option; see docs/events.md). In the same atomic
call that decides:
  quota.threshold   an admission that brings policy i's count to or past
                    thresholds not yet emitted this period emits one event
                    for each of them, lowest first (a request jumping two
                    emits both), and records them in `e`: a refund that
                    lowers the count and a new crossing emit nothing. A
                    count raised outside this script (a settled cost) is
                    caught at the next admission.
  quota.exhausted   a denial emits one for each policy with thresholds
                    that had no room (violated 1), the first time in the
                    period, and records it in `e` (creating the counter at
                    0 if it is absent, with the usual expiry)
  credits.low       an admission paid by credits that takes the balance
                    from above ceil(granted / 10) to or below it, granted
                    being the units of the unexpired grants
  credits.exhausted the same, taking the balance to 0
The event id is `evt_` + SHA-1 hex of `<type>\n<subject>\n<counterId>\n<period
start, epoch seconds>\n<percent>` (threshold), `…\n<counterId>\n<period
start>\n` (exhausted), `<type>\n<subject>\n<metric>\n<unexpired grant
ids, ascending, comma-separated>\n<low mark, or 0>` (credits); the memory
store's limiter derives the same. A call that reaches no threshold makes no
more redis.call than without events (the counter's HMGET reads `e` too).

A denial writes nothing but, with track_usage, the version counter's INCR
(versions may skip values; they only need to grow), and, with events, the
exhaustion record above. An admission with no policy or meter (n = 0)
charges nothing (but does mark its Idempotency-Key). Every admission also
writes its charge record, field request_id =
`<cost>,<period start 1>,…,<period start n>` (epoch seconds, in KEYS order;
just `<cost>` when n = 0; -1 for a policy paid by credits, which was not
charged, so lua/undo-charge.lua leaves it alone), followed, when credits
paid, by `,<credits>,<month start>,<grant id>:<units>,…` (the units taken
of each grant, in spending order); the minute's first record sets the
records to expire charge_record_ttl_ms later. An answer from the Idempotency-Key record
writes none (it charged nothing).

The steady path does the fewest calls (redis.call costs ~1-4 µs each inside
Redis): a counter of the current period is incremented and keeps the expiry
set when its period began; a counter of a new period (or none) is written
whole and set to expire expiry_grace_ms after its period ends, as a relative
PEXPIRE from `now` (in production the same instant as a PEXPIREAT, and still
right when a test overrides `now`). The hydration check is the INCR that
also gives the charge its version. The usage marker gets all its fields and
`_v` in one HSET; its lifetime and its place in the usage index are set only
on its first charge since a flusher cleared it (HSET then counts `_v` as a
new field).
]]

local DAY_MS = 86400000
local FIXED_LENGTH_MS = { second = 1000, minute = 60000, hour = 3600000, day = DAY_MS }

local floor = math.floor

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant,
-- "chrono-Compatible Low-Level Date Algorithms", days_from_civil).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Year, month and day of a day count since 1970-01-01 (Hinnant's civil_from_days).
local function year_month_of_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

-- The period of `window` containing now_ms: start and end in epoch ms; the
-- end is nil for lifetime, the one period that never ends.
local function period_of(window, now_ms)
  if window == 'lifetime' then return 0, nil end
  if window == 'month' then
    local y, m = year_month_of_days(floor(now_ms / DAY_MS))
    local next_y, next_m = y, m + 1
    if next_m > 12 then next_y, next_m = y + 1, 1 end
    return days_from_civil(y, m, 1) * DAY_MS, days_from_civil(next_y, next_m, 1) * DAY_MS
  end
  local length_ms = FIXED_LENGTH_MS[window]
  if length_ms == nil then error('consume.lua: unknown window ' .. tostring(window)) end
  local start_ms = floor(now_ms / length_ms) * length_ms
  return start_ms, start_ms + length_ms
end

-- An integer as JSON (and as a Redis argument): never in exponent form.
local function int_text(x) return string.format('%.0f', x) end

-- Epoch ms as ISO 8601 UTC with milliseconds, as JavaScript's toISOString() writes it.
local function iso_of(ms)
  local days = floor(ms / DAY_MS)
  local y, m, d = year_month_of_days(days)
  local in_day = ms - days * DAY_MS
  local seconds = floor(in_day / 1000)
  return string.format('"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ"', y, m, d, floor(seconds / 3600), floor(seconds / 60) % 60, seconds % 60, in_day % 1000)
end

-- ARGV in the layout documented above, rebuilt from the arguments as sent
-- (a local: every use below reads it).
local ARGV = (function(sent)
  local argv = { sent[1], sent[2], sent[3] }
  local fixed, from = {}, 1
  local text = sent[5]
  while true do
    local at = string.find(text, '\n', from, true)
    if not at then
      fixed[#fixed + 1] = string.sub(text, from)
      break
    end
    fixed[#fixed + 1] = string.sub(text, from, at - 1)
    from = at + 1
  end
  argv[4], argv[5], argv[6], argv[7], argv[8], argv[9] = fixed[1], fixed[2], sent[4], fixed[3], fixed[4], fixed[5]
  for f = 6, #fixed do argv[#argv + 1] = fixed[f] end
  for a = 6, #sent do argv[#argv + 1] = sent[a] end
  return argv
end)(ARGV)

local cost = tonumber(ARGV[1])
local in_flight_ttl_ms = tonumber(ARGV[3])
local expiry_grace_ms = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local track_usage = ARGV[6] == '1'
local usage_marker_ttl_ms = tonumber(ARGV[7])
local options = ARGV[8]
local option_key_count = tonumber(ARGV[9])
local usage_marker_key = KEYS[n + 1]
local usage_index_key = KEYS[n + 3]
local charge_record_key = KEYS[n + 4]
local idempotency_key = KEYS[n + 5 + option_key_count]
local charge_record_ttl_ms = tonumber(ARGV[10 + 3 * n])
local request_id = ARGV[11 + 3 * n]

-- Per policy index: the overage allowed past its limit, and its counterId;
-- whether credits cover it (and the credit keys' place and spend counterId).
local overage_max, overage_counter = {}, {}
local credit_covered, credit_key, credit_spend_id = {}, nil, nil
-- Events (only with an `e` option): per policy index with thresholds, the
-- text of its units (`u1:u2:…`) and of `<percents>,<name>`, parsed only
-- when needed; the event stream, its cap, the plan's name (JSON) and the
-- subject (the last ARGV).
local threshold_text, threshold_rest = {}, {}
local events_key, events_max_length, plan_json, subject
if options ~= '' then
  for entry in string.gmatch(options, '[^;]+') do
    local kind, index, a, b = string.match(entry, '^(%a+),(%d+),([^,]*),?(.*)$')
    if kind == 'o' then
      overage_max[tonumber(index)] = tonumber(a)
      overage_counter[tonumber(index)] = b
    elseif kind == 'c' then
      credit_covered[tonumber(index)] = true
      credit_key = n + 4 + tonumber(a)
      credit_spend_id = b
    elseif kind == 't' then
      -- Kept as text: parsed (threshold_lists) only when a charge reaches the lowest unit.
      threshold_text[tonumber(index)] = a
      threshold_rest[tonumber(index)] = b
    elseif kind == 'e' then
      events_key = KEYS[n + 4 + tonumber(index)]
      events_max_length = a
      -- Plan names are [a-z0-9_-]: no JSON escaping needed.
      plan_json = b == '' and 'null' or '"' .. b .. '"'
      subject = ARGV[#ARGV]
    else
      error('consume.lua: unknown option ' .. entry)
    end
  end
end

if idempotency_key then
  local record = redis.call('HMGET', idempotency_key, 'f', 's', 'h', 'b')
  if record[1] then
    if record[1] ~= ARGV[12 + 3 * n] then return { -2 } end
    if not record[2] then return { -3 } end
    return { -4, tonumber(record[2]), record[3], record[4] }
  end
end

-- The subject's version: INCR answers 1 only when the marker was absent,
-- i.e. Redis lost the subject (or it was never hydrated).
local version
if track_usage then
  version = redis.call('INCR', KEYS[n + 2])
  if version == 1 then
    redis.call('DEL', KEYS[n + 2])
    return { -1 }
  end
end

local now_ms
if ARGV[2] ~= '' then
  now_ms = tonumber(ARGV[2])
else
  local time = redis.call('TIME')
  now_ms = tonumber(time[1]) * 1000 + floor(tonumber(time[2]) / 1000)
end

local starts, ends, used, current = {}, {}, {}, {}

-- Appends one event to the event stream, trimmed to about its cap. The id
-- is a hash of what makes the occurrence unique (id_source), so a
-- duplicate would carry the same one; data is its JSON.
local function emit(event_type, id_source, data)
  redis.call('XADD', events_key, 'MAXLEN', '~', events_max_length, '*',
    'id', 'evt_' .. redis.sha1hex(event_type .. '\n' .. subject .. '\n' .. id_source),
    'type', event_type, 'ts', int_text(now_ms), 'data', data)
end

-- The JSON fields every quota event of policy i shares: after subject and
-- plan, the policy's name, then (after the caller's) used, limit and period.
local function quota_event_data(i, extra, count)
  return '{"subject":' .. cjson.encode(subject) .. ',"plan":' .. plan_json .. ',"policy":"' .. string.match(threshold_rest[i], ',(.*)$') .. '"'
    .. extra .. ',"used":' .. int_text(count) .. ',"limit":' .. ARGV[8 + 3 * i]
    .. ',"period_start":' .. iso_of(starts[i]) .. ',"period_end":' .. (ends[i] and iso_of(ends[i]) or 'null') .. '}'
end

-- Check every policy before charging any.
-- Per policy with thresholds: the highest percent emitted this period (0:
-- none), and 1 once its exhaustion was (the counter's `e` field, see above).
local reached, exhausted = {}, {}
local allowed = 1
local reply = { 0, 0, n }
for i = 1, n do
  local window = ARGV[7 + 3 * i]
  local limit = tonumber(ARGV[8 + 3 * i])
  local start_ms, end_ms = period_of(window, now_ms)
  local counter
  if threshold_text[i] then
    counter = redis.call('HMGET', KEYS[i], 'p', 'n', 'e')
  else
    counter = redis.call('HMGET', KEYS[i], 'p', 'n')
  end
  local count = 0
  local is_current = counter[1] and tonumber(counter[1]) * 1000 == start_ms
  if is_current then count = tonumber(counter[2]) or 0 end
  starts[i], ends[i], used[i], current[i] = start_ms, end_ms, count, is_current
  if threshold_text[i] then
    reached[i], exhausted[i] = 0, 0
    -- `e` of an older period (left by a period rolled over with thresholds off, or by a hydration) counts as none.
    if counter[3] then
      local p, h, x = string.match(counter[3], '^(%d+):(%d+):(%d)$')
      if p and tonumber(p) * 1000 == start_ms then reached[i], exhausted[i] = tonumber(h), tonumber(x) end
    end
  end
  local violated = 0
  if limit > 0 and count + cost > limit + (overage_max[i] or 0) then
    violated = 1
    -- A policy covered by credits is decided with the balance, below.
    if not credit_covered[i] then allowed = 0 end
  end
  local base = 4 + 6 * (i - 1)
  reply[base] = limit
  reply[base + 1] = count -- remaining, filled in below once the outcome is known
  if end_ms then
    local reset_seconds = math.ceil((end_ms - now_ms) / 1000)
    if reset_seconds < 1 then reset_seconds = 1 end
    reply[base + 2] = reset_seconds
    reply[base + 3] = (end_ms - start_ms) / 1000
  else
    reply[base + 2] = 0
    reply[base + 3] = 0
  end
  reply[base + 4] = start_ms / 1000
  reply[base + 5] = violated
end

-- Credits (only with `c` options): the grants in force, in spending order,
-- and whether they pay for the policies covered by them that had no room.
local grants, balance, credits_charged = {}, 0, 0
local by_id = {}
if credit_key then
  local fields = redis.call('HGETALL', KEYS[credit_key])
  for f = 1, #fields, 2 do
    local part, id = string.match(fields[f], '^(%a):(%d+)$')
    if part then
      local grant = by_id[id]
      if not grant then
        grant = { id = tonumber(id), a = 0, u = 0, x = 0 }
        by_id[id] = grant
      end
      grant[part] = tonumber(fields[f + 1])
    end
  end
  for id, grant in pairs(by_id) do
    if (grant.x == 0 or grant.x > now_ms) and grant.a > grant.u then
      grants[#grants + 1] = grant
      balance = balance + grant.a - grant.u
    end
  end
  -- Soonest-expiring first (0: never, last), then lowest id.
  table.sort(grants, function(g, h)
    local gx = g.x == 0 and math.huge or g.x
    local hx = h.x == 0 and math.huge or h.x
    if gx ~= hx then return gx < hx end
    return g.id < h.id
  end)
  local short = false
  for i = 1, n do
    if credit_covered[i] and reply[4 + 6 * (i - 1) + 5] == 1 then short = true end
  end
  if short then
    if allowed == 1 and balance >= cost then
      credits_charged = cost
      for i = 1, n do
        local base = 4 + 6 * (i - 1)
        if credit_covered[i] and reply[base + 5] == 1 then reply[base + 5] = 2 end
      end
    else
      allowed = 0
    end
  end
end
reply[1] = allowed

for i = 1, n do
  local base = 4 + 6 * (i - 1)
  local charged = allowed
  if reply[base + 5] == 2 then charged = 0 end
  local remaining = reply[base] - used[i] - (charged * cost)
  -- Past the limit of a policy allowing overage, the (negative) rest tells the overage units.
  if remaining < 0 and not overage_max[i] then remaining = 0 end
  reply[base + 1] = remaining
end
if credit_key then
  reply[#reply + 1] = balance - credits_charged
  reply[#reply + 1] = credits_charged
end

-- Denied: each policy with thresholds that had no room emits its
-- exhaustion, the first time in the period (its counter, created at 0 when
-- absent, remembers it).
if allowed == 0 then
  if events_key then
    for i = 1, n do
      if threshold_text[i] and exhausted[i] == 0 and reply[4 + 6 * (i - 1) + 5] == 1 then
        local start_seconds = starts[i] / 1000
        emit('quota.exhausted', ARGV[9 + 3 * i] .. '\n' .. int_text(start_seconds) .. '\n', quota_event_data(i, '', used[i]))
        local state = int_text(start_seconds) .. ':' .. reached[i] .. ':1'
        if current[i] then
          redis.call('HSET', KEYS[i], 'e', state)
        else
          redis.call('HSET', KEYS[i], 'p', start_seconds, 'n', 0, 'e', state)
          if ends[i] then redis.call('PEXPIRE', KEYS[i], ends[i] - now_ms + expiry_grace_ms) else redis.call('PERSIST', KEYS[i]) end
        end
      end
    end
  end
  return reply
end

-- The thresholds of policy i that a count of `count` reaches and that were
-- not emitted yet this period are emitted, lowest first; answers the
-- counter's new `e` value, or nil when nothing was emitted.
local function emit_thresholds(i, count)
  -- The steady path: below the lowest threshold, nothing to parse.
  if tonumber(string.match(threshold_text[i], '^%d+')) > count then return nil end
  local units, percents = {}, {}
  for u in string.gmatch(threshold_text[i], '%d+') do units[#units + 1] = tonumber(u) end
  for p in string.gmatch(string.match(threshold_rest[i], '^([^,]*),'), '%d+') do percents[#percents + 1] = tonumber(p) end
  -- The lowest threshold above the highest percent emitted this period.
  local k = 1
  while percents[k] ~= nil and percents[k] <= reached[i] do k = k + 1 end
  if units[k] == nil or units[k] > count then return nil end
  local start_seconds = int_text(starts[i] / 1000)
  while units[k] ~= nil and units[k] <= count do
    emit('quota.threshold', ARGV[9 + 3 * i] .. '\n' .. start_seconds .. '\n' .. percents[k],
      quota_event_data(i, ',"threshold":' .. percents[k], count))
    reached[i] = percents[k]
    k = k + 1
  end
  return start_seconds .. ':' .. reached[i] .. ':' .. exhausted[i]
end

-- Admitted: charge every counter. A counter of the current period is
-- incremented (its expiry was set when the period began); one of an older
-- period, or none, is overwritten and set to expire shortly after its period.
local charge_record = { cost }
local marker_fields = { 'HSET', usage_marker_key }
for i = 1, n do
  local start_seconds = starts[i] / 1000
  charge_record[i + 1] = start_seconds
  local count
  if reply[4 + 6 * (i - 1) + 5] == 2 then
    -- Paid by credits: this policy is not charged.
    charge_record[i + 1] = -1
  else
    -- Thresholds reached by this charge (only with events; the count is exact: the script is atomic).
    local state = events_key and threshold_text[i] and emit_thresholds(i, used[i] + cost)
    if current[i] then
      count = redis.call('HINCRBY', KEYS[i], 'n', cost)
      if state then redis.call('HSET', KEYS[i], 'e', state) end
    else
      count = used[i] + cost
      if state then
        redis.call('HSET', KEYS[i], 'p', start_seconds, 'n', count, 'e', state)
      else
        redis.call('HSET', KEYS[i], 'p', start_seconds, 'n', count)
      end
      -- A lifetime counter (no end) never expires; it may have been created by a hydration with a lifetime of its own.
      if ends[i] then redis.call('PEXPIRE', KEYS[i], ends[i] - now_ms + expiry_grace_ms) else redis.call('PERSIST', KEYS[i]) end
    end
  end
  if track_usage and count then
    marker_fields[#marker_fields + 1] = start_seconds .. ':' .. ARGV[9 + 3 * i]
    marker_fields[#marker_fields + 1] = count
    if overage_max[i] then
      local past = count - tonumber(ARGV[8 + 3 * i])
      marker_fields[#marker_fields + 1] = start_seconds .. ':' .. overage_counter[i]
      marker_fields[#marker_fields + 1] = past > 0 and past or 0
    end
  end
end
if credits_charged > 0 then
  -- Spend the grants in order, then count the month's spend.
  local left = credits_charged
  local month_start_ms, month_end_ms = period_of('month', now_ms)
  -- The charge record also tells what was spent, and of which grants, so
  -- that lua/undo-charge.lua can give exactly that back.
  charge_record[#charge_record + 1] = credits_charged
  charge_record[#charge_record + 1] = month_start_ms / 1000
  for _, grant in ipairs(grants) do
    if left == 0 then break end
    local take = math.min(left, grant.a - grant.u)
    local spent = redis.call('HINCRBY', KEYS[credit_key], 'u:' .. grant.id, take)
    left = left - take
    charge_record[#charge_record + 1] = grant.id .. ':' .. take
    if track_usage then
      marker_fields[#marker_fields + 1] = '0:g:' .. grant.id
      marker_fields[#marker_fields + 1] = spent
    end
  end
  local spend_key = KEYS[credit_key + 1]
  local spend = redis.call('HMGET', spend_key, 'p', 'n')
  local month_spend
  if spend[1] and tonumber(spend[1]) * 1000 == month_start_ms then
    month_spend = redis.call('HINCRBY', spend_key, 'n', credits_charged)
  else
    month_spend = credits_charged
    redis.call('HSET', spend_key, 'p', month_start_ms / 1000, 'n', month_spend)
    redis.call('PEXPIRE', spend_key, month_end_ms - now_ms + expiry_grace_ms)
  end
  if track_usage then
    marker_fields[#marker_fields + 1] = (month_start_ms / 1000) .. ':' .. credit_spend_id
    marker_fields[#marker_fields + 1] = month_spend
  end
  -- Credits events: the balance fell to or below a tenth of the units the
  -- unexpired grants gave (credits.low), or to 0 (credits.exhausted). The
  -- balance only falls while the grants in force stay the same, so their
  -- ids name the crossing.
  if events_key then
    local granted, ids = 0, {}
    for _, grant in pairs(by_id) do
      if grant.x == 0 or grant.x > now_ms then
        granted = granted + grant.a
        ids[#ids + 1] = grant.id
      end
    end
    table.sort(ids)
    local after = balance - credits_charged
    local low = math.ceil(granted / 10)
    local metric = string.match(credit_spend_id, '^c:(.*):month$')
    local id_source = metric .. '\n' .. table.concat(ids, ',') .. '\n'
    local head = '{"subject":' .. cjson.encode(subject) .. ',"plan":' .. plan_json .. ',"metric":"' .. metric .. '","balance":' .. int_text(after)
      .. ',"granted":' .. int_text(granted)
    if balance > low and after <= low then
      emit('credits.low', id_source .. int_text(low), head .. ',"threshold":' .. int_text(low) .. '}')
    end
    if after == 0 then emit('credits.exhausted', id_source .. '0', head .. '}') end
  end
end
if track_usage and n > 0 then
  marker_fields[#marker_fields + 1] = '_v'
  marker_fields[#marker_fields + 1] = version
  -- Every field is new (all of them, `_v` included: n + 1, plus one per
  -- overage field) only when the marker was absent: its first charge since
  -- a flusher cleared it, which alone needs its lifetime and its place in
  -- the usage index (clear-usage-marker.lua removes both together; a
  -- present marker always holds `_v`).
  if redis.call(unpack(marker_fields)) == (#marker_fields - 2) / 2 then
    redis.call('PEXPIRE', usage_marker_key, usage_marker_ttl_ms)
    redis.call('SADD', usage_index_key, usage_marker_key)
  end
end
-- HSET answers how many fields were new: 2 only when `_c` was absent too,
-- i.e. on the minute's first record, which alone sets the records' lifetime.
if redis.call('HSET', charge_record_key, request_id, table.concat(charge_record, ','), '_c', 1) == 2 then
  redis.call('PEXPIRE', charge_record_key, charge_record_ttl_ms)
end
if idempotency_key then
  redis.call('HSET', idempotency_key, 'f', ARGV[12 + 3 * n], 'a', ARGV[13 + 3 * n])
  redis.call('PEXPIRE', idempotency_key, in_flight_ttl_ms)
end
return reply
