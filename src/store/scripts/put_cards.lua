-- Conditional cardholder writes (src/store/cards.rs): a street office's PUT and import (every card of the caller's
-- street, before and after), and the sync's suspensions (each card exactly as read). Checked and written in one
-- atomic step, so a card that changes between a read and this write is never overwritten blindly.
--
-- KEYS[1]      sg:events
-- KEYS[1 + i]  sg:{<card_id>}:card of card i (i = 1..n)
-- ARGV[1]      guard: "street" (stored card absent or of ARGV[2], and the new card of ARGV[2]) or "unchanged"
--              (every field of the stored card equal to the card's expected values)
-- ARGV[2]      the street of the "street" guard ("" otherwise)
-- ARGV[3]      event type: "cardholder.put" (one event per card written, the card's JSON as data) or
--              "cardholder.import" (one event for the batch, `{"cards": <written>}`)
-- ARGV[4]      the event's `at`
-- ARGV[5]      F, the number of card fields; ARGV[6 .. 5 + F] their names (store::codec::card_fields order)
-- then per card i, 2F + 1 values: the F new field values, the card's JSON, the F expected stored values
--              ("unchanged" guard; ignored by "street")
-- Returns the 0-based indices of the cards not written (their guard failed).

local guard, street, event_type, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local nfields = tonumber(ARGV[5])
local names = {}
local street_at = 0
for f = 1, nfields do
  names[f] = ARGV[5 + f]
  if names[f] == 'street' then street_at = f end
end
local base = 5 + nfields
local stride = 2 * nfields + 1
local refused = {}
local written = 0
for i = 1, #KEYS - 1 do
  local key = KEYS[1 + i]
  local at_arg = base + (i - 1) * stride
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
      if stored[f] ~= ARGV[at_arg + nfields + 1 + f] then
        ok = false
        break
      end
    end
  end
  if ok then
    local args = {}
    for f = 1, nfields do
      args[2 * f - 1] = names[f]
      args[2 * f] = ARGV[at_arg + f]
    end
    redis.call('HSET', key, unpack(args))
    written = written + 1
    if event_type == 'cardholder.put' then
      redis.call('XADD', KEYS[1], '*', 'type', event_type, 'at', at, 'data', ARGV[at_arg + nfields + 1])
    end
  else
    refused[#refused + 1] = i - 1
  end
end
if event_type == 'cardholder.import' and written > 0 then
  redis.call('XADD', KEYS[1], '*', 'type', event_type, 'at', at, 'data', string.format('{"cards":%d}', written))
end
return refused
