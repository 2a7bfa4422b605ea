//! Two-sided reconciliation (docs/API.md "Two-sided reconciliation", docs/DESIGN.md): the hospital says what it
//! believes a day holds, the gateway says where the two sides differ. Nothing in the ledger changes.
//!
//! * Totals: [`App::check_totals`] compares the hospital's counts and net amounts with the day's totals (the body
//!   of `GET /v1/reconciliation`).
//! * Lines: a [`DetailsCheck`] takes the hospital's lines as the HTTP layer parses them off the stream, writes them
//!   in batches of [`CHECK_BATCH`] into a scratch hash in Redis (`store::check`), then reads the gateway's day a
//!   page at a time, takes each line's counterpart out of the hash and compares; what is left in the hash is
//!   missing in the gateway. At most a batch, a page and the capped lists of differences are in memory at once.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Deserialize;

use super::{ApiError, ApiResult, App};
use crate::domain::money::MAX_FEN;
use crate::domain::{is_valid_id, is_valid_name, FieldError};
use crate::store::DayTotals;

/// Hospital lines written to the scratch hash per MULTI/EXEC.
pub const CHECK_BATCH: usize = 500;

/// Who is calling, as the route table admitted it (`http::routes::Role`): the handlers scope by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// A hospital, by its id (certificate CN).
    Hospital(&'a str),
    /// The relief office: the whole district.
    Admin,
    /// A street office, by the street it serves (`[streets] identities`): only that street's cards.
    Street(&'a str),
}

impl<'a> Caller<'a> {
    /// The calling hospital's id; "" for the relief office and a street office.
    pub fn hospital_id(self) -> &'a str {
        match self {
            Caller::Hospital(h) => h,
            Caller::Admin | Caller::Street(_) => "",
        }
    }

    /// The street a call is restricted to: the street office's own; `None` (the whole district) otherwise. What
    /// the `/admin/*` operations a street office may call take as `street: Option<&str>`.
    pub fn street(self) -> Option<&'a str> {
        match self {
            Caller::Street(s) => Some(s),
            Caller::Hospital(_) | Caller::Admin => None,
        }
    }

    /// The hospital a check is about. A hospital checks its own: naming another is 403 `forbidden` (naming itself
    /// is allowed). The relief office must name one: 400 `invalid_request` on `hospital_id` otherwise.
    pub fn checked_hospital(self, named: Option<&str>) -> ApiResult<String> {
        match (self, named) {
            (Caller::Hospital(own), None) => Ok(own.to_string()),
            (Caller::Hospital(own), Some(h)) if h == own => Ok(own.to_string()),
            (Caller::Hospital(_), Some(_)) => {
                Err(ApiError::Forbidden("a hospital may check only its own reconciliation".into()))
            }
            (Caller::Admin, None) => {
                Err(ApiError::invalid("hospital_id", "required for the relief office: the hospital to check"))
            }
            (Caller::Admin, Some(h)) if is_valid_id(h) => Ok(h.to_string()),
            (Caller::Admin, Some(_)) => Err(ApiError::invalid("hospital_id", "must be 1-64 chars of A-Za-z0-9._:-")),
            // the route table never admits a street office to a check; refused here too, in case one ever does
            (Caller::Street(_), _) => Err(ApiError::Forbidden("a street office cannot check reconciliation".into())),
        }
    }
}

fn signed_fen_error(field: String, v: i64) -> Option<FieldError> {
    (!(-MAX_FEN..=MAX_FEN).contains(&v))
        .then(|| FieldError::new(field, "must be an integer in -9007199254740991..=9007199254740991"))
}

// ---- totals ---------------------------------------------------------------------------------------------------

