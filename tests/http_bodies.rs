//! What a request may carry, over the real `settlegate serve` binary and a private Redis per test (docs/API.md):
//! strict JSON bodies (every bad field named, nothing stored), body size and content type limits, and request ids.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{json, Value};

const TWO_53: i64 = 9_007_199_254_740_992;

/// A bad body, and the field the 400 must name first.
struct BadBody {
    what: &'static str,
    body: Value,
    field: &'static str,
}

/// The worked example's bill with one change each, for the 400s.
fn bad_bodies(good: &Value) -> Vec<BadBody> {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let case = |what, body, field| BadBody { what, body, field };
    vec![
        case("unknown top-level field", with(&|b| b["discount_fen"] = json!(5)), "discount_fen"),
        case("unknown field in amounts", with(&|b| b["amounts"]["tip_fen"] = json!(5)), "amounts.tip_fen"),
        case("string amount", with(&|b| b["amounts"]["total_fen"] = json!("2000000")), "amounts.total_fen"),
        case(
            "negative amount",
            with(&|b| {
                b["amounts"]["over_limit_fen"] = json!(-20000);
                b["amounts"]["self_pay_fen"] = json!(190000);
            }),
            "amounts.over_limit_fen",
        ),
        case("float amount", with(&|b| b["amounts"]["self_pay_fen"] = json!(1.5)), "amounts.self_pay_fen"),
        case(
            "2^53 as total",
            with(&|b| {
                b["amounts"] = json!({"total_fen": TWO_53, "in_scope_fen": TWO_53 - 1, "pre_self_pay_fen": 1,
                                  "over_limit_fen": 0, "self_pay_fen": 0});
            }),
            "amounts.total_fen",
        ),
        case("2^53 as insurance", with(&|b| b["insurance"]["other_fen"] = json!(TWO_53)), "insurance.other_fen"),
        case("buckets do not add up", with(&|b| b["amounts"]["total_fen"] = json!(2000001)), "amounts.total_fen"),
        case("insurance above in_scope", with(&|b| b["insurance"]["basic_fen"] = json!(1799999)), "insurance"),
        case("bad date", with(&|b| b["visit"]["date"] = json!("2026-02-30")), "visit.date"),
        case("date not a date", with(&|b| b["visit"]["date"] = json!("yesterday")), "visit.date"),
        case(
            "visit 3 days in the future",
            with(&|b| b["visit"]["date"] = json!((today() + chrono::Days::new(3)).to_string())),
            "visit.date",
        ),
        case("unknown visit type", with(&|b| b["visit"]["type"] = json!("spa")), "visit.type"),
        case(
            "bad hospital_settlement_id",
            with(&|b| b["hospital_settlement_id"] = json!("has space")),
            "hospital_settlement_id",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settlement_bodies_are_refused_and_change_nothing() {
    let stack = Stack::on(Redis::start_with_digest(), "[limits]\nmax_body_bytes = 4096\n");
    let (gw, redis) = (&stack.gw, &stack.redis);
    let admin = gw.client(ADMIN);
    seed_worked_example(&admin).await;
    let h = gw.client("H0001");
    let usage_before = usage(&admin, "C1").await;
    let before = redis.state();

    let good = worked_bill("BAD-1", "C1");
    let post_raw = |body: Vec<u8>, ct: &'static str| {
        let h = &h;
        async move { h.send("POST", "/v1/settlements", Some(ct), body).await.unwrap() }
    };

    // Malformed JSON.
    let r = post_raw(br#"{"hospital_settlement_id": "BAD-1", "card_id": "#.to_vec(), "application/json").await;
    assert_invalid(&r, "card_id", "truncated JSON (the value being read when the body ended)");
    let r = post_raw(b"not json".to_vec(), "application/json").await;
    assert_invalid(&r, "body", "not JSON");

    let cases = bad_bodies(&good);
    let mut wrong = Vec::new();
    for BadBody { what, body, field } in &cases {
        let r = h.post("/v1/settlements", body).await;
        eprintln!("{what}: {} {}", r.status, r.body["errors"]);
        let ok = r.status == 400
            && r.body["code"] == "invalid_request"
            && r.header("content-type") == Some("application/problem+json")
            && r.body["errors"][0]["field"] == *field;
        if !ok {
            wrong.push(format!("{what}: want 400 invalid_request naming {field:?}, got {} {}", r.status, r.body));
        }
    }
    assert!(wrong.is_empty(), "{} of {} bad bodies answered wrongly:\n{}", wrong.len(), cases.len(), wrong.join("\n"));

    // Over limits.max_body_bytes (4096 here): with a Content-Length, and streamed without one.
    let mut big = good.clone();
    big["card_id"] = json!("C".repeat(5000));
    let r = post_raw(serde_json::to_vec(&big).unwrap(), "application/json").await;
    assert_problem(&r, 413, "payload_too_large", "5 kB body with Content-Length");
    let json_type = [("content-type", "application/json")];
    let r = gw
        .request_as("H0001", "POST", "/v1/settlements", &json_type, chunked(vec![b' '; 1024], 6))
        .await
        .expect("chunked request");
    assert_problem(&r, 413, "payload_too_large", "6 kB chunked body");

    // Wrong content type, with a body that would otherwise settle.
    let r = post_raw(serde_json::to_vec(&good).unwrap(), "text/plain").await;
    assert_problem(&r, 415, "unsupported_media_type", "text/plain");
    let r = h.send("POST", "/v1/settlements", None, serde_json::to_vec(&good).unwrap()).await.unwrap();
    assert_problem(&r, 415, "unsupported_media_type", "no content type");

    // Nothing was stored by any of them.
    assert_eq!(redis.state(), before, "a refused request changed the store");
    assert_eq!(usage(&admin, "C1").await, usage_before);
    let r = h.get("/v1/settlements?card_id=C1&hospital_settlement_id=BAD-1").await;
    assert_problem(&r, 404, "not_found", "lookup of the refused id");

    // Controls: 2^53 − 1 is accepted (quote, stores nothing); a padded body under the limit and the
    // `application/json; charset=utf-8` form are accepted; the same good body then settles.
    let max = TWO_53 - 1;
    let mut q = good.clone();
    q.as_object_mut().unwrap().remove("hospital_settlement_id");
    q["amounts"] = amounts(max, 0);
    q["insurance"] = json!({});
    let r = h.post("/v1/settlements/quote", &q).await;
    assert_eq!(r.status, 200, "quote at 2^53-1: {}", r.body);
    let total = ["insurance_fen", "relief_fen", "patient_fen"]
        .iter()
        .map(|k| i128::from(r.body[*k].as_i64().unwrap()))
        .sum::<i128>();
    assert_eq!(total, i128::from(max), "payers must add up at 2^53-1: {}", r.body);
    assert_eq!(redis.state(), before, "a quote changed the store");
    let mut padded = serde_json::to_vec(&good).unwrap();
    padded.extend(vec![b' '; 3000]);
    let r = post_raw(padded, "application/json; charset=utf-8").await;
    assert_eq!(r.status, 201, "a valid 3.6 kB body: {}", r.body);
    assert_ne!(usage(&admin, "C1").await, usage_before);
}

/// A missing field is named in `errors[0].field` like every other bad field (`card_id`, `amounts.self_pay_fen`),
/// not as its enclosing object (`body`, `amounts`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_fields_are_named() {
    let stack = Stack::on(Redis::start_with_digest(), "");
    let (gw, redis) = (&stack.gw, &stack.redis);
    seed_worked_example(&gw.client(ADMIN)).await;
    let h = gw.client("H0001");
    let before = redis.state();
    let without = |path: &[&str]| {
        let mut b = worked_bill("MISSING-1", "C1");
        let (last, parents) = path.split_last().unwrap();
        let mut node = &mut b;
        for p in parents {
            node = &mut node[*p];
        }
        node.as_object_mut().unwrap().remove(*last).expect("field present");
        b
    };
    let mut wrong = Vec::new();
    for (path, field) in [
        (&["card_id"][..], "card_id"),
        (&["hospital_settlement_id"][..], "hospital_settlement_id"),
        (&["visit"][..], "visit"),
        (&["amounts"][..], "amounts"),
        (&["visit", "date"][..], "visit.date"),
        (&["amounts", "self_pay_fen"][..], "amounts.self_pay_fen"),
    ] {
        let r = h.post("/v1/settlements", &without(path)).await;
        assert_problem(&r, 400, "invalid_request", field);
        if r.body["errors"][0]["field"] != field {
            wrong.push(format!("without {field}: errors = {}", r.body["errors"]));
        }
    }
    assert_eq!(redis.state(), before, "a refused request changed the store");
    assert!(wrong.is_empty(), "missing fields not named in errors[0].field:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_is_echoed_or_generated() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    seed_worked_example(&gw.client(ADMIN)).await;
    let path = format!("/v1/reconciliation?date={}", today());

    let none = || fixed(Vec::new());
    let r = gw.request_as("H0001", "GET", &path, &[("x-request-id", "hosp-req-0042")], none()).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("hosp-req-0042"));
    // Also on errors: 404, 403, 400.
    let r = gw.request_as("H0001", "GET", "/v1/settlements/s1_nope", &[("x-request-id", "rid-404")], none()).await;
    let r = r.unwrap();
    assert_eq!((r.status, r.header("x-request-id")), (404, Some("rid-404")));
    let r = gw.request_as("H0001", "GET", "/admin/v1/rulesets", &[("x-request-id", "rid-403")], none()).await.unwrap();
    assert_eq!((r.status, r.header("x-request-id")), (403, Some("rid-403")));
    let headers = [("x-request-id", "rid-400"), ("content-type", "application/json")];
    let r = gw.request_as("H0001", "POST", "/v1/settlements", &headers, fixed(b"{".to_vec())).await.unwrap();
    assert_eq!((r.status, r.header("x-request-id")), (400, Some("rid-400")));

    // Generated when absent: present, non-empty, different per request.
    let h = gw.client("H0001");
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let r = h.get(&path).await;
        let id = r.header("x-request-id").expect("X-Request-Id generated").to_string();
        assert!(!id.is_empty());
        assert!(seen.insert(id.clone()), "request id {id} reused");
    }
    let r = h.post("/v1/settlements", &json!({})).await;
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty() && !seen.contains(v)));
}
