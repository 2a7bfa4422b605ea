//! A recorded settlement (or quote) as the gateway answers it, and the tombstone of a cancelled id.

use super::bill::{Amounts, Insurance, Operator, Visit};
use super::split::Payment;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementStatus {
    Settled,
    Reversed,
    Quote,
}

impl SettlementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SettlementStatus::Settled => "settled",
            SettlementStatus::Reversed => "reversed",
            SettlementStatus::Quote => "quote",
        }
    }
}

/// A settlement as recorded: what the bill was and how it was split. Quotes use the same shape with no ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Opaque id, `None` for a quote.
    pub settlement_id: Option<String>,
    pub hospital_settlement_id: Option<String>,
    /// The hospital that settled it (never shown to clients; it scopes who may see it).
    pub hospital_id: Option<String>,
    pub status: SettlementStatus,
    pub card_id: String,
    pub category: String,
    pub visit: Visit,
    pub amounts: Amounts,
    pub insurance: Insurance,
    pub ruleset_version: u64,
    pub insurance_fen: i64,
    pub payments: Vec<Payment>,
    pub relief_fen: i64,
    pub patient_fen: i64,
    pub settled_at: Option<String>,
    pub reversed_at: Option<String>,
    /// Who settled it (API.md Version 2), as the request said; echoed as `operator`.
    pub operator: Option<Operator>,
    /// Who reversed it, when the reversal named an operator (events: `reversed_by`).
    pub reversed_by: Option<Operator>,
    /// The reversal's reason, once reversed (may be empty).
    pub reason: Option<String>,
}

impl Settlement {
    /// The invariant of every settlement (RULES.md).
    /// Checked sums: a corrupt record read back from the store may hold any i64, and a sum that wraps must not
    /// pass for a total.
    pub fn check_invariants(&self) -> bool {
        let parts = self.insurance_fen.checked_add(self.relief_fen).and_then(|s| s.checked_add(self.patient_fen));
        let paid = self.payments.iter().try_fold(0i64, |sum, p| sum.checked_add(p.paid_fen));
        parts == Some(self.amounts.total_fen)
            && paid == Some(self.relief_fen)
            && self.insurance_fen >= 0
            && self.relief_fen >= 0
            && self.patient_fen >= 0
    }

    /// The money of a settlement without whose it is (no card, no ids): what an error log may say about it.
    pub fn amounts_text(&self) -> String {
        format!(
            "total {} insurance {} relief {} patient {} payments {:?}",
            self.amounts.total_fen, self.insurance_fen, self.relief_fen, self.patient_fen, self.payments
        )
    }
}

/// The record of a cancellation that arrived before (or instead of) its settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub card_id: String,
    pub hospital_settlement_id: String,
    pub reversed_at: String,
    /// The hospital whose id space it was recorded in.
    pub hospital_id: String,
    /// The cancellation's reason (may be empty).
    pub reason: String,
    /// Who cancelled it, when the request named an operator.
    pub reversed_by: Option<Operator>,
}
