-- console.lua (after audit.lua): the web console's audited writes, each with its audit entry or not at all.
-- KEYS[3] {sg}:users (hash: name -> account JSON), KEYS[4] {sg}:console:failures:<name> (failed logins in a row),
-- KEYS[5] {sg}:console:session:<sha256 of the token> (hash: user, csrf, created_at)
-- ARGV[6] op: 'add' | 'disable' | 'login' | 'login_failed' | 'logout'
-- add:          ARGV[7] name, ARGV[8] account JSON, ARGV[9] '1' = replace an existing account
-- disable:      ARGV[7] name
-- login:        ARGV[7] name, ARGV[8] csrf token, ARGV[9] created_at, ARGV[10] idle ms
-- login_failed: (nothing: the failure was counted by login_begin.lua; this only audits it)
-- logout:       (nothing: deletes KEYS[5])
local op = ARGV[6]
if op == 'add' then
  if ARGV[9] ~= '1' and redis.call('HEXISTS', KEYS[3], ARGV[7]) == 1 then return {'exists'} end
  if not audit_fresh() then return {'audit_stale'} end
  redis.call('HSET', KEYS[3], ARGV[7], ARGV[8])
  redis.call('DEL', KEYS[4])
elseif op == 'disable' then
  local raw = redis.call('HGET', KEYS[3], ARGV[7])
  if not raw then return {'not_found'} end
  local account = cjson.decode(raw)
  if account.disabled then return {'unchanged'} end
  if not audit_fresh() then return {'audit_stale'} end
  account.disabled = true
  redis.call('HSET', KEYS[3], ARGV[7], cjson.encode(account))
elseif op == 'login' then
  if not audit_fresh() then return {'audit_stale'} end
  redis.call('DEL', KEYS[4])
  redis.call('HSET', KEYS[5], 'user', ARGV[7], 'csrf', ARGV[8], 'created_at', ARGV[9])
  redis.call('PEXPIRE', KEYS[5], tonumber(ARGV[10]))
elseif op == 'login_failed' then
  if not audit_fresh() then return {'audit_stale'} end
elseif op == 'logout' then
  if redis.call('EXISTS', KEYS[5]) == 0 then return {'not_found'} end
  if not audit_fresh() then return {'audit_stale'} end
  redis.call('DEL', KEYS[5])
else
  return redis.error_reply('console.lua: unknown op ' .. tostring(op))
end
audit_append()
return {'ok'}
