//! The test's own view of the store during a random scenario, and what it expects the gateway to answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Datelike;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use settlegate::app::{Eligibility, EligibilityRequest};
use settlegate::domain::bill::{Bill, SettleRequest};
use settlegate::domain::card::Cardholder;
use settlegate::domain::rules::{in_force, Ruleset};
use settlegate::domain::settlement::Settlement;
use settlegate::domain::split::{split, Split};

use super::counters::Counters;

pub enum Entry {
    Settled { canonical: String, settlement: Box<Settlement> },
    Tombstone { card_id: String },
}

/// A settle request sent, with its hospital (an index into `scenario::HOSPITALS`).
#[derive(Debug, Clone)]
pub struct Sent {
    pub hospital: usize,
    pub request: SettleRequest,
}

/// An id cancelled before it was sent.
#[derive(Debug, Clone)]
pub struct Cancelled {
    pub hospital: usize,
    pub hsid: String,
}

/// One case's view of the store: the cards, the counters, the settlements and tombstones.
pub struct Model {
    pub rulesets: Vec<Ruleset>,
    pub cards: HashMap<String, Cardholder>,
    pub counters: Counters,
    /// (hospital, hospital_settlement_id) → settlement or tombstone
    pub entries: HashMap<(String, String), Entry>,
    /// Every settle request sent.
    pub sent: Vec<Sent>,
    pub cancelled: Vec<Cancelled>,
}

/// One program of an eligibility answer.
#[derive(Debug, PartialEq, Eq)]
pub struct EligibleProgram {
    pub program: String,
    pub ratio_bp: i64,
    pub deductible_left_fen: i64,
    pub annual_cap_left_fen: Option<i64>,
    pub per_visit_cap_fen: Option<i64>,
}

impl EligibleProgram {
    /// The programs of the gateway's answer.
    pub fn of(answer: &Eligibility) -> Vec<EligibleProgram> {
        answer
            .programs
            .iter()
            .map(|p| EligibleProgram {
                program: p.program.clone(),
                ratio_bp: p.ratio_bp,
                deductible_left_fen: p.deductible_left_fen,
                annual_cap_left_fen: p.annual_cap_left_fen,
                per_visit_cap_fen: p.per_visit_cap_fen,
            })
            .collect()
    }
}

/// A split the gateway must answer, and what the answer names besides.
#[derive(Debug)]
pub struct Expected {
    pub ruleset_version: u64,
    pub category: String,
    pub split: Split,
}

impl Model {
    /// API.md's checks after the id: card (404), eligibility (422), ruleset in force (422); then the engine's split
    /// on the test's counters. Returns the expected answer or the error code.
    pub fn expect_split(&self, bill: &Bill<'_>) -> Result<Expected, &'static str> {
        let card = self.cards.get(bill.card_id).ok_or("card_not_found")?;
        card.eligibility(bill.visit.date).map_err(|_| "not_eligible")?;
        let rs = in_force(&self.rulesets, bill.visit.date).ok_or("no_rules_in_force")?;
        let year = bill.visit.date.year();
        let s = split(rs, card, bill.visit.visit_type, bill.amounts.total_fen, bill.residual(), |p| {
            self.counters.usage(&card.card_id, year, &p.id)
        });
        Ok(Expected { ruleset_version: rs.version, category: card.category.clone(), split: s })
    }

    /// The covering programs of a servable card under `rs`, with what is left of the deductible and the annual cap
    /// by the test's counters.
    pub fn eligible_programs(&self, rs: &Ruleset, card: &Cardholder, req: &EligibilityRequest) -> Vec<EligibleProgram> {
        let year = req.visit.date.year();
        rs.programs
            .iter()
            .filter(|p| p.visit_types.as_ref().is_none_or(|v| v.contains(&req.visit.visit_type)))
            .filter(|p| p.require_tags.iter().flatten().all(|t| card.tags.contains(t)))
            .filter_map(|p| p.categories.get(&card.category).map(|t| (p, t)))
            .map(|(p, t)| {
                let u = self.counters.usage(&card.card_id, year, &p.id);
                EligibleProgram {
                    program: p.id.clone(),
                    ratio_bp: t.ratio_bp,
                    deductible_left_fen: (t.deductible_fen.unwrap_or(0) - u.deductible_met_fen).max(0),
                    annual_cap_left_fen: t.annual_cap_fen.map(|cap| (cap - u.paid_fen).max(0)),
                    per_visit_cap_fen: t.per_visit_cap_fen,
                }
            })
            .collect()
    }
}

/// A settlement (or quote) of the gateway against the engine's split.
pub fn check_against_engine(s: &Settlement, e: &Expected) -> Result<(), TestCaseError> {
    prop_assert_eq!(&s.payments, &e.split.payments, "Lua and engine disagree on the payments");
    prop_assert_eq!(s.insurance_fen, e.split.insurance_fen);
    prop_assert_eq!(s.relief_fen, e.split.relief_fen);
    prop_assert_eq!(s.patient_fen, e.split.patient_fen);
    prop_assert_eq!(s.ruleset_version, e.ruleset_version);
    prop_assert_eq!(&s.category, &e.category);
    prop_assert!(s.check_invariants());
    Ok(())
}

/// What the cases exercised, so a green run cannot be a vacuous one.
#[derive(Default, Debug)]
pub struct Stats {
    pub created: AtomicU64,
    pub paid_lines: AtomicU64,
    pub capped_lines: AtomicU64,
    /// Payments of 2^52 fen or more.
    pub huge_payments: AtomicU64,
    pub replays: AtomicU64,
    pub replays_of_reversed: AtomicU64,
    pub conflicts: AtomicU64,
    pub refusals: AtomicU64,
    pub reversals: AtomicU64,
    pub tombstones: AtomicU64,
    pub already_reversed: AtomicU64,
    pub quotes: AtomicU64,
    pub republished: AtomicU64,
    pub eligibility: AtomicU64,
}

pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
