//! `Config::from_toml` (TOML text plus `SETTLEGATE_*` environment overrides), then `validate`.
//!
//! Input: the TOML text, then optional environment entries, each after a NUL byte, as `KEY=VALUE`; `KEY` gets the
//! `SETTLEGATE_` prefix unless it has it (so the fuzzer need not find the prefix).

use std::ops::Range;

use settlegate::config::{Config, ENV_PREFIX};

/// The password of a `redis://user:password@host/…` URL where the url crate (so redis-rs) finds it: the authority
/// ends at the first `/`, `?` or `#` after `://`; the user info is what precedes the authority's last `@`; the
/// password is what follows the user info's first `:`.
fn password_span(url: &str) -> Option<Range<usize>> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(start + colon + 1..start + at)
}

/// `%XX` decoded, the URL standard's tab and newline removal included: the bytes redis-rs would send as password.
fn percent_decode(raw: &str) -> Vec<u8> {
    let b: Vec<u8> = raw.bytes().filter(|c| !matches!(c, b'\t' | b'\n' | b'\r')).collect();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).expect("two hex digits"));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn split_input(data: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let toml_text = parts.next().unwrap_or_default().to_string();
    let env = parts
        .map(|entry| {
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            let k = if k.starts_with(ENV_PREFIX) { k.to_string() } else { format!("{ENV_PREFIX}{k}") };
            (k, v.to_string())
        })
        .collect();
    (toml_text, env)
}

/// Every limit of a loaded config lies in the range `Config::validate` documents (config/gateway.toml).
fn assert_limits(c: &Config) {
    let u = |v: usize| u64::try_from(v).expect("usize fits u64");
    for (name, v, lo, hi) in [
        ("redis.connect_timeout_ms", c.redis.connect_timeout_ms, 1, 60_000),
        ("redis.response_timeout_ms", c.redis.response_timeout_ms, 1, 60_000),
        ("redis.health_check_interval_ms", c.redis.health_check_interval_ms, 10, 600_000),
        ("redis.rules_refresh_ms", c.redis.rules_refresh_ms, 10, 1000),
        ("redis.max_queued_commands", u(c.redis.max_queued_commands), 1, 1_000_000),
        ("limits.header_read_timeout_ms", c.limits.header_read_timeout_ms, 1, 600_000),
        ("limits.tls_handshake_timeout_ms", c.limits.tls_handshake_timeout_ms, 1, 600_000),
        ("limits.request_timeout_ms", c.limits.request_timeout_ms, 1, 600_000),
        ("limits.import_timeout_ms", c.limits.import_timeout_ms, 1, 86_400_000),
        ("limits.shutdown_grace_ms", c.limits.shutdown_grace_ms, 0, 600_000),
        ("tls.reload_ms", c.tls.reload_ms, 100, 10_000),
        ("limits.idle_connection_timeout_ms", c.limits.idle_connection_timeout_ms, 1, 3_600_000),
        ("limits.max_body_bytes", u(c.limits.max_body_bytes), 1024, 64 << 20),
        ("limits.max_import_bytes", u(c.limits.max_import_bytes), 1024, 16 << 30),
        ("limits.max_import_line_bytes", u(c.limits.max_import_line_bytes), 256, 1 << 20),
        ("limits.max_connections", u(c.limits.max_connections), 1, 1_000_000),
        ("limits.max_in_flight", u(c.limits.max_in_flight), 1, 1_000_000),
        ("limits.max_handshakes", u(c.limits.max_handshakes), 1, 1_000_000),
        ("limits.max_handshakes_per_ip", u(c.limits.max_handshakes_per_ip), 1, 1_000_000),
        ("limits.max_header_bytes", u(c.limits.max_header_bytes), 8192, 1 << 20),
        ("limits.max_concurrent_streams", u64::from(c.limits.max_concurrent_streams), 1, 10_000),
        ("rate_limit.per_second", u64::from(c.rate_limit.per_second), 1, 10_000_000),
        ("rate_limit.burst", u64::from(c.rate_limit.burst), 1, 10_000_000),
        ("worker_threads", u(c.worker_threads), 0, 1024),
    ] {
        assert!((lo..=hi).contains(&v), "a loaded config has {name} = {v}, outside {lo}..={hi}");
    }
    assert!(c.redis.url.starts_with("redis://"), "redis.url {:?}", c.redis.url);
    assert!(!c.admin.identities.is_empty(), "no admin identity");
    assert!(matches!(c.log.format.as_str(), "text" | "json"), "log.format {:?}", c.log.format);
    let _ = c.tz(); // validated: must not panic
}

/// `Debug` does not depend on the Redis password: the same config with the password removed prints the same.
fn assert_password_masked(c: &Config) {
    let Some(span) = password_span(&c.redis.url) else { return };
    // The span is the password redis-rs would use (when the url crate accepts the URL at all).
    if let Some(url) = redis::parse_redis_url(&c.redis.url) {
        let ours = percent_decode(&c.redis.url[span.clone()]);
        let theirs = url.password().map(percent_decode).unwrap_or_default();
        assert_eq!(ours, theirs, "password_span disagrees with the url crate on {:?}", c.redis.url);
    }
    let shown = format!("{c:?}");
    for replacement in ["", "x"] {
        let mut other = c.clone();
        other.redis.url.replace_range(span.clone(), replacement);
        assert_eq!(shown, format!("{other:?}"), "Debug shows the Redis password of {:?}", c.redis.url);
    }
}

pub fn check_config(data: &[u8]) {
    let (text, env) = split_input(data);
    let Ok(config) = Config::from_toml(&text, env) else { return };
    if let Err(e) = config.validate() {
        panic!("from_toml returned a config that validate() refuses: {e}");
    }
    assert_limits(&config);
    assert_password_masked(&config);
}
