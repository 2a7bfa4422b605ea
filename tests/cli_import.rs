//! `settlegate cardholders import` (src/sync) against a private redis-server: progress lines on stderr, NDJSON
//! and CSV, `--dry-run` changes nothing (DEBUG DIGEST equal), `--suspend-missing` suspends exactly the stored
//! active cards missing from the file, each evented as `cardholder.put`, and the counter refuses them afterwards;
//! a file with rejected lines does not suspend anything unless `--force`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::json;

/// A config that points the CLI at `redis` (the TLS files are not read by this command).
fn config_for(dir: &Path, redis: &Redis) -> PathBuf {
    let path = dir.join("gateway.toml");
    let config = format!(
        "listen = \"127.0.0.1:1\"\n[tls]\ncert = \"x\"\nkey = \"x\"\nclient_ca = \"x\"\n[admin]\n\
         identities = [\"{ADMIN}\"]\n[redis]\nurl = \"{}\"\n",
        redis.url()
    );
    std::fs::write(&path, config).unwrap();
    path
}

/// Runs `settlegate cardholders import FILE --config CONFIG ARGS…`.
fn import(config: &Path, file: &Path, args: &[&str]) -> (Output, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_settlegate"))
        .args(["cardholders", "import"])
        .arg(file)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    (out, stdout, stderr)
}

