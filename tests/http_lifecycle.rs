//! The gateway as a running service, over the real `settlegate serve` binary and a private Redis per test
//! (docs/API.md): per-hospital rate limits, graceful SIGTERM with requests in flight, ruleset propagation between
//! instances, readiness.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

// ---- rate limit ----------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_per_hospital_with_retry_after() {
    let stack = Stack::start("[rate_limit]\nper_second = 1\nburst = 3\n");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed_worked_example(&admin).await;
    let eligibility = json!({"card_id": "C1", "visit": visit_today("inpatient")});

    // Ten connections of H0001 (connected first, so the burst is only requests), ten requests at once.
    let clients: Vec<Client> = (0..10).map(|_| gw.client("H0001")).collect();
    // Connecting costs requests: refused ones (404 here) count against the quota too, so the warm-up is limited.
    let mut warm_up_limited = 0;
    for c in &clients {
        let r = c.send("GET", "/v1/no-such-route", None, Vec::new()).await.unwrap();
        warm_up_limited += usize::from(r.status == 429);
    }
    assert!(warm_up_limited > 0, "404s are rate-limited as well");
    tokio::time::sleep(Duration::from_millis(3500)).await; // the bucket refills to its burst of 3
    let started = Instant::now();
    let replies = futures_util::future::join_all(clients.iter().map(|c| c.post("/v1/eligibility", &eligibility))).await;
    let elapsed = started.elapsed();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok + limited.len(), 10, "statuses {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(ok >= 1, "nothing was served");
    // burst 3, plus at most one more per elapsed second
    assert!(ok as u64 <= 3 + elapsed.as_secs() + 1, "{ok} served in {elapsed:?} with burst 3, 1/s");
    assert!(!limited.is_empty(), "no 429 in a burst of 10 (served {ok} in {elapsed:?})");
    let mut max_retry = 0;
    for r in &limited {
        assert_problem(r, 429, "rate_limited", "over the burst");
        let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("Retry-After in whole seconds");
        assert!(retry >= 1, "Retry-After {retry}");
        max_retry = max_retry.max(retry);
    }

    // Another hospital has its own quota.
    let other = gw.client("H0002");
    for i in 0..3 {
        let r = other.post("/v1/eligibility", &eligibility).await;
        assert_eq!(r.status, 200, "H0002 request {i}: {}", r.body);
    }
    // The relief office is not a hospital: not limited.
    for _ in 0..5 {
        assert_eq!(admin.get("/admin/v1/rulesets").await.status, 200);
    }

    // Retry-After is truthful: after waiting that long, H0001 is served again.
    tokio::time::sleep(Duration::from_secs(max_retry)).await;
    let r = clients[0].post("/v1/eligibility", &eligibility).await;
    assert_eq!(r.status, 200, "after Retry-After = {max_retry} s: {}", r.body);
}

// ---- SIGTERM with requests in flight -------------------------------------------------------------------------------

/// A small bill (cheap on caps), for load.
fn small_bill(hsid: &str, card_id: &str) -> Value {
    json!({
        "hospital_settlement_id": hsid,
        "card_id": card_id,
        "visit": visit_today("outpatient"),
        "amounts": {"total_fen": 1000, "in_scope_fen": 800, "pre_self_pay_fen": 100, "over_limit_fen": 0,
                    "self_pay_fen": 100},
        "insurance": {"basic_fen": 400}
    })
}

