//! Monthly clearing statements (API.md "Clearing"): what the relief fund owes one hospital for one local month.
//! The period, the statement's status, its figures and its id; pure (the app computes, the store records).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Days, NaiveDate};
use serde::Serialize;

/// A calendar month, `YYYY-MM` on the wire (year 1900–9999, month 01–12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i32,
    month: u32,
}

impl Period {
    /// Exactly `YYYY-MM`: four digits, `-`, two digits; year 1900–9999, month 01–12.
    pub fn parse(s: &str) -> Option<Period> {
        let b = s.as_bytes();
        let shape = b.len() == 7 && b[4] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || c.is_ascii_digit());
        if !shape {
            return None;
        }
        let year: i32 = s[..4].parse().ok()?;
        let month: u32 = s[5..].parse().ok()?;
        ((1900..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Period { year, month })
    }

    /// The month `date` lies in.
    pub fn of(date: NaiveDate) -> Period {
        Period { year: date.year(), month: date.month() }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a parsed period is a real month")
    }

    pub fn last_day(self) -> NaiveDate {
        let next_first = if self.month == 12 {
            NaiveDate::from_ymd_opt(self.year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(self.year, self.month + 1, 1)
        };
        next_first.and_then(|d| d.pred_opt()).expect("a parsed period is a real month")
    }

    /// Every local day of the month, in order.
    pub fn days(self) -> impl Iterator<Item = NaiveDate> {
        let last = self.last_day();
        self.first_day().iter_days().take_while(move |d| *d <= last)
    }

    /// Whether the month is over on the local date `today` (its last day has passed).
    pub fn ended_by(self, today: NaiveDate) -> bool {
        today > self.last_day()
    }

    /// The first local day on which the month has ended.
    pub fn ends_on(self) -> NaiveDate {
        self.last_day().checked_add_days(Days::new(1)).unwrap_or(NaiveDate::MAX)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where a statement is in its life: `draft` (recomputed on every POST) → `confirmed` (frozen) → `paid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearingStatus {
    Draft,
    Confirmed,
    Paid,
}

impl ClearingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClearingStatus::Draft => "draft",
            ClearingStatus::Confirmed => "confirmed",
            ClearingStatus::Paid => "paid",
        }
    }

    pub fn parse(s: &str) -> Option<ClearingStatus> {
        match s {
            "draft" => Some(ClearingStatus::Draft),
            "confirmed" => Some(ClearingStatus::Confirmed),
            "paid" => Some(ClearingStatus::Paid),
            _ => None,
        }
    }
}

/// A month's figures: the sums of the hospital's daily reconciliation over every local day of the month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClearingFigures {
    /// Settlements made in the month (whether or not reversed since).
    pub settled_count: i64,
    /// Reversals made in the month (of settlements of this month or of earlier ones).
    pub reversed_count: i64,
    /// The sum of the days' `net.relief_fen` (a reversal counts negative in the month it happened).
    pub relief_fen: i64,
    /// Net per program, every program with a payment line in the month (0 included), by program id.
    pub by_program: BTreeMap<String, i64>,
}

/// One statement, as answered and as the data of its events (field order: API.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clearing {
    pub clearing_id: String,
    pub hospital_id: String,
    pub period: Period,
    pub status: ClearingStatus,
    #[serde(flatten)]
    pub figures: ClearingFigures,
    /// When the statement was first created (RFC 3339, local time); a recompute keeps it.
    pub created_at: String,
    /// When it was confirmed (frozen); absent on a draft.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<String>,
    /// The relief office's reference of the payment; absent until paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_ref: Option<String>,
    /// The local date of the payment (`YYYY-MM-DD`); absent until paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
}

impl Clearing {
    /// A new draft.
    pub fn draft(hospital_id: &str, period: Period, figures: ClearingFigures, created_at: String) -> Clearing {
        Clearing {
            clearing_id: clearing_id(hospital_id, period),
            hospital_id: hospital_id.to_string(),
            period,
            status: ClearingStatus::Draft,
            figures,
            created_at,
            confirmed_at: None,
            payment_ref: None,
            paid_at: None,
        }
    }

    /// The statement's JSON: the body of every answer about it and the `data` of its events.
    pub fn render(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a clearing serialises")
    }
}

/// The statement's id: `cl_<period>_<hospital>`, one per hospital and month, the same on every instance. The period
/// has a fixed length, so the hospital (which may itself hold `_`) is what follows it.
pub fn clearing_id(hospital_id: &str, period: Period) -> String {
    format!("cl_{period}_{hospital_id}")
}

/// The hospital and period of a clearing id; `None` when it is not one.
pub fn parse_clearing_id(id: &str) -> Option<(&str, Period)> {
    let rest = id.strip_prefix("cl_")?;
    let (period, hospital) = (rest.get(..7)?, rest.get(7..)?.strip_prefix('_')?);
    let period = Period::parse(period)?;
    super::is_valid_id(hospital).then_some((hospital, period))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_strict() {
        for ok in ["1900-01", "2026-11", "2024-02", "9999-12"] {
            assert_eq!(Period::parse(ok).map(|p| p.to_string()).as_deref(), Some(ok));
        }
        for bad in ["1899-12", "2026-00", "2026-13", "2026-1", "02026-11", "+026-11", "2026/11", "2026-11-01", ""] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
        assert!(Period::parse("2026-10") < Period::parse("2026-11"));
        assert!(Period::parse("2025-12") < Period::parse("2026-01"));
    }

    #[test]
    fn days_and_ends() {
        let feb = Period::parse("2024-02").unwrap();
        assert_eq!(feb.days().count(), 29);
        assert_eq!(Period::parse("2026-02").unwrap().days().count(), 28);
        let dec = Period::parse("2026-12").unwrap();
        assert_eq!(dec.days().last(), NaiveDate::from_ymd_opt(2026, 12, 31));
        assert_eq!(dec.ends_on(), NaiveDate::from_ymd_opt(2027, 1, 1).unwrap());
        assert!(!dec.ended_by(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()));
        assert!(dec.ended_by(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()));
        assert_eq!(Period::parse("9999-12").unwrap().days().count(), 31);
        assert_eq!(Period::of(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()).to_string(), "2026-11");
    }

    #[test]
    fn ids_round_trip_and_refuse_others() {
        let p = Period::parse("2026-11").unwrap();
        for h in ["H0001", "a_b", "x:y-z.1", "_", &"h".repeat(64)] {
            let id = clearing_id(h, p);
            assert_eq!(parse_clearing_id(&id), Some((h, p)), "{id}");
        }
        assert_eq!(clearing_id("H0001", p), "cl_2026-11_H0001");
        for bad in ["cl_2026-11_", "cl_2026-11H0001", "cl_2026-13_H0001", "cl_2026-11_H 1", "x_2026-11_H", "cl_", ""] {
            assert_eq!(parse_clearing_id(bad), None, "{bad}");
        }
        assert_eq!(parse_clearing_id(&format!("cl_2026-11_{}", "h".repeat(65))), None);
        assert_eq!(parse_clearing_id("cl_2026-1\u{e9}_H"), None);
    }

    #[test]
    fn renders_in_contract_order_without_absent_fields() {
        let mut figures = ClearingFigures { settled_count: 3, reversed_count: 1, relief_fen: -5, ..Default::default() };
        figures.by_program.insert("charity".into(), -5);
        let c = Clearing::draft(
            "H0001",
            Period::parse("2026-11").unwrap(),
            figures,
            "2026-12-01T09:00:00.000+08:00".into(),
        );
        let text = String::from_utf8(c.render()).unwrap();
        assert_eq!(
            text,
            r#"{"clearing_id":"cl_2026-11_H0001","hospital_id":"H0001","period":"2026-11","status":"draft","settled_count":3,"reversed_count":1,"relief_fen":-5,"by_program":{"charity":-5},"created_at":"2026-12-01T09:00:00.000+08:00"}"#
        );
    }
}