/// An NDJSON file of these cards (plus any raw lines).
fn ndjson(dir: &Path, name: &str, card_ids: &[&str], raw: &[&str]) -> PathBuf {
    let mut text = String::new();
    for id in card_ids {
        let mut c = cardholder(id, "dibao");
        c["street"] = json!("jinrongjie");
        text.push_str(&format!("{c}\n"));
    }
    for line in raw {
        text.push_str(line);
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn status(redis: &Redis, card_id: &str) -> String {
    redis.cli(&["HGET", &format!("{{sg}}:{{{card_id}}}:card"), "status"]).trim().to_string()
}

/// The card ids of the `cardholder.put` events, in order (each a suspended card).
fn put_events(redis: &Redis) -> Vec<String> {
    // redis-cli prints each element on its own line: id, "type", type, "at", at, "data", data
    let out = redis.cli(&["XRANGE", "{sg}:events", "-", "+"]);
    let lines: Vec<&str> = out.lines().collect();
    (1..lines.len())
        .filter(|&i| lines[i] == "cardholder.put" && lines[i - 1] == "type")
        .map(|i| {
            assert_eq!(lines[i + 3], "data");
            let v: serde_json::Value = serde_json::from_str(lines[i + 4]).unwrap();
            assert_eq!(v["status"], "suspended", "{v}");
            v["card_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn progress_lines_and_both_formats() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &redis);
    let ids: Vec<String> = (0..2500).map(|i| format!("C{i:05}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let file = ndjson(dir.path(), "cards.ndjson", &refs, &["{\"card_id\": 7}"]);
    let (out, stdout, stderr) = import(&config, &file, &["--progress-every", "1000"]);
    assert!(out.status.success(), "{stderr}");
    // a progress line counts the batches written so far: one batch (500 cards) may still be in flight
    for n in [1000_u64, 2000] {
        let prefix = format!("import: {n} lines read, ");
        let line = stderr.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix}: {stderr}"));
        let stored: u64 = line[prefix.len()..].split(' ').next().unwrap().parse().unwrap();
        assert!((n - 500..=n).contains(&stored), "{line}");
        assert!(line.contains(" stored, 0 rejected, ") && line.ends_with(" lines/s"), "{line}");
    }
    assert!(stderr.contains("line 2501: rejected: "), "{stderr}");
    assert!(stderr.contains("import: done: 2501 lines read, 2500 stored, 1 rejected, "), "{stderr}");
    assert_eq!(stdout.trim(), "2501 lines read, 2500 cards stored, 1 rejected");
    assert_eq!(status(&redis, "C02499"), "active");
    let imports = redis.cli(&["XLEN", "{sg}:events"]);
    assert_eq!(imports.trim(), "10", "one cardholder.import event per batch of 500, and its audit.appended");
    assert_eq!(redis.cli(&["HLEN", "{sg}:audit"]).trim(), "6", "5 audit entries and the head");

    let csv = dir.path().join("cards.csv");
    std::fs::write(
        &csv,
        "card_id,category,valid_from,valid_until,status,tags,street,community\n\
         K1,dibao,2026-01-01,2026-12-31,active,a;b,jinrongjie,huayuan\n\
         K2,tekun,2026-01-01,2026-12-31,suspended,,,\n\
         K3,tekun,2026-01-01,2026-12-31,closed,,,\n",
    )
    .unwrap();
    let (out, stdout, stderr) = import(&config, &csv, &[]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "4 lines read, 2 cards stored, 1 rejected", "{stderr}");
    assert!(stderr.contains("line 4: rejected: "), "{stderr}");
    assert_eq!(redis.cli(&["HGET", "{sg}:{K1}:card", "community"]).trim(), "huayuan");
    assert_eq!(redis.cli(&["HGET", "{sg}:{K1}:card", "tags"]).trim(), ",a,b,");
    assert_eq!(status(&redis, "K2"), "suspended");
}

#[test]
fn a_dry_run_changes_nothing_and_counts() {
    let redis = Redis::start_with_digest();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &redis);
    let first = ndjson(dir.path(), "first.ndjson", &["C1", "C2", "C3", "C4"], &[]);
    assert!(import(&config, &first, &[]).0.status.success());
    redis.cli(&["HSET", "{sg}:{C4}:card", "status", "suspended"]);
    let before = redis.state();
    // C1 stays, C5 is new, C2 and C3 are missing (C4 too, but it is suspended already), one line is bad
    let next = ndjson(dir.path(), "next.ndjson", &["C1", "C5"], &["not json"]);
    for args in
        [&["--dry-run"][..], &["--dry-run", "--suspend-missing"], &["--dry-run", "--suspend-missing", "--force"]]
    {
        let (out, stdout, stderr) = import(&config, &next, args);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(
            stdout.starts_with(
                "dry run: 3 lines read, 2 cards would be stored, 1 rejected; 2 stored active cards are \
                                missing from the file"
            ),
            "{args:?}: {stdout}"
        );
        assert_eq!(stdout.contains("would be refused"), args == ["--dry-run", "--suspend-missing"], "{stdout}");
        assert!(stdout.trim_end().ends_with("nothing was changed"), "{stdout}");
        assert!(stderr.contains("suspend (dry run): "), "{stderr}");
        assert_eq!(redis.state(), before, "{args:?} changed the store");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_missing_suspends_exactly_the_missing_cards() {
    let stack = Stack::start("");
    let (gw, redis) = (&stack.gw, &stack.redis);
    let dir = tempfile::tempdir().unwrap();
    let config = gw.config_path();
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[]).await;
    let all: Vec<String> = (1..=1199).map(|i| format!("C{i}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    assert!(import(&config, &ndjson(dir.path(), "all.ndjson", &refs, &[]), &[]).0.status.success());
    redis.cli(&["HSET", "{sg}:{C7}:card", "status", "suspended"]); // missing, but suspended already: untouched
                                                                   // a settlement id ending in `:card` makes a key that the card-key pattern also matches
    let h = gw.client("H0001");
    assert_eq!(h.post("/v1/settlements", &outpatient_bill("x:card", "C1", 100, 0)).await.status, 201);

    // the file of the night: every card but C5, C6, C7 and C1000..C1199 (so the missing span several batches)
    let missing: Vec<&str> = refs
        .iter()
        .copied()
        .filter(|id| ["C5", "C6", "C7"].contains(id) || id.len() == 5 && id.starts_with("C1"))
        .collect();
    assert_eq!(missing.len(), 203);
    let kept: Vec<&str> = refs.iter().copied().filter(|id| !missing.contains(id)).collect();
    let night = ndjson(dir.path(), "night.ndjson", &kept, &[]);
    let events_before = redis.cli(&["XLEN", "{sg}:events"]).trim().parse::<u64>().unwrap();
    let audited_before = redis.cli(&["HLEN", "{sg}:audit"]).trim().parse::<u64>().unwrap_or(0);

    let (out, stdout, stderr) = import(&config, &night, &["--suspend-missing", "--batch", "100"]);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("; 202 cards missing from the file suspended (0 changed meanwhile"), "{stdout}");
    assert!(stderr.contains("suspend: 1199 card keys scanned, 202 missing from the file, 202 suspended"), "{stderr}");
    for id in &refs {
        let want = if missing.contains(id) { "suspended" } else { "active" };
        assert_eq!(status(redis, id), want, "{id}");
    }
    let mut evented = put_events(redis);
    evented.sort();
    let mut want: Vec<String> = missing.iter().filter(|id| **id != "C7").map(|id| id.to_string()).collect();
    want.sort();
    assert_eq!(evented, want, "one cardholder.put event per suspended card");
    let events_after = redis.cli(&["XLEN", "{sg}:events"]).trim().parse::<u64>().unwrap();
    // the night's import batches (of 100 cards) + one event per suspension + one audit.appended per audit entry
    // (one per import batch, one per suspension batch)
    let audited_after = redis.cli(&["HLEN", "{sg}:audit"]).trim().parse::<u64>().unwrap();
    let audited = audited_after - audited_before;
    assert!(audited > (kept.len() as u64).div_ceil(100), "every batch audited");
    assert_eq!(events_after - events_before, (kept.len() as u64).div_ceil(100) + 202 + audited);

    // the counter refuses them afterwards, serves the others
    let refused = h.post("/v1/settlements", &outpatient_bill("H0001-S1", "C5", 10_000, 0)).await;
    assert_problem(&refused, 422, "not_eligible", "a suspended card");
    let refused = h.post("/v1/settlements", &outpatient_bill("H0001-S2", "C1100", 10_000, 0)).await;
    assert_problem(&refused, 422, "not_eligible", "a suspended card");
    assert_eq!(h.post("/v1/settlements", &outpatient_bill("H0001-S3", "C8", 10_000, 0)).await.status, 201);

    // a second run of the same file suspends nothing more
    let (out, stdout, _) = import(&config, &night, &["--suspend-missing"]);
    assert!(out.status.success());
    assert!(stdout.contains("; 0 cards missing from the file suspended"), "{stdout}");
}

#[test]
fn a_partial_file_does_not_suspend_the_district_unless_forced() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &redis);
    assert!(import(&config, &ndjson(dir.path(), "all.ndjson", &["C1", "C2", "C3"], &[]), &[]).0.status.success());
    let partial = ndjson(dir.path(), "partial.ndjson", &["C1", "C4"], &["{\"card_id\": \"C2\", \"category\": \""]);
    let (out, stdout, stderr) = import(&config, &partial, &["--suspend-missing"]);
    assert!(!out.status.success(), "a refused --suspend-missing exits 1");
    assert!(stdout.contains("--suspend-missing refused, no card suspended: the file had 1 rejected lines"), "{stdout}");
    assert!(stderr.contains("--suspend-missing refused"), "{stderr}");
    assert_eq!(status(&redis, "C4"), "active", "the valid lines are stored");
    for id in ["C2", "C3"] {
        assert_eq!(status(&redis, id), "active", "{id} must not be suspended by a partial file");
    }
    let (out, stdout, stderr) = import(&config, &partial, &["--suspend-missing", "--force"]);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("; 2 cards missing from the file suspended"), "{stdout}");
    assert_eq!((status(&redis, "C2"), status(&redis, "C3")), ("suspended".into(), "suspended".into()));
    let (out, _, stderr) = import(&config, &partial, &["--force"]);
    assert!(!out.status.success() && stderr.contains("--suspend-missing"), "--force alone: {stderr}");
}

#[test]
fn a_card_listed_twice_ends_as_its_last_line_says() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &redis);
    let filler: Vec<String> = (0..450).map(|i| format!("F{i}")).collect();
    let mut ids: Vec<&str> = vec!["C1"];
    ids.extend(filler.iter().map(String::as_str));
    let mut last = cardholder("C1", "tekun");
    last["status"] = json!("suspended");
    // batches of 100: the two lines of C1 are written by batches 1 and 5, one write in flight at a time
    let file = ndjson(dir.path(), "twice.ndjson", &ids, &[&last.to_string()]);
    let (out, stdout, stderr) = import(&config, &file, &["--batch", "100"]);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "452 lines read, 452 cards stored, 0 rejected");
    assert_eq!(status(&redis, "C1"), "suspended");
    assert_eq!(redis.cli(&["HGET", "{sg}:{C1}:card", "category"]).trim(), "tekun");
}
