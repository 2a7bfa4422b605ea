//! Archiving ([retention], docs/REDIS_KEYS.md "Retention") against the real binary and a private Redis: a day's
//! records, claims, day lines and history members leave Redis only behind its watermarks (every hospital's
//! clearing of the month paid, the day exported, the report entries complete); a watermark that holds one
//! hospital back leaves a half-archived day that the next round finishes; two instances archiving at once remove
//! each thing once and close the day once; afterwards the money counters, report figures, tombstones and the audit
//! chain are intact, the day's reconciliation answers 410, and a late retry of an archived settlement is refused
//! (422 `visit_archived`) instead of paid again.
//!
//! The archiver is called in process with today as the cutoff (the retention is at least 400 days: a test cannot
//! wait for a real day to age), on the data the real gateway settled over mTLS.

mod common;

use std::sync::Arc;

use common::app::connect_app;
use common::*;
use serde_json::{json, Value};
use settlegate::store::archive::ArchiveStep;

fn archiver() -> settlegate::domain::audit::Actor {
    settlegate::app::system_actor("settlegate:archive")
}

/// Marks `day` exported with each hospital's line count as it is now (what `settlegate export` records).
async fn mark_exported(store: &settlegate::store::Store, day: chrono::NaiveDate, at: &str) {
    let d = day.to_string();
    let mut lines = Vec::new();
    for h in store.day_hospitals(&d).await.unwrap() {
        let n = store.day_totals(&d, &h).await.unwrap();
        lines.push((h, u64::try_from(n.settled_count + n.reversed_count).unwrap()));
    }
    store.mark_exported(&d, at, &lines).await.unwrap();
}

