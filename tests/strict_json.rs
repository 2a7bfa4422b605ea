//! Strict JSON over real TLS against the real binary (docs/API.md "Errors": malformed JSON is 400
//! `invalid_request`; docs/DESIGN.md "Strict JSON"): data after the document, and a struct sent as a positional
//! array, are refused naming the field, and nothing is stored; valid bodies with list fields still work.

mod common;

use std::sync::Arc;

use chrono::NaiveDate;
use common::*;
use serde_json::{json, Value};

/// The gateway's local date (config `timezone = "Asia/Shanghai"`).
fn today() -> NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive()
}

fn ruleset() -> Value {
    json!({"effective_from": "2020-01-01", "programs": [
        {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
         "visit_types": ["inpatient", "outpatient"], "require_tags": ["disabled"],
         "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}}},
        {"id": "charity", "name": "Charity", "covers": ["in_scope", "self_pay"],
         "categories": {"dibao": {"ratio_bp": 3000}}}]})
}

fn card(id: &str) -> Value {
    json!({"card_id": id, "category": "dibao", "valid_from": "2020-01-01", "valid_until": "2099-12-31",
           "status": "active", "tags": ["disabled", "elderly_80"]})
}

fn bill(hsid: &str) -> Value {
    json!({"hospital_settlement_id": hsid, "card_id": "C1",
           "visit": {"type": "inpatient", "date": today().to_string()},
           "amounts": {"total_fen": 1000, "in_scope_fen": 1000, "pre_self_pay_fen": 0, "over_limit_fen": 0,
                       "self_pay_fen": 0},
           "insurance": {"basic_fen": 0, "critical_illness_fen": 0, "other_fen": 0}})
}

async fn send_raw(client: &Client, path: &str, body: &[u8]) -> Reply {
    client.send("POST", path, Some("application/json"), body.to_vec()).await.unwrap()
}

/// A 400 `invalid_request` whose first field error names `field`.
#[track_caller]
fn assert_invalid(r: &Reply, field: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: status; body {}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.body["code"], "invalid_request", "{what}: {}", r.body);
    assert_eq!(r.headers.get("content-type").unwrap(), "application/problem+json", "{what}");
    assert_eq!(r.body["errors"][0]["field"], field, "{what}: {}", r.body);
}