/// `POST /v1/reconciliation/check`: what the hospital believes a day's totals are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotalsClaim {
    #[serde(deserialize_with = "crate::domain::date::deserialize")]
    pub date: NaiveDate,
    pub settled_count: i64,
    pub reversed_count: i64,
    pub net: NetClaim,
    /// The hospital checked: the relief office must name one; a hospital may name itself.
    #[serde(default)]
    pub hospital_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetClaim {
    pub total_fen: i64,
    pub insurance_fen: i64,
    pub relief_fen: i64,
    pub patient_fen: i64,
    /// Optional: when given, compared per program (a program absent on one side counts as 0 there).
    #[serde(default)]
    pub by_program: Option<BTreeMap<String, i64>>,
}

impl TotalsClaim {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (field, v) in [("settled_count", self.settled_count), ("reversed_count", self.reversed_count)] {
            if !(0..=MAX_FEN).contains(&v) {
                errors.push(FieldError::new(field, "must be an integer in 0..=9007199254740991"));
            }
        }
        let n = &self.net;
        for (field, v) in [
            ("total_fen", n.total_fen),
            ("insurance_fen", n.insurance_fen),
            ("relief_fen", n.relief_fen),
            ("patient_fen", n.patient_fen),
        ] {
            errors.extend(signed_fen_error(format!("net.{field}"), v));
        }
        for (program, v) in n.by_program.iter().flatten() {
            if !is_valid_name(program) {
                errors.push(FieldError::new("net.by_program", "keys must be program ids (1-64 chars of a-z0-9_)"));
            } else {
                errors.extend(signed_fen_error(format!("net.by_program.{program}"), *v));
            }
        }
        errors
    }
}

/// One field where the two sides differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `settled_count`, `net.relief_fen`, `net.by_program.charity`, …
    pub field: String,
    pub hospital: i64,
    pub gateway: i64,
}

/// The fields where `claim` and the gateway's totals differ, in the order of the totals body (programs by id).
pub fn totals_differences(claim: &TotalsClaim, t: &DayTotals) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut compare = |field: String, hospital: i64, gateway: i64| {
        if hospital != gateway {
            out.push(Difference { field, hospital, gateway });
        }
    };
    compare("settled_count".into(), claim.settled_count, t.settled_count);
    compare("reversed_count".into(), claim.reversed_count, t.reversed_count);
    let n = &claim.net;
    compare("net.total_fen".into(), n.total_fen, t.total_fen);
    compare("net.insurance_fen".into(), n.insurance_fen, t.insurance_fen);
    compare("net.relief_fen".into(), n.relief_fen, t.relief_fen);
    compare("net.patient_fen".into(), n.patient_fen, t.patient_fen);
    if let Some(claimed) = &n.by_program {
        let gateway: BTreeMap<&str, i64> = t.by_program.iter().map(|p| (p.program.as_str(), p.fen)).collect();
        let programs: BTreeSet<&str> = claimed.keys().map(String::as_str).chain(gateway.keys().copied()).collect();
        for p in programs {
            let hospital = claimed.get(p).copied().unwrap_or(0);
            compare(format!("net.by_program.{p}"), hospital, gateway.get(p).copied().unwrap_or(0));
        }
    }
    out
}

/// The answer of a totals check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalsCheck {
    pub date: NaiveDate,
    pub hospital_id: String,
    /// The gateway's totals of that day (the body of `GET /v1/reconciliation`).
    pub gateway: DayTotals,
    /// Empty: the two sides match.
    pub differences: Vec<Difference>,
}

fn result_label(matches: bool) -> &'static str {
    if matches {
        "match"
    } else {
        "mismatch"
    }
}

impl App {
    /// Compares the hospital's totals of a day with the gateway's. Reads only.
    pub async fn check_totals(&self, caller: Caller<'_>, claim: &TotalsClaim) -> ApiResult<TotalsCheck> {
        let hospital_id = caller.checked_hospital(claim.hospital_id.as_deref())?;
        let errors = claim.validate();
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        self.refuse_archived(claim.date).await?;
        let gateway = self.store.day_totals(&claim.date.to_string(), &hospital_id).await?;
        let differences = totals_differences(claim, &gateway);
        let result = result_label(differences.is_empty());
        metrics::counter!("settlegate_reconciliation_checks_total", "check" => "totals", "result" => result)
            .increment(1);
        Ok(TotalsCheck { date: claim.date, hospital_id, gateway, differences })
    }
}

