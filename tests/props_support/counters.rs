//! The counters a test keeps next to the store: per card, year and program what was paid and how much of the
//! deductible was met; per year and program the total paid to everybody.

use std::collections::{BTreeMap, HashMap};

use chrono::Datelike;
use settlegate::domain::card::Cardholder;
use settlegate::domain::rules::Ruleset;
use settlegate::domain::split::{split, Payment, ProgramUsage, Split};

use super::strategies::BillDraft;

/// What the store keeps: per card, year and program (paid, deductible met); per year and program the total paid.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub usage: HashMap<(String, i32, String), (i64, i64)>,
    pub program: HashMap<(i32, String), i64>,
}

/// The non-zero counters, ordered (a counter taken back to 0 equals one never touched).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonZero {
    /// (card, year, program) → (paid, deductible met)
    pub usage: BTreeMap<(String, i32, String), (i64, i64)>,
    /// (year, program) → paid to every card
    pub program: BTreeMap<(i32, String), i64>,
}

/// What one settlement recorded (and a reversal takes back).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub card_id: String,
    pub year: i32,
    pub payments: Vec<Payment>,
}

impl Counters {
    pub fn usage(&self, card: &str, year: i32, program: &str) -> ProgramUsage {
        let (paid, ded) = self.usage.get(&(card.to_string(), year, program.to_string())).copied().unwrap_or((0, 0));
        ProgramUsage {
            paid_fen: paid,
            deductible_met_fen: ded,
            program_paid_fen: self.program.get(&(year, program.to_string())).copied().unwrap_or(0),
            pool_contributions_fen: 0,
        }
    }

    /// Adds (sign 1) or takes back (sign -1) one settlement's payments.
    pub fn apply(&mut self, card: &str, year: i32, payments: &[Payment], sign: i64) {
        for p in payments {
            let u = self.usage.entry((card.to_string(), year, p.program.clone())).or_default();
            u.0 += sign * p.paid_fen;
            u.1 += sign * p.deductible_applied_fen;
            *self.program.entry((year, p.program.clone())).or_default() += sign * p.paid_fen;
        }
    }

    pub fn normal(&self) -> NonZero {
        NonZero {
            usage: self.usage.iter().filter(|(_, v)| **v != (0, 0)).map(|(k, v)| (k.clone(), *v)).collect(),
            program: self.program.iter().filter(|(_, v)| **v != 0).map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }

    /// The engine's split of `bill` for `card` on these counters.
    pub fn engine(&self, ruleset: &Ruleset, card: &Cardholder, bill: &BillDraft) -> Split {
        let year = bill.visit.date.year();
        let b = bill.bill(&card.card_id);
        split(ruleset, card, bill.visit.visit_type, bill.amounts.total_fen, b.residual(), |p| {
            self.usage(&card.card_id, year, &p.id)
        })
    }
}

/// The counters that exactly these settlements make.
pub fn recount(recorded: &[Recorded]) -> NonZero {
    let mut c = Counters::default();
    for r in recorded {
        c.apply(&r.card_id, r.year, &r.payments, 1);
    }
    c.normal()
}
