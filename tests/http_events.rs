//! The event stream, `insurance.settlement_ref`, operators and card history (docs/API.md "Version 2") over the real
//! binary, real mTLS and a private Redis: every acknowledged change has exactly one event with the answered
//! amounts, refusals have none, paging gives the same sequence twice, and a gateway killed with SIGKILL mid-run
//! loses no event.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};

/// A loaded CI machine may take longer than the default 250 ms to answer: a 504 here would only be noise.
const SLOW_REDIS_OK: &str = "[redis]\nresponse_timeout_ms = 5000\n";

const CARDS: [&str; 5] = ["C1", "C2", "C3", "C4", "C5"];

async fn seed_cards(admin: &Client) {
    let mut cards: Vec<Value> = CARDS.iter().map(|c| cardholder(c, "dibao")).collect();
    let mut suspended = cardholder("C-SUSPENDED", "dibao");
    suspended["status"] = json!("suspended");
    cards.push(suspended);
    seed(admin, &[worked_ruleset()], &cards).await;
}

fn fen(n: usize) -> i64 {
    i64::try_from(n).unwrap()
}

/// (hospital, hospital_settlement_id) of a settlement or cancellation event.
fn event_key(e: &Value) -> (String, String) {
    let d = &e["data"];
    (d["hospital_id"].as_str().unwrap().to_string(), d["hospital_settlement_id"].as_str().unwrap().to_string())
}

