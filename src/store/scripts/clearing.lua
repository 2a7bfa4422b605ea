-- clearing.lua (after audit.lua): write one monthly clearing statement (API.md "Clearing") and append its event to the event stream,
-- in one atomic step, only if the statement is still the one the gateway read: compare-and-set on `rev` (the
-- number of writes so far, "0" = absent) and on the status the transition starts from. Otherwise nothing is
-- written and no event appended ("stale": the gateway reads again and decides afresh).
--
-- KEYS[2] {sg}:events                         stream: one entry per acknowledged change (audit.lua)
-- KEYS[3] {sg}:clearing:<hospital>/<period>   hash: the statement's fields and `rev`
-- KEYS[4] {sg}:clearings                      zset: every statement, member <period>/<hospital> (scores 0)
-- KEYS[5] {sg}:clearings:<hospital>           zset: the hospital's statements, member <period> (scores 0)
-- ARGV: 6 event type, 7 expected rev, 8 at (RFC 3339), 9 data (the statement JSON as the gateway rendered it),
--       10 member of KEYS[4], 11 member of KEYS[5], 12.. field, value pairs of the statement as it is to be stored
-- Returns {'applied', new rev}, {'stale', status ('' = absent), rev} or {'audit_stale'}.

-- the statuses each transition may start from ('' = no statement yet)
local FROM = {
  ['clearing.created'] = {[''] = true, draft = true},
  ['clearing.confirmed'] = {draft = true},
  ['clearing.paid'] = {confirmed = true},
}
local kind, expected = ARGV[6], ARGV[7]
local from = FROM[kind]
if not from then return redis.error_reply('clearing.lua: unknown event type ' .. kind) end

local cur = redis.call('HMGET', KEYS[3], 'status', 'rev')
local status, rev = cur[1] or '', cur[2] or '0'
if rev ~= expected or not from[status] then return {'stale', status, rev} end
if not audit_fresh() then return {'audit_stale'} end

local next_rev = string.format('%d', tonumber(rev) + 1)
redis.call('HSET', KEYS[3], 'rev', next_rev, unpack(ARGV, 12))
redis.call('ZADD', KEYS[4], 0, ARGV[10])
redis.call('ZADD', KEYS[5], 0, ARGV[11])
redis.call('XADD', KEYS[2], '*', 'type', kind, 'at', ARGV[8], 'data', ARGV[9])
audit_append()
return {'applied', next_rev}
