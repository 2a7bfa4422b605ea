//! docs/openapi.yaml says what the server does, checked against the real binary over mTLS: the patterns, lengths
//! and ranges it declares are the ones the server enforces (a sample is accepted exactly when the document's regex
//! matches it), `year` is optional, any `X-Request-Id` is accepted and a valid one echoed, every documented path
//! answers another method with 405 and the documented `Allow` (the refusals every operation can meet: in
//! tests/openapi_refusals.rs).
//! scripts/schemathesis.sh checks the same document with generated requests; these tests pin the rules down.

mod common;
mod openapi_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use common::*;
use openapi_support::*;
use regex_automata::meta::Regex;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_on_documented_paths_are_405_with_the_documented_allow() {
    let doc = doc();
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let request_id =
        Regex::new(doc["components"]["headers"]["X-Request-Id"]["schema"]["pattern"].as_str().unwrap()).unwrap();
    for (path, item) in doc["paths"].as_hash().unwrap() {
        let path = path.as_str().unwrap();
        let documented: BTreeSet<String> = item
            .as_hash()
            .unwrap()
            .keys()
            .filter_map(|k| k.as_str())
            .filter(|k| OPERATION_KEYS.contains(k))
            .map(|k| k.to_ascii_uppercase())
            .collect();
        for method in ["TRACE", "DELETE", "PATCH", "OPTIONS"] {
            assert!(!documented.contains(method), "{path}: the test assumes {method} is undocumented");
            let (status, allow) = if path.starts_with("/v1/") || path.starts_with("/admin/") {
                let who = if path.starts_with("/v1/") { "H0001" } else { ADMIN };
                let r = call(&gw, who, method, &concrete(path), &[], None, Vec::new()).await;
                assert_eq!(r.header("content-type"), Some("application/problem+json"), "{method} {path}");
                assert_eq!(r.body["code"], "method_not_allowed", "{method} {path}");
                assert!(r.header("x-request-id").is_some_and(|v| request_id.is_match(v)), "{method} {path}");
                (r.status, allow_set(r.header("allow")))
            } else {
                let port = gw.ops_port;
                let (p, m) = (path.to_string(), method.to_string());
                let (status, headers) = tokio::task::spawn_blocking(move || ops_call(port, &m, &p)).await.unwrap();
                assert!(!headers.contains_key("x-request-id"), "{path}: the ops listener sends no X-Request-Id");
                (status, allow_set(headers.get("allow").map(String::as_str)))
            };
            assert_eq!(status, 405, "{method} {path}");
            assert_eq!(allow, documented, "{method} {path}: Allow");
        }
    }

    // A concrete path wins over a templated one for every method (OpenAPI path matching).
    let r = call(&gw, "H0001", "GET", "/v1/settlements/quote", &[], None, Vec::new()).await;
    assert_eq!((r.status, allow_set(r.header("allow"))), (405, BTreeSet::from(["POST".to_string()])));
    for method in ["GET", "PUT"] {
        let r = call(&gw, ADMIN, method, "/admin/v1/cardholders/import", &[], Some("application/json"), b"{}".to_vec())
            .await;
        assert_eq!((r.status, allow_set(r.header("allow"))), (405, BTreeSet::from(["POST".to_string()])), "{method}");
        // ... which the document says: `import` is no card id there, and 405 is a documented answer
        let op = &doc["paths"]["/admin/v1/cardholders/{card_id}"][method.to_ascii_lowercase().as_str()];
        assert!(!op["responses"]["405"].is_badvalue(), "{method} /admin/v1/cardholders/{{card_id}}: 405 undocumented");
    }
    let card_id = &doc["paths"]["/admin/v1/cardholders/{card_id}"]["parameters"][1]["schema"]["allOf"][1];
    assert_eq!(card_id["not"]["const"].as_str(), Some("import"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_request_id_is_accepted_and_a_valid_one_is_echoed() {
    let doc = doc();
    // the request parameter constrains nothing: any value is a valid request
    let param = &doc["components"]["parameters"]["RequestId"]["schema"];
    assert_eq!(param.as_hash().map(|h| h.len()), Some(1), "RequestId schema: {param:?}");
    assert_eq!(param["type"].as_str(), Some("string"));
    let echoed =
        Regex::new(doc["components"]["headers"]["X-Request-Id"]["schema"]["pattern"].as_str().unwrap()).unwrap();

    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let visible: String = (b'!'..=b'~').map(char::from).collect();
    let values: Vec<Vec<u8>> = vec![
        b"hosp-req-0042".to_vec(),
        visible.clone().into_bytes(),
        "x".repeat(128).into_bytes(),
        "x".repeat(129).into_bytes(),
        "x".repeat(4000).into_bytes(),
        Vec::new(),
        b"with space".to_vec(),
        b"tab\there".to_vec(),
        "caf\u{e9}".as_bytes().to_vec(),
        vec![0xff, b'a'],
    ];
    let mut fresh = BTreeSet::new();
    for v in values {
        let r = call(&gw, "H0001", "GET", "/v1/reconciliation", &[("x-request-id", &v)], None, Vec::new()).await;
        let shown = String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned();
        assert_eq!(r.status, 200, "X-Request-Id {shown:?}: {}", r.body);
        let id = r.header("x-request-id").unwrap_or_else(|| panic!("{shown:?}: no X-Request-Id")).to_string();
        assert!(echoed.is_match(&id), "{shown:?}: answered id {id:?} is outside the documented pattern");
        match std::str::from_utf8(&v) {
            Ok(text) if echoed.is_match(text) => assert_eq!(id, text, "a valid id is echoed"),
            _ => {
                assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{shown:?}: new id {id:?}");
                assert!(fresh.insert(id), "a new id each time");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_dates_years_and_names_are_checked_as_documented() {
    let doc = doc();
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let visit = json!({"type": "inpatient", "date": "2026-01-05"});

    // Id (card_id, hospital_settlement_id): unknown but valid → 404, invalid → 400 naming it
    let id = pattern(&doc, "Id");
    let ids = [
        "C100001",
        "a",
        "A-z_0.9:x",
        &"a".repeat(64),
        &"a".repeat(65),
        "",
        "C 1",
        "C/1",
        "C{1}",
        "\u{c7}1",
        "C|1",
        "C,1",
        "C\u{0}1",
        "C\n1",
        "C+1",
        "C#1",
    ];
    for s in ids {
        let r = post(&gw, "H0001", "/v1/eligibility", &json!({"card_id": s, "visit": visit})).await;
        if id.is_match(s) {
            assert_eq!((r.status, &r.body["code"]), (404, &json!("card_not_found")), "card_id {s:?}: {}", r.body);
        } else {
            assert_eq!(
                (r.status, &r.body["errors"][0]["field"]),
                (400, &json!("card_id")),
                "card_id {s:?}: {}",
                r.body
            );
        }
    }

    // LocalDate: the pattern plus `format: date` (a day that exists)
    let date = pattern(&doc, "LocalDate");
    assert_eq!(doc["components"]["schemas"]["LocalDate"]["format"].as_str(), Some("date"));
    let dates = [
        "2026-01-05",
        "2024-02-29",
        "1900-01-01",
        "0001-01-01",
        "2023-02-29",
        "2026-13-01",
        "2026-1-5",
        "+2026-01-01",
        "2026-01-01T00:00:00Z",
        "20260101",
        " 2026-01-05",
        "2026/01/05",
        "",
    ];
    for s in dates {
        let valid = date.is_match(s) && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok();
        let r =
            post(&gw, "H0001", "/v1/eligibility", &json!({"card_id": "C1", "visit": {"type": "chronic", "date": s}}))
                .await;
        let want = if valid { (404, json!("card_not_found")) } else { (400, json!("invalid_request")) };
        assert_eq!((r.status, r.body["code"].clone()), want, "visit.date {s:?}: {}", r.body);
    }
    // x-settlegate-rules visit-date-at-most-tomorrow
    let rules = &doc["components"]["schemas"]["Visit"]["x-settlegate-rules"][0];
    assert_eq!(rules["id"].as_str(), Some("visit-date-at-most-tomorrow"));
    for (days, status) in [(1, 404), (2, 400)] {
        let d = today().checked_add_days(Days::new(days)).unwrap().to_string();
        let r =
            post(&gw, "H0001", "/v1/eligibility", &json!({"card_id": "C1", "visit": {"type": "chronic", "date": d}}))
                .await;
        assert_eq!(r.status, status, "today + {days}: {}", r.body);
    }

    // Label (category, tags): PUT a cardholder
    let label = pattern(&doc, "Label");
    let long_cjk = "\u{4f4e}".repeat(64);
    let too_long_cjk = "\u{4f4e}".repeat(65);
    let labels = [
        "dibao",
        "\u{4f4e}\u{4fdd}",
        &long_cjk,
        &too_long_cjk,
        "elderly_80",
        "a-b.c:d",
        "\u{200b}",
        "\u{feff}x",
        "",
        "a b",
        "a\u{3000}b",
        "a\u{a0}b",
        "a\u{85}b",
        "a\u{2028}b",
        "a\u{1}b",
        "a\u{9f}b",
        "a\u{7f}b",
        "a,b",
        "a;b",
        "a=b",
        "a|b",
        "a{b",
        "a}b",
        "a\tb",
    ];
    for s in labels {
        let card = json!({"card_id": "L1", "category": s, "valid_from": "2026-01-01", "valid_until": "2026-12-31",
                          "status": "active", "tags": [s]});
        let r =
            call(&gw, ADMIN, "PUT", "/admin/v1/cardholders/L1", &[], Some("application/json"), card.to_string().into())
                .await;
        if label.is_match(s) {
            assert_eq!(r.status, 200, "label {s:?}: {}", r.body);
        } else {
            assert_eq!((r.status, &r.body["errors"][0]["field"]), (400, &json!("category")), "label {s:?}: {}", r.body);
        }
    }

    // ProgramId, and a program name: 1-128 characters (not bytes), not all whitespace
    let program_id = pattern(&doc, "ProgramId");
    let name = &doc["components"]["schemas"]["Program"]["properties"]["name"];
    let name_pattern = Regex::new(name["pattern"].as_str().unwrap()).unwrap();
    let max_name = usize::try_from(name["maxLength"].as_i64().unwrap()).unwrap();
    let ruleset = |id: &str, name: &str| {
        json!({"effective_from": "2026-01-01", "programs": [
            {"id": id, "name": name, "covers": ["in_scope"], "categories": {"dibao": {"ratio_bp": 9000}}}]})
    };
    for s in ["a", "medical_assistance", "a1_", &"a".repeat(64), &"a".repeat(65), "", "A", "a-b", "a.b", "\u{e9}"] {
        let r = post(&gw, ADMIN, "/admin/v1/rulesets", &ruleset(s, "Name")).await;
        if program_id.is_match(s) {
            assert_eq!(r.status, 201, "program id {s:?}: {}", r.body);
        } else {
            assert_eq!((r.status, &r.body["errors"][0]["field"]), (400, &json!("programs[0].id")), "{s:?}: {}", r.body);
        }
    }
    let names = [
        "Charity".to_string(),
        " a ".to_string(),
        "\u{540d}".repeat(max_name),
        "a".repeat(max_name + 1),
        "  ".to_string(),
        "\u{3000}\t".to_string(),
        String::new(),
    ];
    for s in &names {
        let valid = name_pattern.is_match(s) && (1..=max_name).contains(&s.chars().count());
        let r = post(&gw, ADMIN, "/admin/v1/rulesets", &ruleset("p", s)).await;
        assert_eq!(r.status, if valid { 201 } else { 400 }, "name {:?}: {}", &s[..s.len().min(20)], r.body);
    }

    // Year: optional, within the documented range
    let year = &doc["components"]["schemas"]["Year"];
    let (min, max) = (year["minimum"].as_i64().unwrap(), year["maximum"].as_i64().unwrap());
    assert_eq!(doc["components"]["parameters"]["YearQuery"]["required"].as_bool(), Some(false));
    for path in ["/admin/v1/pools", "/admin/v1/cardholders/L1", "/admin/v1/cardholders/L1/settlements"] {
        let get = |q: String| {
            let gw = &gw;
            async move { call(gw, ADMIN, "GET", &format!("{path}{q}"), &[], None, Vec::new()).await }
        };
        assert_eq!(get(String::new()).await.status, 200, "{path} without year");
        for y in [min, max, 2026] {
            assert_eq!(get(format!("?year={y}")).await.status, 200, "{path}?year={y}");
        }
        for y in [(min - 1).to_string(), (max + 1).to_string(), "abc".into(), String::new()] {
            let r = get(format!("?year={y}")).await;
            assert_eq!((r.status, &r.body["errors"][0]["field"]), (400, &json!("year")), "{path}?year={y}: {}", r.body);
        }
    }

    // null is "absent" exactly where the document allows it
    let terms = json!({"ratio_bp": 9000, "deductible_fen": null, "annual_cap_fen": null, "per_visit_cap_fen": null});
    let nulls = json!({"effective_from": "2026-01-01", "programs": [{"id": "n", "name": "N", "visit_types": null,
        "covers": ["in_scope"], "require_tags": null, "annual_pool_fen": null, "categories": {"dibao": terms}}]});
    assert_eq!(post(&gw, ADMIN, "/admin/v1/rulesets", &nulls).await.status, 201);
    let r = post(
        &gw,
        "H0001",
        "/v1/reversals",
        &json!({"card_id": "C1", "hospital_settlement_id": "X1", "reason": null,
                                                         "settlement_id": null}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let card = json!({"card_id": "L2", "category": "dibao", "valid_from": "2026-01-01", "valid_until": "2026-12-31",
                      "status": "active", "tags": null});
    let r = call(&gw, ADMIN, "PUT", "/admin/v1/cardholders/L2", &[], Some("application/json"), card.to_string().into())
        .await;
    assert_eq!((r.status, &r.body["errors"][0]["field"]), (400, &json!("tags")), "tags: null: {}", r.body);
}

/// Version 2 inputs: `insurance.settlement_ref`, `operator` (on a quote of an unknown card: valid → 404, invalid →
/// 400 naming the field, since the body is checked before the store is asked), the event cursor and `limit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_operators_and_event_cursors_are_checked_as_documented() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let quote = |insurance: Value, operator: Value| {
        json!({"card_id": "C404", "visit": {"type": "outpatient", "date": today().to_string()},
               "amounts": {"total_fen": 100, "in_scope_fen": 100, "pre_self_pay_fen": 0, "over_limit_fen": 0,
                           "self_pay_fen": 0},
               "insurance": insurance, "operator": operator})
    };
    let quote_path = "/v1/settlements/quote";

    // EventCursor (first, while there is no event): a value matching the pattern is read, anything else is 400
    let cursor = pattern(&doc, "EventCursor");
    let next = Regex::new(doc["components"]["headers"]["Next-Cursor"]["schema"]["pattern"].as_str().unwrap()).unwrap();
    let nineteen = "9".repeat(19);
    let cursors = [
        "c1.0.0".to_string(),
        "c1.1795918502127.0".to_string(),
        format!("c1.{}.{nineteen}", "9".repeat(14)),
        format!("c1.{nineteen}.{nineteen}"),
        String::new(),
        "c1.".into(),
        "c1.1".into(),
        "c1.1.".into(),
        "c1..1".into(),
        "c2.1.2".into(),
        "C1.1.2".into(),
        "c1.-1.2".into(),
        "c1.+1.2".into(),
        "c1.1.2.3".into(),
        "c1.1.x".into(),
        " c1.1.2".into(),
        "1795918502127-0".into(),
        "ev1.1.2".into(),
        format!("c1.{}.0", "9".repeat(21)),
    ];
    for c in &cursors {
        let q: String = form_urlencoded::byte_serialize(c.as_bytes()).collect();
        let r = call(&gw, ADMIN, "GET", &format!("/admin/v1/events?after={q}"), &[], None, Vec::new()).await;
        if cursor.is_match(c) {
            assert_eq!(r.status, 200, "after {c:?}");
            assert_eq!(r.header("next-cursor"), Some(c.as_str()), "nothing new: Next-Cursor = after");
            assert!(next.is_match(c), "{c:?}: the header's pattern covers every cursor read");
        } else {
            assert_eq!((r.status, &r.body["errors"][0]["field"]), (400, &json!("after")), "after {c:?}: {}", r.body);
        }
    }
    let r = call(&gw, ADMIN, "GET", "/admin/v1/events", &[], None, Vec::new()).await;
    assert_eq!((r.status, r.header("next-cursor")), (200, Some("c1.0.0")), "no after, nothing new: the start");

    // limit: 1..=10000 (the documented bounds)
    let limit = &doc["paths"]["/admin/v1/events"]["get"]["parameters"][1]["schema"];
    let (min, max) = (limit["minimum"].as_i64().unwrap(), limit["maximum"].as_i64().unwrap());
    let limits = [
        (min.to_string(), true),
        (max.to_string(), true),
        ((min - 1).to_string(), false),
        ((max + 1).to_string(), false),
        ("x".to_string(), false),
        (String::new(), false),
        ("1.5".to_string(), false),
    ];
    for (l, valid) in limits {
        let r = call(&gw, ADMIN, "GET", &format!("/admin/v1/events?limit={l}"), &[], None, Vec::new()).await;
        if valid {
            assert_eq!(r.status, 200, "limit {l:?}");
        } else {
            assert_eq!((r.status, &r.body["errors"][0]["field"]), (400, &json!("limit")), "limit {l:?}: {}", r.body);
        }
    }

    // InsuranceSettlementRef is an Id (whose pattern the test above pins down); null is absent
    assert_eq!(schemas["InsuranceSettlementRef"]["allOf"][0]["$ref"].as_str(), Some("#/components/schemas/Id"));
    let id = pattern(&doc, "Id");
    let long = "a".repeat(64);
    let too_long = "a".repeat(65);
    for s in ["SETL-3301-20261129-0815", "a", &long, &too_long, "", "has space", "a|b", "\u{e9}"] {
        let r = post(&gw, "H0001", quote_path, &quote(json!({"settlement_ref": s}), Value::Null)).await;
        if id.is_match(s) {
            assert_eq!((r.status, &r.body["code"]), (404, &json!("card_not_found")), "ref {s:?}: {}", r.body);
        } else {
            let field = &r.body["errors"][0]["field"];
            assert_eq!((r.status, field), (400, &json!("insurance.settlement_ref")), "ref {s:?}: {}", r.body);
        }
    }
    let r = post(&gw, "H0001", quote_path, &quote(json!({"settlement_ref": null}), Value::Null)).await;
    assert_eq!(r.status, 404, "settlement_ref: null: {}", r.body);

    // Operator: id an Id, name at most maxLength characters (not bytes) and no control character; null is absent
    let op = &schemas["Operator"];
    assert_eq!(op["properties"]["id"]["$ref"].as_str(), Some("#/components/schemas/Id"));
    let name = &op["properties"]["name"];
    let name_pattern = Regex::new(name["pattern"].as_str().unwrap()).unwrap();
    let max_name = usize::try_from(name["maxLength"].as_i64().unwrap()).unwrap();
    let names = [
        "\u{738b}\u{4e3d}".to_string(),
        String::new(),
        " ".to_string(),
        "\u{200b}".to_string(),
        "a\u{a0}b".to_string(),
        "\u{540d}".repeat(max_name),
        "a".repeat(max_name + 1),
        "a\u{0}b".to_string(),
        "a\nb".to_string(),
        "a\tb".to_string(),
        "a\u{7f}b".to_string(),
        "a\u{85}b".to_string(),
        "a\u{9f}b".to_string(),
    ];
    for s in &names {
        let valid = name_pattern.is_match(s) && s.chars().count() <= max_name;
        let r = post(&gw, "H0001", quote_path, &quote(json!({}), json!({"id": "cashier-07", "name": s}))).await;
        let shown: String = s.chars().take(10).collect();
        if valid {
            assert_eq!(r.status, 404, "name {shown:?}: {}", r.body);
        } else {
            let field = &r.body["errors"][0]["field"];
            assert_eq!((r.status, field), (400, &json!("operator.name")), "name {shown:?}: {}", r.body);
        }
    }
    for (operator, valid) in [
        (json!(null), true),
        (json!({"id": "x", "name": null}), true),
        (json!({"id": "a b"}), false),
        (json!({"name": "no id"}), false),
        (json!({"id": "x", "extra": 1}), false),
    ] {
        let r = post(&gw, "H0001", quote_path, &quote(json!({}), operator.clone())).await;
        assert_eq!(r.status, if valid { 404 } else { 400 }, "operator {operator}: {}", r.body);
        let reversal = json!({"card_id": "C1", "hospital_settlement_id": "R-1", "operator": operator});
        let r = post(&gw, "H0001", "/v1/reversals", &reversal).await;
        assert_eq!(r.status, if valid { 200 } else { 400 }, "reversal operator {operator}: {}", r.body);
    }
}
