-- archive_day.lua (after audit.lua): close an archived day — every hospital's lines of it are gone — by moving the
-- archive's watermark to it, raising the earliest visit date a new settlement may have to the day after next, and
-- appending the audit entry, in one step (src/store/archive.rs).
--
-- KEYS[3] {sg}:recon:<day>:hospitals   set: must be empty (archive_lines.lua removed each hospital)
-- KEYS[4] {sg}:archive                 hash: 'through', 'day' (the day being archived), 'records:<day>', 'lines:<day>'
-- KEYS[5] {sg}:program_paid            hash: 'visit_floor' (read by settle.lua)
-- ARGV[6] day, ARGV[7] the last archived day the caller read ('' = none yet), ARGV[8] the new visit floor,
-- ARGV[9] records and ARGV[10] lines the audit entry states (what the caller read of 'records:<day>', 'lines:<day>')
-- Reply: {'closed'} | {'stale'} | {'audit_stale'}
local DAY, THROUGH, FLOOR, RECORDS, LINES = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local state = redis.call('HMGET', KEYS[4], 'through', 'day')
if (state[1] or '') ~= THROUGH then return {'stale'} end
if state[2] and state[2] ~= DAY then return {'stale'} end
if redis.call('SCARD', KEYS[3]) ~= 0 then return {'stale'} end
local counted = redis.call('HMGET', KEYS[4], 'records:' .. DAY, 'lines:' .. DAY)
if (counted[1] or '0') ~= RECORDS or (counted[2] or '0') ~= LINES then return {'stale'} end
if not audit_fresh() then return {'audit_stale'} end
redis.call('HSET', KEYS[4], 'through', DAY)
redis.call('HDEL', KEYS[4], 'day', 'records:' .. DAY, 'lines:' .. DAY)
local floor = redis.call('HGET', KEYS[5], 'visit_floor')
if not floor or floor < FLOOR then redis.call('HSET', KEYS[5], 'visit_floor', FLOOR) end
audit_append()
return {'closed'}
