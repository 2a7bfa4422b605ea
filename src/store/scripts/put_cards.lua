-- put_cards.lua (after audit.lua): store a batch of cardholders (create or replace) with its events and its audit
-- entry in one atomic step (src/store/cards.rs), each card under a guard checked in the same step: none (the relief
-- office), "street" (a street office's PUT and import: the stored card absent or of ARGV[7], and the new card of
-- ARGV[7]) or "unchanged" (the sync's suspensions: every field of the stored card equal to the expected values).
-- All or nothing: when a guard fails for any card, nothing is written and the answer lists the cards refused, so
-- the audit entry (sealed before the call for the whole batch) never describes a write that did not happen; the
-- gateway drops them and calls again.
--
-- KEYS[3..] {sg}:{<card_id>}:card of card i (i = 1..n)
-- ARGV[6]   guard: "none" | "street" | "unchanged"
-- ARGV[7]   the street of the "street" guard ("" otherwise)
-- ARGV[8]   event type: "cardholder.put" (one event per card, the card's JSON as data) or "cardholder.import"
--           (one event for the batch, `{"cards": n}`)
-- ARGV[9]   F, the number of card fields; ARGV[10 .. 9 + F] their names (store::codec::card_fields order)
-- then per card i, 2F + 1 values: the F new field values, the card's JSON, the F expected stored values
--           (the "unchanged" guard; ignored otherwise)
-- Returns {'stored', n}, {'refused', i, ...} (0-based indices; nothing written) or {'audit_stale'}.
if not audit_fresh() then return {'audit_stale'} end
local guard, street, event_type = ARGV[6], ARGV[7], ARGV[8]
local nfields = tonumber(ARGV[9])
local names = {}
local street_at = 0
for f = 1, nfields do
  names[f] = ARGV[9 + f]
  if names[f] == 'street' then street_at = f end
end
local base = 9 + nfields
local stride = 2 * nfields + 1
local n = #KEYS - 2
local refused = {'refused'}
if guard ~= 'none' then
  for i = 1, n do
    local key, at_arg = KEYS[2 + i], base + (i - 1) * stride
    local ok = true
    if guard == 'street' then
      if ARGV[at_arg + street_at] ~= street then
        ok = false
      elseif redis.call('EXISTS', key) == 1 and redis.call('HGET', key, 'street') ~= street then
        ok = false
      end
    else
      local stored = redis.call('HMGET', key, unpack(names))
      for f = 1, nfields do
        if stored[f] ~= ARGV[at_arg + nfields + 1 + f] then ok = false; break end
      end
    end
    if not ok then refused[#refused + 1] = tostring(i - 1) end
  end
  if #refused > 1 then return refused end
end
for i = 1, n do
  local at_arg = base + (i - 1) * stride
  local args = {}
  for f = 1, nfields do
    args[2 * f - 1] = names[f]
    args[2 * f] = ARGV[at_arg + f]
  end
  redis.call('HSET', KEYS[2 + i], unpack(args))
  if event_type == 'cardholder.put' then
    redis.call('XADD', KEYS[2], '*', 'type', event_type, 'at', ARGV[5], 'data', ARGV[at_arg + nfields + 1])
  end
end
if event_type == 'cardholder.import' then
  redis.call('XADD', KEYS[2], '*', 'type', event_type, 'at', ARGV[5], 'data', string.format('{"cards":%d}', n))
end
audit_append()
return {'stored', tostring(n)}