/// What the answers acknowledged, per (hospital, id).
#[derive(Default, Debug)]
struct Acked {
    /// The 201 body (at most one may exist).
    created: Option<Value>,
    creations: usize,
    reversed: bool,
    cancelled: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_event_per_acknowledged_change_under_concurrency() {
    let stack = Stack::start(SLOW_REDIS_OK);
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed_cards(&admin).await;
    let hospitals = &HOSPITALS[..3];
    let mut tasks = Vec::new();
    // 30 connections (10 per hospital), 10 calls each: 300 calls in flight together
    for worker in 0..30usize {
        let h = hospitals[worker % 3];
        let client = Arc::new(gw.client(h));
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for step in 0..10usize {
                let i = worker / 3 * 10 + step; // per hospital 0..100
                let card = CARDS[i % CARDS.len()];
                let id = |k: usize| format!("{h}-{k}");
                let (key, reply) = match i % 10 {
                    0..=4 => {
                        (id(i), client.post("/v1/settlements", &outpatient_bill(&id(i), card, fen(1000 + i), 50)).await)
                    }
                    // a retry of an earlier call (same request): replay, or the first arrival
                    // ids of the previous block, which another connection of this hospital is working on
                    5 => {
                        let k = (i + 100 - 15) % 100;
                        let body = outpatient_bill(&id(k), CARDS[k % CARDS.len()], fen(1000 + k), 50);
                        (id(k), client.post("/v1/settlements", &body).await)
                    }
                    6 => (id(i), client.post("/v1/settlements", &outpatient_bill(&id(i), "C404", 1000, 0)).await),
                    // 400 and 422 refusals
                    7 if i % 20 == 7 => {
                        (id(i), client.post("/v1/settlements", &outpatient_bill(&id(i), card, -1, 0)).await)
                    }
                    7 => (id(i), client.post("/v1/settlements", &outpatient_bill(&id(i), "C-SUSPENDED", 900, 0)).await),
                    8 => {
                        let k = (i + 100 - 18) % 100;
                        let body = json!({"card_id": CARDS[k % CARDS.len()], "hospital_settlement_id": id(k),
                                          "reason": "visit cancelled", "operator": {"id": "desk-2", "name": "李"}});
                        (id(k), client.post("/v1/reversals", &body).await)
                    }
                    // the same id with another request: a conflict (or the first arrival)
                    _ => {
                        let k = (i + 100 - 18) % 100;
                        let body = outpatient_bill(&id(k), CARDS[k % CARDS.len()], 7777, 0);
                        let r = client.post("/v1/settlements", &body).await;
                        answers.push((h, id(k), r));
                        let cancel = json!({"card_id": card, "hospital_settlement_id": format!("{h}-x{i}")});
                        (format!("{h}-x{i}"), client.post("/v1/reversals", &cancel).await)
                    }
                };
                answers.push((h, key, reply));
            }
            answers
        }));
    }
    let mut acked: BTreeMap<(String, String), Acked> = BTreeMap::new();
    let mut refused: HashSet<(String, String)> = HashSet::new();
    let mut calls = 0;
    for t in tasks {
        for (h, key, r) in t.await.unwrap() {
            calls += 1;
            let k = (h.to_string(), key);
            match (r.status, r.body["status"].as_str()) {
                (201, _) => {
                    let a = acked.entry(k).or_default();
                    a.creations += 1;
                    a.created = Some(r.body.clone());
                }
                (200, Some("settled")) => {
                    acked.entry(k).or_default();
                }
                (200, Some("reversed")) => acked.entry(k).or_default().reversed = true,
                (200, Some("reversed_before_settled")) => acked.entry(k).or_default().cancelled = true,
                (400 | 404 | 409 | 422, _) => {
                    refused.insert(k);
                }
                other => panic!("unexpected answer {other:?}: {}", r.body),
            }
        }
    }
    assert_eq!(calls, 330);
    let everything = all_events(&admin, 7).await;
    let again = all_events(&admin, 10_000).await;
    let ids = |v: &[Value]| v.iter().map(|e| e["event_id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&everything), ids(&again), "the same sequence when read again");
    assert_eq!(everything, again, "the same events when read again");
    // the seed's office writes: one ruleset, six cardholders, each with its event
    let types: Vec<&str> = everything.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.iter().filter(|t| **t == "ruleset.published").count(), 1);
    assert_eq!(types.iter().filter(|t| **t == "cardholder.put").count(), CARDS.len() + 1);
    let put = everything.iter().find(|e| e["type"] == "cardholder.put").unwrap();
    assert_eq!(put["data"]["card_id"], "C1", "the card as stored: {put}");
    let published = everything.iter().find(|e| e["type"] == "ruleset.published").unwrap();
    assert_eq!(published["data"]["version"], 1, "the ruleset as published: {published}");
    let events = settlement_events(everything);

    let mut seen: HashMap<(String, String), Vec<&str>> = HashMap::new();
    for e in &events {
        seen.entry(event_key(e)).or_default().push(e["type"].as_str().unwrap());
    }
    let mut expected_total = 0;
    for (k, a) in &acked {
        assert!(a.creations <= 1, "{k:?} created {} times", a.creations);
        let types = seen.get(k).cloned().unwrap_or_default();
        let want: Vec<&str> = [
            (a.created.is_some(), "settlement.settled"),
            (a.cancelled, "settlement.cancelled_before_arrival"),
            (a.reversed, "settlement.reversed"),
        ]
        .iter()
        .filter(|(yes, _)| *yes)
        .map(|(_, t)| *t)
        .collect();
        assert_eq!(types, want, "events of {k:?}");
        expected_total += want.len();
        if let Some(body) = &a.created {
            let e =
                events.iter().find(|e| e["type"] == "settlement.settled" && event_key(e) == *k).expect("settled event");
            for f in ["settlement_id", "total_fen", "insurance_fen", "relief_fen", "patient_fen", "payments", "card_id"]
            {
                assert_eq!(e["data"][f], body[f], "{k:?} {f}");
            }
            assert_eq!(e["at"], body["settled_at"]);
        }
    }
    for k in &refused {
        if !acked.contains_key(k) {
            assert!(!seen.contains_key(k), "a refused call has an event: {k:?}");
        }
    }
    assert_eq!(events.len(), expected_total, "no event without an acknowledged change");
    let reversed = events.iter().find(|e| e["type"] == "settlement.reversed").expect("some reversal");
    assert_eq!(reversed["data"]["status"], "reversed");
    assert_eq!(reversed["data"]["reason"], "visit cancelled");
    assert_eq!(reversed["data"]["reversed_by"], json!({"id": "desk-2", "name": "李"}));
    // a cursor that was not handed out, and a limit out of range
    assert_problem(&admin.get("/admin/v1/events?after=zzz").await, 400, "invalid_request", "bad cursor");
    assert_problem(&admin.get("/admin/v1/events?limit=0").await, 400, "invalid_request", "limit 0");
    assert_problem(&admin.get("/admin/v1/events?limit=10001").await, 400, "invalid_request", "limit 10001");
    assert_problem(&gw.client("H0001").get("/admin/v1/events").await, 403, "forbidden", "hospital");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_insurance_ref_funds_one_standing_settlement() {
    let stack = Stack::start(SLOW_REDIS_OK);
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed_cards(&admin).await;
    let with_ref = |hsid: &str, card: &str| {
        let mut b = outpatient_bill(hsid, card, 1000, 0);
        b["insurance"] = json!({"settlement_ref": "SETL-0001"});
        b["operator"] = json!({"id": "cashier-07", "name": "王丽"});
        b
    };
    let mut tasks = Vec::new();
    for i in 0..50usize {
        let h = HOSPITALS[i % 2];
        let client = gw.client(h);
        let body = with_ref(&format!("{h}-r{i}"), CARDS[i % CARDS.len()]);
        tasks.push(tokio::spawn(async move {
            let r = client.post("/v1/settlements", &body).await;
            (h, body, r)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (h, body, r) = t.await.unwrap();
        match r.status {
            201 => winners.push((h, body, r.body)),
            409 => assert_eq!(r.body["code"], "insurance_ref_reused", "{}", r.body),
            s => panic!("status {s}: {}", r.body),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of 50 holds the ref");
    let (h, body, won) = winners.pop().unwrap();
    assert_eq!(won["insurance_settlement_ref"], "SETL-0001");
    assert_eq!(won["operator"], json!({"id": "cashier-07", "name": "王丽"}));
    let client = gw.client(h);
    // a retry of the holder replays, from another terminal too (operator is not part of the request)
    let mut retry = body.clone();
    retry["operator"] = json!({"id": "cashier-08"});
    let r = client.post("/v1/settlements", &retry).await;
    assert_eq!((r.status, r.header("idempotent-replayed")), (200, Some("true")), "{}", r.body);
    assert_eq!(r.body["operator"], json!({"id": "cashier-07", "name": "王丽"}), "the recorded operator");
    // a quote with the held ref says so; refusals wrote nothing
    let mut quote = with_ref("ignored", "C1");
    quote.as_object_mut().unwrap().remove("hospital_settlement_id");
    assert_problem(&client.post("/v1/settlements/quote", &quote).await, 409, "insurance_ref_reused", "quote");
    let events = settlement_events(all_events(&admin, 1000).await);
    assert_eq!(events.len(), 1, "one event for one settlement: {events:?}");
    // reversing the holder frees the ref
    let rev = json!({"card_id": body["card_id"], "hospital_settlement_id": body["hospital_settlement_id"]});
    assert_eq!(client.post("/v1/reversals", &rev).await.status, 200);
    let again = client.post("/v1/settlements", &with_ref("after-reversal", "C2")).await;
    assert_eq!(again.status, 201, "{}", again.body);
    // invalid refs and operators are 400 and write nothing
    let mut bad = with_ref("bad-1", "C1");
    bad["insurance"]["settlement_ref"] = json!("has space");
    assert_invalid(&client.post("/v1/settlements", &bad).await, "insurance.settlement_ref", "bad ref");
    let mut bad = with_ref("bad-2", "C1");
    bad["operator"] = json!({"id": "x", "name": "n".repeat(65)});
    assert_invalid(&client.post("/v1/settlements", &bad).await, "operator.name", "long name");
    let mut bad = with_ref("bad-3", "C1");
    bad["operator"] = json!({"name": "no id"});
    assert_problem(&client.post("/v1/settlements", &bad).await, 400, "invalid_request", "no operator id");
    let events = settlement_events(all_events(&admin, 1000).await);
    assert_eq!(events.len(), 3, "settled, reversed, settled: nothing for the refusals");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cards_history_office_and_hospital_views() {
    let stack = Stack::start(SLOW_REDIS_OK);
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed_cards(&admin).await;
    let (h1, h2) = (gw.client("H0001"), gw.client("H0002"));
    for (i, c) in [&h1, &h2, &h1].iter().enumerate() {
        let r = c.post("/v1/settlements", &outpatient_bill(&format!("hist-{i}"), "C1", fen(1000 + i), 0)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(h2.post("/v1/settlements", &outpatient_bill("other-card", "C2", 1000, 0)).await.status, 201);
    let office = admin.get("/admin/v1/cardholders/C1/settlements").await;
    assert_eq!(office.status, 200, "{}", office.body);
    assert_eq!(office.body["card_id"], "C1");
    assert_eq!(office.body["year"], this_year());
    let list = office.body["settlements"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = list
        .iter()
        .map(|s| (s["hospital_id"].as_str().unwrap(), s["hospital_settlement_id"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [("H0001", "hist-2"), ("H0002", "hist-1"), ("H0001", "hist-0")], "newest first, every hospital");
    let own = h1.get("/v1/settlements?card_id=C1").await;
    assert_eq!(own.status, 200, "{}", own.body);
    let ids: Vec<&str> = own.body["settlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["hospital_settlement_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hist-2", "hist-0"], "only the calling hospital's");
    assert!(own.body["settlements"][0].get("hospital_id").is_none());
    // a percent-encoded path names the same card (`%31` is `1`)
    let encoded = admin.get("/admin/v1/cardholders/C%31/settlements").await;
    assert_eq!((encoded.status, &encoded.body), (200, &office.body), "C%31 is C1");
    let other_year = admin.get(&format!("/admin/v1/cardholders/C1/settlements?year={}", this_year() - 1)).await;
    assert_eq!(other_year.body["settlements"], json!([]));
    assert_problem(&admin.get("/admin/v1/cardholders/C404/settlements").await, 404, "card_not_found", "unknown");
    assert_eq!(h1.get("/v1/settlements?card_id=C404").await.body, json!({"settlements": []}));
    assert_problem(&h1.get("/admin/v1/cardholders/C1/settlements").await, 403, "forbidden", "hospital");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_run_loses_no_event() {
    let redis = Redis::start();
    let certs = Arc::new(Certs::new());
    let gw = Gateway::start(&redis.url(), &certs, SLOW_REDIS_OK);
    seed_cards(&gw.client(ADMIN)).await;
    let port = gw.port;
    let bill = |i: usize| {
        let h = HOSPITALS[i % 3];
        (h, outpatient_bill(&format!("{h}-k{i}"), CARDS[i % CARDS.len()], fen(500 + i), 10))
    };
    // 8 connections settle 400 bills; the gateway is killed once 120 are answered
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let certs = certs.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut clients = HashMap::new();
            let mut answers = Vec::new();
            for i in (w..400).step_by(8) {
                let (h, body) = bill(i);
                let client = clients.entry(h).or_insert_with(|| {
                    let id = certs.identity(h);
                    Client::new(port, &id.cert, &id.key, &certs.ca())
                });
                let r = client.send(
                    "POST",
                    "/v1/settlements",
                    Some("application/json"),
                    serde_json::to_vec(&body).unwrap(),
                );
                answers.push((i, r.await.ok().map(|r| (r.status, r.body))));
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            answers
        }));
    }
    while done.load(std::sync::atomic::Ordering::Relaxed) < 120 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let status = std::process::Command::new("kill").args(["-KILL", &gw.pid().to_string()]).status().unwrap();
    assert!(status.success());
    let mut answered: HashMap<usize, Value> = HashMap::new();
    let mut unknown = Vec::new();
    for t in tasks {
        for (i, r) in t.await.unwrap() {
            match r {
                Some((201, body)) => {
                    answered.insert(i, body);
                }
                Some((s, body)) => panic!("status {s} before the kill: {body}"),
                None => unknown.push(i),
            }
        }
    }
    assert!(!answered.is_empty() && !unknown.is_empty(), "killed mid-run: {} answered", answered.len());
    // a new instance; the hospitals retry what they did not hear back (same id, same request)
    let gw2 = Gateway::start(&redis.url(), &certs, SLOW_REDIS_OK);
    for &i in &unknown {
        let (h, body) = bill(i);
        let r = gw2.client(h).post("/v1/settlements", &body).await;
        assert!(r.status == 201 || r.status == 200, "retry {i}: {} {}", r.status, r.body);
        answered.insert(i, r.body);
    }
    let events = settlement_events(all_events(&gw2.client(ADMIN), 500).await);
    assert_eq!(events.len(), 400, "one event per settlement, none lost, none doubled");
    let by_key: HashMap<(String, String), &Value> = events.iter().map(|e| (event_key(e), e)).collect();
    assert_eq!(by_key.len(), 400);
    for (i, body) in &answered {
        let (h, _) = bill(*i);
        let key = (h.to_string(), body["hospital_settlement_id"].as_str().unwrap().to_string());
        let e = by_key.get(&key).unwrap_or_else(|| panic!("no event for {key:?}"));
        assert_eq!(e["type"], "settlement.settled");
        for f in ["settlement_id", "relief_fen", "patient_fen", "payments"] {
            assert_eq!(e["data"][f], body[f], "{key:?} {f}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_retention_are_trimmed_and_the_rest_kept() {
    let stack =
        Stack::start("[events]\nretention_days = 1\ntrim_interval_ms = 1000\n[redis]\nresponse_timeout_ms = 5000\n");
    let (gw, redis) = (&stack.gw, &stack.redis);
    let admin = gw.client(ADMIN);
    // two days old, and 1 hour old, as entries written by the office with ready data
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (age_ms, label) in [(2 * 86_400_000, "old"), (3_600_000, "recent")] {
        let id = format!("{}-0", now_ms - age_ms);
        let data = json!({"label": label}).to_string();
        redis.cli(&[
            "XADD",
            "{sg}:events",
            &id,
            "type",
            "clearing.created",
            "at",
            "2026-01-01T00:00:00+08:00",
            "data",
            &data,
        ]);
    }
    seed_cards(&admin).await;
    assert_eq!(gw.client("H0001").post("/v1/settlements", &outpatient_bill("t-1", "C1", 1000, 0)).await.status, 201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events: Vec<Value> = all_events(&admin, 100)
            .await
            .into_iter()
            .filter(|e| {
                let t = e["type"].as_str().unwrap();
                !t.starts_with("cardholder.") && !t.starts_with("audit.") && t != "ruleset.published"
            })
            .collect();
        let labels: Vec<&Value> = events.iter().map(|e| &e["data"]["label"]).collect();
        if events.len() == 2 {
            assert_eq!(labels[0], "recent", "the old one went first");
            assert_eq!(events[1]["type"], "settlement.settled");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not trimmed: {events:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let metrics = gw.ops_get("/metrics").await.body;
    assert!(metrics.contains("settlegate_events_trimmed_total 1"), "{metrics}");
}
