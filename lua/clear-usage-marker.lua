--[[
clear-usage-marker.lua: deletes a subject's usage marker (see lua/consume.lua)
once the ledger flusher has stored what it read, but only if nothing changed
since: every change (a charge, a refund, a reset) writes a new `_v`, and the
marker then stays for the next flush. The
marker leaves the usage index with it. A marker that is already gone (cleared
by another flusher, or expired) is taken out of the index too.

KEYS
  KEYS[1]  the subject's usage marker (a HASH with `_v`)
  KEYS[2]  the usage index listing it (a SET of marker keys; same slot)

ARGV
  ARGV[1]  the `_v` the flusher read (any value when the marker is gone)

Reply: 1 if deleted (or already gone), 0 if it changed since.
]]

local version = redis.call('HGET', KEYS[1], '_v')
if version ~= false and version ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], KEYS[1])
return 1
