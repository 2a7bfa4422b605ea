-- login_begin.lua: one login attempt of the web console, counted before its password is checked, so that no
-- number of concurrent guesses gets more than max_failed_logins passwords checked per lockout window.
-- KEYS[1] {sg}:users, KEYS[2] {sg}:console:failures:<name>
-- ARGV[1] name, ARGV[2] max_failed_logins, ARGV[3] lockout ms
-- -> {'unknown'} | {'disabled'} | {'locked', <ms left>} | {'check', <account JSON>, <attempt number>}
-- A successful login deletes the counter (console.lua 'login'); failures leave it, expiring lockout ms after the
-- last counted attempt.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {'unknown'} end
if cjson.decode(raw).disabled then return {'disabled'} end
local max = tonumber(ARGV[2])
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if n >= max then
  return {'locked', tostring(math.max(redis.call('PTTL', KEYS[2]), 0))}
end
n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return {'check', raw, tostring(n)}
