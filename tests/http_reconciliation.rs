//! Reconciliation over the real `settlegate serve` binary and a private Redis (docs/API.md): a hospital's day
//! totals equal the sum of its NDJSON detail lines, and the relief office's view lists the same totals.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_totals_equal_detail_lines_and_admin_view() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    let cards = ["C1", "C2", "C3"].map(|id| cardholder(id, "dibao"));
    seed(&admin, &[worked_ruleset()], &cards).await;
    let (h1, h2) = (gw.client("H0001"), gw.client("H0002"));

    let mut settled = Vec::new();
    for (hsid, card_id) in [("R-1", "C1"), ("R-2", "C2"), ("R-3", "C3"), ("R-4", "C1")] {
        let r = h1.post("/v1/settlements", &worked_bill(hsid, card_id)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        settled.push(r.body);
    }
    let reversed = h1
        .post("/v1/reversals", &json!({"card_id": "C2", "hospital_settlement_id": "R-2", "reason": "cancelled"}))
        .await;
    assert_eq!((reversed.status, reversed.body["status"].as_str()), (200, Some("reversed")), "{}", reversed.body);
    let again = h1.post("/v1/reversals", &json!({"card_id": "C2", "settlement_id": settled[1]["settlement_id"]})).await;
    assert_eq!(again.status, 200, "second reversal: {}", again.body);
    let h2_settled = h2.post("/v1/settlements", &worked_bill("R-1", "C3")).await;
    assert_eq!(h2_settled.status, 201, "{}", h2_settled.body);
    let tomb = h2.post("/v1/reversals", &json!({"card_id": "C1", "hospital_settlement_id": "NEVER-SENT"})).await;
    assert_eq!(tomb.body["status"], "reversed_before_settled", "{}", tomb.body);

    let date = settled[0]["settled_at"].as_str().unwrap()[..10].to_string();
    for s in settled.iter().chain([&h2_settled.body, &reversed.body]) {
        let at = s["reversed_at"].as_str().or(s["settled_at"].as_str()).unwrap();
        assert_eq!(&at[..10], date, "test crossed local midnight; rerun");
    }
    assert!(settled[0]["settled_at"].as_str().unwrap().ends_with("+08:00"), "local time: {}", settled[0]);

    let Reconciliation { totals: t1, lines: lines1 } = check_reconciliation(&h1, &date).await;
    assert_eq!((t1["settled_count"].as_u64(), t1["reversed_count"].as_u64()), (Some(4), Some(1)), "{t1}");
    assert_eq!(t1["hospital_id"], "H0001");
    assert_eq!(lines1.len(), 5);
    // Net = the three settlements that stand.
    let standing: Vec<&Value> = settled.iter().filter(|s| s["hospital_settlement_id"] != "R-2").collect();
    for k in ["total_fen", "insurance_fen", "relief_fen", "patient_fen"] {
        let want: i64 = standing.iter().map(|s| s[k].as_i64().unwrap()).sum();
        assert_eq!(t1["net"][k].as_i64(), Some(want), "net.{k}: {t1}");
    }
    let mut want_programs: BTreeMap<String, i64> = BTreeMap::new();
    for s in &standing {
        for p in s["payments"].as_array().unwrap() {
            *want_programs.entry(p["program"].as_str().unwrap().into()).or_default() += p["paid_fen"].as_i64().unwrap();
        }
    }
    want_programs.retain(|_, v| *v != 0);
    assert_eq!(by_program(&t1["net"]["by_program"]), want_programs, "{t1}");

    let t2 = check_reconciliation(&h2, &date).await.totals;
    assert_eq!(t2["settled_count"].as_u64(), Some(1), "{t2}");
    assert_eq!(t2["net"]["total_fen"], h2_settled.body["total_fen"], "{t2}");
    assert_eq!(t2["net"]["relief_fen"], h2_settled.body["relief_fen"], "{t2}");

    // The relief office's view lists both hospitals with the same totals.
    let all = admin.get(&format!("/admin/v1/reconciliation?date={date}")).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["date"], date);
    let hospitals = all.body["hospitals"].as_array().unwrap();
    for (id, mine) in [("H0001", &t1), ("H0002", &t2)] {
        let theirs =
            hospitals.iter().find(|x| x["hospital_id"] == id).unwrap_or_else(|| panic!("{id} missing: {}", all.body));
        assert_eq!(theirs, mine, "admin view of {id}");
    }
    assert!(hospitals.iter().all(|x| x["hospital_id"] == "H0001" || x["hospital_id"] == "H0002"), "{}", all.body);

    // Another day is empty, and still consistent.
    let empty = check_reconciliation(&h1, "2020-01-01").await;
    assert!(empty.lines.is_empty() && empty.totals["settled_count"] == 0, "{}", empty.totals);
    assert_problem(&h1.get("/v1/reconciliation?date=2026-13-01").await, 400, "invalid_request", "bad date");
}
