-- Interns report labels (hospitals, streets, communities, categories, programs): the id of each ARGV label,
-- assigning the next one to a label seen for the first time. Ids never change once given, so entries written with
-- them stay readable; the step is idempotent and needs no coordination with the entries' own script.
-- KEYS[1] {sg}:report:labels   hash: `l:<label>` -> id, `i:<id>` -> label, `n` -> last id given (ids start at 1)
local out = {}
for i, label in ipairs(ARGV) do
  local id = redis.call('HGET', KEYS[1], 'l:' .. label)
  if not id then
    id = redis.call('HINCRBY', KEYS[1], 'n', 1)
    redis.call('HSET', KEYS[1], 'l:' .. label, id, 'i:' .. string.format('%d', id), label)
  end
  out[i] = tonumber(id)
end
return out
