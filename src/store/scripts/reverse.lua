-- reverse.lua: undo one settlement exactly as recorded, atomically and idempotently; or, for an id never settled,
-- record a tombstone so that a late original is refused (API.md /v1/reversals).
--
-- KEYS[1] sg:{card}:stl:<hospital>/<hsid>   KEYS[2] sg:claim:{<hospital>/<hsid>}   KEYS[3] sg:{card}:usage
-- KEYS[4] sg:program_paid   KEYS[5] sg:recon:<day>:<hospital>:events   KEYS[6] sg:recon:<day>:hospitals
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

local year, lines = field(rec, 'year'), field(rec, 'payments')
for id, paid, ded in string.gmatch(lines, '([^,;]+),(%d+),(%d+),[%a_]*') do
  if paid ~= '0' then
    redis.call('HINCRBY', KEYS[3], year .. ':' .. id .. ':paid', neg(paid))
    redis.call('HINCRBY', KEYS[4], year .. ':' .. id, neg(paid))
  end
  if ded ~= '0' then redis.call('HINCRBY', KEYS[3], year .. ':' .. id .. ':ded', neg(ded)) end
end
redis.call('HSET', KEYS[1], 'status', 'reversed', 'reversed_at', ARGV[4], 'reversed_day', ARGV[5], 'reason', ARGV[6])
redis.call('SADD', KEYS[6], ARGV[2])
redis.call('RPUSH', KEYS[5], table.concat({'R', ARGV[4], field(rec, 'settlement_id'), ARGV[3], ARGV[1],
  field(rec, 'total_fen'), field(rec, 'insurance_fen'), field(rec, 'relief_fen'), field(rec, 'patient_fen'), lines}, '|'))
return {'reversed', unpack(redis.call('HGETALL', KEYS[1]))}
