//! What the gateway answers about a settlement, as far as the tool checks it.

use serde::{Deserialize, Serialize};

/// One program's line of a settlement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payment {
    /// The relief program's id.
    pub program: String,
    /// What it paid: adds to the card's usage and the program's pool.
    pub paid_fen: u64,
    /// How much of the bill went to the program's deductible: adds to the card's `deductible_met_fen`.
    pub deductible_applied_fen: u64,
    /// The limit that cut the payment (`annual_cap`, `pool`, …), if one did; compared as part of the money.
    pub capped_by: Option<String>,
}

/// The fields of a settlement answer the tool checks (201, replay 200, reversal 200, GET).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettlementAnswer {
    /// The gateway's id of the settlement: must be unique, and must find the settlement later.
    pub settlement_id: String,
    /// The hospital's own id (the idempotency key): must be the one sent.
    pub hospital_settlement_id: String,
    /// `settled` or `reversed`.
    pub status: String,
    /// The card settled: must be the one sent.
    pub card_id: String,
    /// The ruleset the split used: must be the one the seed step published.
    pub ruleset_version: u64,
    /// The bill total.
    pub total_fen: u64,
    /// What insurance had paid.
    pub insurance_fen: u64,
    /// What the relief programs pay: the sum of `payments`.
    pub relief_fen: u64,
    /// What the patient is left to pay; insurance + relief + patient = total.
    pub patient_fen: u64,
    /// One line per program that paid.
    pub payments: Vec<Payment>,
    /// When it was settled, local time: its date is the settlement's reconciliation day.
    #[serde(default)]
    pub settled_at: Option<String>,
    /// When it was reversed, if it was: its date is the reversal's reconciliation day.
    #[serde(default)]
    pub reversed_at: Option<String>,
}

/// The person at the counter (API version 2 `operator`): recorded with a settlement or reversal, echoed in its body
/// and its events; not part of "the same request".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Operator {
    /// 1-64 chars of `A-Za-z0-9._:-`.
    pub id: String,
    /// Optional display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The version 2 fields a settlement body echoes; read from an answer separately (only when the run sends them), so
/// the ledger does not store them: what was sent is derived from the record (see [`super::Fields`]).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Echo {
    /// `insurance_settlement_ref`: the `insurance.settlement_ref` the settlement carries.
    #[serde(default)]
    pub insurance_settlement_ref: Option<String>,
    /// `operator`: who made the settlement.
    #[serde(default)]
    pub operator: Option<Operator>,
}

impl SettlementAnswer {
    /// RULES.md: insurance + relief + patient = total; relief = sum of payments.
    pub fn invariant_holds(&self) -> bool {
        let paid: u64 = self.payments.iter().map(|p| p.paid_fen).sum();
        self.insurance_fen.checked_add(self.relief_fen).and_then(|s| s.checked_add(self.patient_fen))
            == Some(self.total_fen)
            && paid == self.relief_fen
    }

    /// The same money: everything but status and timestamps.
    pub fn same_money(&self, other: &SettlementAnswer) -> bool {
        self.settlement_id == other.settlement_id
            && self.hospital_settlement_id == other.hospital_settlement_id
            && self.card_id == other.card_id
            && self.ruleset_version == other.ruleset_version
            && self.total_fen == other.total_fen
            && self.insurance_fen == other.insurance_fen
            && self.relief_fen == other.relief_fen
            && self.patient_fen == other.patient_fen
            && self.payments == other.payments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invariant_check() {
        let mut a = SettlementAnswer {
            settlement_id: "s".into(),
            hospital_settlement_id: "h".into(),
            status: "settled".into(),
            card_id: "C1".into(),
            ruleset_version: 1,
            total_fen: 2_000_000,
            insurance_fen: 1_298_899,
            relief_fen: 350_000,
            patient_fen: 351_101,
            payments: vec![
                Payment { program: "a".into(), paid_fen: 300_000, deductible_applied_fen: 0, capped_by: None },
                Payment { program: "b".into(), paid_fen: 50_000, deductible_applied_fen: 0, capped_by: None },
            ],
            settled_at: None,
            reversed_at: None,
        };
        assert!(a.invariant_holds());
        a.patient_fen += 1;
        assert!(!a.invariant_holds());
    }
}
