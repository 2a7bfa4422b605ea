//! The smoke load test in `cargo test`: `scripts/loadtest-smoke.sh` (a private redis-server, the gateway, dev
//! certificates, loadtest/scenarios/smoke.toml) with the debug binaries of this build and 4 s of load instead of
//! 12, so that the money audit, the event stream audit, the office history check and the reconciliation check run
//! in CI on every operation of the scenario (insurance refs, operators, history reads, ref reuse and the relief
//! office's contributions included), and the audit trail's hash chain is verified.
//!
//! Needs `redis-server`, `redis-cli` and `curl` (as the rest of the workspace's tests do) and the gateway's debug
//! binary next to this crate's: `cargo test --workspace` builds both; after `cargo test -p settlegate-loadtest`
//! alone, build it first with `cargo build -p settlegate` (the test refuses a binary older than `src/`).
//! The SLO is not judged here (debug builds, shared CI machines): `--slo-p99-ms 2000`; errors still count.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_source(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
        };
        newest = newest.max(t);
    }
    newest
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["audit"]["checks"]
        .as_array()
        .expect("audit.checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no audit check {name}"))
}

#[test]
fn smoke_run_passes_the_money_and_event_audits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
    let loadtest = PathBuf::from(env!("CARGO_BIN_EXE_settlegate-loadtest"));
    let gateway = loadtest.with_file_name("settlegate");
    let built = std::fs::metadata(&gateway)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}; build the gateway first (cargo build -p settlegate)", gateway.display()));
    assert!(
        built >= newest_source(&root.join("src")),
        "{} is older than src/: rebuild it (cargo build -p settlegate)",
        gateway.display()
    );
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smoke");
    let t0 = Instant::now();
    let run = Command::new("bash")
        .arg(root.join("scripts/loadtest-smoke.sh"))
        .args(["--duration", "4", "--slo-p99-ms", "2000"])
        .env("SKIP_BUILD", "1")
        .env("SETTLEGATE_BIN", &gateway)
        .env("LOADTEST_BIN", &loadtest)
        .env("SMOKE_OUT", &out)
        .output()
        .expect("bash scripts/loadtest-smoke.sh");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    eprintln!("smoke: exit {:?} after {:.1} s\n{stdout}", run.status.code(), t0.elapsed().as_secs_f64());
    let tail: String =
        stderr.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(run.status.success(), "the smoke run failed (exit {:?}):\n{stdout}\n{tail}", run.status.code());

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json")).expect("json");
    assert_eq!(report["audit"]["passed"], true, "{}", report["audit"]);
    let events = &report["audit"]["events"];
    assert_eq!(events["status"], "checked", "{events}");
    for t in ["settlement.settled", "settlement.reversed", "settlement.cancelled_before_arrival"] {
        assert!(events["of_the_run"][t].as_u64().unwrap_or(0) > 0, "no {t} event of the run: {events}");
    }
    for name in [
        "settled_events_match_answers",
        "reversed_events_match_reversals",
        "cancel_events_match_cancels",
        "no_event_without_an_acknowledged_change",
        "event_ids_unique",
        "card_history_lists_the_answers",
        "insurance_ref_held_once",
        "contribution_events_match",
        "contribution_refusals_as_documented",
        "pools_within_budget",
        "audit_chain_intact",
        "audit_chain_paging",
        "contributions_audited",
        "audit_appended_events_match_chain",
        "pool_threshold_events_valid",
    ] {
        let c = check(&report, name);
        assert!(c["passed"] == true && c["checked"].as_u64().unwrap_or(0) > 0, "{c}");
    }
    assert!(
        report["expected_refusals"]["insurance_ref_reused"].as_u64().unwrap_or(0) > 0,
        "{}",
        report["expected_refusals"]
    );
    assert!(report["operations"]["history"]["requests"].as_u64().unwrap_or(0) > 0, "{}", report["operations"]);
    // the relief office's contributions during the load: accepted ones in the pool, the events and the audit trail
    assert!(report["operations"]["contribution"]["requests"].as_u64().unwrap_or(0) > 0, "{}", report["operations"]);
    let contributions = &report["audit"]["contributions"];
    assert!(contributions["donations"].as_u64().unwrap_or(0) > 0, "{contributions}");
    assert!(events["of_the_run"]["pool.contribution"].as_u64().unwrap_or(0) > 0, "{events}");
    let trail = &report["audit"]["audit_trail"];
    assert!(trail["status"] == "checked" && trail["of_the_run"].as_u64().unwrap_or(0) > 0, "{trail}");
    let recon = report["audit"]["reconciliation_check"].as_str().unwrap_or_default();
    assert!(recon == "match" || recon == "not served", "reconciliation check: {recon}");
    assert!(report["audit"]["refused"].as_u64().unwrap_or(0) > 0, "the ref reuses are refused requests");
}
