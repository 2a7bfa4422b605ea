//! JSON ⇄ domain: strict parsing that names the offending field, and the response bodies of API.md.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::app::{ApiError, CardholderYear, ContributionReceipt, Eligibility, Pool, PoolsReport, Reversal};
use crate::domain::clearing::Clearing;
use crate::domain::settlement::{Settlement, SettlementStatus};
use crate::domain::split::Payment;
use crate::domain::FieldError;
use crate::store::{DayEvent, DayTotals, ProgramFen};

/// Fields of the request types whose value is a JSON array (`Vec<_>` or `Option<Vec<_>>` in `Cardholder`,
/// `Program` and `RulesetInput`). serde's derive also reads a struct from an array of its fields in order
/// (`"amounts": [1000, 1000, 0, 0, 0]`); [`parse`] refuses an array anywhere else. A new `Vec` field in a request
/// type must be added here (the test `every_array_field_of_the_request_types_is_accepted` fills each one).
pub const ARRAY_FIELDS: [&str; 5] = ["tags", "programs", "visit_types", "covers", "require_tags"];

/// Fields whose value is a map with keys chosen by the caller (category names): under them a key is data, not a
/// field name, so it never makes an array acceptable.
const MAP_FIELDS: [&str; 1] = ["categories"];

/// Parses a JSON body strictly: one JSON object and nothing after it but whitespace; a JSON array only where a
/// request type has a list ([`ARRAY_FIELDS`]); unknown fields, wrong types, floats for integers: 400 naming the
/// field.
///
/// The array rule costs nothing on the settle path: a body without a `[` byte holds no array and is deserialized
/// directly. Otherwise it is first read as a `serde_json::Value` and walked, then deserialized from the original
/// bytes as usual.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let shape = if body.contains(&b'[') { check_arrays(body) } else { Ok(()) };
    // A body that is not JSON at all fails both readers; the typed one names the field, so it answers.
    if let Err(ShapeError::Array(field, message)) = shape {
        return Err(ApiError::invalid(&field, message));
    }
    // The plain deserializer first: tracking the path of every field (serde_path_to_error) cost a third of the
    // parse (docs/BENCHMARKS.md, issue 13), and only a refused body needs it. Deserializing is deterministic, so the
    // second, tracked read of a refused body fails the same way and names the field.
    let de = &mut serde_json::Deserializer::from_slice(body);
    let Ok(value) = T::deserialize(&mut *de) else {
        let de = &mut serde_json::Deserializer::from_slice(body);
        return Err(match serde_path_to_error::deserialize::<_, T>(&mut *de) {
            Err(e) => typed_error(e),
            // not expected (the same reader, the same bytes); refused all the same, never half-read
            Ok(_) => ApiError::invalid("body", "not a valid request body".to_string()),
        });
    };
    if let Err(e) = de.end() {
        return Err(ApiError::invalid("body", format!("data after the JSON document: {e}")));
    }
    match shape {
        Err(ShapeError::NotJson(e)) => Err(ApiError::invalid("body", e.to_string())),
        _ => Ok(value),
    }
}

/// Why [`check_arrays`] refused a body.
enum ShapeError {
    /// Not one JSON document (the typed parse says where).
    NotJson(serde_json::Error),
    /// An array where an object or scalar belongs: the field's path and what is wrong.
    Array(String, &'static str),
}

/// The array rule of [`parse`], on a body that holds a `[`: the top level is an object, and an array appears only
/// as the value of an [`ARRAY_FIELDS`] key of an object (its items: objects or scalars, never arrays).
fn check_arrays(body: &[u8]) -> Result<(), ShapeError> {
    let root: Value = serde_json::from_slice(body).map_err(ShapeError::NotJson)?;
    let Value::Object(fields) = &root else {
        return Err(ShapeError::Array("body".into(), "must be a JSON object"));
    };
    walk_object(fields, "", false)
}

/// `path` is the object's own path ("" at the top); `is_map`: its keys are data (a [`MAP_FIELDS`] value).
fn walk_object(fields: &serde_json::Map<String, Value>, path: &str, is_map: bool) -> Result<(), ShapeError> {
    for (key, value) in fields {
        let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        match value {
            Value::Array(items) if !is_map && ARRAY_FIELDS.contains(&key.as_str()) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Array(_) => {
                            return Err(ShapeError::Array(format!("{at}[{i}]"), "must not be an array"));
                        }
                        Value::Object(inner) => walk_object(inner, &format!("{at}[{i}]"), false)?,
                        _ => {}
                    }
                }
            }
            Value::Array(_) => return Err(ShapeError::Array(at, "must be an object or a value, not an array")),
            Value::Object(inner) => walk_object(inner, &at, !is_map && MAP_FIELDS.contains(&key.as_str()))?,
            _ => {}
        }
    }
    Ok(())
}

/// A typed deserialization error as a 400 naming the field.
fn typed_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
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
    ApiError::Invalid(vec![FieldError::new(field, message)])
}

