-- Applies one batch of a day list's lines to the day's report entries, once: the aggregator read lines
-- [expected, new) of one hospital's list `{sg}:recon:<day>:<H>:events` and encoded them; this script appends them
-- only if nobody consumed that list further in the meantime (the watermark is still `expected`), and moves the
-- watermark in the same step. Any number of gateway instances may race: each line is counted exactly once.
-- KEYS[1] {sg}:report:<day>:consumed   hash: hospital -> lines of its list already in the entries
-- KEYS[2] {sg}:report:<day>:entries    string: the day's compact entries (store/report/entry.rs)
-- ARGV[1] hospital  ARGV[2] expected watermark  ARGV[3] new watermark  ARGV[4] the encoded entries
-- Returns {1, new} when applied, {0, current} when the watermark had moved (nothing written).
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if current ~= tonumber(ARGV[2]) then
  return {0, current}
end
redis.call('APPEND', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {1, tonumber(ARGV[3])}