/// The data keys whose names contain `part`.
fn keys_with(redis: &Redis, part: &str) -> Vec<String> {
    redis.data_keys().into_iter().filter(|k| k.contains(part)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_is_archived_behind_its_watermarks_once_and_its_retries_are_refused() {
    let stack = Stack::on(Redis::start_with_digest(), "");
    let (gw, redis) = (&stack.gw, &stack.redis);
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[cardholder("C1", "dibao"), cardholder("C2", "dibao")]).await;
    let (h1, h2) = (gw.client("H0001"), gw.client("H0002"));
    let mut bills: Vec<(&Client, Value)> = Vec::new();
    for (client, hsid, card) in [(&h1, "A-1", "C1"), (&h1, "A-2", "C2"), (&h1, "A-3", "C1"), (&h2, "B-1", "C2")] {
        let bill = worked_bill(hsid, card);
        let r = client.post("/v1/settlements", &bill).await;
        assert_eq!(r.status, 201, "{}", r.body);
        bills.push((client, bill));
    }
    let r = h1.post("/v1/reversals", &json!({"card_id": "C2", "hospital_settlement_id": "A-2"})).await;
    assert_eq!(r.body["status"], "reversed", "{}", r.body);
    let r = h2.post("/v1/reversals", &json!({"card_id": "C1", "hospital_settlement_id": "NEVER-SENT"})).await;
    assert_eq!(r.body["status"], "reversed_before_settled", "{}", r.body);
    let usage_before = (usage(&admin, "C1").await, usage(&admin, "C2").await);
    let day = today();
    let report_path = format!("/admin/v1/reports/relief?from={day}&to={day}&by=hospital");
    let report_before = admin.get(&report_path).await;
    assert_eq!(report_before.status, 200, "{}", report_before.body);

    let apps = [Arc::new(connect_app(redis).await), Arc::new(connect_app(redis).await)];
    let store = &apps[0].store;
    let at = "2027-12-31T02:00:00.000+08:00";
    let period = day.format("%Y-%m").to_string();
    let visit_floor = day.checked_add_days(chrono::Days::new(2)).unwrap().to_string();
    let archive = |batch: usize| {
        let app = apps[0].clone();
        async move { app.store.archive_next_day(day, batch, at, &archiver()).await.unwrap() }
    };

    // Held back: no clearing paid, then only H0001's paid, then not exported. Nothing changes until a hospital
    // may go; H0001 then goes, H0002 stays.
    let untouched = redis.state();
    let blocked = |hospital: &str, why: &str| ArchiveStep::Blocked { day, hospital: hospital.into(), why: why.into() };
    let first = archive(1).await;
    assert!(matches!(&first, ArchiveStep::Blocked { why, .. } if why == "clearing"), "{first:?}");
    assert_eq!(redis.state(), untouched, "a held-back day changes nothing");
    redis.cli(&["HSET", &format!("{{sg}}:clearing:H0001/{period}"), "status", "paid"]);
    let second = archive(1).await;
    assert!(matches!(&second, ArchiveStep::Blocked { why, .. } if why == "export"), "{second:?}");
    mark_exported(store, day, at).await;
    let untouched = redis.state();
    // in batches of one line (hospitals in order): H0001's four lines (three settlements, one reversal) go, then
    // H0002 waits for its clearing — a half-archived day, as an instance killed between two steps leaves it
    let third = archive(1).await;
    assert_eq!(third, blocked("H0002", "clearing"));
    assert_ne!(redis.state(), untouched);
    assert!(keys_with(redis, ":stl:H0001/").is_empty(), "H0001's records are archived");
    assert_eq!(keys_with(redis, ":stl:H0002/B-1"), vec!["{sg}:{C2}:stl:H0002/B-1".to_string()], "H0002's waits");
    assert_eq!(redis.cli(&["HGET", "{sg}:archive", &format!("records:{day}")]).trim(), "3");
    assert_eq!(store.archived_through().await.unwrap(), None, "the day is not closed");
    assert_eq!(store.archive_horizon().await.unwrap(), Some(day), "but it is being archived");
    assert_eq!(redis.cli(&["HGET", "{sg}:program_paid", "visit_floor"]).trim(), visit_floor, "raised at once");
    let r = h2.post("/v1/settlements", &bills[3].1).await;
    assert_eq!(r.status, 200, "a settlement not yet archived still replays: {}", r.body);
    assert_problem(&h1.post("/v1/settlements", &bills[0].1).await, 422, "visit_archived", "a removed one does not");
    redis.cli(&["HSET", &format!("{{sg}}:clearing:H0002/{period}"), "status", "paid"]);

    // Two instances finish the day at once: it closes once.
    let (a, b) =
        tokio::join!(async { apps[0].store.archive_next_day(day, 2, at, &archiver()).await.unwrap() }, async {
            apps[1].store.archive_next_day(day, 2, at, &archiver()).await.unwrap()
        });
    let closed: Vec<&ArchiveStep> = [&a, &b].into_iter().filter(|s| matches!(s, ArchiveStep::Closed { .. })).collect();
    assert_eq!(closed.len(), 1, "one instance closes the day: {a:?} {b:?}");
    assert_eq!(*closed[0], ArchiveStep::Closed { day, records: 4, lines: 5 }, "4 settlements, 1 reversal line");
    assert_eq!(archive(2).await, ArchiveStep::UpToDate);
    assert_eq!(store.archived_through().await.unwrap(), Some(day));

    // What went, and what stayed.
    assert!(keys_with(redis, ":recon:").is_empty(), "the day lines and the day's hospital set are gone");
    assert!(keys_with(redis, ":claim:{H0001/A-").is_empty() && keys_with(redis, ":claim:{H0002/B-").is_empty());
    assert!(keys_with(redis, ":hist:").is_empty(), "the history members are gone (and so their lists)");
    let records = keys_with(redis, ":stl:");
    assert_eq!(records, vec!["{sg}:{C1}:stl:H0002/NEVER-SENT".to_string()], "only the tombstone stays");
    assert_eq!(keys_with(redis, ":claim:"), vec!["{sg}:claim:{H0002/NEVER-SENT}".to_string()]);
    assert_eq!((usage(&admin, "C1").await, usage(&admin, "C2").await), usage_before, "the counters stay");
    let report_after = admin.get(&report_path).await;
    assert_eq!(report_after.body, report_before.body, "the report of an archived day is unchanged");
    let audit = admin.get("/admin/v1/audit?action=ledger.archive").await;
    let entries = ndjson_values(&audit.raw);
    assert_eq!(entries.len(), 1, "one audit entry for the day: {entries:?}");
    assert_eq!(entries[0]["target"], day.to_string());
    assert_eq!(entries[0]["detail"]["records"], 4);
    let verify = gw.audit_verify();
    assert!(verify.status.success(), "audit verify: {}", String::from_utf8_lossy(&verify.stderr));

    // The day is closed to the API: its reconciliation is 410, a retry of an archived settlement and any new
    // settlement visiting on or before the day after it are 422, and nothing is written for them.
    let recon = h1.get(&format!("/v1/reconciliation?date={day}")).await;
    assert_problem(&recon, 410, "day_archived", "an archived day's totals");
    let before = redis.state();
    for (client, bill) in &bills {
        assert_problem(&client.post("/v1/settlements", bill).await, 422, "visit_archived", "a late retry");
    }
    let next_day = day.succ_opt().unwrap().to_string();
    let mut tomorrow = worked_bill("A-9", "C1");
    tomorrow["visit"]["date"] = json!(next_day);
    assert_problem(&h1.post("/v1/settlements", &tomorrow).await, 422, "visit_archived", "visit the day after");
    assert_eq!(redis.state(), before, "refusals write nothing");
    let lookup = h1.get("/v1/settlements?card_id=C1&hospital_settlement_id=A-1").await;
    assert_eq!(lookup.status, 404, "an archived settlement is no longer known: {}", lookup.body);
}

/// What an archiving leaves, without what differs from run to run (sealed ids, times): the data keys, the archive's
/// state, the visit floor, the cards' usage, and the archive's audit entries (target and detail).
#[derive(Debug, PartialEq, Eq)]
struct EndState {
    keys: Vec<String>,
    archive: String,
    visit_floor: String,
    usage: Vec<String>,
    audit: Vec<String>,
}

async fn end_state(redis: &Redis, admin: &Client) -> EndState {
    let audit = admin.get("/admin/v1/audit?action=ledger.archive").await;
    let audit = String::from_utf8_lossy(&audit.raw)
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            format!("{} {}", e["target"], e["detail"])
        })
        .collect();
    EndState {
        keys: redis.data_keys(),
        archive: redis.cli(&["HGETALL", "{sg}:archive"]),
        visit_floor: redis.cli(&["HGET", "{sg}:program_paid", "visit_floor"]),
        usage: ["C1", "C2"].iter().map(|c| redis.cli(&["HGETALL", &format!("{{sg}}:{{{c}}}:usage")])).collect(),
        audit,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archiver_gone_after_any_step_leaves_a_state_the_next_one_finishes() {
    // H0001: three settlements and a reversal, H0002: two settlements; in batches of one line that is 4 + 2 batch
    // steps and the day's close. A gateway killed during a step leaves it applied whole or not at all (one
    // script), which is the state after the step or before it: so "after k steps, for every k" covers every kill.
    const STEPS: usize = 7;
    let certs = Arc::new(Certs::new());
    let mut ends = Vec::new();
    for k in 0..=STEPS {
        let redis = Redis::start();
        let gw = Gateway::start(&redis.url(), &certs, "");
        let admin = gw.client(ADMIN);
        seed(&admin, &[worked_ruleset()], &[cardholder("C1", "dibao"), cardholder("C2", "dibao")]).await;
        for (h, hsid, card) in [
            ("H0001", "K-1", "C1"),
            ("H0001", "K-2", "C2"),
            ("H0001", "K-3", "C1"),
            ("H0002", "L-1", "C2"),
            ("H0002", "L-2", "C1"),
        ] {
            let r = gw.client(h).post("/v1/settlements", &worked_bill(hsid, card)).await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
        let r =
            gw.client("H0001").post("/v1/reversals", &json!({"card_id": "C2", "hospital_settlement_id": "K-2"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let day = today();
        let period = day.format("%Y-%m").to_string();
        for h in ["H0001", "H0002"] {
            redis.cli(&["HSET", &format!("{{sg}}:clearing:{h}/{period}"), "status", "paid"]);
        }
        let at = "2027-12-31T02:00:00.000+08:00";
        {
            // the first archiver: k steps, then it is gone
            let first = connect_app(&redis).await;
            mark_exported(&first.store, day, at).await;
            for step in 0..k {
                let done = first.store.archive_step(day, 1, at, &archiver()).await.unwrap();
                let want_close = step == STEPS - 1;
                assert_eq!(matches!(done, ArchiveStep::Closed { .. }), want_close, "step {step}: {done:?}");
                assert!(want_close || matches!(done, ArchiveStep::Batch { lines: 1, .. }), "step {step}: {done:?}");
            }
        }
        // the next one finishes the day
        let next = connect_app(&redis).await;
        let finished = next.store.archive_next_day(day, 1, at, &archiver()).await.unwrap();
        let want = if k == STEPS { ArchiveStep::UpToDate } else { ArchiveStep::Closed { day, records: 5, lines: 6 } };
        assert_eq!(finished, want, "after {k} steps");
        ends.push(end_state(&redis, &admin).await);
    }
    for (k, end) in ends.iter().enumerate() {
        assert_eq!(end, &ends[0], "the state after a stop at step {k} and a finish = after no stop");
    }
    assert_eq!(ends[0].audit.len(), 1, "the day is audited once: {:?}", ends[0].audit);
    eprintln!("archiving stopped after each of 0..={STEPS} steps and finished by another: one end state {:?}", ends[0]);
}
