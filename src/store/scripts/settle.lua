-- settle.lua: check, split and record one settlement atomically (or, with mode "quote", only compute).
-- The split mirrors src/domain/split.rs step by step; the gateway re-runs that engine on the counters this script
-- reports ("before") and alarms on any difference. Lua numbers are doubles: every amount is <= 2^53 - 1 and every
-- product goes through pct(), which splits x so that no intermediate passes 2^53. Integers leave this script only
-- through fmt() (string.format %d), never tostring (14 significant digits).
--
-- KEYS[1] sg:{card}:card        hash: category status valid_from valid_until tags(",a,b,")
-- KEYS[2] sg:{card}:usage       hash: "<year>:<program>:paid", "<year>:<program>:ded"
-- KEYS[3] sg:program_paid       hash: "<year>:<program>" -> paid by the program to all cards that year
-- settle mode only:
-- KEYS[4] sg:{card}:stl:<hospital>/<hsid>   hash: the settlement record (or a tombstone)
-- KEYS[5] sg:claim:{<hospital>/<hsid>}       string "S:<card>" | "T:<card>": who holds this id
-- KEYS[6] sg:recon:<day>:<hospital>:totals   hash: day totals of the hospital
-- KEYS[7] sg:recon:<day>:<hospital>:events   list: one line per settlement / reversal
-- KEYS[8] sg:recon:<day>:hospitals           set: hospitals with events that day
--
-- ARGV: 1 mode, 2 card_id, 3 canonical request, 4 visit date, 5 year, 6..9 residual buckets, 10 total_fen,
--       11 ruleset version ("0" = none in force), 12 hospital, 13 hsid, 14 settled_at, 15 settled day,
--       16 settlement_id, 17 program count, 18.. one spec per program: "id|covers|pool|tags|;cat=r,d,ac,pv;..."
local settle = ARGV[1] == 'settle'

local function fmt(x) return string.format('%d', x) end
local function num(s) if s then return tonumber(s) end return 0 end
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end

-- pct(x, bp) = floor((x * bp + 5000) / 10000), exact for x <= 2^53 - 1 (RULES.md, PITFALLS.md)
local function pct(x, bp)
  local q = math.floor(x / 10000)
  local r = x - q * 10000
  if r < 0 then q = q - 1; r = r + 10000 elseif r >= 10000 then q = q + 1; r = r - 10000 end
  return q * bp + math.floor((r * bp + 5000) / 10000)
end

if settle then
  -- cancelled before it arrived -> already_reversed; used before -> replay or conflict
  local claim = redis.call('GET', KEYS[5])
  if claim then
    local kind, holder = string.match(claim, '^(%a):(.*)$')
    if kind == 'T' then return {'already_reversed'} end
    if holder ~= ARGV[2] then return {'conflict'} end
    local rec = redis.call('HGETALL', KEYS[4])
    if field(rec, 'req') ~= ARGV[3] then return {'conflict'} end
    return {'replay', '', '', unpack(rec)}
  end
end

local card = redis.call('HMGET', KEYS[1], 'category', 'status', 'valid_from', 'valid_until', 'tags')
if not card[1] then return {'card_not_found'} end
local category, date = card[1], ARGV[4]
if card[2] ~= 'active' then return {'not_eligible', 'suspended'} end
if date < card[3] then return {'not_eligible', 'not_yet_valid'} end
if date > card[4] then return {'not_eligible', 'expired'} end
if ARGV[11] == '0' then return {'no_rules_in_force'} end
local card_tags = card[5] or ','

local year = ARGV[5]
local residual = {tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])}
local total = tonumber(ARGV[10])
local insurance = total - residual[1] - residual[2] - residual[3] - residual[4]

-- Redis refuses an HINCRBY past 2^63 - 1 in the middle of a script, after earlier writes: so check first. Every
-- counter this script raises is at most a program's year total or the day's total_fen, each raised by < 2^53.
local COUNTER_LIMIT = 4611686018427387904 -- 2^62
if settle and num(redis.call('HGET', KEYS[6], 'total_fen')) > COUNTER_LIMIT then return {'counter_limit'} end

