//! The gateway's own archiving task (`[retention]`) against the real binary: a day 500 days old (its lines moved
//! there in Redis: a test cannot wait for a day to age), its clearings paid and its export recorded, is archived
//! by a gateway that is `kill -9`ed again and again while it works (121 steps of one line each), and restarted each
//! time. The day ends archived exactly once: every record and claim of it gone, one audit entry naming them all,
//! the usage counters untouched, the audit chain whole.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const RETENTION: &str = "[retention]\nsettlement_days = 400\narchive_interval_ms = 100\narchive_batch_lines = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_again_and_again_while_archiving_archives_the_day_once() {
    let stack = Stack::start("");
    let (gw, redis) = (&stack.gw, &stack.redis);
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[cardholder("C1", "dibao"), cardholder("C2", "dibao")]).await;
    let settlements = 120;
    for i in 0..settlements {
        let (h, card) = (HOSPITALS[i % 2], ["C1", "C2"][i % 2]);
        let r = gw.client(h).post("/v1/settlements", &worked_bill(&format!("G-{i}"), card)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = gw.client("H0001").post("/v1/reversals", &json!({"card_id": "C1", "hospital_settlement_id": "G-0"})).await;
    assert_eq!(r.body["status"], "reversed", "{}", r.body);
    let usage_before = (usage(&admin, "C1").await, usage(&admin, "C2").await);

    // the day's lines become a day 500 days ago, with its clearings paid and its export recorded
    let (today, old) = (today(), today().checked_sub_days(chrono::Days::new(500)).unwrap());
    let mut lines_total = 0;
    for h in ["H0001", "H0002"] {
        let from = format!("{{sg}}:recon:{today}:{h}:events");
        let to = format!("{{sg}}:recon:{old}:{h}:events");
        let n: u64 = redis.cli(&["LLEN", &from]).trim().parse().unwrap();
        lines_total += n;
        assert_eq!(redis.cli(&["RENAME", &from, &to]).trim(), "OK");
        redis.cli(&["HSET", &format!("{{sg}}:clearing:{h}/{}", old.format("%Y-%m")), "status", "paid"]);
        redis.cli(&["HSET", "{sg}:exported", &old.to_string(), "x", &format!("{old}:{h}"), &n.to_string()]);
    }
    let hospitals = format!("{{sg}}:recon:{today}:hospitals");
    assert_eq!(redis.cli(&["RENAME", &hospitals, &format!("{{sg}}:recon:{old}:hospitals")]).trim(), "OK");
    assert_eq!(lines_total, 121, "120 settlements and a reversal");

    // kill -9 the archiving gateway every 60–250 ms until the day is closed
    let certs = std::sync::Arc::new(Certs::new());
    let started = Instant::now();
    let mut kills = 0;
    // records archived so far at each kill
    let mut killed_at: Vec<u64> = Vec::new();
    let mut archiver = Gateway::start(&redis.url(), &certs, RETENTION);
    loop {
        let through = redis.cli(&["HGET", "{sg}:archive", "through"]);
        if through.trim() >= old.to_string().as_str() && !through.trim().is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "not archived after {kills} kills: {through:?}");
        let wait_ms = 60 + (kills * 37) % 190;
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        drop(archiver); // SIGKILL
        kills += 1;
        let done = redis.cli(&["HGET", "{sg}:archive", &format!("records:{old}")]);
        killed_at.push(done.trim().parse::<u64>().unwrap_or(0));
        archiver = Gateway::start(&redis.url(), &certs, RETENTION);
    }
    let settlements_u64 = u64::try_from(settlements).unwrap();
    assert!(killed_at.iter().any(|n| (1..settlements_u64).contains(n)), "no kill landed mid-day: {killed_at:?}");
    // let the last one finish the empty days after it, then look
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(archiver);

    let keys = redis.data_keys();
    assert!(keys.iter().all(|k| !k.contains(":recon:")), "no day line left: {keys:?}");
    assert!(keys.iter().all(|k| !k.contains(":stl:") && !k.contains(":claim:") && !k.contains(":hist:")), "{keys:?}");
    assert_eq!((usage(&admin, "C1").await, usage(&admin, "C2").await), usage_before, "the counters stay");
    let audit = admin.get("/admin/v1/audit?action=ledger.archive&limit=1000").await;
    let entries = ndjson_values(&audit.raw);
    let of_old: Vec<&Value> = entries.iter().filter(|e| e["target"] == old.to_string()).collect();
    assert_eq!(of_old.len(), 1, "the day is audited once: {of_old:?}");
    assert_eq!(of_old[0]["detail"]["records"], settlements, "{}", of_old[0]);
    assert_eq!(of_old[0]["detail"]["lines"], lines_total, "{}", of_old[0]);
    assert!(entries.iter().all(|e| e["target"] == old.to_string() || e["detail"]["records"] == 0), "{entries:?}");
    let floor = redis.cli(&["HGET", "{sg}:program_paid", "visit_floor"]);
    assert!(floor.trim() >= old.checked_add_days(chrono::Days::new(2)).unwrap().to_string().as_str(), "{floor}");
    let verify = gw.audit_verify();
    assert!(verify.status.success(), "audit verify: {}", String::from_utf8_lossy(&verify.stderr));
    eprintln!(
        "archived {settlements} settlements ({lines_total} lines) of {old} through {kills} kill -9s of the archiving \
         gateway (records archived at each kill: {killed_at:?}); {} ledger.archive entries (the later ones for \
         empty days)",
        entries.len()
    );
}
