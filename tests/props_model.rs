//! Property tests of the split engine (`domain::split::split`) against a deliberately naive, straight-line i128
//! model of RULES.md written here (it shares only the data types with src/domain/split.rs): on one bill with
//! arbitrary counters, and over whole sequences with each side carrying its own counters.

mod props_support;

use std::collections::HashMap;

use chrono::Datelike;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use settlegate::domain::bill::{Amounts, Insurance};
use settlegate::domain::rules::{Bucket, Program, VisitType};
use settlegate::domain::split::{split, Split};

use props_support::counters::Counters;
use props_support::strategies::{big_amount, bill, bill_with, card, ruleset, sequence, usage_of, usages, Step, ANY};

/// RULES.md "The algorithm", straight from the text, in i128: no shared code with src/domain/split.rs.
mod naive {
    use super::{Amounts, Bucket, Insurance, Program, Split, VisitType};

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Line {
        pub program: String,
        pub paid: i128,
        pub ded: i128,
        pub capped_by: Option<&'static str>,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Outcome {
        pub insurance: i128,
        pub lines: Vec<Line>,
        pub relief: i128,
        pub patient: i128,
    }

    fn slot(b: &Bucket) -> usize {
        match b {
            Bucket::InScope => 0,
            Bucket::PreSelfPay => 1,
            Bucket::OverLimit => 2,
            Bucket::SelfPay => 3,
        }
    }

    /// What one program had paid and met before this bill, this year.
    pub struct Used {
        /// Paid to this card.
        pub paid_before: i128,
        /// Of this card's deductible.
        pub deductible_met: i128,
        /// Paid to everybody.
        pub program_paid: i128,
    }

    pub fn settle(
        programs: &[Program],
        category: &str,
        tags: &[String],
        visit_type: VisitType,
        amounts: &Amounts,
        insurance: &Insurance,
        used: &dyn Fn(&str) -> Used,
    ) -> Outcome {
        let paid_by_insurance =
            insurance.basic_fen as i128 + insurance.critical_illness_fen as i128 + insurance.other_fen as i128;
        let mut left: [i128; 4] = [
            amounts.in_scope_fen as i128 - paid_by_insurance,
            amounts.pre_self_pay_fen as i128,
            amounts.over_limit_fen as i128,
            amounts.self_pay_fen as i128,
        ];
        let mut lines = Vec::new();
        for p in programs {
            if let Some(types) = &p.visit_types {
                if !types.contains(&visit_type) {
                    continue;
                }
            }
            let Some(t) = p.categories.get(category) else { continue };
            if let Some(required) = &p.require_tags {
                if !required.iter().all(|r| tags.iter().any(|x| x == r)) {
                    continue;
                }
            }
            let Used { paid_before, deductible_met: ded_met, program_paid } = used(&p.id);
            let mut base: i128 = 0;
            for b in &p.covers {
                base += left[slot(b)];
            }
            let mut ded = t.deductible_fen.unwrap_or(0) as i128 - ded_met;
            if ded < 0 {
                ded = 0;
            }
            if ded > base {
                ded = base;
            }
            let mut pay = ((base - ded) * t.ratio_bp as i128 + 5000) / 10000;
            let mut capped_by = None;
            if let Some(cap) = t.per_visit_cap_fen {
                if pay > cap as i128 {
                    pay = cap as i128;
                    capped_by = Some("per_visit_cap");
                }
            }
            if let Some(cap) = t.annual_cap_fen {
                let rest = cap as i128 - paid_before;
                if pay > rest {
                    pay = if rest > 0 { rest } else { 0 };
                    capped_by = Some("annual_cap");
                }
            }
            if let Some(pool) = p.annual_pool_fen {
                let rest = pool as i128 - program_paid;
                if pay > rest {
                    pay = if rest > 0 { rest } else { 0 };
                    capped_by = Some("pool");
                }
            }
            let mut owed = pay;
            for b in &p.covers {
                let take = if owed < left[slot(b)] { owed } else { left[slot(b)] };
                left[slot(b)] -= take;
                owed -= take;
            }
            assert_eq!(owed, 0);
            lines.push(Line { program: p.id.clone(), paid: pay, ded, capped_by });
        }
        let relief = lines.iter().map(|l| l.paid).sum();
        Outcome { insurance: paid_by_insurance, lines, relief, patient: left.iter().sum() }
    }

    /// The engine's answer in the naive model's terms.
    pub fn from_split(s: &Split) -> Outcome {
        Outcome {
            insurance: s.insurance_fen as i128,
            lines: s
                .payments
                .iter()
                .map(|p| Line {
                    program: p.program.clone(),
                    paid: p.paid_fen as i128,
                    ded: p.deductible_applied_fen as i128,
                    capped_by: p.capped_by.map(|c| c.as_str()),
                })
                .collect(),
            relief: s.relief_fen as i128,
            patient: s.patient_fen as i128,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    /// The engine equals the naive model on one bill with arbitrary counters.
    #[test]
    fn engine_equals_naive_model(
        rs in ruleset(ANY),
        card in card(),
        bill in prop_oneof![3 => bill().boxed(), 1 => bill_with(big_amount, 3).boxed()],
        used in usages(),
    ) {
        let b = bill.bill("C0");
        let s = split(&rs, &card, bill.visit.visit_type, bill.amounts.total_fen, b.residual(), |p| usage_of(&used, &p.id));
        let model = naive::settle(&rs.programs, &card.category, &card.tags, bill.visit.visit_type, &bill.amounts,
            &bill.insurance, &|id| {
                let u = usage_of(&used, id);
                naive::Used {
                    paid_before: u.paid_fen.into(),
                    deductible_met: u.deductible_met_fen.into(),
                    program_paid: u.program_paid_fen.into(),
                }
            });
        prop_assert_eq!(naive::from_split(&s), model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Over whole sequences, each side carrying its own counters (the model in i128), with reversals.
    #[test]
    fn engine_equals_naive_model_over_sequences(seq in sequence(ANY)) {
        let mut counters = Counters::default();
        let mut model: HashMap<(String, i32, String), (i128, i128)> = HashMap::new();
        let mut model_total: HashMap<(i32, String), i128> = HashMap::new();
        for Step { card: idx, bill, undo } in &seq.steps {
            let card = &seq.cards[idx % seq.cards.len()];
            let year = bill.visit.date.year();
            let s = counters.engine(&seq.ruleset, card, bill);
            let n = naive::settle(&seq.ruleset.programs, &card.category, &card.tags, bill.visit.visit_type,
                &bill.amounts, &bill.insurance, &|id| {
                    let (paid, ded) = model.get(&(card.card_id.clone(), year, id.to_string())).copied().unwrap_or((0, 0));
                    let program_paid = model_total.get(&(year, id.to_string())).copied().unwrap_or(0);
                    naive::Used { paid_before: paid, deductible_met: ded, program_paid }
                });
            prop_assert_eq!(naive::from_split(&s), n.clone());
            if !*undo {
                counters.apply(&card.card_id, year, &s.payments, 1);
                for l in &n.lines {
                    let u = model.entry((card.card_id.clone(), year, l.program.clone())).or_default();
                    u.0 += l.paid;
                    u.1 += l.ded;
                    *model_total.entry((year, l.program.clone())).or_default() += l.paid;
                }
            }
        }
    }
}
