-- clearing.lua: write one monthly clearing statement (API.md "Clearing") and append its event to the event stream,
-- in one atomic step, only if the statement is still the one the gateway read: compare-and-set on `rev` (the
-- number of writes so far, "0" = absent) and on the status the transition starts from. Otherwise nothing is
-- written and no event appended ("stale": the gateway reads again and decides afresh).
--
-- KEYS[1] sg:clearing:<hospital>/<period>   hash: the statement's fields and `rev`
-- KEYS[2] sg:clearings                      zset: every statement, member <period>/<hospital> (scores 0)
-- KEYS[3] sg:clearings:<hospital>           zset: the hospital's statements, member <period> (scores 0)
-- KEYS[4] sg:events                         stream: one entry per acknowledged change
-- ARGV: 1 event type, 2 expected rev, 3 at (RFC 3339), 4 data (the statement JSON as the gateway rendered it),
--       5 member of KEYS[2], 6 member of KEYS[3], 7.. field, value pairs of the statement as it is to be stored
-- Returns {'applied', new rev} or {'stale', status ('' = absent), rev}.

-- the statuses each transition may start from ('' = no statement yet)
local FROM = {
  ['clearing.created'] = {[''] = true, draft = true},
  ['clearing.confirmed'] = {draft = true},
  ['clearing.paid'] = {confirmed = true},
}
local kind, expected = ARGV[1], ARGV[2]
local from = FROM[kind]
if not from then return redis.error_reply('clearing.lua: unknown event type ' .. kind) end

local cur = redis.call('HMGET', KEYS[1], 'status', 'rev')
local status, rev = cur[1] or '', cur[2] or '0'
if rev ~= expected or not from[status] then return {'stale', status, rev} end

local next_rev = string.format('%d', tonumber(rev) + 1)
redis.call('HSET', KEYS[1], 'rev', next_rev, unpack(ARGV, 7))
redis.call('ZADD', KEYS[2], 0, ARGV[5])
redis.call('ZADD', KEYS[3], 0, ARGV[6])
redis.call('XADD', KEYS[4], '*', 'type', kind, 'at', ARGV[3], 'data', ARGV[4])
return {'applied', next_rev}
