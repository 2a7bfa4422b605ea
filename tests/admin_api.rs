//! The relief office's endpoints over mTLS: streamed cardholder import with per-line rejections, cardholders with
//! usage, ruleset publication (validation naming the field, versions), pools.

mod common;

use common::*;
use serde_json::{json, Value};

/// `POST /admin/v1/cardholders/import` of NDJSON lines (Err: the connection ended before the answer).
async fn import(admin: &Client, ndjson: String) -> Result<Reply, String> {
    admin.send("POST", "/admin/v1/cardholders/import", Some("application/x-ndjson"), ndjson.into_bytes()).await
}

fn ruleset(ratio: i64) -> Value {
    json!({"effective_from": "2026-01-01", "programs": [
        {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
         "categories": {"dibao": {"ratio_bp": ratio, "annual_cap_fen": 300000}, "low_income": {"ratio_bp": 7000, "deductible_fen": 100000}}},
        {"id": "charity", "name": "Charity", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
         "annual_pool_fen": 5000000, "categories": {"dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000}}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_streams_lines_and_names_rejected_ones() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    let mut body = String::new();
    for i in 0..20_000 {
        match i {
            // line numbers are 1-based: these are lines 101, 202 and 303
            100 => body.push_str("{\"card_id\":\"X1\",\"category\":\"dibao\"}\n"),
            201 => body.push_str("not json\n"),
            302 => body.push_str("{\"card_id\":\"X{2}\",\"category\":\"dibao\",\"valid_from\":\"2026-01-01\",\"valid_until\":\"2026-12-31\",\"status\":\"active\"}\n"),
            _ => body.push_str(&format!(
                "{{\"card_id\":\"I{i}\",\"category\":\"dibao\",\"valid_from\":\"2026-01-01\",\"valid_until\":\"2026-12-31\",\"status\":\"active\",\"tags\":[\"t{}\"]}}\n",
                i % 3
            )),
        }
    }
    let reply = import(&admin, body).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["imported"], 19_997);
    assert_eq!(reply.body["rejected_total"], 3);
    let lines: Vec<i64> =
        reply.body["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, vec![101, 202, 303]);
    assert!(reply.body["rejected"][0]["error"].as_str().unwrap().contains("valid_from"), "{}", reply.body);
    assert!(reply.body["rejected"][2]["error"].as_str().unwrap().contains("card_id"), "{}", reply.body);

    let card = admin.get("/admin/v1/cardholders/I19999?year=2026").await;
    assert_eq!(card.status, 200);
    assert_eq!(card.body["tags"], json!(["t1"])); // 19999 % 3
    assert_eq!(card.body["usage"], json!([]));
    assert_eq!(admin.get("/admin/v1/cardholders/X1").await.body["code"], "card_not_found");
    let wrong =
        admin.send("POST", "/admin/v1/cardholders/import", Some("application/json"), b"{}".to_vec()).await.unwrap();
    assert_eq!((wrong.status, wrong.body["code"].as_str()), (415, Some("unsupported_media_type")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rulesets_cardholders_usage_and_pools() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);

    let mut bad = ruleset(10001);
    bad["programs"][1]["id"] = json!("medical_assistance");
    let refused = admin.post("/admin/v1/rulesets", &bad).await;
    assert_eq!(refused.status, 400);
    let fields: Vec<&str> =
        refused.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"programs[0].categories.dibao.ratio_bp"), "{fields:?}");
    assert!(fields.contains(&"programs[1].id"), "{fields:?}");
    let mut unknown = ruleset(9000);
    unknown["programs"][0]["covers"] = json!(["in_scope", "dental"]);
    assert_eq!(admin.post("/admin/v1/rulesets", &unknown).await.body["errors"][0]["field"], "programs[0].covers[1]");
    assert_eq!(stack.redis.cli(&["EXISTS", "{sg}:rulesets"]).trim(), "0", "refused rulesets are not stored");

    let v1 = admin.post("/admin/v1/rulesets", &ruleset(9000)).await;
    assert_eq!((v1.status, v1.body["version"].as_u64()), (201, Some(1)), "{}", v1.body);
    let v2 = admin.post("/admin/v1/rulesets", &ruleset(9500)).await;
    assert_eq!(v2.body["version"], 2);
    let list = admin.get("/admin/v1/rulesets").await;
    let versions: Vec<u64> =
        list.body["rulesets"].as_array().unwrap().iter().map(|r| r["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, vec![1, 2]);
    assert_eq!(admin.get("/admin/v1/rulesets/1").await.body["programs"][0]["categories"]["dibao"]["ratio_bp"], 9000);
    assert_eq!(admin.get("/admin/v1/rulesets/9").await.status, 404);

    let mut card = cardholder("C7", "dibao");
    card["tags"] = json!(["elderly_80"]);
    assert_eq!(admin.put("/admin/v1/cardholders/C8", &card).await.body["errors"][0]["field"], "card_id");
    assert_eq!(admin.put("/admin/v1/cardholders/C7", &card).await.status, 200);
    let h = gw.client("H0001");
    let settle = settle_body("a-1", "C7", visit_today("inpatient"), amounts(100000, 100000));
    let s = h.post("/v1/settlements", &settle).await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(s.body["ruleset_version"], 2);
    // medical_assistance 9500 of 100000 = 95000; charity 3000 of (5000 + 100000) = 31500
    assert_eq!(s.body["relief_fen"], 95000 + 31500, "{}", s.body);

    let year = this_year().to_string();
    let usage = admin.get(&format!("/admin/v1/cardholders/C7?year={year}")).await;
    assert_eq!(usage.body["year"].to_string(), year);
    assert_eq!(
        usage.body["usage"],
        json!([
        {"program": "charity", "paid_fen": 31500, "deductible_met_fen": 0},
        {"program": "medical_assistance", "paid_fen": 95000, "deductible_met_fen": 0}])
    );
    let pools = admin.get(&format!("/admin/v1/pools?year={year}")).await;
    assert_eq!(
        pools.body["pools"],
        json!([{"program": "charity", "base_fen": 5000000, "contributions_fen": 0, "budget_fen": 5000000,
                "paid_fen": 31500, "left_fen": 5000000 - 31500, "donors": []}])
    );
    assert_eq!(pools.body["ruleset_version"], 2);

    let eligibility = |card_id: &str| json!({"card_id": card_id, "visit": visit_today("inpatient")});
    let e = h.post("/v1/eligibility", &eligibility("C7")).await;
    assert_eq!(
        e.body["programs"][0],
        json!({"program": "medical_assistance", "ratio_bp": 9500, "deductible_left_fen": 0,
        "annual_cap_left_fen": 300000 - 95000, "per_visit_cap_fen": null})
    );
    let mut suspended = card.clone();
    suspended["status"] = json!("suspended");
    admin.put("/admin/v1/cardholders/C7", &suspended).await;
    let e = h.post("/v1/eligibility", &eligibility("C7")).await;
    assert_eq!(
        (e.body["eligible"].as_bool(), e.body["reason"].as_str(), e.body["programs"].clone()),
        (Some(false), Some("suspended"), json!([]))
    );
    assert_eq!(h.post("/v1/eligibility", &eligibility("NOPE")).await.body["code"], "card_not_found");
}

fn card_line(i: usize) -> String {
    format!("{{\"card_id\":\"K{i:05}\",\"category\":\"dibao\",\"valid_from\":\"2026-01-01\",\"valid_until\":\"2026-12-31\",\"status\":\"active\",\"tags\":[]}}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_limits_keep_what_arrived() {
    let stack = Stack::start("[limits]\nmax_import_bytes = 200000\nmax_import_line_bytes = 512\n");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    // An over-long line is skipped and listed; the lines around it are stored.
    let mut body: String = (0..100).map(card_line).collect();
    body.push_str(&format!("{{\"card_id\":\"LONG\",\"category\":\"{}\"}}\n", "x".repeat(5000)));
    body.extend((100..200).map(card_line));
    let reply = import(&admin, body).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        (reply.body["imported"].as_u64(), reply.body["rejected"][0]["line"].as_u64()),
        (Some(200), Some(101)),
        "{}",
        reply.body
    );
    assert_eq!(admin.get("/admin/v1/cardholders/K00199").await.status, 200);

    // A body over max_import_bytes is 413; the lines received before the limit are stored.
    let body: String = (1000..3500).map(card_line).collect();
    assert!(body.len() > 200000);
    let reply = import(&admin, body).await;
    if let Ok(reply) = reply {
        assert_eq!((reply.status, reply.body["code"].as_str()), (413, Some("payload_too_large")), "{}", reply.body);
    } // (the server may also close the connection before the client finished sending)
    assert_eq!(admin.get("/admin/v1/cardholders/K02000").await.status, 200, "lines before the limit are stored");
    assert_eq!(admin.get("/admin/v1/cardholders/K03400").await.status, 404, "lines after the limit are not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_roles_paths_are_forbidden_even_when_unknown() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let h = gw.client("H0001");
    assert_eq!(h.get("/admin/v1/nothing-here").await.body["code"], "forbidden");
    assert_eq!(gw.client(ADMIN).get("/v1/nothing-here").await.body["code"], "forbidden");
    assert_eq!(h.get("/v1/nothing-here").await.body["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_must_be_yyyy_mm_dd() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    for bad in ["+10000-01-01", "2026-1-5", " 2026-11-29", "-0001-01-01", "2026-02-30"] {
        let mut card = cardholder("D1", "dibao");
        card["valid_until"] = json!(bad);
        let reply = admin.put("/admin/v1/cardholders/D1", &card).await;
        assert_eq!(
            (reply.status, reply.body["errors"][0]["field"].as_str()),
            (400, Some("valid_until")),
            "{bad}: {}",
            reply.body
        );
        let quote = quote_body("D1", json!({"type": "outpatient", "date": bad}), amounts(1, 0));
        let reply = gw.client("H0001").post("/v1/settlements/quote", &quote).await;
        assert_eq!(
            (reply.status, reply.body["errors"][0]["field"].as_str()),
            (400, Some("visit.date")),
            "{bad}: {}",
            reply.body
        );
    }
    assert_eq!(stack.redis.data_keys(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_accepts_a_settle_body_and_reconciliation_defaults_to_today() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed(&admin, &[ruleset(9000)], &[cardholder("Q1", "dibao")]).await;
    let h = gw.client("H0001");
    let body = outpatient_bill("q-1", "Q1", 1000, 0);
    let quote = h.post("/v1/settlements/quote", &body).await;
    assert_eq!((quote.status, quote.body["status"].as_str()), (200, Some("quote")), "{}", quote.body);
    assert!(quote.body.get("hospital_settlement_id").is_none() && quote.body.get("settlement_id").is_none());
    assert_eq!(
        h.get("/v1/settlements?card_id=Q1&hospital_settlement_id=q-1").await.status,
        404,
        "a quote records nothing"
    );
    assert_eq!(h.post("/v1/settlements", &body).await.status, 201);
    let day = h.get("/v1/reconciliation").await;
    assert_eq!(
        (day.body["date"].as_str(), day.body["settled_count"].as_i64()),
        (Some(today().to_string().as_str()), Some(1)),
        "{}",
        day.body
    );
    assert_eq!(h.get("/v1/reconciliation?date=2026-13-01").await.body["errors"][0]["field"], "date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn categories_and_tags_are_free_labels() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    // Characters that are magic in Lua patterns, and a category that is a prefix of another.
    let ruleset = json!({"effective_from": "2026-01-01", "programs": [
        {"id": "empty", "name": "Covers nobody", "covers": ["in_scope"], "categories": {}},
        {"id": "ma", "name": "MA", "covers": ["in_scope"], "require_tags": ["80+(elderly)"],
         "categories": {"dibao": {"ratio_bp": 1000}, "dibao-edge.%": {"ratio_bp": 5000}, "低保": {"ratio_bp": 9000}}}]});
    let tagged = |card_id: &str, category: &str, tags: Value| {
        let mut card = cardholder(card_id, category);
        card["tags"] = tags;
        card
    };
    let cards = [
        tagged("L1", "dibao-edge.%", json!(["80+(elderly)"])),
        tagged("L2", "低保", json!(["80+(elderly)"])),
        tagged("L3", "dibao-edge.%", json!([])),
    ];
    seed(&admin, &[ruleset], &cards).await;
    let h = gw.client("H0001");
    for (card, relief) in [("L1", 5000), ("L2", 9000), ("L3", 0)] {
        let s = h.post("/v1/settlements", &outpatient_bill(&format!("l-{card}"), card, 10000, 0)).await;
        assert_eq!((s.status, s.body["relief_fen"].as_i64()), (201, Some(relief)), "{card}: {}", s.body);
    }
    let bad = cardholder("L4", "a;b");
    assert_eq!(admin.put("/admin/v1/cardholders/L4", &bad).await.body["errors"][0]["field"], "category");
    let none = admin.post("/admin/v1/rulesets", &json!({"effective_from": "2027-01-01", "programs": []})).await;
    assert_eq!(none.status, 201, "a ruleset without programs (relief suspended) is valid: {}", none.body);
}
