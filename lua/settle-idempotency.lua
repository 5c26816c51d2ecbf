--[[
settle-idempotency.lua: settles the in-flight mark that lua/consume.lua left
on an Idempotency-Key record, once the admitted request's response is known:
keeps the response for replay, or deletes the record so the client may retry.
It does so only while the record is still the in-flight mark of the same
attempt: a mark that expired and was taken over by a later attempt, or one
already completed, is left alone.

KEYS
  KEYS[1]  the Idempotency-Key record (a HASH; see lua/consume.lua)

ARGV
  ARGV[1]  attempt id: the `a` the admission stored
  ARGV[2]  the response status (integer) to keep, or the empty string to
           delete the record instead
  ARGV[3]  the response headers (JSON: a list of [name, value] pairs)
  ARGV[4]  the response body (bytes)
  ARGV[5]  ttl_ms: how long the kept response is replayed (ms)

Reply: 1 if the record was settled, 0 if it was no longer this attempt's
in-flight mark (nothing changed).
]]

local record = KEYS[1]
if redis.call('HGET', record, 'a') ~= ARGV[1] or redis.call('HEXISTS', record, 's') == 1 then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', record)
  return 1
end
redis.call('HSET', record, 's', ARGV[2], 'h', ARGV[3], 'b', ARGV[4])
redis.call('PEXPIRE', record, ARGV[5])
return 1
