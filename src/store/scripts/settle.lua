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
-- The library functions this script calls, as locals: a global is two table lookups per use, a local none.
local call, error_reply = redis.call, redis.error_reply
local format, match, find, byte = string.format, string.match, string.find, string.byte
local floor, ceil, min, max, concat = math.floor, math.ceil, math.min, math.max, table.concat
local tonumber, unpack, ipairs = tonumber, unpack, ipairs

-- ARGV (named once here; src/store/settle.rs passes them in this order). Few and long: each string crossing into
-- Lua costs Redis about 1 500 instructions (docs/BENCHMARKS.md, issue 13), so what the canonical request holds is
-- read from it here, not passed again, and the programs are not arguments at all: this body follows a prelude
-- (src/store/program_code.rs) that defines covering(category), the programs of the ruleset in force for the visit
-- type whose terms list the category, as Lua constants (one script per ruleset version and visit type).
local MODE, REQUEST, RULESET_VERSION = ARGV[1], ARGV[2], ARGV[3]      -- version "0" = none in force
local HOSPITAL, HSID, SETTLED_AT, SETTLEMENT_ID = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local OPERATOR_ID, OPERATOR_NAME = ARGV[8], ARGV[9]
-- REQUEST is the canonical request (what "the same request" means; src/domain/bill.rs Bill::canonical):
-- "v1|card|visit type|visit date|total|in_scope|pre_self_pay|over_limit|self_pay|basic|critical|other[|ref]".
-- HOSPITAL .. SETTLEMENT_ID are empty for a quote; OPERATOR_ID and OPERATOR_NAME are "" when the request has none.
local CARD_ID, VISIT_DATE, YEAR, S_TOTAL, IN_SCOPE, PRE_SELF_PAY, OVER_LIMIT, SELF_PAY, BASIC, CRITICAL, OTHER,
  INSURANCE_REF = match(REQUEST,
  '^v1|([^|]+)|[^|]+|((%d%d%d%d)%-%d%d%-%d%d)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|?(.*)$')
if not CARD_ID then return error_reply('settle.lua: the request is not canonical') end
-- the four buckets after insurance (RULES.md); every amount <= 2^53 - 1, so each difference is exact
local residual = {tonumber(IN_SCOPE) - tonumber(BASIC) - tonumber(CRITICAL) - tonumber(OTHER), tonumber(PRE_SELF_PAY),
                  tonumber(OVER_LIMIT), tonumber(SELF_PAY)}
