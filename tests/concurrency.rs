//! Concurrency against a real Redis through four separate connections (four `App`s, as four gateway instances
//! would have): caps, pools and idempotency hold under any interleaving because each settlement is one atomic
//! script run.

mod common;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use settlegate::app::App;
use settlegate::domain::bill::SettleRequest;
use settlegate::domain::card::Cardholder;
use settlegate::domain::rules::RulesetInput;
use settlegate::rulebook::RulebookCache;
use settlegate::store::link::Link;
use settlegate::store::Store;

const INSTANCES: usize = 4;

async fn apps(redis: &Redis, ruleset: serde_json::Value, cards: Vec<Cardholder>) -> Vec<Arc<App>> {
    let mut apps = Vec::new();
    for i in 0..INSTANCES {
        let link = Link::new(&redis.url(), Duration::from_secs(1), Duration::from_secs(5), 4096).unwrap();
        link.connect().await.unwrap();
        let store = Arc::new(Store::new(link, Duration::from_secs(5)));
        if i == 0 {
            let input: RulesetInput = serde_json::from_value(ruleset.clone()).unwrap();
            store.publish_ruleset(&input, "2026-01-01T00:00:00+08:00").await.unwrap();
            for chunk in cards.chunks(100) {
                store.put_cardholders(chunk).await.unwrap();
            }
        }
        let rules = Arc::new(RulebookCache::default());
        rules.refresh(&store).await.unwrap();
        apps.push(Arc::new(App { store, rules, tz: chrono_tz::Asia::Shanghai }));
    }
    apps
}

fn card(id: &str, category: &str) -> Cardholder {
    serde_json::from_value(json!({"card_id": id, "category": category, "valid_from": "2026-01-01",
        "valid_until": "2027-12-31", "status": "active", "tags": []}))
    .unwrap()
}

fn bill(hsid: &str, card: &str, in_scope: i64, self_pay: i64) -> SettleRequest {
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    serde_json::from_value(json!({"hospital_settlement_id": hsid, "card_id": card,
        "visit": {"type": "outpatient", "date": today.to_string()},
        "amounts": {"total_fen": in_scope + self_pay, "in_scope_fen": in_scope, "pre_self_pay_fen": 0,
                    "over_limit_fen": 0, "self_pay_fen": self_pay}}))
    .unwrap()
}

fn year() -> i32 {
    chrono::Datelike::year(&chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_hundred_settlements_of_one_card_pay_exactly_the_annual_cap() {
    let redis = Redis::start();
    let ruleset = json!({"effective_from": "2026-01-01", "programs": [{"id": "medical_assistance",
        "name": "Medical assistance", "covers": ["in_scope"],
        "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}}}]});
    let apps = apps(&redis, ruleset, vec![card("C1", "dibao")]).await;
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let app = apps[i % INSTANCES].clone();
            tokio::spawn(async move {
                let hospital = HOSPITALS[i % HOSPITALS.len()];
                app.settle(hospital, &bill(&format!("{hospital}-{i}"), "C1", 10001, 0)).await
            })
        })
        .collect();
    let mut relief = 0;
    let mut capped = 0;
    for t in tasks {
        let (s, created) = t.await.unwrap().expect("every settlement is accepted");
        assert!(created);
        assert!(s.check_invariants());
        relief += s.relief_fen;
        capped += usize::from(s.payments[0].capped_by.is_some());
    }
    assert_eq!(relief, 300000, "relief paid to one card must equal its annual cap exactly");
    assert!(capped >= 400 - 33, "all but the first 33 hit the cap (33 * 9001 = 297033)");
    let (_, usage) = apps[0].store.cardholder_with_usage("C1", year()).await.unwrap().unwrap();
    let usage: Vec<_> = usage.into_iter().map(|u| (u.program, u.paid_fen, u.deductible_met_fen)).collect();
    assert_eq!(usage, vec![("medical_assistance".to_string(), 300000, 0)]);
    eprintln!("400 concurrent settlements through {INSTANCES} connections: relief {relief}, capped {capped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_retries_settle_once_with_identical_answers() {
    let redis = Redis::start();
    let ruleset = json!({"effective_from": "2026-01-01", "programs": [{"id": "medical_assistance",
        "name": "Medical assistance", "covers": ["in_scope"], "categories": {"dibao": {"ratio_bp": 9000}}}]});
    let apps = apps(&redis, ruleset, vec![card("C2", "dibao")]).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = apps[i % INSTANCES].clone();
            tokio::spawn(async move { app.settle("H0001", &bill("H0001-retry-1", "C2", 12345, 0)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap().unwrap());
    }
    assert_eq!(answers.iter().filter(|(_, created)| *created).count(), 1, "exactly one settlement is created");
    assert!(answers.iter().all(|(s, _)| *s == answers[0].0), "every answer is the same settlement");
    let (_, usage) = apps[0].store.cardholder_with_usage("C2", year()).await.unwrap().unwrap();
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
    let cards: Vec<Cardholder> = (0..50).map(|i| card(&format!("P{i}"), "tekun")).collect();
    let apps = apps(&redis, ruleset, cards).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let app = apps[i % INSTANCES].clone();
            tokio::spawn(async move {
                let hospital = HOSPITALS[i % HOSPITALS.len()];
                app.settle(hospital, &bill(&format!("{hospital}-{i}"), &format!("P{}", i % 50), 10000, 90001)).await
            })
        })
        .collect();
    let mut paid = 0;
    let mut by_pool = 0;
    for t in tasks {
        let (s, _) = t.await.unwrap().unwrap();
        assert!(s.payments[0].paid_fen >= 0 && s.check_invariants());
        paid += s.relief_fen;
        by_pool += usize::from(s.payments[0].capped_by == Some(settlegate::domain::split::CappedBy::Pool));
    }
    assert_eq!(paid, 1000003, "the pool is paid out exactly, never more");
    assert_eq!(apps[0].store.program_paid(year(), &["charity".to_string()]).await.unwrap(), vec![1000003]);
    let pools = apps[0].pools(None).await.unwrap().pools;
    assert_eq!((pools[0].paid_fen, pools[0].left_fen), (1000003, 0));
    // 50001 fen each: 19 full payments, one partial (capped by pool) and 180 of 0 (capped by pool)
    assert_eq!(by_pool, 181, "settlements that met the dry pool");
    eprintln!(
        "pool of 1000003 fen shared by 50 cards, 200 concurrent settlements: paid {paid}, {by_pool} capped by pool"
    );
}
