//! docs/openapi.yaml documents the refusals every mTLS operation can meet (415, 413, 429, 503/504), checked against
//! the real binary: each is among the operation's documented responses, as problem+json with the documented headers.

mod common;
mod openapi_support;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use openapi_support::*;
use serde_json::{json, Value};
use yaml_rust2::Yaml;

/// A valid request for each documented mTLS operation: (caller, path, content type, body).
fn sample_request(operation_id: &str) -> (&'static str, String, Option<&'static str>, Vec<u8>) {
    let day = today().to_string();
    let bill = json!({"hospital_settlement_id": "S-1", "card_id": "C1", "visit": {"type": "inpatient", "date": day},
                      "amounts": {"total_fen": 100, "in_scope_fen": 100, "pre_self_pay_fen": 0, "over_limit_fen": 0,
                                  "self_pay_fen": 0}});
    let card = json!({"card_id": "C1", "category": "dibao", "valid_from": "2020-01-01", "valid_until": "2099-12-31",
                      "status": "active"});
    let rules = json!({"effective_from": "2020-01-01", "programs": [
        {"id": "a", "name": "A", "covers": ["in_scope"], "categories": {"dibao": {"ratio_bp": 9000}}}]});
    let j = |v: &Value| serde_json::to_vec(v).unwrap();
    let json = Some("application/json");
    match operation_id {
        "checkEligibility" => {
            ("H0001", "/v1/eligibility".into(), json, j(&json!({"card_id": "C1", "visit": bill["visit"]})))
        }
        "settle" => ("H0001", "/v1/settlements".into(), json, j(&bill)),
        "findSettlement" => ("H0001", "/v1/settlements?card_id=C1&hospital_settlement_id=S-1".into(), None, vec![]),
        "quoteSettlement" => ("H0001", "/v1/settlements/quote".into(), json, j(&bill)),
        "getSettlement" => ("H0001", concrete("/v1/settlements/{settlement_id}"), None, vec![]),
        "reverseSettlement" => {
            ("H0001", "/v1/reversals".into(), json, j(&json!({"card_id": "C1", "hospital_settlement_id": "S-1"})))
        }
        "getReconciliation" => ("H0001", "/v1/reconciliation".into(), None, vec![]),
        "streamReconciliationEvents" => ("H0001", "/v1/reconciliation/settlements".into(), None, vec![]),
        "checkReconciliation" => {
            let claim = json!({"date": day, "settled_count": 0, "reversed_count": 0,
                               "net": {"total_fen": 0, "insurance_fen": 0, "relief_fen": 0, "patient_fen": 0}});
            ("H0001", "/v1/reconciliation/check".into(), json, j(&claim))
        }
        "checkReconciliationDetails" => {
            let line = json!({"event": "settled", "hospital_settlement_id": "S-1", "total_fen": 100, "relief_fen": 0,
                              "patient_fen": 100});
            let mut body = j(&line);
            body.push(b'\n');
            ("H0001", "/v1/reconciliation/check/details".into(), Some("application/x-ndjson"), body)
        }
        "putCardholder" => (ADMIN, "/admin/v1/cardholders/C1".into(), json, j(&card)),
        "getCardholder" => (ADMIN, "/admin/v1/cardholders/C1".into(), None, vec![]),
        "importCardholders" => {
            let mut line = j(&card);
            line.push(b'\n');
            (ADMIN, "/admin/v1/cardholders/import".into(), Some("application/x-ndjson"), line)
        }
        "publishRuleset" => (ADMIN, "/admin/v1/rulesets".into(), json, j(&rules)),
        "listRulesets" => (ADMIN, "/admin/v1/rulesets".into(), None, vec![]),
        "getRuleset" => (ADMIN, "/admin/v1/rulesets/1".into(), None, vec![]),
        "previewRuleset" => {
            (ADMIN, "/admin/v1/rulesets/preview".into(), json, j(&json!({"ruleset": rules, "from": day, "to": day})))
        }
        "getPools" => (ADMIN, "/admin/v1/pools".into(), None, vec![]),
        "getAdminReconciliation" => (ADMIN, "/admin/v1/reconciliation".into(), None, vec![]),
        "listOwnClearings" => ("H0001", "/v1/clearings".into(), None, vec![]),
        "createClearing" => {
            let period = day[..7].to_string();
            (ADMIN, "/admin/v1/clearings".into(), json, j(&json!({"hospital_id": "H0001", "period": period})))
        }
        "listClearings" => (ADMIN, "/admin/v1/clearings".into(), None, vec![]),
        "confirmClearing" => (ADMIN, concrete("/admin/v1/clearings/{clearing_id}/confirm"), None, vec![]),
        "payClearing" => (
            ADMIN,
            concrete("/admin/v1/clearings/{clearing_id}/paid"),
            json,
            j(&json!({"payment_ref": "PAY-1", "paid_at": day})),
        ),
        "getCardHistory" => (ADMIN, "/admin/v1/cardholders/C1/settlements".into(), None, vec![]),
        "listEvents" => (ADMIN, "/admin/v1/events?limit=10".into(), None, vec![]),
        "contributeToPool" => (
            ADMIN,
            "/admin/v1/pools/charity/contributions".into(),
            json,
            j(&json!({"contribution_id": "RC-1", "year": 2026, "donor": "区红十字会", "amount_fen": 100,
                      "kind": "donation"})),
        ),
        "getAudit" => (ADMIN, "/admin/v1/audit?limit=10".into(), None, vec![]),
        "getReliefReport" => (ADMIN, format!("/admin/v1/reports/relief?from={day}&to={day}&by=street"), None, vec![]),
        other => panic!("no sample request for operation {other}: add one"),
    }
}

