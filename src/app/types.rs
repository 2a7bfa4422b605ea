//! The operations' inputs and answers that are not domain values: request bodies (parsed strictly by
//! `http::wire`) and the shapes the HTTP layer renders.

use crate::domain::bill::Visit;
use crate::domain::card::Cardholder;
use crate::domain::settlement::{Settlement, Tombstone};
use crate::store::{DayTotals, ProgramYearUsage};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EligibilityRequest {
    pub card_id: String,
    pub visit: Visit,
}

pub struct ProgramEligibility {
    pub program: String,
    pub ratio_bp: i64,
    pub deductible_left_fen: i64,
    pub annual_cap_left_fen: Option<i64>,
    pub per_visit_cap_fen: Option<i64>,
}

pub struct Eligibility {
    pub card_id: String,
    pub eligible: bool,
    pub reason: Option<&'static str>,
    pub category: String,
    pub ruleset_version: Option<u64>,
    pub programs: Vec<ProgramEligibility>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReversalRequest {
    pub card_id: String,
    #[serde(default)]
    pub hospital_settlement_id: Option<String>,
    #[serde(default)]
    pub settlement_id: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Who reversed it (Version 2); recorded with the reversal and in its event as `reversed_by`.
    #[serde(default)]
    pub operator: Option<crate::domain::bill::Operator>,
}

pub enum Reversal {
    Settlement(Box<Settlement>),
    ReversedBeforeSettled(Tombstone),
}

/// One pool of `GET /admin/v1/pools`.
pub struct Pool {
    /// The program with an `annual_pool_fen`.
    pub program: String,
    /// The ruleset's `annual_pool_fen`.
    pub base_fen: i64,
    /// The year's net contributions (donations minus withdrawals).
    pub contributions_fen: i64,
    /// `base_fen + contributions_fen`: what the pool may pay that year.
    pub budget_fen: i64,
    /// What the program paid all cards that year.
    pub paid_fen: i64,
    /// `budget_fen - paid_fen`, not below 0.
    pub left_fen: i64,
    /// Net amount per donor, by donor.
    pub donors: Vec<(String, i64)>,
}

impl Pool {
    /// The pool as a row of `GET /admin/v1/pools`'s `pools` (and of the console's Today page): the one renderer of
    /// a pool.
    pub fn to_json(&self) -> serde_json::Value {
        let donors: Vec<serde_json::Value> =
            self.donors.iter().map(|(d, fen)| serde_json::json!({"donor": d, "amount_fen": fen})).collect();
        serde_json::json!({"program": self.program, "base_fen": self.base_fen,
            "contributions_fen": self.contributions_fen, "budget_fen": self.budget_fen, "paid_fen": self.paid_fen,
            "left_fen": self.left_fen, "donors": donors})
    }
}

/// `GET /admin/v1/pools`: the pools of one year.
pub struct PoolsReport {
    /// The year asked for (default: this local year).
    pub year: i32,
    /// The ruleset whose pools these are; `None` when none is in force.
    pub ruleset_version: Option<u64>,
    pub pools: Vec<Pool>,
}

/// `GET /admin/v1/cardholders/{card_id}`: the cardholder and its usage in one year.
pub struct CardholderYear {
    pub card: Cardholder,
    /// The year of `usage` (default: this local year).
    pub year: i32,
    /// Per program with any usage that year, by program id.
    pub usage: Vec<ProgramYearUsage>,
}

/// One hospital's reconciliation day (`GET /admin/v1/reconciliation`).
pub struct HospitalDay {
    /// The hospital (certificate CN).
    pub hospital_id: String,
    pub totals: DayTotals,
}

/// Longest reversal reason kept.
pub const MAX_REASON_CHARS: usize = 500;
