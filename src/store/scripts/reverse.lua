-- reverse.lua: undo one settlement exactly as recorded, atomically and idempotently; or, for an id never settled,
-- record a tombstone so that a late original is refused (API.md /v1/reversals). The change, its reconciliation
-- line and its event are written together here, or not at all.
--
-- KEYS[1] {sg}:{card}:stl:<hospital>/<hsid>   KEYS[2] {sg}:claim:{<hospital>/<hsid>}   KEYS[3] {sg}:{card}:usage
-- KEYS[4] {sg}:program_paid   KEYS[5] {sg}:recon:<day>:<hospital>:events   KEYS[6] {sg}:recon:<day>:hospitals
-- KEYS[7] {sg}:events (stream)   KEYS[8] {sg}:ref:{<ref>}, only when ARGV[10] names a ref
local CARD_ID, HOSPITAL, HSID, REVERSED_AT, REVERSED_DAY, REASON = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local TOMBSTONE_IF_ABSENT = ARGV[7] == '1'
local OPERATOR_ID, OPERATOR_NAME = ARGV[8], ARGV[9]  -- "" when the request named no operator
local EXPECTED_REF = ARGV[10]                        -- the ref the gateway declared KEYS[8] for ("" = none)
-- The positions of a settled line's fields (src/store/dayline.rs SETTLED_LINE_FIELDS): a record of this build holds
-- them in its field 'line'; a record of an earlier build, each in a field of its own.
local LINE_AT = {settled_at = 2, settlement_id = 3, hsid = 4, card_id = 5, total_fen = 6, insurance_fen = 7,
  relief_fen = 8, patient_fen = 9, payments = 10, category = 11, street = 12, community = 13, ins_ref = 14,
  operator_id = 15}
local function field(flat, name)
  local line
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
    if flat[i] == 'line' then line = flat[i + 1] end
  end
  if name == 'year' then return string.match(field(flat, 'req') or '', '^v1|[^|]*|[^|]*|(%d%d%d%d)%-') end
  local at = LINE_AT[name]
  if not (line and at) then return nil end
  local n = 0
  for value in string.gmatch(line, '([^|]*)|?') do
    n = n + 1
    if n == at then return value end
  end
  return nil
end
-- negate a decimal integer string without going through a double
local function neg(s) if s == '0' then return '0' end return '-' .. s end
local function with_operator(t)
  if OPERATOR_ID ~= '' then
    t[#t + 1] = 'reversed_by_id'; t[#t + 1] = OPERATOR_ID
    if OPERATOR_NAME ~= '' then t[#t + 1] = 'reversed_by_name'; t[#t + 1] = OPERATOR_NAME end
  end
  return t
end

local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then
  if not TOMBSTONE_IF_ABSENT then return {'not_found'} end
  if redis.call('EXISTS', KEYS[2]) == 1 then return {'conflict'} end
  local t = with_operator({'kind', 'tombstone', 'status', 'reversed_before_settled', 'card_id', CARD_ID,
             'hospital', HOSPITAL, 'hsid', HSID, 'reversed_at', REVERSED_AT, 'reversed_day', REVERSED_DAY,
             'reason', REASON})
  redis.call('HSET', KEYS[1], unpack(t))
  redis.call('SET', KEYS[2], 'T:' .. CARD_ID)
  redis.call('XADD', KEYS[7], '*', 'type', 'settlement.cancelled_before_arrival', 'at', REVERSED_AT, unpack(t))
  return {'tombstoned', unpack(t)}
end
if field(rec, 'status') ~= 'settled' then
  -- written again, so that a WAIT after this answer vouches for the reversal it repeats (settle.lua's replay)
  local claim = redis.call('GET', KEYS[2])
  if claim then redis.call('SET', KEYS[2], claim) end
  return {'unchanged', unpack(rec)}
end
-- the ref's key must be declared (Redis Cluster): the gateway learns the ref from this answer and calls again
local ref = field(rec, 'ins_ref') or ''
if ref ~= EXPECTED_REF then return {'need_ref', ref} end

local year, lines = field(rec, 'year'), field(rec, 'payments')
for id, paid, ded in string.gmatch(lines, '([^,;]+),(%d+),(%d+),[%a_]*') do
  if paid ~= '0' then
    redis.call('HINCRBY', KEYS[3], year .. ':' .. id .. ':paid', neg(paid))
    redis.call('HINCRBY', KEYS[4], year .. ':' .. id, neg(paid))
  end
  if ded ~= '0' then redis.call('HINCRBY', KEYS[3], year .. ':' .. id .. ':ded', neg(ded)) end
end
redis.call('HSET', KEYS[1], unpack(with_operator({'status', 'reversed', 'reversed_at', REVERSED_AT,
  'reversed_day', REVERSED_DAY, 'reason', REASON})))
-- the ref is free again once its holder is reversed
if ref ~= '' and redis.call('GET', KEYS[8]) == CARD_ID .. '|' .. HOSPITAL .. '|' .. HSID then
  redis.call('DEL', KEYS[8])
end
redis.call('SADD', KEYS[6], HOSPITAL)
redis.call('RPUSH', KEYS[5], table.concat({'R', REVERSED_AT, field(rec, 'settlement_id'), HSID, CARD_ID,
  field(rec, 'total_fen'), field(rec, 'insurance_fen'), field(rec, 'relief_fen'), field(rec, 'patient_fen'), lines,
  field(rec, 'category'), field(rec, 'street') or '', field(rec, 'community') or '', ref, OPERATOR_ID}, '|'))
local after = redis.call('HGETALL', KEYS[1])
-- the event: the reversed settlement's fields under one fixed set of names (as settle.lua's), "" when absent
local function f(name) return field(after, name) or '' end
redis.call('XADD', KEYS[7], '*', 'type', 'settlement.reversed', 'at', REVERSED_AT, 'req', f('req'),
  'category', f('category'), 'ruleset_version', f('ruleset_version'), 'insurance_fen', f('insurance_fen'),
  'relief_fen', f('relief_fen'), 'patient_fen', f('patient_fen'), 'payments', lines, 'hospital', HOSPITAL,
  'hsid', HSID, 'settlement_id', f('settlement_id'), 'operator_id', f('operator_id'),
  'operator_name', f('operator_name'), 'settled_at', f('settled_at'), 'reason', REASON,
  'reversed_by_id', OPERATOR_ID, 'reversed_by_name', OPERATOR_NAME)
return {'reversed', unpack(after)}