/// Every documented mTLS operation: (operationId, method, its operation node).
fn mtls_operations(doc: &Yaml) -> Vec<(String, String, &Yaml)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_hash().unwrap() {
        let path = path.as_str().unwrap();
        if !(path.starts_with("/v1/") || path.starts_with("/admin/")) {
            continue;
        }
        for (method, op) in item.as_hash().unwrap() {
            let method = method.as_str().unwrap();
            if OPERATION_KEYS.contains(&method) {
                out.push((op["operationId"].as_str().unwrap().to_string(), method.to_ascii_uppercase(), op));
            }
        }
    }
    let served =
        settlegate::http::routes::Route::ALL.iter().filter(|r| r.role() != settlegate::http::routes::Role::Ops).count();
    assert_eq!(out.len(), served, "documented mTLS operations = the route table's");
    out
}

/// The answer is one of the operation's documented responses, with a documented content type and every required
/// documented header.
#[track_caller]
fn assert_documented(doc: &Yaml, op_id: &str, op: &Yaml, r: &Answer) {
    let status = r.status.to_string();
    let response = &op["responses"][status.as_str()];
    assert!(!response.is_badvalue(), "{op_id}: status {status} is not documented; body {}", r.body);
    let response = resolve(doc, response);
    let content_type = r.header("content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_string();
    let documented = response["content"].as_hash().map(|c| c.keys().filter_map(|k| k.as_str()).collect::<Vec<_>>());
    assert!(
        documented.as_ref().is_some_and(|types| types.contains(&content_type.as_str())),
        "{op_id} {status}: content type {content_type:?} is not among {documented:?}"
    );
    if let Some(headers) = response["headers"].as_hash() {
        for (name, h) in headers {
            let name = name.as_str().unwrap();
            if resolve(doc, h)["required"].as_bool() == Some(true) {
                assert!(r.header(name).is_some(), "{op_id} {status}: no {name} header");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_every_operation_can_meet_are_documented() {
    let doc = doc();
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let limits = "[limits]\nmax_body_bytes = 1024\nmax_import_bytes = 1024\n[redis]\nhealth_check_interval_ms = 50\n";
    let gw = Gateway::start(&redis.url(), &certs, limits);
    let operations = mtls_operations(&doc);
    for (op_id, method, op) in &operations {
        let (who, path, content_type, body) = sample_request(op_id);
        // the sample is a valid request
        let r = call(&gw, who, method, &path, &[], content_type, body.clone()).await;
        assert_documented(&doc, op_id, op, &r);
        assert!(r.status < 500, "{op_id}: {} {}", r.status, r.body);
        let Some(ct) = content_type else { continue };
        // 415: another media type
        let r = call(&gw, who, method, &path, &[], Some("text/plain"), body.clone()).await;
        assert_eq!(r.status, 415, "{op_id}");
        assert_documented(&doc, op_id, op, &r);
        // 413: over the body limit
        let mut big = body.clone();
        big.resize(2048, b' ');
        let r = call(&gw, who, method, &path, &[], Some(ct), big).await;
        assert_eq!(r.status, 413, "{op_id}: {}", r.body);
        assert_documented(&doc, op_id, op, &r);
    }
    // 503 (and 504 for a write caught in flight): the store is gone
    drop(redis);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (op_id, method, op) in &operations {
        let (who, path, content_type, body) = sample_request(op_id);
        let r = call(&gw, who, method, &path, &[], content_type, body).await;
        assert_documented(&doc, op_id, op, &r);
        if r.status >= 500 {
            assert_eq!(r.status, 503, "{op_id}: the breaker is open, so nothing was sent: {}", r.body);
        }
    }
    let r = post(&gw, "H0001", "/v1/settlements", &serde_json::from_slice(&sample_request("settle").3).unwrap()).await;
    assert_eq!(r.status, 503, "{}", r.body);
    drop(gw);

    // 429: a caller that is not the relief office, over its quota, on every mTLS path
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "[rate_limit]\nper_second = 1\nburst = 1\n");
    let _ = call(&gw, "H0001", "GET", "/v1/reconciliation", &[], None, Vec::new()).await;
    for (op_id, method, op) in &operations {
        let (_, path, content_type, body) = sample_request(op_id);
        let mut r = call(&gw, "H0001", method, &path, &[], content_type, body.clone()).await;
        if r.status != 429 {
            // a token came back meanwhile (1 per second): this request took it, the next one cannot
            r = call(&gw, "H0001", method, &path, &[], content_type, body).await;
        }
        assert_eq!(r.status, 429, "{op_id}: {}", r.body);
        assert_documented(&doc, op_id, op, &r);
    }
}
