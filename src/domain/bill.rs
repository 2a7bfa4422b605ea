//! What a hospital sends: the visit, the bill's four buckets and what insurance paid; its validation and its
//! canonical form (what "the same request" means for idempotency, API.md).

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::money::{is_valid_fen, MAX_FEN};
use super::rules::VisitType;
use super::{is_valid_id, FieldError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    #[serde(rename = "type")]
    pub visit_type: VisitType,
    /// Local date of the visit; picks the ruleset in force and the calendar year of caps and deductibles.
    #[serde(with = "super::date")]
    pub date: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amounts {
    pub total_fen: i64,
    pub in_scope_fen: i64,
    pub pre_self_pay_fen: i64,
    pub over_limit_fen: i64,
    pub self_pay_fen: i64,
}

/// What insurance already paid; every amount optional, absent = 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Insurance {
    #[serde(default)]
    pub basic_fen: i64,
    #[serde(default)]
    pub critical_illness_fen: i64,
    #[serde(default)]
    pub other_fen: i64,
    /// The medical-insurance platform's own id of this visit's settlement (its `setl_id`). Part of "the same
    /// request"; while a settlement holding it stands, no other settlement may carry it (`insurance_ref_reused`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_ref: Option<String>,
}

/// The person at the counter (or the office desk) who made a settlement or reversal. Recorded with it and in its
/// events; never part of "the same request": a retry from another terminal is the same settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// 1-64 chars of `A-Za-z0-9._:-` (the hospital's own staff id).
    pub id: String,
    /// 1 to [`MAX_OPERATOR_NAME_CHARS`] characters, no control characters; optional (leave it out rather than
    /// send "", which is refused: the record keeps no empty values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Longest operator name kept (API.md: "name <= 64 chars").
pub const MAX_OPERATOR_NAME_CHARS: usize = 64;

impl Operator {
    /// The checks of an operator, with errors named under `at` (`operator`).
    pub fn validate(&self, at: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_valid_id(&self.id) {
            errors.push(FieldError::new(format!("{at}.id"), "must be 1-64 chars of A-Za-z0-9._:-"));
        }
        if let Some(name) = &self.name {
            let chars = name.chars().count();
            if chars == 0 || chars > MAX_OPERATOR_NAME_CHARS || name.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    format!("{at}.name"),
                    format!("must be 1-{MAX_OPERATOR_NAME_CHARS} characters, none of them control characters"),
                ));
            }
        }
        errors
    }
}

impl Insurance {
    pub fn total_fen(&self) -> i64 {
        self.basic_fen + self.critical_illness_fen + self.other_fen
    }
}

/// The bill part shared by settle and quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// Accepted and ignored, so a billing system can quote with the body it is about to settle.
    #[serde(default, skip_serializing)]
    pub hospital_settlement_id: Option<String>,
    pub card_id: String,
    pub visit: Visit,
    pub amounts: Amounts,
    #[serde(default)]
    pub insurance: Insurance,
    /// Accepted, checked and echoed like a settlement's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    pub hospital_settlement_id: String,
    pub card_id: String,
    pub visit: Visit,
    pub amounts: Amounts,
    #[serde(default)]
    pub insurance: Insurance,
    /// Who settled it at the counter; optional, not part of "the same request".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
}

impl SettleRequest {
    pub fn bill(&self) -> Bill<'_> {
        Bill { card_id: &self.card_id, visit: self.visit, amounts: self.amounts, insurance: &self.insurance }
    }

    /// The API.md checks of a settle request: its `hospital_settlement_id`, the bill's ([`Bill::validate`]), the
    /// operator's.
    pub fn validate(&self, today: NaiveDate) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_valid_id(&self.hospital_settlement_id) {
            errors.push(FieldError::new("hospital_settlement_id", "must be 1-64 chars of A-Za-z0-9._:-"));
        }
        errors.extend(self.bill().validate(today));
        errors.extend(self.operator.iter().flat_map(|o| o.validate("operator")));
        errors
    }
}

