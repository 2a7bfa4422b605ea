//! The data the tests send: the gateway's "today", cardholders, bills and rulesets (docs/API.md shapes).

use chrono::{Datelike, NaiveDate};
use serde_json::{json, Value};
use settlegate::domain::card::Cardholder;

/// The time zone of every gateway under test: written into the config of [`crate::common::Gateway`] and given to
/// the in-process `App`s of [`crate::common::app`], so "today" below is the gateway's today.
pub const TIMEZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// The gateway's local date ([`TIMEZONE`]): a visit may lie at most one day after it (docs/API.md).
pub fn today() -> NaiveDate {
    chrono::Utc::now().with_timezone(&TIMEZONE).date_naive()
}

/// The gateway's local year: the default year of usage and pools.
pub fn this_year() -> i32 {
    today().year()
}

/// When a ruleset published by a test was "published" (`published_at`).
pub const PUBLISHED_AT: &str = "2026-01-01T08:00:00.000+08:00";

/// An active cardholder without tags, valid 2020-01-01 to 2099-12-31.
pub fn cardholder(card_id: &str, category: &str) -> Value {
    json!({"card_id": card_id, "category": category, "valid_from": "2020-01-01", "valid_until": "2099-12-31",
           "status": "active", "tags": []})
}

/// [`cardholder`] as the domain type.
pub fn cardholder_record(card_id: &str, category: &str) -> Cardholder {
    serde_json::from_value(cardholder(card_id, category)).unwrap()
}

/// A visit of this type (`outpatient`, `chronic`, `inpatient`) today.
pub fn visit_today(visit_type: &str) -> Value {
    json!({"type": visit_type, "date": today().to_string()})
}

/// Amounts of `in_scope_fen + self_pay_fen` in all (nothing pre-self-paid, nothing over the limit).
pub fn amounts(in_scope_fen: i64, self_pay_fen: i64) -> Value {
    json!({"total_fen": in_scope_fen + self_pay_fen, "in_scope_fen": in_scope_fen, "pre_self_pay_fen": 0,
           "over_limit_fen": 0, "self_pay_fen": self_pay_fen})
}

/// A quote (or eligibility-shaped) body: no `hospital_settlement_id`, no insurance.
pub fn quote_body(card_id: &str, visit: Value, amounts: Value) -> Value {
    let mut body = json!({"card_id": card_id});
    body["visit"] = visit;
    body["amounts"] = amounts;
    body
}

/// A settle body without insurance.
pub fn settle_body(hsid: &str, card_id: &str, visit: Value, amounts: Value) -> Value {
    let mut body = quote_body(card_id, visit, amounts);
    body["hospital_settlement_id"] = json!(hsid);
    body
}

/// An outpatient bill of today, without insurance: `in_scope_fen + self_pay_fen` in all.
pub fn outpatient_bill(hsid: &str, card_id: &str, in_scope_fen: i64, self_pay_fen: i64) -> Value {
    settle_body(hsid, card_id, visit_today("outpatient"), amounts(in_scope_fen, self_pay_fen))
}

/// The bill of docs/RULES.md's worked example (tests/golden/worked_example.json), an inpatient stay of today.
pub fn worked_bill(hsid: &str, card_id: &str) -> Value {
    json!({
        "hospital_settlement_id": hsid,
        "card_id": card_id,
        "visit": visit_today("inpatient"),
        "amounts": {"total_fen": 2000000, "in_scope_fen": 1799999, "pre_self_pay_fen": 30001,
                    "over_limit_fen": 20000, "self_pay_fen": 150000},
        "insurance": {"basic_fen": 1203999, "critical_illness_fen": 94900, "other_fen": 0}
    })
}

/// The ruleset of docs/RULES.md's worked example (tests/golden/worked_example.json), in force since 2020.
pub fn worked_ruleset() -> Value {
    json!({
        "effective_from": "2020-01-01",
        "programs": [
            {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
             "categories": {
                 "tekun": {"ratio_bp": 10000, "annual_cap_fen": 15000000},
                 "dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000},
                 "low_income": {"ratio_bp": 7000, "deductible_fen": 100000, "annual_cap_fen": 6000000},
                 "illness_poverty": {"ratio_bp": 6000, "deductible_fen": 250000, "annual_cap_fen": 15000000}}},
            {"id": "charity", "name": "Charity fund", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
             "categories": {
                 "tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100000},
                 "dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000}}}
        ]
    })
}

/// One program, `medical_assistance` on the in-scope bucket, serving dibao cards on these terms
/// (e.g. `{"ratio_bp": 9000, "annual_cap_fen": 300000}`).
pub fn assistance_ruleset(effective_from: &str, dibao_terms: Value) -> Value {
    let mut ruleset = json!({"effective_from": effective_from, "programs": [
        {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"], "categories": {}}]});
    ruleset["programs"][0]["categories"]["dibao"] = dibao_terms;
    ruleset
}
