//! JSON ⇄ domain: strict parsing that names the offending field, and the response bodies of API.md.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::app::{ApiError, CardholderYear, Eligibility, PoolsReport, Reversal};
use crate::domain::settlement::{Settlement, SettlementStatus};
use crate::domain::split::Payment;
use crate::domain::FieldError;
use crate::store::{DayEvent, DayTotals, ProgramFen};

/// Parses a JSON body strictly (unknown fields, wrong types, floats for integers: 400 naming the field).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut *de) {
        Ok(v) => {
            // one JSON value and nothing after it but whitespace
            de.end().map_err(|e| ApiError::invalid("body", e.to_string()))?;
            Ok(v)
        }
        Err(e) => {
            let path = field_path(e.path());
            let message = e.into_inner().to_string();
            // serde reports a missing field at its parent's path; name the field itself
            let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
            let field = match (path.is_empty(), missing) {
                (true, Some(name)) => name.to_string(),
                (true, None) => "body".to_string(),
                (false, Some(name)) => format!("{path}.{name}"),
                (false, None) => path,
            };
            Err(ApiError::Invalid(vec![FieldError::new(field, message)]))
        }
    }
}

/// `visit.date`, `programs[2].categories.dibao`; empty at the top level. A key that would print as nothing (the
/// unknown field `""`) is written `""`, so that every error names a field.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        let name = match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } | Segment::Enum { variant: key } if key.is_empty() => "\"\"",
            Segment::Map { key } | Segment::Enum { variant: key } => key.as_str(),
            Segment::Unknown => "?",
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let field = |body: &str| match parse::<crate::domain::bill::SettleRequest>(body.as_bytes()) {
            Err(ApiError::Invalid(e)) => e[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(r#"{"hospital_settlement_id":"x"}"#), "card_id");
        assert_eq!(field(r#"{"hospital_settlement_id":"x","card_id":"C","visit":{"type":"inpatient"}}"#), "visit.date");
        assert_eq!(field(r#"{"hospital_settlement_id":"x","card_id":"C","bogus":1}"#), "bogus");
        assert_eq!(field(r#"{"hospital_settlement_id":"x","card_id":7}"#), "card_id");
        assert_eq!(field("not json"), "body");
        assert_eq!(field(r#"{"hospital_settlement_id":"x","":1}"#), "\"\"");
        assert_eq!(field(r#"{"hospital_settlement_id":"x","card_id":"C","visit":{"":1}}"#), "visit.\"\"");
    }

    #[test]
    fn one_value_and_nothing_after_it() {
        let body = r#"{"card_id":"C1","visit":{"type":"inpatient","date":"2026-11-29"}}"#;
        assert!(parse::<crate::app::EligibilityRequest>(body.as_bytes()).is_ok());
        assert!(parse::<crate::app::EligibilityRequest>(format!("{body} \n").as_bytes()).is_ok());
        for trailing in [" x", "{}", ",1"] {
            match parse::<crate::app::EligibilityRequest>(format!("{body}{trailing}").as_bytes()) {
                Err(ApiError::Invalid(e)) => assert_eq!(e[0].field, "body"),
                other => panic!("{trailing:?}: {other:?}"),
            }
        }
    }
}

#[derive(Serialize)]
struct PaymentJson<'a> {
    program: &'a str,
    paid_fen: i64,
    deductible_applied_fen: i64,
    capped_by: Option<&'static str>,
}

#[derive(Serialize)]
struct SettlementJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    settlement_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hospital_settlement_id: Option<&'a str>,
    status: &'static str,
    card_id: &'a str,
    category: &'a str,
    visit: &'a crate::domain::bill::Visit,
    ruleset_version: u64,
    total_fen: i64,
    insurance_fen: i64,
    payments: Vec<PaymentJson<'a>>,
    relief_fen: i64,
    patient_fen: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reversed_at: Option<&'a str>,
}

fn payments(p: &[Payment]) -> Vec<PaymentJson<'_>> {
    p.iter()
        .map(|p| PaymentJson {
            program: &p.program,
            paid_fen: p.paid_fen,
            deductible_applied_fen: p.deductible_applied_fen,
            capped_by: p.capped_by.map(|c| c.as_str()),
        })
        .collect()
}

pub fn settlement(s: &Settlement) -> Vec<u8> {
    let quote = s.status == SettlementStatus::Quote;
    let body = SettlementJson {
        settlement_id: if quote { None } else { s.settlement_id.as_deref() },
        hospital_settlement_id: if quote { None } else { s.hospital_settlement_id.as_deref() },
        status: s.status.as_str(),
        card_id: &s.card_id,
        category: &s.category,
        visit: &s.visit,
        ruleset_version: s.ruleset_version,
        total_fen: s.amounts.total_fen,
        insurance_fen: s.insurance_fen,
        payments: payments(&s.payments),
        relief_fen: s.relief_fen,
        patient_fen: s.patient_fen,
        settled_at: if quote { None } else { s.settled_at.as_deref() },
        reversed_at: if s.status == SettlementStatus::Reversed { s.reversed_at.as_deref() } else { None },
    };
    serde_json::to_vec(&body).expect("settlement serialises")
}

pub fn reversal(r: &Reversal) -> Vec<u8> {
    match r {
        Reversal::Settlement(s) => settlement(s),
        Reversal::ReversedBeforeSettled(t) => to_vec(&json!({
            "status": "reversed_before_settled",
            "card_id": t.card_id,
            "hospital_settlement_id": t.hospital_settlement_id,
            "reversed_at": t.reversed_at,
        })),
    }
}

pub fn eligibility(e: &Eligibility) -> Vec<u8> {
    let programs: Vec<Value> = e
        .programs
        .iter()
        .map(|p| {
            json!({"program": p.program, "ratio_bp": p.ratio_bp, "deductible_left_fen": p.deductible_left_fen,
                   "annual_cap_left_fen": p.annual_cap_left_fen, "per_visit_cap_fen": p.per_visit_cap_fen})
        })
        .collect();
    to_vec(&json!({"card_id": e.card_id, "eligible": e.eligible, "reason": e.reason, "category": e.category,
                   "ruleset_version": e.ruleset_version, "programs": programs}))
}

pub fn day_totals(date: &str, hospital_id: &str, t: &DayTotals) -> Value {
    let by_program = program_map(&t.by_program);
    json!({"date": date, "hospital_id": hospital_id, "settled_count": t.settled_count, "reversed_count": t.reversed_count,
           "net": {"total_fen": t.total_fen, "insurance_fen": t.insurance_fen, "relief_fen": t.relief_fen,
                   "patient_fen": t.patient_fen, "by_program": by_program}})
}

/// One NDJSON line of `GET /v1/reconciliation/settlements` (amounts negative for reversals), newline included.
pub fn day_event(e: &DayEvent) -> Vec<u8> {
    let by_program = program_map(&e.by_program);
    let mut line = to_vec(&json!({
        "event": if e.reversal { "reversed" } else { "settled" }, "at": e.at, "settlement_id": e.settlement_id,
        "hospital_settlement_id": e.hospital_settlement_id, "card_id": e.card_id, "total_fen": e.total_fen,
        "insurance_fen": e.insurance_fen, "relief_fen": e.relief_fen, "patient_fen": e.patient_fen,
        "by_program": by_program}));
    line.push(b'\n');
    line
}

/// `{"program": fen, …}`, by program id.
fn program_map(amounts: &[ProgramFen]) -> serde_json::Map<String, Value> {
    amounts.iter().map(|p| (p.program.clone(), json!(p.fen))).collect()
}

pub fn cardholder_with_usage(c: &CardholderYear) -> Vec<u8> {
    let mut v = serde_json::to_value(&c.card).expect("cardholder serialises");
    v["year"] = json!(c.year);
    v["usage"] = c
        .usage
        .iter()
        .map(|u| json!({"program": u.program, "paid_fen": u.paid_fen, "deductible_met_fen": u.deductible_met_fen}))
        .collect();
    to_vec(&v)
}

pub fn pools(r: &PoolsReport) -> Vec<u8> {
    let list: Vec<Value> = r
        .pools
        .iter()
        .map(|p| json!({"program": p.program, "budget_fen": p.budget_fen, "paid_fen": p.paid_fen, "left_fen": p.left_fen}))
        .collect();
    to_vec(&json!({"year": r.year, "ruleset_version": r.ruleset_version, "pools": list}))
}

pub fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("json serialises")
}
