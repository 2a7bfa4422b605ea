//! The day's reconciliation lines (`keys::recon_events`), as the settle and reversal scripts `RPUSH` them: the
//! format, its parser beside its encoder. `GET /v1/reconciliation` sums them, the detail streams them, the checks,
//! clearing and `settlegate export` read them.

use super::codec::{encode_payments, payment_amounts};
use crate::domain::split::Payment;

/// One reconciliation detail line, as recorded. Amounts carry the line's sign: a reversal's are negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayEvent {
    /// A reversal (counted negative on its day) rather than a settlement.
    pub reversal: bool,
    /// When it happened (RFC 3339).
    pub at: String,
    /// The settlement's opaque id.
    pub settlement_id: String,
    /// The hospital's own id of the settlement.
    pub hospital_settlement_id: String,
    /// The card (never logged in full).
    pub card_id: String,
    pub total_fen: i64,
    pub insurance_fen: i64,
    pub relief_fen: i64,
    pub patient_fen: i64,
    /// What each program paid, in ruleset order, signed like the amounts.
    pub by_program: Vec<ProgramFen>,
    /// Who and what it was about, for exports (`settlegate export`); "" when absent or for lines of earlier builds.
    pub context: LineContext,
}

/// What a day's line says besides the money, for the relief office's exports. Every field is "" when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineContext {
    /// The card's category when settled.
    pub category: String,
    /// The card's street office and community when settled (recorded once cardholders carry them).
    pub street: String,
    pub community: String,
    /// `insurance.settlement_ref` of the settlement.
    pub insurance_settlement_ref: String,
    /// The settlement's operator on a settled line, the reversal's on a reversed line.
    pub operator_id: String,
}

/// An amount per program.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProgramFen {
    /// The program id.
    pub program: String,
    /// The amount, in fen.
    pub fen: i64,
}

/// The names of a settled line's fields, by position, as a settlement record carries them: since issue 13 the
/// settle script writes the day's line once more into the record (field `line`) and into the `settlement.settled`
/// event, in place of a dozen fields of their own (each argument costs Redis's Lua bridge ~1 500 instructions).
/// Position 0 is the line's kind (`S`).
pub const SETTLED_LINE_FIELDS: [&str; 15] = [
    "kind",
    "settled_at",
    "settlement_id",
    "hsid",
    "card_id",
    "total_fen",
    "insurance_fen",
    "relief_fen",
    "patient_fen",
    "payments",
    "category",
    "street",
    "community",
    "ins_ref",
    "operator_id",
];

/// A settled line's fields by their record names (`SETTLED_LINE_FIELDS`); `Err` for a line of another shape.
pub fn settled_line_fields(line: &str) -> Result<Vec<(&'static str, &str)>, String> {
    let fields: Vec<&str> = line.split('|').collect();
    if fields.len() != SETTLED_LINE_FIELDS.len() || fields[0] != "S" {
        return Err(format!("record line of {} fields", fields.len()));
    }
    Ok(SETTLED_LINE_FIELDS.iter().copied().zip(fields).skip(1).collect())
}

/// `"S|at|settlement_id|hsid|card|total|insurance|relief|patient|payments|category|street|community|ref|operator"`
/// (`R` for a reversal, amounts unsigned), as the scripts `RPUSH` it. Lines of earlier builds end after `payments`.
/// No field can hold `|`: ids are `A-Za-z0-9._:-`, and categories, streets and communities exclude it.
pub fn encode_event(e: &DayEvent, payments: &[Payment]) -> String {
    let kind = if e.reversal { "R" } else { "S" };
    let abs = |v: i64| v.unsigned_abs();
    let c = &e.context;
    format!(
        "{kind}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        e.at,
        e.settlement_id,
        e.hospital_settlement_id,
        e.card_id,
        abs(e.total_fen),
        abs(e.insurance_fen),
        abs(e.relief_fen),
        abs(e.patient_fen),
        encode_payments(payments),
        c.category,
        c.street,
        c.community,
        c.insurance_settlement_ref,
        c.operator_id
    )
}

pub fn parse_event(line: &str) -> Option<DayEvent> {
    parse_line(line).map(|l| l.to_event())
}

/// One day line read in place: [`DayEvent`] borrowed from the line (the report aggregator reads every line once and
/// keeps none of it). Checked exactly as [`parse_event`] checks, which is built on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayLine<'a> {
    pub reversal: bool,
    pub at: &'a str,
    pub settlement_id: &'a str,
    pub hospital_settlement_id: &'a str,
    pub card_id: &'a str,
    /// Signed like [`DayEvent`]'s.
    pub total_fen: i64,
    pub insurance_fen: i64,
    pub relief_fen: i64,
    pub patient_fen: i64,
    /// (program, fen), signed, in the line's order.
    pub by_program: Vec<(&'a str, i64)>,
    /// category, street, community, insurance_settlement_ref, operator_id ("" each on lines of earlier builds).
    pub context: [&'a str; 5],
}

impl DayLine<'_> {
    pub fn category(&self) -> &str {
        self.context[0]
    }
    pub fn street(&self) -> &str {
        self.context[1]
    }
    pub fn community(&self) -> &str {
        self.context[2]
    }

    pub fn to_event(&self) -> DayEvent {
        let [category, street, community, insurance_ref, operator_id] = self.context.map(str::to_string);
        DayEvent {
            reversal: self.reversal,
            at: self.at.to_string(),
            settlement_id: self.settlement_id.to_string(),
            hospital_settlement_id: self.hospital_settlement_id.to_string(),
            card_id: self.card_id.to_string(),
            total_fen: self.total_fen,
            insurance_fen: self.insurance_fen,
            relief_fen: self.relief_fen,
            patient_fen: self.patient_fen,
            by_program: self.by_program.iter().map(|&(p, fen)| ProgramFen { program: p.to_string(), fen }).collect(),
            context: LineContext { category, street, community, insurance_settlement_ref: insurance_ref, operator_id },
        }
    }
}

/// `line` read in place; `None` for a line of another shape (a field count other than 10 or 15, a kind other than
/// `S`/`R`, a negative or unreadable amount, a malformed payment).
pub fn parse_line(line: &str) -> Option<DayLine<'_>> {
    let mut p = [""; 15];
    let mut n = 0;
    for field in line.split('|') {
        *p.get_mut(n)? = field;
        n += 1;
    }
    if n != 10 && n != 15 {
        return None;
    }
    let reversal = match p[0] {
        "S" => false,
        "R" => true,
        _ => return None,
    };
    let sign = if reversal { -1 } else { 1 };
    let amount = |i: usize| p[i].parse::<i64>().ok().filter(|v| *v >= 0).map(|v| v * sign);
    let mut by_program = payment_amounts(p[9])?;
    for (_, fen) in &mut by_program {
        if *fen < 0 {
            return None;
        }
        *fen *= sign;
    }
    Some(DayLine {
        reversal,
        at: p[1],
        settlement_id: p[2],
        hospital_settlement_id: p[3],
        card_id: p[4],
        total_fen: amount(5)?,
        insurance_fen: amount(6)?,
        relief_fen: amount(7)?,
        patient_fen: amount(8)?,
        by_program,
        context: [p[10], p[11], p[12], p[13], p[14]],
    })
}
