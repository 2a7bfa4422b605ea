//! Monthly clearing statements over the real `settlegate serve` binary and a private Redis (docs/API.md
//! "Clearing"): a statement is the sum of the month's reconciliation days as the API reports them; a second POST
//! answers the same statement (recomputed while a draft); only an ended month can be confirmed, and then it is
//! frozen; paid only from confirmed, idempotently; each hospital sees only its own; bad requests write nothing; and
//! every acknowledged transition appends exactly one event to `{sg}:events` whose `data` is the answered statement.
//!
//! Settlements are stamped with the gateway's clock, so a past month cannot be settled through the API: its
//! reconciliation lines are written straight into Redis here, in the exact format of `store::dayline::encode_event`
//! and under the keys `settle.lua` and `reverse.lua` write (`{sg}:recon:<day>:<H>:events`, `{sg}:recon:<day>:hospitals`).
//! The current month is settled and reversed through the API.

mod common;

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use common::*;
use regex_automata::meta::Regex;
use serde_json::{json, Value};
use settlegate::domain::split::Payment;
use settlegate::store::dayline::{encode_event, DayEvent, ProgramFen};
use yaml_rust2::{Yaml, YamlLoader};

fn month(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// The last day of the month before the month of `d`.
fn end_of_previous_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap().pred_opt().unwrap()
}

fn days_of(period: &str) -> Vec<NaiveDate> {
    let first = NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").unwrap();
    first.iter_days().take_while(|d| d.month() == first.month()).collect()
}

/// Writes one reconciliation line of `hospital` on `day` into Redis, as the settle (or, `reversal`, the reverse)
/// script would have: `payments` are (program, fen paid), unsigned as recorded.
fn write_line(redis: &Redis, day: NaiveDate, hospital: &str, reversal: bool, hsid: &str, payments: &[(&str, i64)]) {
    let relief: i64 = payments.iter().map(|p| p.1).sum();
    let sign = if reversal { -1 } else { 1 };
    let event = DayEvent {
        reversal,
        at: format!("{day}T10:00:00.000+08:00"),
        settlement_id: format!("s2_test-{hsid}"),
        hospital_settlement_id: hsid.to_string(),
        card_id: "C9".to_string(),
        total_fen: sign * (relief + 10_000),
        insurance_fen: 0,
        relief_fen: sign * relief,
        patient_fen: sign * 10_000,
        by_program: payments.iter().map(|(p, fen)| ProgramFen { program: p.to_string(), fen: sign * fen }).collect(),
        context: Default::default(),
    };
    let paid: Vec<Payment> = payments
        .iter()
        .map(|(p, fen)| Payment { program: p.to_string(), paid_fen: *fen, deductible_applied_fen: 0, capped_by: None })
        .collect();
    let line = encode_event(&event, &paid);
    let day = day.to_string();
    let pushed = redis.cli(&["RPUSH", &format!("{{sg}}:recon:{day}:{hospital}:events"), &line]);
    assert!(pushed.trim().parse::<u64>().is_ok(), "RPUSH: {pushed}");
    redis.cli(&["SADD", &format!("{{sg}}:recon:{day}:hospitals"), hospital]);
}

/// The month's figures of one hospital, summed from `GET /admin/v1/reconciliation?date=` of each of its days.
async fn month_from_api(admin: &Client, period: &str, hospital: &str) -> Value {
    let (mut settled, mut reversed, mut relief) = (0i64, 0i64, 0i64);
    let mut by_program: BTreeMap<String, i64> = BTreeMap::new();
    for day in days_of(period) {
        let r = admin.get(&format!("/admin/v1/reconciliation?date={day}")).await;
        assert_eq!(r.status, 200, "{day}: {}", r.body);
        for h in r.body["hospitals"].as_array().unwrap().iter().filter(|h| h["hospital_id"] == hospital) {
            settled += h["settled_count"].as_i64().unwrap();
            reversed += h["reversed_count"].as_i64().unwrap();
            relief += h["net"]["relief_fen"].as_i64().unwrap();
            for (p, fen) in h["net"]["by_program"].as_object().unwrap() {
                *by_program.entry(p.clone()).or_default() += fen.as_i64().unwrap();
            }
        }
    }
    json!({"settled_count": settled, "reversed_count": reversed, "relief_fen": relief, "by_program": by_program})
}

