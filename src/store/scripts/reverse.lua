-- reverse.lua: undo one settlement exactly as recorded, atomically and idempotently; or, for an id never settled,
-- record a tombstone so that a late original is refused (API.md /v1/reversals).
--
-- KEYS[1] sg:{card}:stl:<hospital>/<hsid>   KEYS[2] sg:claim:{<hospital>/<hsid>}   KEYS[3] sg:{card}:usage
-- KEYS[4] sg:program_paid   KEYS[5] sg:recon:<day>:<hospital>:totals   KEYS[6] sg:recon:<day>:<hospital>:events
-- KEYS[7] sg:recon:<day>:hospitals
-- ARGV: 1 card_id, 2 hospital, 3 hsid, 4 reversed_at, 5 reversed day, 6 reason, 7 "1" = tombstone when absent
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end
-- negate a decimal integer string without going through a double
local function neg(s) if s == '0' then return '0' end return '-' .. s end

local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then
  if ARGV[7] ~= '1' then return {'not_found'} end
  if redis.call('EXISTS', KEYS[2]) == 1 then return {'conflict'} end
  local t = {'kind', 'tombstone', 'status', 'reversed_before_settled', 'card_id', ARGV[1], 'hospital', ARGV[2],
             'hsid', ARGV[3], 'reversed_at', ARGV[4], 'reversed_day', ARGV[5], 'reason', ARGV[6]}
  redis.call('HSET', KEYS[1], unpack(t))
  redis.call('SET', KEYS[2], 'T:' .. ARGV[1])
  return {'tombstoned', unpack(t)}
end
if field(rec, 'status') ~= 'settled' then return {'unchanged', unpack(rec)} end
-- the reversal day's totals go down by < 2^53 per reversal: refuse before any write rather than fail half-way
local day_total = redis.call('HGET', KEYS[5], 'total_fen')
if day_total and tonumber(day_total) < -4611686018427387904 then return {'counter_limit'} end

local year, lines = field(rec, 'year'), field(rec, 'payments')
for id, paid, ded in string.gmatch(lines, '([^,;]+),(%d+),(%d+),[%a_]*') do
  if paid ~= '0' then
    redis.call('HINCRBY', KEYS[3], year .. ':' .. id .. ':paid', neg(paid))
    redis.call('HINCRBY', KEYS[4], year .. ':' .. id, neg(paid))
  end
  redis.call('HINCRBY', KEYS[5], 'p:' .. id, neg(paid)) -- every payment line, 0 included, as settle.lua does
  if ded ~= '0' then redis.call('HINCRBY', KEYS[3], year .. ':' .. id .. ':ded', neg(ded)) end
end
redis.call('HSET', KEYS[1], 'status', 'reversed', 'reversed_at', ARGV[4], 'reversed_day', ARGV[5], 'reason', ARGV[6])
local total, ins = field(rec, 'total_fen'), field(rec, 'insurance_fen')
local relief, patient = field(rec, 'relief_fen'), field(rec, 'patient_fen')
redis.call('SADD', KEYS[7], ARGV[2])
redis.call('HINCRBY', KEYS[5], 'reversed_count', 1)
redis.call('HINCRBY', KEYS[5], 'total_fen', neg(total))
redis.call('HINCRBY', KEYS[5], 'insurance_fen', neg(ins))
redis.call('HINCRBY', KEYS[5], 'relief_fen', neg(relief))
redis.call('HINCRBY', KEYS[5], 'patient_fen', neg(patient))
redis.call('RPUSH', KEYS[6], table.concat({'R', ARGV[4], field(rec, 'settlement_id'), ARGV[3], ARGV[1], total, ins,
  relief, patient, lines}, '|'))
return {'reversed', unpack(redis.call('HGETALL', KEYS[1]))}