/// What became of one settle request sent during the shutdown.
struct Outcome {
    hsid: String,
    card_id: String,
    /// The HTTP status, or the transport error.
    status: Result<u16, String>,
    at: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_exits_0() {
    const CONNECTIONS: usize = 25;
    const PER_CONNECTION_MAX: usize = 400;
    let Stack { gw, redis } = Stack::start("");
    let admin = gw.client(ADMIN);
    let cards: Vec<Value> = (0..CONNECTIONS).map(|i| cardholder(&format!("SIG{i}"), "dibao")).collect();
    seed(&admin, &[worked_ruleset()], &cards).await;

    // Connections open before the load starts.
    let clients: Vec<Arc<Client>> = (0..CONNECTIONS).map(|_| Arc::new(gw.client("H0001"))).collect();
    for c in &clients {
        assert_eq!(c.get(&format!("/v1/reconciliation?date={}", today())).await.status, 200);
    }
    let created = Arc::new(AtomicUsize::new(0));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let mut tasks = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let (client, created, outcomes) = (client.clone(), created.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            let card_id = format!("SIG{i}");
            for n in 0..PER_CONNECTION_MAX {
                let hsid = format!("SIG-{i}-{n}");
                let body = serde_json::to_vec(&small_bill(&hsid, &card_id)).unwrap();
                let result = client.send("POST", "/v1/settlements", Some("application/json"), body).await;
                let status = result.as_ref().map(|r| r.status).map_err(|e| e.clone());
                if status == Ok(201) {
                    created.fetch_add(1, Ordering::SeqCst);
                }
                let stop = status.is_err();
                outcomes.lock().unwrap().push(Outcome { hsid, card_id: card_id.clone(), status, at: Instant::now() });
                if stop {
                    break; // the gateway closed the connection, or refuses new ones: it is shutting down
                }
            }
        }));
    }

    // SIGTERM once the load is well under way.
    let certs = gw.certs.clone();
    let mut gw = gw;
    let counter = created.clone();
    let (signalled_at, status) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while counter.load(Ordering::SeqCst) < 50 {
            assert!(Instant::now() < deadline, "the load never got going");
            std::thread::sleep(Duration::from_millis(5));
        }
        let at = Instant::now();
        (at, gw.terminate())
    })
    .await
    .unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(status.success(), "exit status after SIGTERM: {status:?}");

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let answered: Vec<&Outcome> = outcomes.iter().filter(|o| o.status.is_ok()).collect();
    let not_2xx: Vec<_> = answered.iter().filter(|o| o.status != Ok(201)).map(|o| (&o.hsid, &o.status)).collect();
    assert!(not_2xx.is_empty(), "requests answered with something other than 201: {not_2xx:?}");
    let after_signal = answered.iter().filter(|o| o.at > signalled_at).count();
    let cut: Vec<_> = outcomes.iter().filter_map(|o| o.status.as_ref().err()).collect();
    assert!(after_signal >= 1, "no request was answered after SIGTERM: nothing was in flight?");
    assert!(cut.len() <= CONNECTIONS, "more transport errors than connections: {cut:?}");
    eprintln!(
        "SIGTERM: {} answered 201 ({} after the signal), {} ended by the shutdown: {:?}",
        answered.len(),
        after_signal,
        cut.len(),
        cut.iter().take(3).collect::<Vec<_>>()
    );

    // What the store recorded, through a second gateway on the same Redis: exactly the 201s.
    let gw2 = Gateway::start(&redis.url(), &certs, "");
    let h = gw2.client("H0001");
    let mut recorded = 0;
    for Outcome { hsid, card_id, status, .. } in &outcomes {
        let r = h.get(&format!("/v1/settlements?card_id={card_id}&hospital_settlement_id={hsid}")).await;
        match (status, r.status) {
            (Ok(201), 200) => recorded += 1,
            (Ok(201), other) => panic!("{hsid} was answered 201 but is not recorded ({other}: {})", r.body),
            (Err(e), 200) => panic!("{hsid} was applied but its response was cut off ({e})"),
            (Err(_), 404) => {}
            (s, other) => panic!("{hsid}: answered {s:?}, lookup {other}: {}", r.body),
        }
    }
    assert_eq!(recorded, answered.len());
    // The same from the reconciliation of the day(s) involved.
    let mut counted = 0;
    for day in [today(), today() - chrono::Days::new(1)] {
        let r = h.get(&format!("/v1/reconciliation?date={day}")).await;
        counted += r.body["settled_count"].as_u64().unwrap_or(0);
    }
    assert_eq!(usize::try_from(counted).unwrap(), answered.len(), "reconciliation settled_count");
}

// ---- a ruleset published on one instance is used by another within 1 s -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruleset_published_on_one_instance_is_used_by_another_within_1s() {
    let Stack { gw: a, redis } = Stack::start("");
    let admin_a = a.client(ADMIN);
    let ruleset = |from: &str, ratio: u32| assistance_ruleset(from, json!({"ratio_bp": ratio}));
    seed(&admin_a, &[ruleset("2020-01-01", 9000)], &[cardholder("C1", "dibao")]).await;
    let b = Gateway::start(&redis.url(), &a.certs, "");
    let hb = b.client("H0002");
    let quote = quote_body("C1", visit_today("inpatient"), amounts(10000, 0));
    let r = hb.post("/v1/settlements/quote", &quote).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["ruleset_version"].as_u64(), r.body["relief_fen"].as_i64()),
        (Some(1), Some(9000)),
        "{}",
        r.body
    );

    // v2: half the ratio, effective before the visit date.
    let sent = Instant::now();
    let published = admin_a.post("/admin/v1/rulesets", &ruleset("2021-01-01", 5000)).await;
    let answered = Instant::now();
    assert_eq!(published.status, 201, "{}", published.body);
    assert_eq!(published.body["version"], 2);
    let seen = loop {
        let r = hb.post("/v1/settlements/quote", &quote).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["ruleset_version"] == 2 {
            assert_eq!(r.body["relief_fen"], 5000, "v2's ratio: {}", r.body);
            break Instant::now();
        }
        assert_eq!(r.body["ruleset_version"], 1, "{}", r.body);
        assert!(answered.elapsed() < Duration::from_secs(5), "instance B never used v2");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let lag = seen - answered;
    eprintln!("ruleset v2: used by instance B {lag:?} after the publish answer ({:?} after it was sent)", seen - sent);
    assert!(lag <= Duration::from_millis(1000), "instance B used v2 only after {lag:?}");
    // B's eligibility agrees.
    let r = hb.post("/v1/eligibility", &json!({"card_id": "C1", "visit": visit_today("inpatient")})).await;
    assert_eq!(r.body["ruleset_version"], 2, "{}", r.body);
}

// ---- readiness -----------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_200_once_a_ruleset_is_loaded() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    assert_eq!(gw.ops_get("/healthz").await.status, 200);
    let ready = gw.ops_get("/readyz").await;
    assert_eq!(ready.status, 503, "ready without any ruleset: {}", ready.body);
    seed(&gw.client(ADMIN), &[worked_ruleset()], &[]).await;
    gw.wait_ready(200, Duration::from_secs(2)).await;
    let metrics = gw.ops_get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = &metrics.body;
    assert!(text.contains("settlegate_http_requests_total"), "metrics: {}", &text[..text.len().min(500)]);
}
