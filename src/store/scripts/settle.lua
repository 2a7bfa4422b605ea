-- settle.lua: check, split and record one settlement atomically (or, with mode "quote", only compute).
-- The split mirrors src/domain/split.rs step by step; the gateway re-runs that engine on the counters this script
-- reports ("before") and alarms on any difference. Lua numbers are doubles: every amount is <= 2^53 - 1 and every
-- product goes through pct(), which splits x so that no intermediate passes 2^53. Integers leave this script only
-- through fmt() (string.format %d), never tostring (14 significant digits). Reads are batched (one HMGET per hash)
-- because each redis.call costs about a microsecond of Redis's single thread.
--
-- KEYS[1] {sg}:{card}:card        hash: category status valid_from valid_until tags(",a,b,") [street community]
-- KEYS[2] {sg}:{card}:usage       hash: "<year>:<program>:paid", "<year>:<program>:ded"
-- KEYS[3] {sg}:program_paid       hash: "<year>:<program>" -> paid by the program to all cards that year,
--                               "<year>:<program>:contrib" -> net contributions to its pool (contribution.lua),
--                               "visit_floor" -> the earliest visit date a new settlement may have (archive_day.lua)
-- settle mode only:
-- KEYS[4] {sg}:{card}:stl:<hospital>/<hsid>   hash: the settlement record (or a tombstone)
-- KEYS[5] {sg}:claim:{<hospital>/<hsid>}       string "S:<card>" | "T:<card>": who holds this id
-- KEYS[6] {sg}:recon:<day>:<hospital>:events   list: one line per settlement / reversal (the day's totals are their sum)
-- KEYS[7] {sg}:recon:<day>:hospitals           set: hospitals with events that day
-- KEYS[8] {sg}:events                           stream: one entry per acknowledged change (src/store/keys.rs EVENTS)
-- KEYS[9] {sg}:{card}:hist:<year>               list: the card's settlements of the year, in the order applied
-- both modes, last, only when the request carries insurance.settlement_ref:
-- KEYS[#KEYS] {sg}:ref:{<ref>}                  string "<card>|<hospital>|<hsid>": the settlement holding the ref
--
-- ARGV (named once here; src/store/settle.rs passes them in this order):
local MODE, CARD_ID, REQUEST, VISIT_DATE, YEAR = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local RESIDUAL = {tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])} -- the four buckets
local TOTAL_FEN, RULESET_VERSION = tonumber(ARGV[10]), ARGV[11]            -- version "0" = none in force
local HOSPITAL, HSID, SETTLED_AT, SETTLED_DAY, SETTLEMENT_ID = ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16]
local INSURANCE_REF, OPERATOR_ID, OPERATOR_NAME = ARGV[17], ARGV[18], ARGV[19]
local PROGRAM_COUNT = tonumber(ARGV[20]) -- then ARGV[21..]: one spec per program, "id|covers|pool|tags|;cat=r,d,ac,pv;..."
local SPECS_FROM = 20
-- REQUEST is the canonical request (what "the same request" means); HOSPITAL .. SETTLEMENT_ID are empty for a
-- quote; INSURANCE_REF, OPERATOR_ID, OPERATOR_NAME are "" when the request has none.
-- Reply: {"settled"|"quote", before ("id,paid,ded,program_paid,contributions;..."), card tags, category, insurance, relief, patient, payments} or a refusal, or
--        {"replay", <the record as field, value, ...>}.
local settle = MODE == 'settle'
local REF_KEY = nil
if INSURANCE_REF ~= '' then REF_KEY = KEYS[#KEYS] end

local function fmt(x) return string.format('%d', x) end
local function num(s) if s then return tonumber(s) end return 0 end
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end

-- The terms of `category` in a program's ";cat=r,d,ac,pv;..." list. A plain search, not a pattern: categories
-- are free labels (no , ; = | { }), so they may hold characters that are magic in Lua patterns.
local function terms_of(cats, category)
  local key = ';' .. category .. '='
  local at = string.find(cats, key, 1, true)
  if not at then return nil end
  local from = at + #key
  return string.sub(cats, from, string.find(cats, ';', from, true) - 1)
end

-- pct(x, bp) = floor((x * bp + 5000) / 10000), exact for x <= 2^53 - 1 (docs/RULES.md)
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
    if holder ~= CARD_ID then return {'conflict'} end
    local rec = redis.call('HGETALL', KEYS[4])
    if field(rec, 'req') ~= REQUEST then return {'conflict'} end
    -- the same claim written again: a replay is then a write of this connection, so a WAIT after it (replica
    -- ack) vouches for every write before it, the original settlement's included, even when another
    -- connection wrote it and its own WAIT timed out
    redis.call('SET', KEYS[5], claim)
    return {'replay', unpack(rec)}
  end
  -- a new id: its visit must be after the archived days (docs/API.md "Retention"), or it could be a late retry of
  -- an archived settlement, whose claim is gone
  local floor = redis.call('HGET', KEYS[3], 'visit_floor')
  if floor and VISIT_DATE < floor then return {'visit_archived', floor} end
end

local card = redis.call('HMGET', KEYS[1], 'category', 'status', 'valid_from', 'valid_until', 'tags', 'street',
  'community')
if not card[1] then return {'card_not_found'} end
local category, date = card[1], VISIT_DATE
if card[2] ~= 'active' then return {'not_eligible', 'suspended'} end
if date < card[3] then return {'not_eligible', 'not_yet_valid'} end
if date > card[4] then return {'not_eligible', 'expired'} end
if RULESET_VERSION == '0' then return {'no_rules_in_force'} end
-- one insurance settlement funds at most one standing relief settlement (a replay returned above)
local holder = CARD_ID .. '|' .. HOSPITAL .. '|' .. HSID
if REF_KEY then
  local held = redis.call('GET', REF_KEY)
  if held and held ~= holder then return {'insurance_ref_reused'} end
end
local card_tags = card[5] or ','
local year = YEAR

-- the programs that cover this card: category present, required tags carried
local progs, usage_fields, total_fields = {}, {}, {}
for i = 1, PROGRAM_COUNT do
  local id, covers, pool, tags, cats = string.match(ARGV[SPECS_FROM + i], '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  local terms = terms_of(cats, category)
  if terms then
    for tag in string.gmatch(tags, '[^,]+') do
      if not string.find(card_tags, ',' .. tag .. ',', 1, true) then terms = nil; break end
    end
  end
  if terms then
    local ratio, ded_limit, annual_cap, visit_cap = string.match(terms, '^([^,]*),([^,]*),([^,]*),([^,]*)$')
    progs[#progs + 1] = {id = id, covers = covers, pool = pool, ratio = tonumber(ratio), ded_limit = num(ded_limit),
                         annual_cap = annual_cap, visit_cap = visit_cap}
    usage_fields[#usage_fields + 1] = year .. ':' .. id .. ':paid'
    usage_fields[#usage_fields + 1] = year .. ':' .. id .. ':ded'
    total_fields[#total_fields + 1] = year .. ':' .. id
    total_fields[#total_fields + 1] = year .. ':' .. id .. ':contrib'
  end
end
local used, totals = {}, {}
if #progs > 0 then
  used = redis.call('HMGET', KEYS[2], unpack(usage_fields))
  totals = redis.call('HMGET', KEYS[3], unpack(total_fields))
end

-- Redis refuses an HINCRBY past 2^63 - 1 in the middle of a script, after earlier writes: so check first. Every
-- counter this script raises is at most its program's year total, raised by < 2^53.
local COUNTER_LIMIT = 4611686018427387904 -- 2^62
local residual = {RESIDUAL[1], RESIDUAL[2], RESIDUAL[3], RESIDUAL[4]}
local total = TOTAL_FEN
local insurance = total - residual[1] - residual[2] - residual[3] - residual[4]
local befores, lines, relief = {}, {}, 0
for i, p in ipairs(progs) do
  local paid_before, ded_met, program_paid = num(used[2 * i - 1]), num(used[2 * i]), num(totals[2 * i - 1])
  local raised = num(totals[2 * i])
  if program_paid > COUNTER_LIMIT then return {'counter_limit'} end
  -- 1. base
  local covers = p.covers
  local base = 0
  for k = 1, #covers do base = base + residual[string.byte(covers, k) - 48] end
  -- 2. deductible
  local ded = math.min(base, math.max(0, p.ded_limit - ded_met))
  -- 3. ratio
  local pay = pct(base - ded, p.ratio)
  local capped = ''
  -- 4. per-visit cap
  if p.visit_cap ~= '' and pay > tonumber(p.visit_cap) then pay = tonumber(p.visit_cap); capped = 'per_visit_cap' end
  -- 5. annual cap of the card
  if p.annual_cap ~= '' and pay > tonumber(p.annual_cap) - paid_before then
    pay = math.max(0, tonumber(p.annual_cap) - paid_before); capped = 'annual_cap'
  end
  -- 6. the program's pool: the ruleset's base plus the year's net contributions, read in this same step
  if p.pool ~= '' then
    p.budget = tonumber(p.pool) + raised
    if pay > p.budget - program_paid then pay = math.max(0, p.budget - program_paid); capped = 'pool' end
  end
  -- 7. take it out of the covered buckets in order
  local left = pay
  for k = 1, #covers do
    local b = string.byte(covers, k) - 48
    local take = math.min(left, residual[b])
    residual[b] = residual[b] - take
    left = left - take
  end
  relief = relief + pay
  p.pay, p.ded = pay, ded
  lines[i] = p.id .. ',' .. fmt(pay) .. ',' .. fmt(ded) .. ',' .. capped
  -- the counters as Redis holds them (canonical decimals, written by this script or HINCRBY): no re-formatting
  befores[i] = p.id .. ',' .. (used[2 * i - 1] or '0') .. ',' .. (used[2 * i] or '0') .. ',' ..
    (totals[2 * i - 1] or '0') .. ',' .. (totals[2 * i] or '0')
end
local patient = residual[1] + residual[2] + residual[3] + residual[4]
if insurance + relief + patient ~= total then return redis.error_reply('settle.lua: payers do not add up') end

local payments = table.concat(lines, ';')
-- each amount formatted once: the reply, the record, the day line and the event share these strings
local s_insurance, s_relief, s_patient, s_total = fmt(insurance), fmt(relief), fmt(patient), ARGV[10]
local result = {settle and 'settled' or 'quote', table.concat(befores, ';'), card_tags, category, s_insurance,
                s_relief, s_patient, payments}
if not settle then return result end

-- 8. record: counters, the settlement, the id claim, the ref claim, the day's reconciliation line, the card's
-- history and the event, all in this one script: no acknowledged settlement without its event and line. A counter is written as its
-- new value (one HSET per hash) while that value is exact in a double (< 2^53); past that, HINCRBY keeps it exact.
local EXACT = 9007199254740992 -- 2^53
local usage_set, totals_set = {}, {}
for i, p in ipairs(progs) do
  local paid_before, ded_met, program_paid = num(used[2 * i - 1]), num(used[2 * i]), num(totals[2 * i - 1])
  if p.pay > 0 then
    if paid_before + p.pay < EXACT then
      usage_set[#usage_set + 1] = usage_fields[2 * i - 1]; usage_set[#usage_set + 1] = fmt(paid_before + p.pay)
    else
      redis.call('HINCRBY', KEYS[2], usage_fields[2 * i - 1], fmt(p.pay))
    end
    if program_paid + p.pay < EXACT then
      totals_set[#totals_set + 1] = total_fields[2 * i - 1]; totals_set[#totals_set + 1] = fmt(program_paid + p.pay)
    else
      redis.call('HINCRBY', KEYS[3], total_fields[2 * i - 1], fmt(p.pay))
    end
  end
  if p.ded > 0 then
    -- met + applied <= the deductible <= 2^53 - 1: always exact
    usage_set[#usage_set + 1] = usage_fields[2 * i]; usage_set[#usage_set + 1] = fmt(ded_met + p.ded)
  end
end
if #usage_set > 0 then redis.call('HSET', KEYS[2], unpack(usage_set)) end
if #totals_set > 0 then redis.call('HSET', KEYS[3], unpack(totals_set)) end
local rec = {'kind', 'settlement', 'status', 'settled', 'card_id', CARD_ID, 'category', category,
  'req', REQUEST, 'year', year, 'ruleset_version', RULESET_VERSION, 'total_fen', s_total,
  'insurance_fen', s_insurance, 'relief_fen', s_relief, 'patient_fen', s_patient, 'payments', payments,
  'hospital', HOSPITAL, 'hsid', HSID, 'settlement_id', SETTLEMENT_ID, 'settled_at', SETTLED_AT,
  'settled_day', SETTLED_DAY}
local street, community = card[6] or '', card[7] or ''
local function optional(name, value) if value ~= '' then rec[#rec + 1] = name; rec[#rec + 1] = value end end
optional('ins_ref', INSURANCE_REF)
optional('operator_id', OPERATOR_ID)
optional('operator_name', OPERATOR_NAME)
optional('street', street)
optional('community', community)
redis.call('HSET', KEYS[4], unpack(rec))
redis.call('SET', KEYS[5], 'S:' .. CARD_ID)
if REF_KEY then redis.call('SET', REF_KEY, holder) end
redis.call('SADD', KEYS[7], HOSPITAL)
redis.call('RPUSH', KEYS[6], table.concat({'S', SETTLED_AT, SETTLEMENT_ID, HSID, CARD_ID, s_total, s_insurance,
  s_relief, s_patient, payments, category, street, community, INSURANCE_REF, OPERATOR_ID}, '|'))
redis.call('RPUSH', KEYS[9], HOSPITAL .. '/' .. HSID)
-- The event: what its data needs, under the same field names in every settled event (Redis then keeps the names
-- once per stream node, not per entry: about half the cost of the whole record). Absent values are "".
redis.call('XADD', KEYS[8], '*', 'type', 'settlement.settled', 'at', SETTLED_AT, 'req', REQUEST, 'category', category,
  'ruleset_version', RULESET_VERSION, 'insurance_fen', s_insurance, 'relief_fen', s_relief,
  'patient_fen', s_patient, 'payments', payments, 'hospital', HOSPITAL, 'hsid', HSID,
  'settlement_id', SETTLEMENT_ID, 'operator_id', OPERATOR_ID, 'operator_name', OPERATOR_NAME)
-- A pool taken across 80, 90 or 100 % of its budget: one event per threshold crossed. The threshold t of percent q
-- is the least paid total with paid * 100 >= q * budget, ceil(q * budget / 100), computed without passing 2^53.
for i, p in ipairs(progs) do
  if p.budget and p.budget > 0 and p.pay > 0 then
    local before = num(totals[2 * i - 1])
    local after = before + p.pay
    local whole, rest = math.floor(p.budget / 100), p.budget % 100
    for _, q in ipairs({80, 90, 100}) do
      local t = q * whole + math.ceil(q * rest / 100)
      if before < t and after >= t then
        redis.call('XADD', KEYS[8], '*', 'type', 'pool.threshold', 'at', SETTLED_AT, 'data',
          '{"program":"' .. p.id .. '","year":' .. year .. ',"percent":' .. q .. '}')
      end
    end
  end
end
return result