local TOTAL_FEN = tonumber(S_TOTAL)
local settle = MODE == 'settle'
local REF_KEY = nil
if INSURANCE_REF ~= '' then REF_KEY = KEYS[#KEYS] end

local function fmt(x) return format('%d', x) end
local function num(s) if s then return tonumber(s) end return 0 end
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end

-- pct(x, bp) = floor((x * bp + 5000) / 10000), exact for x <= 2^53 - 1 (docs/RULES.md)
local function pct(x, bp)
  local q = floor(x / 10000)
  local r = x - q * 10000
  if r < 0 then q = q - 1; r = r + 10000 elseif r >= 10000 then q = q + 1; r = r - 10000 end
  return q * bp + floor((r * bp + 5000) / 10000)
end

if settle then
  -- cancelled before it arrived -> already_reversed; used before -> replay or conflict
  local claim = call('GET', KEYS[5])
  if claim then
    local kind, holder = match(claim, '^(%a):(.*)$')
    if kind == 'T' then return {'already_reversed'} end
    if holder ~= CARD_ID then return {'conflict'} end
    local rec = call('HGETALL', KEYS[4])
    if field(rec, 'req') ~= REQUEST then return {'conflict'} end
    -- the same claim written again: a replay is then a write of this connection, so a WAIT after it (replica
    -- ack) vouches for every write before it, the original settlement's included, even when another
    -- connection wrote it and its own WAIT timed out
    call('SET', KEYS[5], claim)
    return {'replay', unpack(rec)}
  end
end

local card = call('HMGET', KEYS[1], 'category', 'status', 'valid_from', 'valid_until', 'tags', 'street',
  'community')
local category, card_tags, year = card[1], card[5] or ',', YEAR

-- The programs that cover this card: its category in the program's terms (the prelude's covering), the program's
-- required tags carried (each needle is ",tag,"; card tags are stored as ",a,b,").
local progs, usage_fields, total_fields = {}, {}, {'visit_floor'}
if category then
  for _, p in ipairs(covering(category)) do
    local needles, carried = p.needles, true
    if needles then
      for k = 1, #needles do
        if not find(card_tags, needles[k], 1, true) then carried = false; break end
      end
    end
    if carried then
      progs[#progs + 1] = p
      usage_fields[#usage_fields + 1] = year .. p.paid_field
      usage_fields[#usage_fields + 1] = year .. p.ded_field
      total_fields[#total_fields + 1] = year .. p.total_field
      total_fields[#total_fields + 1] = year .. p.contrib_field
    end
  end
end
-- one read of the shared hash: the visit floor, then each program's year total and contributions
local totals = call('HMGET', KEYS[3], unpack(total_fields))
-- a new id: its visit must be after the archived days (docs/API.md "Retention"), or it could be a late retry of
-- an archived settlement, whose claim is gone
if settle and totals[1] and VISIT_DATE < totals[1] then return {'visit_archived', totals[1]} end
if not category then return {'card_not_found'} end
local date = VISIT_DATE
if card[2] ~= 'active' then return {'not_eligible', 'suspended'} end
if date < card[3] then return {'not_eligible', 'not_yet_valid'} end
if date > card[4] then return {'not_eligible', 'expired'} end
if RULESET_VERSION == '0' then return {'no_rules_in_force'} end
-- one insurance settlement funds at most one standing relief settlement (a replay returned above)
local holder = CARD_ID .. '|' .. HOSPITAL .. '|' .. HSID
if REF_KEY then
  local held = call('GET', REF_KEY)
  if held and held ~= holder then return {'insurance_ref_reused'} end
end
local used = {}
if #progs > 0 then used = call('HMGET', KEYS[2], unpack(usage_fields)) end

-- Redis refuses an HINCRBY past 2^63 - 1 in the middle of a script, after earlier writes: so check first. Every
-- counter this script raises is at most its program's year total, raised by < 2^53.
local COUNTER_LIMIT = 4611686018427387904 -- 2^62
local total = TOTAL_FEN
local insurance = total - residual[1] - residual[2] - residual[3] - residual[4]
local befores, lines, relief = {}, {}, 0
for i, p in ipairs(progs) do
  -- totals[1] is the visit floor: program i's total and contributions are totals[2i], totals[2i + 1]
  local paid_before, ded_met, program_paid = num(used[2 * i - 1]), num(used[2 * i]), num(totals[2 * i])
  p.paid_before, p.ded_met, p.program_paid = paid_before, ded_met, program_paid
  if program_paid > COUNTER_LIMIT then return {'counter_limit'} end
  -- 1. base
  local covers = p.covers
  local base = 0
  for k = 1, #covers do base = base + residual[byte(covers, k) - 48] end
  -- 2. deductible
  local ded = min(base, max(0, p.ded_limit - ded_met))
  -- 3. ratio
  local pay = pct(base - ded, p.ratio)
  local capped = ''
  -- 4. per-visit cap
  if p.visit_cap and pay > p.visit_cap then pay = p.visit_cap; capped = 'per_visit_cap' end
  -- 5. annual cap of the card
  if p.annual_cap and pay > p.annual_cap - paid_before then
    pay = max(0, p.annual_cap - paid_before); capped = 'annual_cap'
  end
  -- 6. the program's pool: the ruleset's base plus the year's net contributions, read in this same step
  if p.pool then
    p.budget = p.pool + num(totals[2 * i + 1])
    if pay > p.budget - program_paid then pay = max(0, p.budget - program_paid); capped = 'pool' end
  end
  -- 7. take it out of the covered buckets in order
  local left = pay
  for k = 1, #covers do
    local b = byte(covers, k) - 48
    local take = min(left, residual[b])
    residual[b] = residual[b] - take
    left = left - take
  end
  relief = relief + pay
  p.pay, p.ded = pay, ded
  lines[i] = p.id .. ',' .. fmt(pay) .. ',' .. fmt(ded) .. ',' .. capped
  -- the counters as Redis holds them (canonical decimals, written by this script or HINCRBY): no re-formatting
  befores[i] = p.id .. ',' .. (used[2 * i - 1] or '0') .. ',' .. (used[2 * i] or '0') .. ',' ..
    (totals[2 * i] or '0') .. ',' .. (totals[2 * i + 1] or '0')
end
local patient = residual[1] + residual[2] + residual[3] + residual[4]
if insurance + relief + patient ~= total then return error_reply('settle.lua: payers do not add up') end

local payments = concat(lines, ';')
-- each amount formatted once: the reply, the record, the day line and the event share these strings
local s_insurance, s_relief, s_patient, s_total = fmt(insurance), fmt(relief), fmt(patient), S_TOTAL
-- The reply is one string of '|'-separated fields (none of them can hold a '|': src/domain/mod.rs is_valid_label,
-- is_valid_id): a table of 8 would be 8 bulk strings for Redis to write and the gateway's client to parse one by
-- one (docs/BENCHMARKS.md, issue 13).
local result = (settle and 'settled' or 'quote') .. '|' .. concat(befores, ';') .. '|' .. card_tags .. '|' ..
  category .. '|' .. s_insurance .. '|' .. s_relief .. '|' .. s_patient .. '|' .. payments
if not settle then return result end

-- 8. record: counters, the settlement, the id claim, the ref claim, the day's reconciliation line, the card's
-- history and the event, all in this one script: no acknowledged settlement without its event and line. A counter is written as its
-- new value (one HSET per hash) while that value is exact in a double (< 2^53); past that, HINCRBY keeps it exact.
local EXACT = 9007199254740992 -- 2^53
local usage_set, totals_set = {}, {}
for i, p in ipairs(progs) do
  local paid_before, ded_met, program_paid = p.paid_before, p.ded_met, p.program_paid
  if p.pay > 0 then
    if paid_before + p.pay < EXACT then
      usage_set[#usage_set + 1] = usage_fields[2 * i - 1]; usage_set[#usage_set + 1] = fmt(paid_before + p.pay)
    else
      call('HINCRBY', KEYS[2], usage_fields[2 * i - 1], fmt(p.pay))
    end
    if program_paid + p.pay < EXACT then
      totals_set[#totals_set + 1] = total_fields[2 * i]; totals_set[#totals_set + 1] = fmt(program_paid + p.pay)
    else
      call('HINCRBY', KEYS[3], total_fields[2 * i], fmt(p.pay))
    end
  end
  if p.ded > 0 then
    -- met + applied <= the deductible <= 2^53 - 1: always exact
    usage_set[#usage_set + 1] = usage_fields[2 * i]; usage_set[#usage_set + 1] = fmt(ded_met + p.ded)
  end
end
if #usage_set > 0 then call('HSET', KEYS[2], unpack(usage_set)) end
if #totals_set > 0 then call('HSET', KEYS[3], unpack(totals_set)) end
-- The day's reconciliation line, once: the record and the event carry it too (src/store/dayline.rs
-- SETTLED_LINE_FIELDS names its positions), so that each holds a few long values, not 15 short ones: every string
-- that crosses between Redis and Lua costs about 1 500 instructions (docs/BENCHMARKS.md, issue 13).
local street, community = card[6] or '', card[7] or ''
-- one concatenation of all 29 operands (one allocation; table.concat would build a table first)
local line = 'S|' .. SETTLED_AT .. '|' .. SETTLEMENT_ID .. '|' .. HSID .. '|' .. CARD_ID .. '|' .. s_total .. '|' ..
  s_insurance .. '|' .. s_relief .. '|' .. s_patient .. '|' .. payments .. '|' .. category .. '|' .. street .. '|' ..
  community .. '|' .. INSURANCE_REF .. '|' .. OPERATOR_ID
-- the record: the line and what it does not hold (the operator's name is free text, so never inside a line)
if OPERATOR_NAME ~= '' then
  call('HSET', KEYS[4], 'kind', 'settlement', 'status', 'settled', 'line', line, 'req', REQUEST,
    'ruleset_version', RULESET_VERSION, 'hospital', HOSPITAL, 'operator_name', OPERATOR_NAME)
else
  call('HSET', KEYS[4], 'kind', 'settlement', 'status', 'settled', 'line', line, 'req', REQUEST,
    'ruleset_version', RULESET_VERSION, 'hospital', HOSPITAL)
end
call('SET', KEYS[5], 'S:' .. CARD_ID)
if REF_KEY then call('SET', REF_KEY, holder) end
-- the day's hospitals set gets this hospital with the first line of its list (every script that creates such a
-- list adds the hospital; archive_lines.lua removes it only with the list's last line): one call fewer per settle
if call('RPUSH', KEYS[6], line) == 1 then call('SADD', KEYS[7], HOSPITAL) end
call('RPUSH', KEYS[9], HOSPITAL .. '/' .. HSID)
-- The event: the same field names in every settled event (Redis then keeps the names once per stream node, not per
-- entry); an absent operator name is "".
call('XADD', KEYS[8], '*', 'type', 'settlement.settled', 'at', SETTLED_AT, 'line', line, 'req', REQUEST,
  'ruleset_version', RULESET_VERSION, 'hospital', HOSPITAL, 'operator_name', OPERATOR_NAME)
-- A pool taken across 80, 90 or 100 % of its budget: one event per threshold crossed. The threshold t of percent q
-- is the least paid total with paid * 100 >= q * budget, ceil(q * budget / 100), computed without passing 2^53.
for _, p in ipairs(progs) do
  if p.budget and p.budget > 0 and p.pay > 0 then
    local before = p.program_paid
    local after = before + p.pay
    local whole, rest = floor(p.budget / 100), p.budget % 100
    for q = 80, 100, 10 do
      local t = q * whole + ceil(q * rest / 100)
      if before < t and after >= t then
        call('XADD', KEYS[8], '*', 'type', 'pool.threshold', 'at', SETTLED_AT, 'data',
          '{"program":"' .. p.id .. '","year":' .. year .. ',"percent":' .. q .. '}')
      end
    end
  end
end
return result
