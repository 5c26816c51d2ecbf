--[[
add-credits.lua: writes credit grants into a subject's credit balances
(read and spent by lua/consume.lua's `c` options): a new grant from the
admin API, or every grant in force when the subject is hydrated from the
ledger (before lua/hydrate.lua sets the hydration marker). A grant's amount
and expiry never change, so writing them again changes nothing; its spent
units become the larger of what Redis holds and what the ledger counted
(`g:<id>`), so running it twice, after spending, or with a ledger behind
Redis never lowers what was spent: no credit is created by a rewrite.

KEYS (built by src/redis/keys.ts; one subject, so one hash tag)
  KEYS[1..m]  the subject's credit balances (HASHes, one per metric; fields
              a:<id>, u:<id>, x:<id>, see lua/consume.lua)

ARGV, 5 per grant i:
  ARGV[1+5(i-1)]  index of the grant's balance in KEYS (1-based)
  ARGV[2+5(i-1)]  grant id
  ARGV[3+5(i-1)]  units granted (positive integer)
  ARGV[4+5(i-1)]  epoch ms it expires at, 0 for never
  ARGV[5+5(i-1)]  units of it spent as far as the ledger knows

Reply: integer, how many grants were written. The balances never expire:
grants live until they are spent or expire (consume.lua skips both).
]]

local count = #ARGV / 5
for i = 1, count do
  local base = 1 + 5 * (i - 1)
  local key = KEYS[tonumber(ARGV[base])]
  local id = ARGV[base + 1]
  local used = tonumber(ARGV[base + 4])
  local held = tonumber(redis.call('HGET', key, 'u:' .. id)) or 0
  if held > used then used = held end
  redis.call('HSET', key, 'a:' .. id, ARGV[base + 2], 'x:' .. id, ARGV[base + 3], 'u:' .. id, used)
end
return count