/// No settlement `hsid` of card C1 was stored.
async fn assert_not_stored(hospital: &Client, hsid: &str, what: &str) {
    let r = hospital.get(&format!("/v1/settlements?card_id=C1&hospital_settlement_id={hsid}")).await;
    assert_eq!(r.status, 404, "{what}: a refused settlement was stored: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_data_and_positional_arrays_are_refused_and_nothing_is_stored() {
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let (admin, hospital) = (gw.client(ADMIN), gw.client("H0001"));
    // controls: list fields (visit_types, covers, require_tags, programs, tags) are arrays and are accepted
    seed(&admin, &[ruleset()], &[card("C1")]).await;

    // 1. data after the JSON document
    let valid = serde_json::to_vec(&bill("T-1")).unwrap();
    for tail in [&b" trailing"[..], b"{}", b"\n{\"x\":1}", b"0", b"[]"] {
        let body = [valid.as_slice(), tail].concat();
        let what = format!("settle + {:?}", String::from_utf8_lossy(tail));
        assert_invalid(&send_raw(&hospital, "/v1/settlements", &body).await, "body", &what);
        let r = send_raw(&hospital, "/v1/settlements/quote", &body).await;
        assert_invalid(&r, "body", &format!("quote: {what}"));
    }
    assert_not_stored(&hospital, "T-1", "trailing data").await;
    let r = send_raw(&hospital, "/v1/reversals", br#"{"card_id":"C1","hospital_settlement_id":"T-1"} x"#).await;
    assert_invalid(&r, "body", "reversal + trailing");
    let mut put = serde_json::to_vec(&card("C2")).unwrap();
    put.extend_from_slice(b" }");
    let r = admin.send("PUT", "/admin/v1/cardholders/C2", Some("application/json"), put).await.unwrap();
    assert_invalid(&r, "body", "cardholder + trailing");
    assert_eq!(admin.get("/admin/v1/cardholders/C2").await.status, 404, "a refused cardholder was stored");

    // 2. structs sent as positional arrays
    let cases: [(&str, Value, &str); 4] = [
        ("P-amounts", json!([1000, 1000, 0, 0, 0]), "amounts"),
        ("P-visit", json!(["inpatient", today().to_string()]), "visit"),
        ("P-insurance", json!([0, 0, 0]), "insurance"),
        ("P-card", json!(["C1"]), "card_id"),
    ];
    for (hsid, array, field) in cases {
        let mut body = bill(hsid);
        body[field] = array;
        assert_invalid(&hospital.post("/v1/settlements", &body).await, field, hsid);
        assert_invalid(&hospital.post("/v1/settlements/quote", &body).await, field, &format!("quote {hsid}"));
        assert_not_stored(&hospital, hsid, hsid).await;
    }
    // the whole body as a positional array
    let positional = json!(["P-root", "C1", ["inpatient", today().to_string()], [1000, 1000, 0, 0, 0], [0, 0, 0]]);
    assert_invalid(&hospital.post("/v1/settlements", &positional).await, "body", "root array");
    assert_not_stored(&hospital, "P-root", "root array").await;
    let r = hospital.post("/v1/eligibility", &json!(["C1", {"type": "inpatient", "date": today().to_string()}])).await;
    assert_invalid(&r, "body", "eligibility root array");
    let r = hospital.post("/v1/reversals", &json!(["C1", "P-root", null, null])).await;
    assert_invalid(&r, "body", "reversal root array");
    // a ruleset whose terms are positional: refused, nothing published
    let mut rules = ruleset();
    rules["programs"][0]["categories"]["dibao"] = json!([9000]);
    let r = admin.post("/admin/v1/rulesets", &rules).await;
    assert_invalid(&r, "programs[0].categories.dibao", "positional terms");
    let r = admin.get("/admin/v1/rulesets").await;
    assert_eq!(r.body["rulesets"].as_array().map(Vec::len), Some(1), "a refused ruleset was published: {}", r.body);
    // an import line with trailing data or a positional card is rejected, the valid lines are stored
    let ndjson =
        format!("{}\n{} x\n[\"C4\",\"dibao\",\"2020-01-01\",\"2099-12-31\",\"active\",[]]\n", card("C3"), card("C5"));
    let r =
        admin.send("POST", "/admin/v1/cardholders/import", Some("application/x-ndjson"), ndjson.into()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["imported"].as_u64(), r.body["rejected_total"].as_u64()), (Some(1), Some(2)), "{}", r.body);
    for id in ["C4", "C5"] {
        assert_eq!(admin.get(&format!("/admin/v1/cardholders/{id}")).await.status, 404, "{id} was stored");
    }

    // 3. controls: the same bodies, well-formed, still work (and whitespace after the document is fine)
    let mut body = serde_json::to_vec(&bill("OK-1")).unwrap();
    body.extend_from_slice(b" \r\n\t\n");
    let r = send_raw(&hospital, "/v1/settlements", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["payments"][0]["program"], "medical_assistance", "require_tags matched: {}", r.body);
    let r = hospital.get("/v1/settlements?card_id=C1&hospital_settlement_id=OK-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = hospital
        .post("/v1/reversals", &json!({"card_id": "C1", "hospital_settlement_id": "OK-1", "reason": "[dup] billing"}))
        .await;
    assert_eq!((r.status, &r.body["status"]), (200, &json!("reversed")), "a `[` in a string: {}", r.body);
    let r = admin.get("/admin/v1/cardholders/C3").await;
    assert_eq!((r.status, &r.body["tags"]), (200, &json!(["disabled", "elderly_80"])), "{}", r.body);
}