local pays, befores, lines, relief = {}, {}, {}, 0
for i = 1, tonumber(ARGV[17]) do
  local id, covers, pool, tags, cats = string.match(ARGV[17 + i], '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  local terms = string.match(cats, ';' .. category .. '=([^;]*)')
  local covered = terms ~= nil
  if covered then
    for tag in string.gmatch(tags, '[^,]+') do
      if not string.find(card_tags, ',' .. tag .. ',', 1, true) then covered = false end
    end
  end
  if covered then
    local ratio, ded_limit, annual_cap, visit_cap = string.match(terms, '^([^,]*),([^,]*),([^,]*),([^,]*)$')
    local used = redis.call('HMGET', KEYS[2], year .. ':' .. id .. ':paid', year .. ':' .. id .. ':ded')
    local paid_before, ded_met = num(used[1]), num(used[2])
    local program_paid = num(redis.call('HGET', KEYS[3], year .. ':' .. id))
    if program_paid > COUNTER_LIMIT then return {'counter_limit'} end
    -- 1. base
    local base = 0
    for k = 1, #covers do base = base + residual[tonumber(string.sub(covers, k, k))] end
    -- 2. deductible
    local ded = math.min(base, math.max(0, num(ded_limit) - ded_met))
    -- 3. ratio
    local pay = pct(base - ded, tonumber(ratio))
    local capped = ''
    -- 4. per-visit cap
    if visit_cap ~= '' and pay > tonumber(visit_cap) then pay = tonumber(visit_cap); capped = 'per_visit_cap' end
    -- 5. annual cap of the card
    if annual_cap ~= '' and pay > tonumber(annual_cap) - paid_before then
      pay = math.max(0, tonumber(annual_cap) - paid_before); capped = 'annual_cap'
    end
    -- 6. the program's pool
    if pool ~= '' and pay > tonumber(pool) - program_paid then
      pay = math.max(0, tonumber(pool) - program_paid); capped = 'pool'
    end
    -- 7. take it out of the covered buckets in order
    local left = pay
    for k = 1, #covers do
      local b = tonumber(string.sub(covers, k, k))
      local take = math.min(left, residual[b])
      residual[b] = residual[b] - take
      left = left - take
    end
    relief = relief + pay
    pays[#pays + 1] = {id, pay, ded}
    lines[#lines + 1] = id .. ',' .. fmt(pay) .. ',' .. fmt(ded) .. ',' .. capped
    befores[#befores + 1] = id .. ',' .. fmt(paid_before) .. ',' .. fmt(ded_met) .. ',' .. fmt(program_paid)
  end
end
local patient = residual[1] + residual[2] + residual[3] + residual[4]
if insurance + relief + patient ~= total then return redis.error_reply('settle.lua: payers do not add up') end

local rec = {
  'kind', 'settlement', 'status', settle and 'settled' or 'quote', 'card_id', ARGV[2], 'category', category,
  'req', ARGV[3], 'year', year, 'ruleset_version', ARGV[11], 'total_fen', ARGV[10],
  'insurance_fen', fmt(insurance), 'relief_fen', fmt(relief), 'patient_fen', fmt(patient),
  'payments', table.concat(lines, ';'),
}
local before = table.concat(befores, ';')
if not settle then return {'quote', before, card_tags, unpack(rec)} end

-- 8. record: counters, the settlement, the id claim, the day's reconciliation
for _, p in ipairs(pays) do
  if p[2] > 0 then
    redis.call('HINCRBY', KEYS[2], year .. ':' .. p[1] .. ':paid', fmt(p[2]))
    redis.call('HINCRBY', KEYS[3], year .. ':' .. p[1], fmt(p[2]))
  end
  if p[3] > 0 then redis.call('HINCRBY', KEYS[2], year .. ':' .. p[1] .. ':ded', fmt(p[3])) end
end
local extra = {'hospital', ARGV[12], 'hsid', ARGV[13], 'settlement_id', ARGV[16], 'settled_at', ARGV[14], 'settled_day', ARGV[15]}
for _, v in ipairs(extra) do rec[#rec + 1] = v end
redis.call('HSET', KEYS[4], unpack(rec))
redis.call('SET', KEYS[5], 'S:' .. ARGV[2])
redis.call('SADD', KEYS[8], ARGV[12])
redis.call('HINCRBY', KEYS[6], 'settled_count', 1)
redis.call('HINCRBY', KEYS[6], 'total_fen', ARGV[10])
redis.call('HINCRBY', KEYS[6], 'insurance_fen', fmt(insurance))
redis.call('HINCRBY', KEYS[6], 'relief_fen', fmt(relief))
redis.call('HINCRBY', KEYS[6], 'patient_fen', fmt(patient))
for _, p in ipairs(pays) do redis.call('HINCRBY', KEYS[6], 'p:' .. p[1], fmt(p[2])) end
redis.call('RPUSH', KEYS[7], table.concat({'S', ARGV[14], ARGV[16], ARGV[13], ARGV[2], ARGV[10], fmt(insurance),
  fmt(relief), fmt(patient), table.concat(lines, ';')}, '|'))
return {'settled', before, card_tags, unpack(rec)}
