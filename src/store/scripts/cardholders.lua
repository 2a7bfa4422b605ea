-- cardholders.lua (after audit.lua): store a batch of cardholders (create or replace), their event and their audit
-- entry in one atomic step.
--
-- KEYS[3..] sg:{card}:card, one per card, in ARGV order
-- ARGV[6] event type ('cardholder.put' | 'cardholder.import'), ARGV[7] the event's data JSON,
-- ARGV[8..] per card: n (the number of field/value strings that follow), then the fields and values
-- Returns {'stored', cards} or {'audit_stale'}.
if not audit_fresh() then return {'audit_stale'} end
local at, i = 8, 0
while at <= #ARGV do
  local n = tonumber(ARGV[at])
  i = i + 1
  redis.call('HSET', KEYS[2 + i], unpack(ARGV, at + 1, at + n))
  at = at + n + 1
end
redis.call('XADD', KEYS[2], '*', 'type', ARGV[6], 'at', ARGV[5], 'data', ARGV[7])
audit_append()
return {'stored', tostring(i)}
