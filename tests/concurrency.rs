//! Concurrency against a real Redis through four separate connections (four `App`s, as four gateway instances
//! would have): caps, pools and idempotency hold under any interleaving because each settlement is one atomic
//! script run.

mod common;
use std::sync::Arc;

use common::app::{connect_app, publish, put_cards};
use common::*;
use serde_json::{json, Value};
use settlegate::app::{ApiResult, App};
use settlegate::domain::bill::SettleRequest;
use settlegate::domain::card::Cardholder;
use settlegate::domain::settlement::Settlement;
use settlegate::domain::split::CappedBy;

const INSTANCES: usize = 4;

/// `INSTANCES` apps, each on its own connection; the first publishes `ruleset` and stores `cards`.
async fn apps(redis: &Redis, ruleset: &Value, cards: &[Cardholder]) -> Vec<Arc<App>> {
    let mut apps = Vec::new();
    for i in 0..INSTANCES {
        let app = connect_app(redis).await;
        if i == 0 {
            publish(&app, ruleset).await;
            put_cards(&app, cards).await;
        }
        app.rules.refresh(&app.store).await.unwrap();
        apps.push(Arc::new(app));
    }
    apps
}

fn bill(hsid: &str, card_id: &str, in_scope: i64, self_pay: i64) -> SettleRequest {
    serde_json::from_value(outpatient_bill(hsid, card_id, in_scope, self_pay)).unwrap()
}

/// One settle call: who sends what.
struct Settle {
    hospital: &'static str,
    request: SettleRequest,
}

/// As hospital `HOSPITALS[i % 4]` with the id `{hospital}-{i}`.
fn spread(i: usize, bill_of: impl Fn(&str) -> SettleRequest) -> Settle {
    let hospital = HOSPITALS[i % HOSPITALS.len()];
    Settle { hospital, request: bill_of(&format!("{hospital}-{i}")) }
}

/// `n` settle calls at once, the i-th through app `i % INSTANCES`; the answers in call order.
async fn settle_concurrently(
    apps: &[Arc<App>],
    n: usize,
    call: impl Fn(usize) -> Settle,
) -> Vec<ApiResult<(Settlement, bool)>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let app = apps[i % INSTANCES].clone();
            let Settle { hospital, request } = call(i);
            tokio::spawn(async move { app.settle(hospital, &request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_hundred_settlements_of_one_card_pay_exactly_the_annual_cap() {
    let redis = Redis::start();
    let ruleset = assistance_ruleset("2026-01-01", json!({"ratio_bp": 9000, "annual_cap_fen": 300000}));
    let apps = apps(&redis, &ruleset, &[cardholder_record("C1", "dibao")]).await;
    let answers = settle_concurrently(&apps, 400, |i| spread(i, |hsid| bill(hsid, "C1", 10001, 0))).await;
    let mut relief = 0;
    let mut capped = 0;
    for answer in answers {
        let (s, created) = answer.expect("every settlement is accepted");
        assert!(created);
        assert!(s.check_invariants());
        relief += s.relief_fen;
        capped += usize::from(s.payments[0].capped_by.is_some());
    }
    assert_eq!(relief, 300000, "relief paid to one card must equal its annual cap exactly");
    assert!(capped >= 400 - 33, "all but the first 33 hit the cap (33 * 9001 = 297033)");
    let (_, usage) = apps[0].store.cardholder_with_usage("C1", this_year()).await.unwrap().unwrap();
    let usage: Vec<_> = usage.into_iter().map(|u| (u.program, u.paid_fen, u.deductible_met_fen)).collect();
    assert_eq!(usage, vec![("medical_assistance".to_string(), 300000, 0)]);
    eprintln!("400 concurrent settlements through {INSTANCES} connections: relief {relief}, capped {capped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_retries_settle_once_with_identical_answers() {
    let redis = Redis::start();
    let ruleset = assistance_ruleset("2026-01-01", json!({"ratio_bp": 9000}));
    let apps = apps(&redis, &ruleset, &[cardholder_record("C2", "dibao")]).await;
    let retry = |_| Settle { hospital: "H0001", request: bill("H0001-retry-1", "C2", 12345, 0) };
    let answers: Vec<_> = settle_concurrently(&apps, 50, retry).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers.iter().filter(|(_, created)| *created).count(), 1, "exactly one settlement is created");
    assert!(answers.iter().all(|(s, _)| *s == answers[0].0), "every answer is the same settlement");
    let (_, usage) = apps[0].store.cardholder_with_usage("C2", this_year()).await.unwrap().unwrap();
    let usage: Vec<_> = usage.into_iter().map(|u| (u.program, u.paid_fen, u.deductible_met_fen)).collect();
    assert_eq!(usage, vec![("medical_assistance".to_string(), 11111, 0)]);
    let day = apps[0].today();
    assert_eq!(apps[0].day_totals("H0001", day).await.unwrap().settled_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_shared_by_fifty_cards_is_never_overdrawn() {
    let redis = Redis::start();
    let ruleset = json!({"effective_from": "2026-01-01", "programs": [{"id": "charity", "name": "Charity fund",
        "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"], "annual_pool_fen": 1000003,
        "categories": {"tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100000}}}]});
    let cards: Vec<Cardholder> = (0..50).map(|i| cardholder_record(&format!("P{i}"), "tekun")).collect();
    let apps = apps(&redis, &ruleset, &cards).await;
    let call = |i| spread(i, |hsid| bill(hsid, &format!("P{}", i % 50), 10000, 90001));
    let mut paid = 0;
    let mut by_pool = 0;
    for answer in settle_concurrently(&apps, 200, call).await {
        let (s, _) = answer.unwrap();
        assert!(s.payments[0].paid_fen >= 0 && s.check_invariants());
        paid += s.relief_fen;
        by_pool += usize::from(s.payments[0].capped_by == Some(CappedBy::Pool));
    }
    assert_eq!(paid, 1000003, "the pool is paid out exactly, never more");
    assert_eq!(apps[0].store.program_paid(this_year(), &["charity".to_string()]).await.unwrap(), vec![1000003]);
    let pools = apps[0].pools(None).await.unwrap().pools;
    assert_eq!((pools[0].paid_fen, pools[0].left_fen), (1000003, 0));
    // 50001 fen each: 19 full payments, one partial (capped by pool) and 180 of 0 (capped by pool)
    assert_eq!(by_pool, 181, "settlements that met the dry pool");
    eprintln!(
        "pool of 1000003 fen shared by 50 cards, 200 concurrent settlements: paid {paid}, {by_pool} capped by pool"
    );
}
