-- archive_lines.lua: archive (remove) the next batch of one hospital's reconciliation lines of one day, and the
-- settlement records, id claims and card-history members of its settlement lines, once every watermark allows it
-- (src/store/archive.rs, docs/REDIS_KEYS.md "Retention"). Compare-and-sets on the day being archived and on the
-- list's progress make two instances archiving at once harmless: the second finds them moved and answers 'stale'.
--
-- KEYS[1] {sg}:recon:<day>:<hospital>:events   list: the lines (never changed once the day is over)
-- KEYS[2] {sg}:recon:<day>:hospitals           set: hospitals with lines that day
-- KEYS[3] {sg}:clearing:<hospital>/<period>    hash: the month's clearing statement (must be 'paid')
-- KEYS[4] {sg}:exported                         hash: '<day>:<hospital>' -> lines `settlegate export` wrote
-- KEYS[5] {sg}:report:<day>:consumed            hash: hospital -> lines in the day's report entries
-- KEYS[6] {sg}:archive                          hash: 'through' (last archived day), 'day' (the day being
--                                               archived), 'progress:<day>:<hospital>', 'records:<day>', 'lines:<day>'
-- KEYS[7] {sg}:program_paid                     hash: 'visit_floor' (read by settle.lua)
-- then per settlement line of the batch, three keys: the record {sg}:{card}:stl:<hospital>/<hsid>, the claim
-- {sg}:claim:{<hospital>/<hsid>}, the history list {sg}:{card}:hist:<year>
-- ARGV[1] day, ARGV[2] hospital, ARGV[3] the last archived day the caller read ('' = none yet), ARGV[4] the
-- progress it read, ARGV[5] lines in the batch, ARGV[6] the visit floor of the day (the day + 2), then per
-- settlement line: the history member (<hospital>/<hsid>) and the card id.
-- Reply: {'archived', lines, records, left} | {'stale'} | {'blocked', why}
local DAY, hospital, THROUGH, PROGRESS, LINES = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local FLOOR = ARGV[6]
local progress_field = 'progress:' .. DAY .. ':' .. hospital

local state = redis.call('HMGET', KEYS[6], 'through', 'day', progress_field)
if (state[1] or '') ~= THROUGH then return {'stale'} end
if state[2] and state[2] ~= DAY then return {'stale'} end
if tonumber(state[3] or '0') ~= PROGRESS then return {'stale'} end
if redis.call('SISMEMBER', KEYS[2], hospital) == 0 then return {'stale'} end
local left = redis.call('LLEN', KEYS[1])
if redis.call('HGET', KEYS[3], 'status') ~= 'paid' then return {'blocked', 'clearing'} end
if tonumber(redis.call('HGET', KEYS[4], DAY .. ':' .. hospital) or '-1') ~= PROGRESS + left then
  return {'blocked', 'export'}
end
if tonumber(redis.call('HGET', KEYS[5], hospital) or '0') ~= PROGRESS + left then return {'blocked', 'report'} end
if LINES > left or (#KEYS - 7) % 3 ~= 0 then return {'stale'} end

-- From the first removal on, no new settlement may visit on or before the day after this one: a retry of a
-- settlement removed here is refused by its visit date, its claim being gone.
if not state[2] then redis.call('HSET', KEYS[6], 'day', DAY) end
local floor = redis.call('HGET', KEYS[7], 'visit_floor')
if not floor or floor < FLOOR then redis.call('HSET', KEYS[7], 'visit_floor', FLOOR) end
local records = (#KEYS - 7) / 3
for i = 1, records do
  local record, claim, hist = KEYS[5 + 3 * i], KEYS[6 + 3 * i], KEYS[7 + 3 * i]
  local member, card = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  redis.call('DEL', record)
  if redis.call('GET', claim) == 'S:' .. card then redis.call('DEL', claim) end
  redis.call('LREM', hist, 1, member)
end
redis.call('LTRIM', KEYS[1], LINES, -1)
left = left - LINES
if left == 0 then
  redis.call('SREM', KEYS[2], hospital)
  redis.call('HDEL', KEYS[6], progress_field)
else
  redis.call('HSET', KEYS[6], progress_field, string.format('%d', PROGRESS + LINES))
end
redis.call('HINCRBY', KEYS[6], 'records:' .. DAY, records)
redis.call('HINCRBY', KEYS[6], 'lines:' .. DAY, LINES)
return {'archived', string.format('%d', LINES), string.format('%d', records), string.format('%d', left)}