fn figures(statement: &Value) -> Value {
    json!({"settled_count": statement["settled_count"], "reversed_count": statement["reversed_count"],
           "relief_fen": statement["relief_fen"], "by_program": statement["by_program"]})
}

/// The clearing events of `{sg}:events`, oldest first: (type, at, data parsed). Other events (settlements, once they
/// are written there) are left out.
async fn clearing_events(redis: &Redis) -> Vec<(String, String, Value)> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: Vec<(String, Vec<String>)> =
        redis::cmd("XRANGE").arg("{sg}:events").arg("-").arg("+").query_async(&mut conn).await.unwrap();
    let mut out = Vec::new();
    for (id, flat) in entries {
        let fields: BTreeMap<&str, &str> = flat.chunks_exact(2).map(|kv| (kv[0].as_str(), kv[1].as_str())).collect();
        let kind = fields.get("type").unwrap_or_else(|| panic!("event {id} without type: {flat:?}"));
        if !kind.starts_with("clearing.") {
            continue;
        }
        assert_eq!(fields.len(), 3, "event {id}: type, at, data only: {flat:?}");
        let at = fields["at"].to_string();
        assert!(chrono::DateTime::parse_from_rfc3339(&at).is_ok(), "event {id}: at {at:?}");
        let data = serde_json::from_str(fields["data"]).unwrap_or_else(|e| panic!("event {id}: data: {e}"));
        out.push((kind.to_string(), at, data));
    }
    out
}

