-- archive_lines.lua: archive (remove) the next batch of one hospital's reconciliation lines of one day, and the
-- settlement records, id claims and card-history members of its settlement lines, once every watermark allows it
-- (src/store/archive.rs, docs/REDIS_KEYS.md "Retention"). A compare-and-set on the archive's progress makes two
-- instances archiving at once harmless: the second finds the progress moved and answers 'stale'.
--
-- KEYS[1] {sg}:recon:<day>:<hospital>:events   list: the lines (never changed once the day is over)
-- KEYS[2] {sg}:recon:<day>:hospitals           set: hospitals with lines that day
-- KEYS[3] {sg}:clearing:<hospital>/<period>    hash: the month's clearing statement (must be 'paid')
-- KEYS[4] {sg}:exported                         hash: day -> when `settlegate export` wrote it (must be there)
-- KEYS[5] {sg}:report:<day>:consumed            hash: hospital -> lines in the day's report entries
-- KEYS[6] {sg}:archive                          hash: 'through' (last archived day), 'progress:<day>:<hospital>',
--                                               'records:<day>', 'lines:<day>'
-- then per settlement line of the batch, three keys: the record {sg}:{card}:stl:<hospital>/<hsid>, the claim
-- {sg}:claim:{<hospital>/<hsid>}, the history list {sg}:{card}:hist:<year>
-- ARGV[1] day, ARGV[2] hospital, ARGV[3] the last archived day the caller read ('' = none yet), ARGV[4] the
-- progress it read, ARGV[5] lines in the batch, then per settlement line: the history member (<hospital>/<hsid>)
-- and the card id.
-- Reply: {'archived', lines, records, left} | {'stale'} | {'blocked', why}
local DAY, hospital, THROUGH, PROGRESS, LINES = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local progress_field = 'progress:' .. DAY .. ':' .. hospital

if (redis.call('HGET', KEYS[6], 'through') or '') ~= THROUGH then return {'stale'} end
if tonumber(redis.call('HGET', KEYS[6], progress_field) or '0') ~= PROGRESS then return {'stale'} end
if redis.call('HGET', KEYS[3], 'status') ~= 'paid' then return {'blocked', 'clearing'} end
if redis.call('HEXISTS', KEYS[4], DAY) == 0 then return {'blocked', 'export'} end
local left = redis.call('LLEN', KEYS[1])
if tonumber(redis.call('HGET', KEYS[5], hospital) or '0') ~= PROGRESS + left then return {'blocked', 'report'} end
if LINES > left or (#KEYS - 6) % 3 ~= 0 then return {'stale'} end

local records = (#KEYS - 6) / 3
for i = 1, records do
  local record, claim, hist = KEYS[4 + 3 * i], KEYS[5 + 3 * i], KEYS[6 + 3 * i]
  local member, card = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
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
