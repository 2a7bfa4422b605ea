-- session_touch.lua: a console request's session: read it, check its account is still enabled, restart its idle
-- clock. An expired session is simply gone (its key expired); a disabled account's session is deleted.
-- KEYS[1] {sg}:console:session:<sha256 of the token>, KEYS[2] {sg}:users
-- ARGV[1] idle ms
-- -> {} (no session) | {user, csrf, account JSON}
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return {} end
local raw = redis.call('HGET', KEYS[2], user)
if not raw or cjson.decode(raw).disabled then
  redis.call('DEL', KEYS[1])
  return {}
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return {user, redis.call('HGET', KEYS[1], 'csrf') or '', raw}