// ---- lines: `lines.rs` ------------------------------------------------------------------------------------

mod lines;
pub use lines::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ProgramFen;

    fn claim(body: &str) -> TotalsClaim {
        crate::http::wire::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn differences_name_the_fields_in_order() {
        let t = DayTotals {
            settled_count: 3,
            reversed_count: 1,
            total_fen: 100,
            insurance_fen: 10,
            relief_fen: 50,
            patient_fen: 40,
            by_program: vec![
                ProgramFen { program: "charity".into(), fen: 50 },
                ProgramFen { program: "ma".into(), fen: 0 },
            ],
        };
        let same = claim(
            r#"{"date":"2026-11-29","settled_count":3,"reversed_count":1,
                "net":{"total_fen":100,"insurance_fen":10,"relief_fen":50,"patient_fen":40}}"#,
        );
        assert_eq!(totals_differences(&same, &t), vec![]);
        let off = claim(
            r#"{"date":"2026-11-29","settled_count":3,"reversed_count":2,
                "net":{"total_fen":100,"insurance_fen":10,"relief_fen":1,"patient_fen":40,"by_program":{"charity":50,"x":3}}}"#,
        );
        let fields: Vec<(String, i64, i64)> =
            totals_differences(&off, &t).into_iter().map(|d| (d.field, d.hospital, d.gateway)).collect();
        assert_eq!(
            fields,
            vec![
                ("reversed_count".to_string(), 2, 1),
                ("net.relief_fen".to_string(), 1, 50),
                ("net.by_program.x".to_string(), 3, 0)
            ]
        );
    }

    #[test]
    fn who_may_check_which_hospital() {
        assert_eq!(Caller::Hospital("H1").checked_hospital(None).unwrap(), "H1");
        assert_eq!(Caller::Hospital("H1").checked_hospital(Some("H1")).unwrap(), "H1");
        assert!(matches!(Caller::Hospital("H1").checked_hospital(Some("H2")), Err(ApiError::Forbidden(_))));
        assert!(
            matches!(Caller::Admin.checked_hospital(None), Err(ApiError::Invalid(e)) if e[0].field == "hospital_id")
        );
        assert!(matches!(Caller::Admin.checked_hospital(Some("a b")), Err(ApiError::Invalid(_))));
        assert_eq!(Caller::Admin.checked_hospital(Some("H2")).unwrap(), "H2");
    }

    #[test]
    fn lines_are_strict() {
        let ok =
            r#"{"event":"reversed","hospital_settlement_id":"H-1","total_fen":-5,"relief_fen":-2,"patient_fen":-3}"#;
        let line: CheckLine = crate::http::wire::parse(ok.as_bytes()).unwrap();
        assert_eq!((line.event, line.validate()), (LineEvent::Reversed, vec![]));
        for bad in [
            r#"{"event":"settled","hospital_settlement_id":"H-1","total_fen":5,"relief_fen":2,"patient_fen":3,"x":1}"#,
            r#"{"event":{"settled":null},"hospital_settlement_id":"H-1","total_fen":5,"relief_fen":2,"patient_fen":3}"#,
            r#"{"event":"settled","hospital_settlement_id":"H-1","total_fen":5.0,"relief_fen":2,"patient_fen":3}"#,
            r#"{"event":"settled","hospital_settlement_id":"H-1","relief_fen":2,"patient_fen":3}"#,
        ] {
            assert!(crate::http::wire::parse::<CheckLine>(bad.as_bytes()).is_err(), "{bad}");
        }
        let big = ok.replace("-5", "9007199254740992");
        let line: CheckLine = crate::http::wire::parse(big.as_bytes()).unwrap();
        assert_eq!(line.validate()[0].field, "total_fen");
    }
}