/// `visit.date`, `programs[2].categories.dibao`; empty at the top level. A key that would print as nothing visible
/// (the unknown field `""` or `" "`) is written quoted, so that every error names a field.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        let name = match segment {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } | Segment::Enum { variant: key } if key.trim().is_empty() => format!("{key:?}"),
            Segment::Map { key } | Segment::Enum { variant: key } => key.clone(),
            Segment::Unknown => "?".to_string(),
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&name);
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
        assert_eq!(field(r#"{"hospital_settlement_id":"x","\t ":1}"#), "\"\\t \"");
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

    const SETTLE: &str = r#"{"hospital_settlement_id":"x","card_id":"C1","visit":{"type":"inpatient","date":"2026-11-29"},
        "amounts":{"total_fen":1000,"in_scope_fen":1000,"pre_self_pay_fen":0,"over_limit_fen":0,"self_pay_fen":0},
        "insurance":{"basic_fen":0}}"#;

    fn refusal<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> (String, String) {
        match parse::<T>(body.as_bytes()) {
            Err(ApiError::Invalid(e)) => (e[0].field.clone(), e[0].message.clone()),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn data_after_the_document_is_refused() {
        use crate::domain::bill::SettleRequest;
        assert!(parse::<SettleRequest>(SETTLE.as_bytes()).is_ok());
        assert!(parse::<SettleRequest>(format!(" \n{SETTLE}\r\n\t ").as_bytes()).is_ok());
        for tail in [" trailing", "{}", "x", "\u{0}", "0", "[]", "\"s\""] {
            let (field, message) = refusal::<SettleRequest>(&format!("{SETTLE}{tail}"));
            assert_eq!(field, "body", "{tail:?}");
            assert!(message.contains("trailing"), "{tail:?}: {message}");
        }
        // the same through the import's line parser (one cardholder per line)
        let line = r#"{"card_id":"C1","category":"dibao","valid_from":"2026-01-01","valid_until":"2026-12-31","status":"active"}"#;
        assert!(crate::http::import::parse_cardholder_line(line.as_bytes()).is_ok());
        assert!(crate::http::import::parse_cardholder_line(format!("{line} {line}").as_bytes()).is_err());
    }

    #[test]
    fn structs_are_not_read_from_arrays() {
        use crate::app::EligibilityRequest;
        use crate::domain::bill::SettleRequest;
        use crate::domain::card::Cardholder;
        use crate::domain::rules::RulesetInput;
        let settle = |from: &str, to: &str| {
            let body = SETTLE.replace(from, to);
            assert_ne!(body, SETTLE, "{from} not in the fixture");
            refusal::<SettleRequest>(&body).0
        };
        let amounts =
            r#"{"total_fen":1000,"in_scope_fen":1000,"pre_self_pay_fen":0,"over_limit_fen":0,"self_pay_fen":0}"#;
        assert_eq!(settle(amounts, "[1000,1000,0,0,0]"), "amounts");
        assert_eq!(settle(r#"{"type":"inpatient","date":"2026-11-29"}"#, r#"["inpatient","2026-11-29"]"#), "visit");
        assert_eq!(settle(r#"{"basic_fen":0}"#, "[0,0,0]"), "insurance");
        assert_eq!(settle(r#""C1""#, r#"["C1"]"#), "card_id");
        assert_eq!(settle(r#""inpatient""#, r#"["inpatient"]"#), "visit.type");
        // nor a unit variant from a map (serde's derive reads `{"inpatient": null}` as `"inpatient"`)
        assert_eq!(settle(r#""inpatient""#, r#"{"inpatient":null}"#), "visit.type");
        let positional = r#"["x","C1",["inpatient","2026-11-29"],[1000,1000,0,0,0],[0,0,0]]"#;
        assert_eq!(refusal::<SettleRequest>(positional).0, "body");
        assert_eq!(refusal::<EligibilityRequest>(r#"["C1",{"type":"inpatient","date":"2026-11-29"}]"#).0, "body");
        // an array field's name elsewhere, or as a caller-chosen key, does not make an array acceptable
        let tagged = SETTLE.replace(r#""insurance":{"basic_fen":0}"#, r#""insurance":{"tags":[]}"#);
        assert_eq!(refusal::<SettleRequest>(&tagged).0, "insurance.tags");
        let ruleset = |categories: &str| {
            format!(
                r#"{{"effective_from":"2026-01-01","programs":[{{"id":"a","name":"A","covers":["in_scope"],
                "categories":{categories}}}]}}"#
            )
        };
        assert!(parse::<RulesetInput>(ruleset(r#"{"dibao":{"ratio_bp":9000}}"#).as_bytes()).is_ok());
        assert_eq!(refusal::<RulesetInput>(&ruleset(r#"{"dibao":[9000]}"#)).0, "programs[0].categories.dibao");
        assert_eq!(refusal::<RulesetInput>(&ruleset(r#"{"tags":[9000]}"#)).0, "programs[0].categories.tags");
        assert_eq!(
            refusal::<RulesetInput>(
                r#"{"effective_from":"2026-01-01","programs":[["a","A",null,["in_scope"],null,null,{}]]}"#
            )
            .0,
            "programs[0]"
        );
        // a `[` inside a string is no array
        let card = r#"{"card_id":"C1","category":"a[b","valid_from":"2026-01-01","valid_until":"2026-12-31","status":"active"}"#;
        assert_eq!(parse::<Cardholder>(card.as_bytes()).unwrap().category, "a[b");
        // malformed JSON that holds a `[` still names the field the typed parser names
        assert_eq!(refusal::<Cardholder>(r#"{"card_id":"C1","tags":[1,}"#).0, "tags[0]");
    }

    #[test]
    fn every_array_field_of_the_request_types_is_accepted() {
        use crate::domain::card::Cardholder;
        use crate::domain::rules::RulesetInput;
        let card = r#"{"card_id":"C1","category":"dibao","valid_from":"2026-01-01","valid_until":"2026-12-31",
            "status":"active","tags":["elderly_80","disabled"]}"#;
        assert_eq!(parse::<Cardholder>(card.as_bytes()).unwrap().tags.len(), 2);
        let rules = r#"{"effective_from":"2026-01-01","programs":[{"id":"a","name":"A","visit_types":["inpatient"],
            "covers":["in_scope","self_pay"],"require_tags":["elderly_80"],"categories":{"dibao":{"ratio_bp":9000}}}]}"#;
        let r = parse::<RulesetInput>(rules.as_bytes()).unwrap();
        assert_eq!((r.programs.len(), r.programs[0].covers.len()), (1, 2));
        let used: Vec<&str> = ARRAY_FIELDS.iter().copied().filter(|f| rules.contains(f) || card.contains(f)).collect();
        assert_eq!(used, ARRAY_FIELDS, "a listed array field has no example here");
    }
}

#[derive(Serialize)]
struct PaymentJson<'a> {
    program: &'a str,
    paid_fen: i64,
    deductible_applied_fen: i64,
    capped_by: Option<&'static str>,
}

/// The settlement body of API.md, field for field, in its order.
#[derive(Serialize)]
pub struct SettlementJson<'a> {
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
    payments: Payments<'a>,
    relief_fen: i64,
    patient_fen: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reversed_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    insurance_settlement_ref: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<&'a crate::domain::bill::Operator>,
}

/// The payments, serialised one by one from the settlement (no vector of them is built per answer).
struct Payments<'a>(&'a [Payment]);

impl Serialize for Payments<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|p| PaymentJson {
            program: &p.program,
            paid_fen: p.paid_fen,
            deductible_applied_fen: p.deductible_applied_fen,
            capped_by: p.capped_by.map(|c| c.as_str()),
        }))
    }
}

/// A settlement answer is about 600 bytes: one allocation of this size, not the growth from serde_json's 128.
const SETTLEMENT_BYTES: usize = 1024;

pub fn settlement(s: &Settlement) -> Vec<u8> {
    let mut out = Vec::with_capacity(SETTLEMENT_BYTES);
    serde_json::to_writer(&mut out, &settlement_json(s)).expect("settlement serialises");
    out
}

/// The settlement body (API.md), borrowed from the settlement: rendered alone or inside an event's data.
pub fn settlement_json(s: &Settlement) -> SettlementJson<'_> {
    let quote = s.status == SettlementStatus::Quote;
    SettlementJson {
        settlement_id: if quote { None } else { s.settlement_id.as_deref() },
        hospital_settlement_id: if quote { None } else { s.hospital_settlement_id.as_deref() },
        status: s.status.as_str(),
        card_id: &s.card_id,
        category: &s.category,
        visit: &s.visit,
        ruleset_version: s.ruleset_version,
        total_fen: s.amounts.total_fen,
        insurance_fen: s.insurance_fen,
        payments: Payments(&s.payments),
        relief_fen: s.relief_fen,
        patient_fen: s.patient_fen,
        settled_at: if quote { None } else { s.settled_at.as_deref() },
        reversed_at: if s.status == SettlementStatus::Reversed { s.reversed_at.as_deref() } else { None },
        insurance_settlement_ref: s.insurance.settlement_ref.as_deref(),
        operator: s.operator.as_ref(),
    }
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

pub fn pool(p: &Pool) -> Value {
    p.to_json()
}

pub fn pools(r: &PoolsReport) -> Vec<u8> {
    let list: Vec<Value> = r.pools.iter().map(pool).collect();
    to_vec(&json!({"year": r.year, "ruleset_version": r.ruleset_version, "pools": list}))
}

/// `POST /admin/v1/pools/{program}/contributions`: the contribution's fields, and `pool` after it.
pub fn contribution(r: &ContributionReceipt) -> Vec<u8> {
    let mut v = serde_json::to_value(&r.contribution).expect("a contribution serialises");
    v["pool"] = r.pool.as_ref().map_or(Value::Null, pool);
    to_vec(&v)
}

/// `{"clearings": [<statement> …]}`, each statement as `Clearing::render` writes it.
pub fn clearings(list: &[Clearing]) -> Vec<u8> {
    #[derive(Serialize)]
    struct List<'a> {
        clearings: &'a [Clearing],
    }
    to_vec(&List { clearings: list })
}

pub fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("json serialises")
}
