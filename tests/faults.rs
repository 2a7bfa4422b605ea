//! Faults of the store, through the real HTTPS interface: Redis frozen mid-settle (SIGSTOP) is an unknown outcome
//! answered within the response timeout, and a retry after it resumes settles exactly once; Redis stopped is a fast
//! 503 that writes nothing; /readyz follows Redis.

mod common;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn ruleset() -> Value {
    assistance_ruleset("2026-01-01", json!({"ratio_bp": 9000, "annual_cap_fen": 300000}))
}

fn bill(hsid: &str, card_id: &str, fen: i64) -> Value {
    outpatient_bill(hsid, card_id, fen, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_redis_is_outcome_unknown_and_a_retry_settles_once() {
    // A long health-check interval so that the request itself, not the supervisor, meets the frozen Redis.
    let stack = Stack::start("[redis]\nresponse_timeout_ms = 200\nhealth_check_interval_ms = 60000\n");
    let (redis, gw) = (&stack.redis, &stack.gw);
    seed(&gw.client(ADMIN), &[ruleset()], &[cardholder("C1", "dibao")]).await;
    gw.wait_ready(200, Duration::from_secs(2)).await;
    let h = gw.client("H0001");
    assert_eq!(h.post("/v1/settlements", &bill("warm-1", "C1", 1000)).await.status, 201);

    redis.freeze();
    let started = Instant::now();
    let reply = h.post("/v1/settlements", &bill("frozen-1", "C1", 10001)).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 504, "{}", reply.body);
    assert_eq!(reply.body["code"], "outcome_unknown");
    assert!(waited < Duration::from_millis(700), "answered after {waited:?}, timeout is 200 ms");
    // While Redis stays frozen the breaker is open: further calls are refused at once, before anything is sent.
    let started = Instant::now();
    let refused = h.post("/v1/settlements", &bill("frozen-2", "C1", 10001)).await;
    assert_eq!((refused.status, refused.body["code"].as_str()), (503, Some("unavailable")), "{}", refused.body);
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(refused.headers.contains_key("retry-after"));

    redis.thaw();
    // The frozen request was already in Redis's socket: it runs now. The supervisor reconnects.
    let took = gw.wait_ready(200, Duration::from_secs(5)).await;
    eprintln!("ready again {took:?} after thaw");
    let retry = h.post("/v1/settlements", &bill("frozen-1", "C1", 10001)).await;
    assert!(retry.status == 200 || retry.status == 201, "{}", retry.body);
    let again = h.post("/v1/settlements", &bill("frozen-1", "C1", 10001)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, retry.body, "replays are identical");
    // Exactly one settlement of 10001 fen (9001 relief) besides the warm-up (900 relief); frozen-2 never ran.
    let usage = gw.client(ADMIN).get("/admin/v1/cardholders/C1").await;
    assert_eq!(usage.body["usage"][0]["paid_fen"], json!(900 + 9001), "{}", usage.body);
    let recon = h.get(&format!("/v1/reconciliation?date={}", today())).await;
    assert_eq!(recon.body["settled_count"], json!(2), "{}", recon.body);
    assert_eq!(h.get("/v1/settlements?card_id=C1&hospital_settlement_id=frozen-2").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_redis_is_a_fast_503_and_writes_nothing() {
    // Persistence on, so the state after the outage can be read back from disk after a restart.
    let mut stack = Stack::on(Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"]), "");
    let gw = &stack.gw;
    seed(&gw.client(ADMIN), &[ruleset()], &[cardholder("C2", "dibao")]).await;
    let h = gw.client("H0001");
    assert_eq!(h.post("/v1/settlements", &bill("before-1", "C2", 1000)).await.status, 201);
    let keys_before = stack.redis.data_keys();

    stack.redis.signal("-TERM"); // a clean shutdown: the AOF is complete
    stack.redis.stop();
    let took = gw.wait_ready(503, Duration::from_secs(2)).await;
    eprintln!("/readyz not ready {took:?} after Redis stopped");
    let quote = quote_body("C2", visit_today("outpatient"), amounts(1, 0));
    let reversal = json!({"card_id": "C2", "hospital_settlement_id": "before-1", "reason": "x"});
    for (path, body) in [
        ("/v1/settlements", bill("during-1", "C2", 5000)),
        ("/v1/settlements/quote", quote),
        ("/v1/reversals", reversal),
    ] {
        let started = Instant::now();
        let reply = h.post(path, &body).await;
        let took = started.elapsed();
        assert_eq!((reply.status, reply.body["code"].as_str()), (503, Some("unavailable")), "{path}: {}", reply.body);
        assert!(reply.headers.contains_key("retry-after"));
        assert!(took < Duration::from_millis(100), "{path}: 503 took {took:?}");
    }

    let detail = h.get(&format!("/v1/reconciliation/settlements?date={}", today())).await;
    assert_eq!((detail.status, detail.body["code"].as_str()), (503, Some("unavailable")), "{}", detail.body);

    // Restart Redis on the same port from its AOF: nothing was written during the outage.
    stack.redis.restart();
    gw.wait_ready(200, Duration::from_secs(10)).await;
    assert_eq!(stack.redis.data_keys(), keys_before, "keys changed during the outage");
    let settled = h.get("/v1/settlements?card_id=C2&hospital_settlement_id=before-1").await;
    assert_eq!(settled.body["status"], "settled", "the reversal during the outage must not have applied");
    assert_eq!(h.get("/v1/settlements?card_id=C2&hospital_settlement_id=during-1").await.status, 404);
    assert_eq!(h.post("/v1/settlements", &bill("after-1", "C2", 1000)).await.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_near_overflow_refuses_before_any_write() {
    let stack = Stack::start("");
    let (redis, gw) = (&stack.redis, &stack.gw);
    seed(&gw.client(ADMIN), &[ruleset()], &[cardholder("C3", "dibao")]).await;
    let h = gw.client("H0001");
    let year = this_year();
    // A program's year total beyond 2^62: HINCRBY could overflow half-way through the script.
    redis.cli(&["HSET", "{sg}:program_paid", &format!("{year}:medical_assistance"), "9223372036854775000"]);
    // The settlement id secret is created by the first settlement that needs it, refused or not (a one-time key,
    // no settlement data): create it first, so that the data keys count what the refused settlement wrote.
    redis.cli(&["SET", "{sg}:secret:ids", "0123456789abcdef0123456789abcdef"]);
    let before = redis.data_keys();
    let reply = h.post("/v1/settlements", &bill("limit-1", "C3", 9007199254740991)).await;
    assert_eq!((reply.status, reply.body["code"].as_str()), (500, Some("internal")), "{}", reply.body);
    assert_eq!(redis.data_keys(), before, "nothing may be written");
    assert_eq!(redis.cli(&["HGETALL", "{sg}:{C3}:usage"]).trim(), "");
    // Another program year is not at its limit.
    redis.cli(&["HDEL", "{sg}:program_paid", &format!("{year}:medical_assistance")]);
    assert_eq!(gw.client("H0002").post("/v1/settlements", &bill("limit-3", "C3", 1000)).await.status, 201);
}