impl QuoteRequest {
    pub fn bill(&self) -> Bill<'_> {
        Bill { card_id: &self.card_id, visit: self.visit, amounts: self.amounts, insurance: &self.insurance }
    }

    /// The bill's checks and the operator's.
    pub fn validate(&self, today: NaiveDate) -> Vec<FieldError> {
        let mut errors = self.bill().validate(today);
        errors.extend(self.operator.iter().flat_map(|o| o.validate("operator")));
        errors
    }
}

/// A borrowed view of the fields that define "the same request".
#[derive(Debug, Clone, Copy)]
pub struct Bill<'a> {
    pub card_id: &'a str,
    pub visit: Visit,
    pub amounts: Amounts,
    pub insurance: &'a Insurance,
}

impl Bill<'_> {
    /// The API.md checks of a bill. `today` is the gateway's local date: a visit may lie at most one day ahead.
    pub fn validate(&self, today: NaiveDate) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_valid_id(self.card_id) {
            errors.push(FieldError::new("card_id", "must be 1-64 chars of A-Za-z0-9._:-"));
        }
        if today.checked_add_days(Days::new(1)).is_some_and(|limit| self.visit.date > limit) {
            errors.push(FieldError::new(
                "visit.date",
                format!("must not be after {} (today + 1 day)", today + Days::new(1)),
            ));
        }
        let a = &self.amounts;
        let i = &self.insurance;
        let fields = [
            ("amounts.total_fen", a.total_fen),
            ("amounts.in_scope_fen", a.in_scope_fen),
            ("amounts.pre_self_pay_fen", a.pre_self_pay_fen),
            ("amounts.over_limit_fen", a.over_limit_fen),
            ("amounts.self_pay_fen", a.self_pay_fen),
            ("insurance.basic_fen", i.basic_fen),
            ("insurance.critical_illness_fen", i.critical_illness_fen),
            ("insurance.other_fen", i.other_fen),
        ];
        let mut in_range = true;
        for (field, value) in fields {
            if !is_valid_fen(value) {
                errors.push(FieldError::new(field, "must be an integer in 0..=9007199254740991"));
                in_range = false;
            }
        }
        if in_range {
            // Each term is at most 2^53 - 1, so these sums cannot overflow i64.
            let buckets = a.in_scope_fen + a.pre_self_pay_fen + a.over_limit_fen + a.self_pay_fen;
            if buckets != a.total_fen {
                errors.push(FieldError::new(
                    "amounts.total_fen",
                    format!("must equal in_scope + pre_self_pay + over_limit + self_pay = {buckets}"),
                ));
            }
            if i.total_fen() > a.in_scope_fen {
                errors.push(FieldError::new(
                    "insurance",
                    format!("insurance paid {} in total, more than in_scope_fen {}", i.total_fen(), a.in_scope_fen),
                ));
            }
        }
        debug_assert!(!in_range || a.total_fen <= MAX_FEN);
        if i.settlement_ref.as_deref().is_some_and(|r| !is_valid_id(r)) {
            errors.push(FieldError::new("insurance.settlement_ref", "must be 1-64 chars of A-Za-z0-9._:-"));
        }
        errors
    }

    /// The canonical form: two requests are "the same" exactly when their canonical forms are equal. Stored with the
    /// settlement and compared in the settle script; kept readable on purpose (no hash, so no collisions and easy
    /// to inspect in Redis). An `insurance.settlement_ref` is a 13th field, absent when there is none, so the
    /// canonical form of a request without one is what earlier builds recorded.
    pub fn canonical(&self) -> String {
        let a = &self.amounts;
        let i = &self.insurance;
        let ref_len = i.settlement_ref.as_ref().map_or(0, |r| r.len() + 1);
        // pushed, not format!ed: core::fmt was most of this function's cost (docs/BENCHMARKS.md, issue 13)
        let mut text = String::with_capacity(3 + self.card_id.len() + 1 + 12 + 1 + 10 + 8 * 21 + ref_len);
        text.push_str("v1|");
        text.push_str(self.card_id);
        text.push('|');
        text.push_str(self.visit.visit_type.as_str());
        text.push('|');
        super::date::write_iso(&self.visit.date, &mut text);
        let mut digits = itoa::Buffer::new();
        for fen in [
            a.total_fen,
            a.in_scope_fen,
            a.pre_self_pay_fen,
            a.over_limit_fen,
            a.self_pay_fen,
            i.basic_fen,
            i.critical_illness_fen,
            i.other_fen,
        ] {
            text.push('|');
            text.push_str(digits.format(fen));
        }
        if let Some(r) = &i.settlement_ref {
            text.push('|');
            text.push_str(r);
        }
        text
    }

    /// The residual buckets after insurance (RULES.md): `[in_scope, pre_self_pay, over_limit, self_pay]`.
    pub fn residual(&self) -> [i64; 4] {
        let a = &self.amounts;
        [a.in_scope_fen - self.insurance.total_fen(), a.pre_self_pay_fen, a.over_limit_fen, a.self_pay_fen]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `canonical` wrote with one `format!` (and what stored settlements hold), for any amounts and ref.
    #[test]
    fn canonical_is_the_recorded_form() {
        let cases = [
            (0, 0, 0, None, "v1|C1|inpatient|2026-11-29|0|0|0|0|3|0|0|0"),
            (100, 90, 7, Some("INS-1"), "v1|C1|inpatient|2026-11-29|100|90|0|0|3|7|0|0|INS-1"),
            (
                i64::MAX,
                i64::MAX,
                1,
                None,
                "v1|C1|inpatient|2026-11-29|9223372036854775807|9223372036854775807|0|0|3|1|0|0",
            ),
        ];
        for (total, in_scope, basic, settlement_ref, recorded) in cases {
            let mut req = bill(total, in_scope, basic);
            req.insurance.settlement_ref = settlement_ref.map(String::from);
            req.amounts.self_pay_fen = 3;
            assert_eq!(req.bill().canonical(), recorded);
        }
    }

    fn bill(total: i64, in_scope: i64, basic: i64) -> SettleRequest {
        SettleRequest {
            hospital_settlement_id: "H1-1".into(),
            card_id: "C1".into(),
            visit: Visit { visit_type: VisitType::Inpatient, date: "2026-11-29".parse().unwrap() },
            amounts: Amounts {
                total_fen: total,
                in_scope_fen: in_scope,
                pre_self_pay_fen: 0,
                over_limit_fen: 0,
                self_pay_fen: 0,
            },
            insurance: Insurance { basic_fen: basic, ..Default::default() },
            operator: None,
        }
    }

    #[test]
    fn checks_sums_and_insurance() {
        let today = "2026-11-29".parse().unwrap();
        assert!(bill(100, 100, 100).bill().validate(today).is_empty());
        assert_eq!(bill(99, 100, 0).bill().validate(today)[0].field, "amounts.total_fen");
        assert_eq!(bill(100, 100, 101).bill().validate(today)[0].field, "insurance");
        assert_eq!(bill(-1, -1, 0).bill().validate(today)[0].field, "amounts.total_fen");
        let mut late = bill(1, 1, 0);
        late.visit.date = "2026-12-01".parse().unwrap();
        assert_eq!(late.bill().validate(today)[0].field, "visit.date");
        late.visit.date = "2026-11-30".parse().unwrap();
        assert!(late.bill().validate(today).is_empty());
    }

    #[test]
    fn absent_insurance_equals_zero() {
        let a: SettleRequest = serde_json::from_str(
            r#"{"hospital_settlement_id":"x","card_id":"C1","visit":{"type":"outpatient","date":"2026-01-02"},
            "amounts":{"total_fen":1,"in_scope_fen":1,"pre_self_pay_fen":0,"over_limit_fen":0,"self_pay_fen":0}}"#,
        )
        .unwrap();
        let b: SettleRequest = serde_json::from_str(
            r#"{"hospital_settlement_id":"y","card_id":"C1","visit":{"type":"outpatient","date":"2026-01-02"},
            "amounts":{"total_fen":1,"in_scope_fen":1,"pre_self_pay_fen":0,"over_limit_fen":0,"self_pay_fen":0},
            "insurance":{"basic_fen":0}}"#,
        )
        .unwrap();
        assert_eq!(a.bill().canonical(), b.bill().canonical());
    }
}