fn xlen(redis: &Redis) -> String {
    redis.cli(&["XLEN", "{sg}:events"]).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_clearing_statements() {
    let stack = Stack::on(Redis::start_with_digest(), "");
    let (gw, redis) = (&stack.gw, &stack.redis);
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &["C1", "C2", "C3"].map(|id| cardholder(id, "dibao"))).await;
    let (h1, h2, h3) = (gw.client("H0001"), gw.client("H0002"), gw.client("H0003"));

    // ---- the current month, through the API ----
    let today = today();
    let current = month(today);
    for (hsid, card) in [("R-1", "C1"), ("R-2", "C2")] {
        let r = h1.post("/v1/settlements", &worked_bill(hsid, card)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(r.body["settled_at"].as_str().unwrap().starts_with(&current), "test crossed a month end; rerun");
    }
    let r = h1.post("/v1/reversals", &json!({"card_id": "C2", "hospital_settlement_id": "R-2"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h2.post("/v1/settlements", &worked_bill("R-1", "C3")).await.status, 201);

    // ---- the month before (p1) and the one before it (p0), written into Redis ----
    let p1_last = end_of_previous_month(today);
    let p0_last = end_of_previous_month(p1_last);
    let (p1, p0) = (month(p1_last), month(p0_last));
    let p1_first = p1_last.with_day(1).unwrap();
    let on = |day: u32| p1_last.with_day(day).unwrap();
    write_line(redis, p0_last, "H0001", false, "OLD-1", &[("medical_assistance", 300_000), ("charity", 50_000)]);
    write_line(redis, p1_first, "H0001", false, "P1-1", &[("medical_assistance", 300_000), ("charity", 50_000)]);
    write_line(redis, p1_first, "H0001", false, "P1-2", &[("charity", 80_000)]);
    // a reversal counts in the month it happened: OLD-1 was settled in p0, reversed in p1
    write_line(redis, on(10), "H0001", true, "OLD-1", &[("medical_assistance", 300_000), ("charity", 50_000)]);
    write_line(redis, p1_last, "H0002", false, "P1-9", &[("charity", 40_000)]);

    let events_before = clearing_events(redis).await;
    assert!(events_before.is_empty(), "{events_before:?}");
    let mut want_events: Vec<(&str, Value)> = Vec::new();

    // ---- a draft of p1: the sum of its days ----
    let created = admin.post("/admin/v1/clearings", &json!({"hospital_id": "H0001", "period": p1})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let s = &created.body;
    let p1_id = format!("cl_{p1}_H0001");
    assert_eq!((s["clearing_id"].as_str(), s["hospital_id"].as_str()), (Some(p1_id.as_str()), Some("H0001")), "{s}");
    assert_eq!((s["period"].as_str(), s["status"].as_str()), (Some(p1.as_str()), Some("draft")), "{s}");
    assert_eq!(figures(s), month_from_api(&admin, &p1, "H0001").await, "{s}");
    assert_eq!(
        figures(s),
        json!({"settled_count": 2, "reversed_count": 1, "relief_fen": 80_000,
               "by_program": {"charity": 80_000, "medical_assistance": 0}})
    );
    assert!(chrono::DateTime::parse_from_rfc3339(s["created_at"].as_str().unwrap()).is_ok(), "{s}");
    for absent in ["confirmed_at", "payment_ref", "paid_at"] {
        assert!(s.get(absent).is_none(), "{absent} on a draft: {s}");
    }
    want_events.push(("clearing.created", created.body.clone()));
    let events = clearing_events(redis).await;
    assert_eq!(events[0].1, s["created_at"].as_str().unwrap(), "the created event's at is created_at");

    // a second POST: the same statement, nothing written
    let len = xlen(redis);
    let again = admin.post("/admin/v1/clearings", &json!({"hospital_id": "H0001", "period": p1})).await;
    assert_eq!((again.status, &again.body), (200, &created.body));
    assert_eq!(xlen(redis), len, "an unchanged draft appends nothing");

    // a line arrives late for p1: the draft is recomputed (same id and created_at), with a new event
    write_line(redis, on(20), "H0001", false, "P1-3", &[("charity", 10_000)]);
    let recomputed = admin.post("/admin/v1/clearings", &json!({"hospital_id": "H0001", "period": p1})).await;
    assert_eq!(recomputed.status, 200, "{}", recomputed.body);
    assert_eq!(figures(&recomputed.body), month_from_api(&admin, &p1, "H0001").await);
    assert_eq!(recomputed.body["relief_fen"], 90_000);
    assert_eq!(recomputed.body["created_at"], created.body["created_at"]);
    assert_eq!(recomputed.body["clearing_id"], created.body["clearing_id"]);
    want_events.push(("clearing.created", recomputed.body.clone()));

    // ---- the current month: a draft, which cannot be confirmed ----
    let cur = admin.post("/admin/v1/clearings", &json!({"hospital_id": "H0001", "period": current})).await;
    assert_eq!(cur.status, 201, "{}", cur.body);
    assert_eq!(figures(&cur.body), month_from_api(&admin, &current, "H0001").await);
    assert_eq!((cur.body["settled_count"].as_i64(), cur.body["reversed_count"].as_i64()), (Some(2), Some(1)));
    want_events.push(("clearing.created", cur.body.clone()));
    let (state, len) = (redis.state(), xlen(redis));
    let cur_id = cur.body["clearing_id"].as_str().unwrap().to_string();
    let refused = admin.post(&format!("/admin/v1/clearings/{cur_id}/confirm"), &json!({})).await;
    assert_problem(&refused, 409, "period_not_ended", "confirm of the current month");
    assert_eq!((redis.state(), xlen(redis)), (state, len), "a refused confirm changes nothing");
    let listed = admin.get(&format!("/admin/v1/clearings?period={current}&hospital_id=H0001")).await;
    assert_eq!(listed.body["clearings"], json!([cur.body]), "still the draft");

    // ---- paid before confirmed: 409 not_confirmed, nothing written ----
    let paid_body = json!({"payment_ref": "PAY-2026-0042", "paid_at": today.to_string()});
    let state = redis.state();
    let r = admin.post(&format!("/admin/v1/clearings/{p1_id}/paid"), &paid_body).await;
    assert_problem(&r, 409, "not_confirmed", "paid of a draft");
    assert_eq!(redis.state(), state);

    // ---- confirm p1: frozen ----
    let confirmed = admin.post(&format!("/admin/v1/clearings/{p1_id}/confirm"), &json!({})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let c = &confirmed.body;
    assert_eq!(c["status"], "confirmed");
    assert_eq!(figures(c), figures(&recomputed.body));
    assert_eq!(c["created_at"], created.body["created_at"]);
    assert!(chrono::DateTime::parse_from_rfc3339(c["confirmed_at"].as_str().unwrap()).is_ok(), "{c}");
    want_events.push(("clearing.confirmed", confirmed.body.clone()));
    let len = xlen(redis);
    let twice = admin.post(&format!("/admin/v1/clearings/{p1_id}/confirm"), &json!({})).await;
    assert_eq!((twice.status, &twice.body), (200, &confirmed.body), "confirming again changes nothing");
    // lines written afterwards for p1 do not change it
    write_line(redis, on(25), "H0001", true, "P1-1", &[("medical_assistance", 300_000), ("charity", 50_000)]);
    assert_ne!(month_from_api(&admin, &p1, "H0001").await, figures(c), "the reconciliation did move");
    let frozen = admin.post("/admin/v1/clearings", &json!({"hospital_id": "H0001", "period": p1})).await;
    assert_eq!((frozen.status, &frozen.body), (200, &confirmed.body), "a confirmed statement is frozen");
    assert_eq!(xlen(redis), len, "nothing appended for an unchanged statement");

    // ---- paid: once, then idempotent; another payment is a conflict ----
    let paid = admin.post(&format!("/admin/v1/clearings/{p1_id}/paid"), &paid_body).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(
        (paid.body["status"].as_str(), paid.body["payment_ref"].as_str()),
        (Some("paid"), Some("PAY-2026-0042"))
    );
    assert_eq!(paid.body["paid_at"], today.to_string());
    assert_eq!(figures(&paid.body), figures(c));
    assert_eq!(paid.body["confirmed_at"], c["confirmed_at"]);
    want_events.push(("clearing.paid", paid.body.clone()));
    let state = redis.state();
    let same = admin.post(&format!("/admin/v1/clearings/{p1_id}/paid"), &paid_body).await;
    assert_eq!((same.status, &same.body), (200, &paid.body), "the same payment again");
    let other = json!({"payment_ref": "PAY-2026-0043", "paid_at": today.to_string()});
    let r = admin.post(&format!("/admin/v1/clearings/{p1_id}/paid"), &other).await;
    assert_problem(&r, 409, "idempotency_conflict", "another payment of a paid statement");
    let r = admin.post(&format!("/admin/v1/clearings/{p1_id}/confirm"), &json!({})).await;
    assert_eq!((r.status, &r.body), (200, &paid.body), "confirm of a paid statement answers it");
    assert_eq!(redis.state(), state, "replays and refusals write nothing");

    // ---- H0002's statement of p1; listings ----
    let h2_p1 = admin.post("/admin/v1/clearings", &json!({"hospital_id": "H0002", "period": p1})).await;
    assert_eq!(h2_p1.status, 201, "{}", h2_p1.body);
    assert_eq!(figures(&h2_p1.body), month_from_api(&admin, &p1, "H0002").await);
    assert_eq!(h2_p1.body["relief_fen"], 40_000);
    want_events.push(("clearing.created", h2_p1.body.clone()));
    let h1_p0 = admin.post("/admin/v1/clearings", &json!({"hospital_id": "H0001", "period": p0})).await;
    assert_eq!((h1_p0.status, h1_p0.body["settled_count"].as_i64()), (201, Some(1)), "{}", h1_p0.body);
    want_events.push(("clearing.created", h1_p0.body.clone()));

    let list = |q: &str| {
        let admin = &admin;
        let q = q.to_string();
        async move {
            let r = admin.get(&format!("/admin/v1/clearings{q}")).await;
            assert_eq!(r.status, 200, "{q}: {}", r.body);
            r.body["clearings"].clone()
        }
    };
    let all = json!([h1_p0.body, paid.body, h2_p1.body, cur.body]);
    assert_eq!(list("").await, all, "by period, then hospital");
    assert_eq!(list(&format!("?period={p1}")).await, json!([paid.body, h2_p1.body]));
    assert_eq!(list("?hospital_id=H0001").await, json!([h1_p0.body, paid.body, cur.body]));
    assert_eq!(list("?status=draft").await, json!([h1_p0.body, h2_p1.body, cur.body]));
    assert_eq!(list(&format!("?period={p1}&hospital_id=H0002&status=draft")).await, json!([h2_p1.body]));
    assert_eq!(list(&format!("?period={p1}&status=confirmed")).await, json!([]));
    assert_eq!(list("?hospital_id=H0009").await, json!([]));

    // a hospital sees its own statements only, whatever it asks
    assert_eq!(hospital_list(&h1, "").await, json!([h1_p0.body, paid.body, cur.body]));
    assert_eq!(hospital_list(&h1, &format!("?period={p1}")).await, json!([paid.body]));
    assert_eq!(hospital_list(&h2, "").await, json!([h2_p1.body]));
    assert_eq!(hospital_list(&h2, "?hospital_id=H0001").await, json!([h2_p1.body]), "hospital_id is not a filter");
    assert_eq!(hospital_list(&h3, "").await, json!([]));
    assert_problem(&h1.get("/v1/clearings?period=2026-13").await, 400, "invalid_request", "bad period");
    assert_problem(&h1.get("/admin/v1/clearings").await, 403, "forbidden", "hospital on the admin list");
    assert_problem(&h1.post("/admin/v1/clearings", &json!({})).await, 403, "forbidden", "hospital creates");
    assert_problem(&admin.get("/v1/clearings").await, 403, "forbidden", "admin on the hospital list");

    // ---- every acknowledged transition, exactly one event, its data the answered statement ----
    let events = clearing_events(redis).await;
    let got: Vec<(&str, &Value)> = events.iter().map(|(t, _, d)| (t.as_str(), d)).collect();
    let want: Vec<(&str, &Value)> = want_events.iter().map(|(t, d)| (*t, d)).collect();
    assert_eq!(got, want);
    assert_eq!(events.iter().find(|e| e.0 == "clearing.confirmed").unwrap().1, c["confirmed_at"].as_str().unwrap());
}

async fn hospital_list(h: &Client, q: &str) -> Value {
    let r = h.get(&format!("/v1/clearings{q}")).await;
    assert_eq!(r.status, 200, "{q}: {}", r.body);
    r.body["clearings"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_naming_the_field_and_write_nothing() {
    let stack = Stack::on(Redis::start_with_digest(), "");
    let (gw, redis) = (&stack.gw, &stack.redis);
    let admin = gw.client(ADMIN);
    let today = today();
    let current = month(today);
    // the 1st of this month + 32 days lies in the next month
    let next = month(today.with_day(1).unwrap().checked_add_days(Days::new(32)).unwrap());
    let p1 = month(end_of_previous_month(today));
    // a confirmed statement to aim the paid refusals at
    write_line(redis, end_of_previous_month(today), "H0001", false, "X-1", &[("charity", 1_000)]);
    assert_eq!(admin.post("/admin/v1/clearings", &json!({"hospital_id": "H0001", "period": p1})).await.status, 201);
    let p1_id = format!("cl_{p1}_H0001");
    assert_eq!(admin.post(&format!("/admin/v1/clearings/{p1_id}/confirm"), &json!({})).await.status, 200);
    let state = redis.state();
    let len = xlen(redis);

    let creates: Vec<(Value, &str)> = vec![
        (json!({"hospital_id": "H0001"}), "period"),
        (json!({"period": current}), "hospital_id"),
        (json!({"hospital_id": "H0001", "period": current, "extra": 1}), "extra"),
        (json!({"hospital_id": "H 1", "period": current}), "hospital_id"),
        (json!({"hospital_id": "h".repeat(65), "period": current}), "hospital_id"),
        (json!({"hospital_id": "", "period": current}), "hospital_id"),
        (json!({"hospital_id": "H0001", "period": "2026-13"}), "period"),
        (json!({"hospital_id": "H0001", "period": "2026-00"}), "period"),
        (json!({"hospital_id": "H0001", "period": "2026-1"}), "period"),
        (json!({"hospital_id": "H0001", "period": "1899-12"}), "period"),
        (json!({"hospital_id": "H0001", "period": "2026-11-01"}), "period"),
        (json!({"hospital_id": "H0001", "period": next}), "period"),
        (json!({"hospital_id": "H0001", "period": 202611}), "period"),
        (json!({"hospital_id": ["H0001"], "period": current}), "hospital_id"),
        (json!({"hospital_id": "H0001", "period": null}), "period"),
    ];
    for (body, field) in &creates {
        assert_invalid(&admin.post("/admin/v1/clearings", body).await, field, &format!("create {body}"));
    }
    let trailing = format!(r#"{{"hospital_id":"H0001","period":"{current}"}} {{}}"#);
    let r = admin.send("POST", "/admin/v1/clearings", Some("application/json"), trailing.into_bytes()).await.unwrap();
    assert_invalid(&r, "body", "trailing data");
    let r = admin.send("POST", "/admin/v1/clearings", Some("text/plain"), b"{}".to_vec()).await.unwrap();
    assert_problem(&r, 415, "unsupported_media_type", "create as text/plain");

    let tomorrow_plus = today.checked_add_days(Days::new(2)).unwrap().to_string();
    let pays: Vec<(Value, &str)> = vec![
        (json!({"paid_at": today.to_string()}), "payment_ref"),
        (json!({"payment_ref": "PAY-1"}), "paid_at"),
        (json!({"payment_ref": "PAY 1", "paid_at": today.to_string()}), "payment_ref"),
        (json!({"payment_ref": "p".repeat(65), "paid_at": today.to_string()}), "payment_ref"),
        (json!({"payment_ref": "PAY-1", "paid_at": "2026-02-30"}), "paid_at"),
        (json!({"payment_ref": "PAY-1", "paid_at": "2026-12-1"}), "paid_at"),
        (json!({"payment_ref": "PAY-1", "paid_at": tomorrow_plus}), "paid_at"),
        (json!({"payment_ref": "PAY-1", "paid_at": today.to_string(), "amount_fen": 1}), "amount_fen"),
    ];
    for (body, field) in &pays {
        let r = admin.post(&format!("/admin/v1/clearings/{p1_id}/paid"), body).await;
        assert_invalid(&r, field, &format!("paid {body}"));
    }
    for q in ["?period=2026-13", "?period=", "?status=open", "?hospital_id=H%201", "?hospital_id="] {
        let r = admin.get(&format!("/admin/v1/clearings{q}")).await;
        assert_problem(&r, 400, "invalid_request", q);
    }
    // unknown or malformed ids: 404
    let paid = json!({"payment_ref": "PAY-1", "paid_at": today.to_string()});
    for id in [format!("cl_{p1}_H0002"), format!("cl_{current}_H0001"), "cl_2026-13_H0001".into(), "x".into()] {
        let r = admin.post(&format!("/admin/v1/clearings/{id}/confirm"), &json!({})).await;
        assert_problem(&r, 404, "not_found", &format!("confirm {id}"));
        let r = admin.post(&format!("/admin/v1/clearings/{id}/paid"), &paid).await;
        assert_problem(&r, 404, "not_found", &format!("paid {id}"));
    }
    let r = admin.get(&format!("/admin/v1/clearings/{p1_id}/confirm")).await;
    assert_problem(&r, 405, "method_not_allowed", "GET confirm");
    assert_eq!(r.header("allow"), Some("POST"));

    assert_eq!(redis.state(), state, "refused requests changed nothing");
    assert_eq!(xlen(redis), len, "and appended no event");
}

/// Concurrent requests for one statement (each on its own connection) make each transition once: one 201 and one
/// `clearing.created`, one `clearing.confirmed`, one `clearing.paid`; the compare-and-set makes the others read
/// again and answer the statement as it then stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_make_each_transition_once() {
    let stack = Stack::start("");
    let (gw, redis) = (&stack.gw, &stack.redis);
    let p1_last = end_of_previous_month(today());
    let p1 = month(p1_last);
    for (i, day) in [p1_last.with_day(1).unwrap(), p1_last].into_iter().enumerate() {
        write_line(redis, day, "H0007", false, &format!("C-{i}"), &[("charity", 1_000)]);
    }
    let admins: Vec<Client> = (0..12).map(|_| gw.client(ADMIN)).collect();
    let all = |path: String, body: Value| {
        let admins = &admins;
        async move {
            let calls = admins.iter().map(|a| a.post(&path, &body));
            futures_util::future::join_all(calls).await
        }
    };
    let created = all("/admin/v1/clearings".into(), json!({"hospital_id": "H0007", "period": p1})).await;
    let statuses: Vec<u16> = created.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 200), "{statuses:?}");
    assert!(created.iter().all(|r| r.body == created[0].body), "one statement");

    let id = format!("cl_{p1}_H0007");
    let confirmed = all(format!("/admin/v1/clearings/{id}/confirm"), json!({})).await;
    assert!(confirmed.iter().all(|r| r.status == 200 && r.body == confirmed[0].body), "one confirmation");
    assert_eq!(confirmed[0].body["relief_fen"], 2_000);

    let paid =
        all(format!("/admin/v1/clearings/{id}/paid"), json!({"payment_ref": "P-1", "paid_at": p1_last.to_string()}))
            .await;
    assert!(paid.iter().all(|r| r.status == 200 && r.body == paid[0].body), "one payment");

    let events = clearing_events(redis).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(kinds, ["clearing.created", "clearing.confirmed", "clearing.paid"]);
    assert_eq!(events[0].2, created[0].body);
    assert_eq!(events[1].2, confirmed[0].body);
    assert_eq!(events[2].2, paid[0].body);
    let metrics = gw.ops_get("/metrics").await.body;
    let applied: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("settlegate_clearing_writes_total") && l.contains("applied"))
        .collect();
    assert_eq!(applied.len(), 3, "one applied write per transition: {applied:?}");
    assert!(applied.iter().all(|l| l.ends_with(" 1")), "{applied:?}");
}

fn openapi() -> Yaml {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.yaml");
    YamlLoader::load_from_str(&std::fs::read_to_string(file).unwrap()).unwrap().remove(0)
}

/// `components/schemas/NAME/pattern`, compiled.
fn pattern(doc: &Yaml, name: &str) -> Regex {
    let p = doc["components"]["schemas"][name]["pattern"].as_str().unwrap_or_else(|| panic!("{name}: no pattern"));
    Regex::new(p).unwrap_or_else(|e| panic!("{name}: {p}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// docs/openapi.yaml's `Period`, `ClearingId` and `PaymentRef` patterns and its two clock rules are the server's:
/// a sample is accepted exactly when the document's regex matches it and the rule holds.
async fn periods_ids_and_payment_refs_are_checked_as_the_openapi_document_says() {
    let doc = openapi();
    let stack = Stack::start("");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    let today = today();
    let current = today.format("%Y-%m").to_string();
    let next = today.with_day(1).unwrap().checked_add_days(Days::new(32)).unwrap().format("%Y-%m").to_string();

    // Period: the pattern, plus x-settlegate-rules period-not-after-this-month on a create
    let period = pattern(&doc, "Period");
    let rule = &doc["components"]["schemas"]["ClearingRequest"]["x-settlegate-rules"][0];
    assert_eq!(rule["id"].as_str(), Some("period-not-after-this-month"));
    let samples = [
        "1900-01",
        "2026-11",
        "2000-12",
        "1899-12",
        "0999-01",
        "2026-13",
        "2026-00",
        "2026-1",
        "+2026-11",
        "2026/11",
        "2026-11-01",
        "202611",
        "10000-01",
        "",
        " 2026-11",
        "\u{664}026-11",
        "9999-12",
        &current,
        &next,
    ];
    for s in samples {
        let allowed = period.is_match(s) && *s <= *current;
        let r = admin.post("/admin/v1/clearings", &json!({"hospital_id": "H0001", "period": s})).await;
        if allowed {
            assert!(r.status == 201 || r.status == 200, "period {s:?}: {}", r.body);
            let id = pattern(&doc, "ClearingId");
            assert!(id.is_match(r.body["clearing_id"].as_str().unwrap()), "{s:?}: {}", r.body);
        } else {
            assert_eq!((r.status, &r.body["errors"][0]["field"]), (400, &json!("period")), "period {s:?}: {}", r.body);
        }
        let q: String = form_urlencoded::byte_serialize(s.as_bytes()).collect();
        let r = admin.get(&format!("/admin/v1/clearings?period={q}")).await;
        assert_eq!(r.status, if period.is_match(s) { 200 } else { 400 }, "?period={s:?}: {}", r.body);
    }

    // PaymentRef (an Id) and paid_at (a LocalDate, at most tomorrow): valid → 404 (no such statement), else 400
    let id = pattern(&doc, "Id");
    assert_eq!(
        doc["components"]["schemas"]["PaymentRef"]["allOf"][0]["$ref"].as_str(),
        Some("#/components/schemas/Id")
    );
    let paid = |payment_ref: &str, paid_at: &str| json!({"payment_ref": payment_ref, "paid_at": paid_at});
    let path = "/admin/v1/clearings/cl_2026-11_H0009/paid";
    let day = today.to_string();
    for s in ["PAY-1", "a", "A-z_0.9:x", &"a".repeat(64), &"a".repeat(65), "", "P 1", "P/1", "P{1}", "\u{c7}1"] {
        let r = admin.post(path, &paid(s, &day)).await;
        let want = if id.is_match(s) { (404, json!(null)) } else { (400, json!("payment_ref")) };
        assert_eq!((r.status, r.body["errors"][0]["field"].clone()), want, "payment_ref {s:?}: {}", r.body);
    }
    let rule = &doc["components"]["schemas"]["ClearingPaidRequest"]["x-settlegate-rules"][0];
    assert_eq!(rule["id"].as_str(), Some("paid-at-at-most-tomorrow"));
    for (days, status) in [(0, 404), (1, 404), (2, 400)] {
        let d = today.checked_add_days(Days::new(days)).unwrap().to_string();
        let r = admin.post(path, &paid("PAY-1", &d)).await;
        assert_eq!(r.status, status, "paid_at today + {days}: {}", r.body);
    }
}
