-- contribution.lua (after audit.lua): record one contribution to a program's pool (API.md "The charity fund"):
-- idempotent by contribution_id, a withdrawal refused when it would leave the budget below what the pool has paid,
-- the net total raised in the hash the settle script reads the pool's paid total from (so a settlement sees the
-- pool either before or after a contribution, never a mix), the donor's total, the event and the audit entry.
--
-- KEYS[3] {sg}:program_paid                   hash: '<year>:<program>' paid, '<year>:<program>:contrib' net raised
-- KEYS[4] {sg}:contribution:{<id>}            hash: 'req' (what "the same contribution" means), 'json' (as served)
-- KEYS[5] {sg}:pool_donors:<year>:<program>   hash: donor -> net amount_fen
-- ARGV[6] program, ARGV[7] year, ARGV[8] the canonical contribution, ARGV[9] signed amount (withdrawal < 0),
-- ARGV[10] the smallest annual_pool_fen of the rulesets in force during the year, ARGV[11] donor,
-- ARGV[12] the contribution JSON (also the event's data)
-- Returns {'applied', paid, net after}, {'replay', json}, {'conflict'}, {'overdraw', paid, net} or {'audit_stale'}.
local function num(s) if s then return tonumber(s) end return 0 end
local held = redis.call('HMGET', KEYS[4], 'req', 'json')
if held[1] then
  if held[1] == ARGV[8] then return {'replay', held[2]} end
  return {'conflict'}
end
local field = ARGV[7] .. ':' .. ARGV[6]
local t = redis.call('HMGET', KEYS[3], field, field .. ':contrib')
local paid, net, amount, base = num(t[1]), num(t[2]), tonumber(ARGV[9]), tonumber(ARGV[10])
local function fmt(x) return string.format('%d', x) end
if amount < 0 and base + net + amount < paid then return {'overdraw', fmt(paid), fmt(net)} end
-- every budget stays exact in the settle script's doubles
if base + net + amount > 9007199254740991 then return {'too_large', fmt(paid), fmt(net)} end
if not audit_fresh() then return {'audit_stale'} end
redis.call('HINCRBY', KEYS[3], field .. ':contrib', ARGV[9])
redis.call('HINCRBY', KEYS[5], ARGV[11], ARGV[9])
redis.call('HSET', KEYS[4], 'req', ARGV[8], 'json', ARGV[12])
redis.call('XADD', KEYS[2], '*', 'type', 'pool.contribution', 'at', ARGV[5], 'data', ARGV[12])
audit_append()
return {'applied', fmt(paid), fmt(net + amount)}
