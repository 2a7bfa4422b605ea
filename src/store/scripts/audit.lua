-- audit.lua: the prelude of every office-write script (src/store/audit.rs prefixes it). The audit entry is sealed by
-- the gateway (SHA-256 over its canonical encoding, chained to the head it read); the script appends it, with the
-- change, only while the chain's head is still the one the entry was chained to. Otherwise the script must return
-- {'audit_stale'} before writing anything, and the gateway reads the head again and reseals.
--
-- KEYS[1] {sg}:audit    hash: 'head' = "<seq>|<sha256>" of the last entry; '<seq>' = the stored entry JSON
-- KEYS[2] {sg}:events   stream: the entry is also emitted as an 'audit.appended' event
-- ARGV[1] the head the entry was chained to ('' = the chain is empty), ARGV[2] the head after it, ARGV[3] its seq,
-- ARGV[4] the stored entry, ARGV[5] at (RFC 3339). The script's own keys start at KEYS[3], its own ARGV at ARGV[6].
local function audit_fresh() return (redis.call('HGET', KEYS[1], 'head') or '') == ARGV[1] end
local function audit_append()
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4], 'head', ARGV[2])
  redis.call('XADD', KEYS[2], '*', 'type', 'audit.appended', 'at', ARGV[5], 'data', ARGV[4])
end
