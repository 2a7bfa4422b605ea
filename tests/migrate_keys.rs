//! `scripts/migrate-ledger-keys.sh` on a private Redis: every `sg:*` key of an earlier build moves under the
//! ledger tag (`{sg}:…`), the day's report keys lose their own day tag, per-minute figures are left, and a key
//! whose new name exists already is kept, never overwritten.

mod common;

use std::process::Command;

use common::*;

#[test]
fn old_key_names_move_under_the_ledger_tag_and_nothing_is_overwritten() {
    let redis = Redis::start();
    for (key, value) in [
        ("sg:{C1}:card", "card"),
        ("sg:claim:{H0001/X-1}", "S:C1"),
        ("sg:report:{2026-11-30}:consumed", "consumed"),
        ("sg:report:{2026-11-30}:entries", "entries"),
        ("sg:recon:2026-11-30:H0001:events", "lines"),
        ("sg:events", "old events"),
        ("{sg}:events", "new events"),
        ("sg:stats:settle:29000000", "figures"),
    ] {
        assert_eq!(redis.cli(&["SET", key, value]).trim(), "OK");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/migrate-ledger-keys.sh");
    let out = Command::new("bash").arg(script).arg(redis.url()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "moved 5 keys, kept 1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept sg:events: {sg}:events exists"));
    let mut keys: Vec<String> = redis.cli(&["--scan"]).lines().map(String::from).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "sg:events",
            "sg:stats:settle:29000000",
            "{sg}:claim:{H0001/X-1}",
            "{sg}:events",
            "{sg}:recon:2026-11-30:H0001:events",
            "{sg}:report:2026-11-30:consumed",
            "{sg}:report:2026-11-30:entries",
            "{sg}:{C1}:card",
        ]
    );
    assert_eq!(redis.cli(&["GET", "{sg}:events"]).trim(), "new events", "an existing key is never overwritten");
    assert_eq!(redis.cli(&["GET", "{sg}:report:2026-11-30:entries"]).trim(), "entries");
}
