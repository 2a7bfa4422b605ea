//! The charity fund raised during the year (docs/API.md "The charity fund") over the real binary, mTLS and a
//! private Redis: contributions and their codes, the pool's budget as base plus net contributions, settlements
//! racing donations and a withdrawal on a small pool (paid never above the budget, paid equal to the answers),
//! a second instance using a donation on its next settlement, threshold events and gauges.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

const SLOW_REDIS_OK: &str = "[redis]\nresponse_timeout_ms = 5000\n";

/// `charity` pays 100 % of the bill to dibao cards, from a pool of `pool_fen`.
fn pool_ruleset(pool_fen: i64) -> Value {
    json!({"effective_from": "2020-01-01", "programs": [
        {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
         "categories": {"dibao": {"ratio_bp": 5000}}},
        {"id": "charity", "name": "Charity fund", "covers": ["in_scope", "self_pay"], "annual_pool_fen": pool_fen,
         "categories": {"dibao": {"ratio_bp": 10000}}}]})
}

fn contribution(id: &str, kind: &str, amount_fen: i64) -> Value {
    json!({"contribution_id": id, "year": this_year(), "donor": "区红十字会", "amount_fen": amount_fen, "kind": kind,
           "note": "test"})
}

async fn pool_row(admin: &Client, program: &str) -> Value {
    let r = admin.get(&format!("/admin/v1/pools?year={}", this_year())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["pools"].as_array().unwrap().iter().find(|p| p["program"] == program).cloned().expect("the pool")
}

fn charity_paid(settlement: &Value) -> i64 {
    settlement["payments"].as_array().unwrap().iter().find(|p| p["program"] == "charity").unwrap()["paid_fen"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn contributions_raise_the_budget_with_replays_and_refusals() {
    let stack = Stack::start(SLOW_REDIS_OK);
    let admin = stack.gw.client(ADMIN);
    seed(&admin, &[pool_ruleset(100_000)], &[cardholder("C1", "dibao")]).await;
    let path = "/admin/v1/pools/charity/contributions";

    let r = admin.post(path, &contribution("RC-1", "donation", 50_000)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["contribution_id"], "RC-1");
    assert_eq!(r.body["amount_fen"], 50_000);
    assert_eq!(r.body["pool"]["budget_fen"], 150_000);
    // the same body again: a replay of the stored contribution, nothing added
    let again = admin.post(path, &contribution("RC-1", "donation", 50_000)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["at"], r.body["at"]);
    let other = admin.post(path, &contribution("RC-1", "donation", 50_001)).await;
    assert_problem(&other, 409, "idempotency_conflict", "same id, another body");

    let row = pool_row(&admin, "charity").await;
    assert_eq!(row["base_fen"], 100_000);
    assert_eq!(row["contributions_fen"], 50_000);
    assert_eq!(row["budget_fen"], 150_000);
    assert_eq!(row["paid_fen"], 0);
    assert_eq!(row["left_fen"], 150_000);
    assert_eq!(row["donors"], json!([{"donor": "区红十字会", "amount_fen": 50_000}]));

    // spend 120 000 of the 150 000, then a withdrawal of 40 000 would leave 110 000 < 120 000
    let s = stack.gw.client("H0001").post("/v1/settlements", &outpatient_bill("S1", "C1", 100_000, 20_000)).await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(charity_paid(&s.body), 70_000, "half of in_scope is left after medical_assistance, plus self_pay");
    let over = admin.post(path, &contribution("RC-2", "withdrawal", 80_001)).await;
    assert_problem(&over, 409, "pool_would_overdraw", "budget 150000 - 80001 < paid 70000");
    let ok = admin.post(path, &contribution("RC-3", "withdrawal", 80_000)).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(ok.body["pool"]["budget_fen"], 70_000);
    assert_eq!(ok.body["pool"]["left_fen"], 0);

    // refusals change nothing
    let before = pool_row(&admin, "charity").await;
    assert_problem(
        &admin.post("/admin/v1/pools/nope/contributions", &contribution("RC-4", "donation", 1)).await,
        404,
        "not_found",
        "unknown program",
    );
    assert_problem(
        &admin.post("/admin/v1/pools/medical_assistance/contributions", &contribution("RC-5", "donation", 1)).await,
        422,
        "not_a_pool",
        "a program without annual_pool_fen",
    );
    assert_invalid(&admin.post(path, &contribution("RC-6", "gift", 1)).await, "kind", "unknown kind");
    assert_invalid(&admin.post(path, &contribution("RC-7", "donation", 0)).await, "amount_fen", "zero");
    let mut unknown = contribution("RC-8", "donation", 1);
    unknown["extra"] = json!(1);
    assert_eq!(admin.post(path, &unknown).await.status, 400);
    assert_eq!(pool_row(&admin, "charity").await, before);
    // hospitals may not contribute
    assert_eq!(stack.gw.client("H0001").post(path, &contribution("RC-9", "donation", 1)).await.status, 403);

    // one pool.contribution event per applied contribution
    let events = admin.get("/admin/v1/events?limit=10000").await;
    let text = String::from_utf8(events.raw.to_vec()).unwrap();
    let contributions: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "pool.contribution")
        .collect();
    assert_eq!(contributions.len(), 2, "{text}");
    assert_eq!(contributions[1]["data"]["kind"], "withdrawal");
}

/// 100 settlements race 5 donations and a withdrawal on a pool of 50 000 fen: at no point is the pool's paid total
/// above its budget, and at the end it equals the sum of what the answers paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settlements_racing_donations_and_a_withdrawal_never_overdraw() {
    let stack = Stack::start(SLOW_REDIS_OK);
    let admin = Arc::new(stack.gw.client(ADMIN));
    let cards: Vec<Value> = (0..20).map(|i| cardholder(&format!("C{i}"), "dibao")).collect();
    seed(&admin, &[pool_ruleset(50_000)], &cards).await;
    // one connection per client (a client sends one request at a time): 10 hospital connections, 7 office ones
    let hospitals: Vec<Arc<Client>> = (0..10).map(|_| Arc::new(stack.gw.client("H0001"))).collect();
    let offices: Vec<Arc<Client>> = (0..7).map(|_| Arc::new(stack.gw.client(ADMIN))).collect();

    let mut settles = Vec::new();
    for i in 0..100 {
        let h = hospitals[i % 10].clone();
        settles.push(tokio::spawn(async move {
            let bill = outpatient_bill(&format!("S{i}"), &format!("C{}", i % 20), 2_000, 1_000);
            let r = h.post("/v1/settlements", &bill).await;
            assert_eq!(r.status, 201, "{}", r.body);
            charity_paid(&r.body)
        }));
    }
    let mut gifts = Vec::new();
    for (i, office) in offices.iter().take(5).enumerate() {
        let a = office.clone();
        gifts.push(tokio::spawn(async move {
            let r = a
                .post("/admin/v1/pools/charity/contributions", &contribution(&format!("D{i}"), "donation", 10_000))
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
        }));
    }
    let a = offices[5].clone();
    let withdrawal = tokio::spawn(async move {
        a.post("/admin/v1/pools/charity/contributions", &contribution("W1", "withdrawal", 30_000)).await
    });
    // watch the pool while they race
    let watcher_admin = offices[6].clone();
    let watcher = tokio::spawn(async move {
        let mut seen = 0;
        for _ in 0..40 {
            let row = pool_row(&watcher_admin, "charity").await;
            let (paid, budget) = (row["paid_fen"].as_i64().unwrap(), row["budget_fen"].as_i64().unwrap());
            assert!(paid <= budget, "paid {paid} above budget {budget}");
            seen += 1;
        }
        seen
    });
    let mut paid_sum = 0;
    for s in settles {
        paid_sum += s.await.unwrap();
    }
    for g in gifts {
        g.await.unwrap();
    }
    let w = withdrawal.await.unwrap();
    assert!(w.status == 201 || (w.status == 409 && w.body["code"] == "pool_would_overdraw"), "{}", w.body);
    assert_eq!(watcher.await.unwrap(), 40);

    let row = pool_row(&admin, "charity").await;
    let withdrawn = if w.status == 201 { 30_000 } else { 0 };
    assert_eq!(row["budget_fen"].as_i64().unwrap(), 50_000 + 50_000 - withdrawn);
    assert_eq!(row["paid_fen"].as_i64().unwrap(), paid_sum, "paid = the sum of the answers");
    assert!(paid_sum <= row["budget_fen"].as_i64().unwrap());
    // 100 bills need 2 000 fen each from charity, 200 000 in all: more than any budget here, so the
    // pool ends exhausted whichever way the race went
    assert_eq!(row["left_fen"], 0, "{row}");
    println!("race: paid {paid_sum} fen of a budget of {} fen; withdrawal answered {}", row["budget_fen"], w.status);
}

/// A donation made through one instance is used by the next settlement on another; the pool's crossing of 80, 90
/// and 100 % is evented once each; the gauges show budget and paid.
#[tokio::test]
async fn a_second_instance_uses_a_new_donation_on_its_next_settlement() {
    let stack = Stack::start(SLOW_REDIS_OK);
    let gw2 = Gateway::start(&stack.redis.url(), &stack.gw.certs, SLOW_REDIS_OK);
    let admin = stack.gw.client(ADMIN);
    seed(&admin, &[pool_ruleset(10_000)], &[cardholder("C1", "dibao")]).await;
    gw2.wait_ready(200, std::time::Duration::from_secs(5)).await; // instance 2 has loaded the ruleset
    let h2 = gw2.client("H0001");
    // 8 000 of 10 000 (80 %), then 9 000 (90 %), then the rest (100 %): one threshold event each
    for (i, self_pay) in [(1, 8_000), (2, 1_000), (3, 5_000)] {
        let r = h2.post("/v1/settlements", &outpatient_bill(&format!("S{i}"), "C1", 0, self_pay)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let exhausted = h2.post("/v1/settlements", &outpatient_bill("S4", "C1", 0, 500)).await;
    assert_eq!(charity_paid(&exhausted.body), 0, "the pool is spent");

    let r = admin.post("/admin/v1/pools/charity/contributions", &contribution("RC-1", "donation", 2_000)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let next = h2.post("/v1/settlements", &outpatient_bill("S5", "C1", 0, 500)).await;
    assert_eq!(next.status, 201, "{}", next.body);
    assert_eq!(charity_paid(&next.body), 500, "instance 2 sees the donation at once");

    let events = admin.get("/admin/v1/events?limit=10000").await;
    let text = String::from_utf8(events.raw.to_vec()).unwrap();
    let thresholds: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "pool.threshold")
        .map(|e| e["data"].clone())
        .collect();
    let year = this_year();
    assert_eq!(
        thresholds,
        vec![
            json!({"program": "charity", "year": year, "percent": 80}),
            json!({"program": "charity", "year": year, "percent": 90}),
            json!({"program": "charity", "year": year, "percent": 100}),
        ]
    );

    // the gauges, refreshed every second by each instance
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let m = gw2.ops_get("/metrics").await.body;
        let want_budget = format!("settlegate_pool_budget_fen{{program=\"charity\",year=\"{year}\"}} 12000");
        let want_paid = format!("settlegate_pool_paid_fen{{program=\"charity\",year=\"{year}\"}} 10500");
        if m.contains(&want_budget) && m.contains(&want_paid) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "gauges not seen: {m}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
