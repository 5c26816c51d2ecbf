--[[
probe.lua: the readiness probe's check of one Redis (src/redis/readiness-probe.ts),
run with EVAL every store.redis.probe_interval_ms, off the request path. It
runs every command the other scripts run, on keys of the gateway's own
prefix, so an ACL that refuses one of them, or a Redis at maxmemory that
refuses writes, fails the probe the way it would fail a request; and it keeps
a state key whose disappearance shows Redis lost its data (a restart without
persistence, a FLUSHALL, a failover to an empty node).

Each command runs under pcall, so a refusal names the command that was
refused rather than failing the whole script with an anonymous error.

KEYS (built by src/redis/keys.ts; one hash tag, so one Cluster slot)
  KEYS[1]     the probe state: a HASH with
                r = 1 once the counters may be used: a ledger could be read
                    to restore them since Redis last lost them (or none backs
                    them), 0 until then
                probes = how many probes ran on it (any instance)
  KEYS[2]     a scratch key, written and deleted by each probe (a STRING,
              then a STREAM)

ARGV
  ARGV[1]     state_ttl_ms: how long the state key outlives the last probe (ms)
  ARGV[2]     mark_restorable: 1 to set r = 1 (the caller could read its ledger),
              else 0

Reply: a flat array
  [1]         1 if the state key existed before this probe, else 0
  [2]         r after this probe (0 or 1)
  [3]         the command that was refused ('' when none), e.g. 'HSET'
  [4]         its error message ('' when none)
]]

local state, scratch = KEYS[1], KEYS[2]
local mark = ARGV[2] == '1'

local function try(command, ...)
  local reply = redis.pcall(command, ...)
  if type(reply) == 'table' and reply.err ~= nil then
    return nil, reply.err
  end
  return reply, nil
end

local existed, restorable = 0, 0

local function run()
  local reply, err = try('TIME')
  if err then return 'TIME', err end
  local now = reply[1]
  reply, err = try('EXISTS', state)
  if err then return 'EXISTS', err end
  existed = reply
  reply, err = try('HGET', state, 'r')
  if err then return 'HGET', err end
  local r = reply
  if mark then r = '1' elseif existed == 0 or r == false then r = '0' end
  reply, err = try('HSET', state, 'r', r)
  if err then return 'HSET', err end
  reply, err = try('HINCRBY', state, 'probes', 1)
  if err then return 'HINCRBY', err end
  reply, err = try('HMGET', state, 'r', 'probes')
  if err then return 'HMGET', err end
  restorable = tonumber(reply[1]) or 0
  reply, err = try('HGETALL', state)
  if err then return 'HGETALL', err end
  reply, err = try('PEXPIRE', state, ARGV[1])
  if err then return 'PEXPIRE', err end
  reply, err = try('SET', scratch, now, 'PX', 1000)
  if err then return 'SET', err end
  reply, err = try('GET', scratch)
  if err then return 'GET', err end
  reply, err = try('DEL', scratch)
  if err then return 'DEL', err end
  -- consume.lua appends quota events to a stream: the scratch key as a
  -- stream trimmed to nothing, then deleted again.
  reply, err = try('XADD', scratch, 'MAXLEN', '0', '*', 'probe', now)
  if err then return 'XADD', err end
  reply, err = try('DEL', scratch)
  if err then return 'DEL', err end
  return '', ''
end

local refused, message = run()
return { existed, restorable, refused, message }
