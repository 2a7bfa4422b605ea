//! The API's guarantees on a Redis Cluster (3 primaries + 3 replicas of a private `redis-server` each, started by
//! the harness) through two gateway instances, the real binary over mTLS, every write acknowledged by a replica: every golden vector; 400 settlements of
//! one card through sixteen connections pay its annual cap exactly; a pool shared by 50 cards, raced by donations
//! and a withdrawal, is never overdrawn; every acknowledged settlement has exactly one event; each hospital's
//! reconciliation totals equal its detail lines and its answers.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// A loaded 2-core CI machine running six Redis nodes, two gateways and the test may take longer than the default
/// 250 ms to answer: a 504 here would be noise. Every write waits for a replica (`WAIT` after each script, in the
/// same pipeline), as a production cluster would run. The rule caches refresh as by default.
const GATEWAY_TOML: &str = "[redis]\nresponse_timeout_ms = 5000\nmin_replicas_ack = 1\nreplica_ack_timeout_ms = 2000\n";

/// How long the second gateway may take to see a ruleset the first one published (`rules_refresh_ms` = 250).
const RULES_SEEN: Duration = Duration::from_millis(750);

fn two_gateways(cluster: &Cluster, certs: &Arc<Certs>) -> [Gateway; 2] {
    [0, 1].map(|_| Gateway::start_on_cluster(cluster, certs, GATEWAY_TOML))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_golden_vector_on_a_cluster_through_two_gateways() {
    let cluster = Cluster::start();
    let certs = Arc::new(Certs::new());
    let files = golden_files();
    for golden in &files {
        let file = &golden.name;
        cluster.flush();
        let gws = two_gateways(&cluster, &certs);
        seed(&gws[0].client(ADMIN), golden.rulesets(), golden.cardholders()).await;
        tokio::time::sleep(RULES_SEEN).await;
        let clients: Vec<HashMap<&str, Client>> =
            gws.iter().map(|gw| HOSPITALS.iter().map(|h| (*h, gw.client(h))).collect()).collect();
        for (i, step) in golden.steps().iter().enumerate() {
            // the steps alternate between the two instances: what one recorded, the other must see
            let client = &clients[i % 2][step["as"].as_str().unwrap()];
            let path = golden_path(file, step);
            let reply = client.post(path, &step["request"]).await;
            check_expectation(file, i, step, reply.status, &reply.body);
        }
        eprintln!("golden on the cluster: {file}: {} steps ok", golden.steps().len());
    }
    assert_eq!(files.len(), golden_json_count(), "every json file of tests/golden must run");
}

/// `medical_assistance` pays dibao cards 90 % of the in-scope bucket up to 300 000 fen a year; `charity` pays
/// tekun cards half of every bucket, at most 100 000 fen a visit, from a pool of 1 000 003 fen.
fn cap_and_pool_ruleset() -> Value {
    json!({"effective_from": "2026-01-01", "programs": [
        {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
         "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}}},
        {"id": "charity", "name": "Charity fund", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
         "annual_pool_fen": 1000003,
         "categories": {"tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100000}}}]})
}

const POOL_FEN: i64 = 1_000_003;

/// Sixteen connections: both gateways × the four hospitals × two. Each sends one request at a time.
fn hospital_clients(gws: &[Gateway; 2]) -> Vec<(&'static str, Arc<Client>)> {
    let mut clients = Vec::new();
    for gw in gws {
        for h in HOSPITALS {
            clients.extend([0, 1].map(|_| (h, Arc::new(gw.client(h)))));
        }
    }
    clients
}

/// `n` settlements at once, the i-th `bill_of(i)` with the id `<prefix>-<i>` through connection `i % 16`; the
/// 201 answers as (hospital, body). Any other answer fails the test.
async fn settle_all(
    clients: &[(&'static str, Arc<Client>)],
    n: usize,
    prefix: &str,
    bill_of: impl Fn(&str, usize) -> Value,
) -> Vec<(&'static str, Value)> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (hospital, client) = clients[i % clients.len()].clone();
            let bill = bill_of(&format!("{prefix}-{i}"), i);
            tokio::spawn(async move {
                let r = client.post("/v1/settlements", &bill).await;
                assert_eq!(r.status, 201, "{}", r.body);
                (hospital, r.body)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

fn paid_by(settlement: &Value, program: &str) -> i64 {
    let payments = settlement["payments"].as_array().unwrap();
    payments.iter().find(|p| p["program"] == program).map_or(0, |p| p["paid_fen"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caps_pools_events_and_reconciliation_hold_on_a_cluster_with_two_gateways() {
    let cluster = Cluster::start();
    let certs = Arc::new(Certs::new());
    let gws = two_gateways(&cluster, &certs);
    let admin = gws[0].client(ADMIN);
    let mut cards = vec![cardholder("C1", "dibao")];
    cards.extend((0..50).map(|i| cardholder(&format!("P{i}"), "tekun")));
    seed(&admin, &[cap_and_pool_ruleset()], &cards).await;
    tokio::time::sleep(RULES_SEEN).await;
    let clients = hospital_clients(&gws);

    // 400 settlements of one card: the annual cap is paid exactly.
    let capped = settle_all(&clients, 400, "CAP", |id, _| outpatient_bill(id, "C1", 10001, 0)).await;
    let relief: i64 = capped.iter().map(|(_, s)| s["relief_fen"].as_i64().unwrap()).sum();
    assert_eq!(relief, 300_000, "relief paid to one card must equal its annual cap exactly");
    let usage = usage(&gws[1].client(ADMIN), "C1").await;
    assert_eq!(usage[0]["paid_fen"], 300_000, "{usage}");

    // 200 settlements of 50 cards on one pool, raced by five donations and a withdrawal through both gateways.
    let offices: Vec<Arc<Client>> = (0..6).map(|i| Arc::new(gws[i % 2].client(ADMIN))).collect();
    let gifts: Vec<_> = offices
        .iter()
        .enumerate()
        .map(|(i, office)| {
            let office = office.clone();
            let (kind, amount_fen) = if i == 5 { ("withdrawal", 30_000) } else { ("donation", 10_000) };
            tokio::spawn(async move {
                let body = json!({"contribution_id": format!("G{i}"), "year": this_year(), "donor": "区红十字会",
                                  "amount_fen": amount_fen, "kind": kind, "note": "cluster test"});
                let r = office.post("/admin/v1/pools/charity/contributions", &body).await;
                let refused = r.status == 409 && r.body["code"] == "pool_would_overdraw";
                assert!(r.status == 201 || (kind == "withdrawal" && refused), "{}", r.body);
                if r.status == 201 && kind == "withdrawal" {
                    -amount_fen
                } else if r.status == 201 {
                    amount_fen
                } else {
                    0
                }
            })
        })
        .collect();
    let pooled =
        settle_all(&clients, 200, "POOL", |id, i| outpatient_bill(id, &format!("P{}", i % 50), 10000, 90001)).await;
    let mut contributed = 0;
    for g in gifts {
        contributed += g.await.unwrap();
    }
    let pool_paid: i64 = pooled.iter().map(|(_, s)| paid_by(s, "charity")).sum();
    let budget = POOL_FEN + contributed;
    let pools = admin.get(&format!("/admin/v1/pools?year={}", this_year())).await;
    let row = pools.body["pools"].as_array().unwrap().iter().find(|p| p["program"] == "charity").unwrap().clone();
    assert_eq!(row["budget_fen"].as_i64(), Some(budget), "{row}");
    assert_eq!(row["paid_fen"].as_i64(), Some(pool_paid), "the pool's paid total = the sum of the answers: {row}");
    // 200 bills want 50 001 fen each from the pool, far more than any budget here: it ends exhausted, exactly
    assert_eq!(pool_paid, budget, "the pool is paid out exactly, never more");
    assert_eq!(row["left_fen"], 0, "{row}");

    // Every acknowledged settlement has exactly one event, with the answered amounts, read through the other
    // instance.
    let answered: Vec<&(&str, Value)> = capped.iter().chain(&pooled).collect();
    let events = settlement_events(all_events(&gws[1].client(ADMIN), 250).await);
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for e in &events {
        assert_eq!(e["type"], "settlement.settled", "{e}");
        let d = &e["data"];
        let key =
            (d["hospital_id"].as_str().unwrap().to_string(), d["hospital_settlement_id"].as_str().unwrap().into());
        *seen.entry(key).or_default() += 1;
    }
    assert_eq!(events.len(), answered.len(), "one event per acknowledged settlement");
    for (hospital, s) in &answered {
        let key = (hospital.to_string(), s["hospital_settlement_id"].as_str().unwrap().to_string());
        assert_eq!(seen.get(&key), Some(&1), "exactly one event for {key:?}");
    }

    // Each hospital's day: totals = detail lines = what it was answered.
    let date = capped[0].1["settled_at"].as_str().unwrap()[..10].to_string();
    let mut by_hospital: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
    for (hospital, s) in &answered {
        assert_eq!(&s["settled_at"].as_str().unwrap()[..10], date, "the test crossed local midnight; rerun");
        let entry = by_hospital.entry(hospital).or_default();
        entry.0 += 1;
        entry.1 += s["relief_fen"].as_i64().unwrap();
    }
    for (hospital, (count, relief_fen)) in &by_hospital {
        let recon = check_reconciliation(&gws[1].client(hospital), &date).await;
        assert_eq!(recon.totals["settled_count"].as_u64(), Some(*count), "{hospital}: {}", recon.totals);
        assert_eq!(recon.totals["net"]["relief_fen"].as_i64(), Some(*relief_fen), "{hospital}: {}", recon.totals);
    }
    eprintln!(
        "cluster, two gateways: cap {relief} fen over 400 settlements; pool {pool_paid} of {budget} fen over 200 \
         settlements; {} events; {} hospitals reconciled",
        events.len(),
        by_hospital.len()
    );
}
