--[[
clear-usage-marker.lua: deletes a subject's usage marker (see lua/consume.lua)
once the ledger flusher has stored what it read, but only if no charge came in
since: a charge bumps `_v`, and the marker then stays for the next flush.

KEYS
  KEYS[1]  the subject's usage marker (a HASH with `_v`)

ARGV
  ARGV[1]  the `_v` the flusher read

Reply: 1 if deleted, 0 if it changed since (or is gone).
]]

if redis.call('HGET', KEYS[1], '_v') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
