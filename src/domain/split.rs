//! The split algorithm of RULES.md, step by step. Pure: the caller supplies the counters.
//!
//! The production settle path runs the same algorithm inside Redis (`store/scripts/settle.lua`) so that reading
//! the counters, splitting and recording are one atomic step; the gateway re-runs this engine on the counters the
//! script reports and raises an alarm on any difference (see `store::Store::settle`). Property tests hold both to a
//! third, naive model.

use serde::{Deserialize, Serialize};

use super::card::Cardholder;
use super::money::{pct, MAX_FEN};
use super::rules::{CategoryTerms, Program, Ruleset, VisitType};

/// The counters one program's step reads, all for the calendar year of the visit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramUsage {
    /// What this program already paid this card this year.
    pub paid_fen: i64,
    /// How much of this program's deductible this card already met this year.
    pub deductible_met_fen: i64,
    /// What this program already paid all cards together this year (limited by its pool's budget).
    pub program_paid_fen: i64,
    /// The year's net contributions to the program's pool: its budget is `annual_pool_fen` plus this (RULES.md).
    pub pool_contributions_fen: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CappedBy {
    PerVisitCap,
    AnnualCap,
    Pool,
}

impl CappedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            CappedBy::PerVisitCap => "per_visit_cap",
            CappedBy::AnnualCap => "annual_cap",
            CappedBy::Pool => "pool",
        }
    }

    pub fn parse(s: &str) -> Option<CappedBy> {
        match s {
            "per_visit_cap" => Some(CappedBy::PerVisitCap),
            "annual_cap" => Some(CappedBy::AnnualCap),
            "pool" => Some(CappedBy::Pool),
            _ => None,
        }
    }
}

/// One program's line of a settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub program: String,
    pub paid_fen: i64,
    pub deductible_applied_fen: i64,
    pub capped_by: Option<CappedBy>,
}

/// The result of splitting one bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub total_fen: i64,
    pub insurance_fen: i64,
    /// In ruleset order; one line per program that covers this card and visit, also when it pays 0.
    pub payments: Vec<Payment>,
    pub relief_fen: i64,
    pub patient_fen: i64,
}

/// The programs of `ruleset` that cover this card on this visit type, in ruleset order, with the card's terms.
pub fn covering_programs<'r>(
    ruleset: &'r Ruleset,
    card: &'r Cardholder,
    visit_type: VisitType,
) -> impl Iterator<Item = (&'r Program, &'r CategoryTerms)> + 'r {
    ruleset.programs.iter().filter_map(move |p| {
        if !p.serves(visit_type) || !card.has_tags(p.required_tags()) {
            return None;
        }
        p.categories.get(&card.category).map(|terms| (p, terms))
    })
}

/// Splits one bill. `residual_fen` is `[in_scope, pre_self_pay, over_limit, self_pay]` after insurance;
/// `usage(program)` gives that program's counters before this settlement.
pub fn split(
    ruleset: &Ruleset,
    card: &Cardholder,
    visit_type: VisitType,
    total_fen: i64,
    residual_fen: [i64; 4],
    usage: impl Fn(&Program) -> ProgramUsage,
) -> Split {
    assert!(residual_fen.iter().all(|&b| (0..=MAX_FEN).contains(&b)), "residual out of range: {residual_fen:?}");
    let mut residual = residual_fen;
    let insurance_fen = total_fen - residual.iter().sum::<i64>();
    assert!(insurance_fen >= 0, "insurance must not be negative");

    let mut payments = Vec::new();
    for (program, terms) in covering_programs(ruleset, card, visit_type) {
        let used = usage(program);
        // 1. base: the residual buckets the program covers.
        let base: i64 = program.covers.iter().map(|b| residual[b.index()]).sum();
        // 2. deductible, met once per card, program and year.
        let deductible_left = (terms.deductible_fen.unwrap_or(0) - used.deductible_met_fen).max(0);
        let ded = base.min(deductible_left);
        // 3. the ratio, rounded half up.
        let mut pay = pct(base - ded, terms.ratio_bp());
        let mut capped_by = None;
        // 4. per-visit cap.
        if let Some(cap) = terms.per_visit_cap_fen {
            if pay > cap {
                pay = cap;
                capped_by = Some(CappedBy::PerVisitCap);
            }
        }
        // 5. annual cap of this card.
        if let Some(cap) = terms.annual_cap_fen {
            let left = cap - used.paid_fen;
            if pay > left {
                pay = left.max(0);
                capped_by = Some(CappedBy::AnnualCap);
            }
        }
        // 6. the program's pool for everybody this year: its base plus the year's net contributions.
        if let Some(pool) = program.annual_pool_fen {
            let left = pool + used.pool_contributions_fen - used.program_paid_fen;
            if pay > left {
                pay = left.max(0);
                capped_by = Some(CappedBy::Pool);
            }
        }
        // 7. take the payment out of the covered buckets, in `covers` order.
        let mut to_take = pay;
        for bucket in &program.covers {
            let take = to_take.min(residual[bucket.index()]);
            residual[bucket.index()] -= take;
            to_take -= take;
        }
        assert_eq!(to_take, 0, "a payment never exceeds its base");
        payments.push(Payment { program: program.id.clone(), paid_fen: pay, deductible_applied_fen: ded, capped_by });
    }

    let relief_fen: i64 = payments.iter().map(|p| p.paid_fen).sum();
    let patient_fen: i64 = residual.iter().sum();
    assert_eq!(insurance_fen + relief_fen + patient_fen, total_fen, "the payers must add up to the total");
    assert!(payments.iter().all(|p| p.paid_fen >= 0) && patient_fen >= 0);
    Split { total_fen, insurance_fen, payments, relief_fen, patient_fen }
}
