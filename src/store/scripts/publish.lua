-- publish.lua (after audit.lua): publish a ruleset as the next version, with its event and audit entry. The
-- gateway chose the version (the latest + 1) when it sealed the entry, so the script checks that it is still next.
--
-- KEYS[3] {sg}:rulesets   hash: 'latest' = highest version, '<version>' = the ruleset JSON
-- ARGV[6] the version, ARGV[7] the ruleset JSON (with that version)
-- Returns {'published', version} or {'audit_stale'}.
if not audit_fresh() then return {'audit_stale'} end
local latest = tonumber(redis.call('HGET', KEYS[3], 'latest') or '0')
if latest + 1 ~= tonumber(ARGV[6]) then return {'audit_stale'} end
redis.call('HSET', KEYS[3], 'latest', ARGV[6], ARGV[6], ARGV[7])
redis.call('XADD', KEYS[2], '*', 'type', 'ruleset.published', 'at', ARGV[5], 'data', ARGV[7])
audit_append()
return {'published', ARGV[6]}
