//! Property tests of the split engine (`domain::split::split`, RULES.md) on its own: payers add up, nobody pays a
//! negative amount, no payment above its base or its caps; caps and pools hold over whole sequences of
//! settlements, and reversals give back exactly what was taken.

mod props_support;

use chrono::Datelike;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use settlegate::domain::card::Cardholder;
use settlegate::domain::money::pct;
use settlegate::domain::rules::{Program, Ruleset};
use settlegate::domain::split::{split, CappedBy, ProgramUsage, Split};

use props_support::counters::{recount, Counters, NonZero, Recorded};
use props_support::strategies::{bill, card, ruleset, sequence, usage_of, usages, BillDraft, Step, ANY};

/// Checks one split against RULES.md's bounds, re-walking the residual buckets independently.
fn check_split(
    ruleset: &Ruleset,
    card: &Cardholder,
    bill: &BillDraft,
    usage: impl Fn(&str) -> ProgramUsage,
    s: &Split,
) -> Result<(), TestCaseError> {
    let b = bill.bill(&card.card_id);
    prop_assert_eq!(s.total_fen, bill.amounts.total_fen);
    prop_assert_eq!(s.insurance_fen, bill.insurance.total_fen());
    prop_assert_eq!(s.insurance_fen + s.relief_fen + s.patient_fen, s.total_fen, "payers do not add up");
    prop_assert!(s.insurance_fen >= 0 && s.relief_fen >= 0 && s.patient_fen >= 0);
    prop_assert_eq!(s.payments.iter().map(|p| p.paid_fen).sum::<i64>(), s.relief_fen);
    let covering: Vec<&Program> = ruleset
        .programs
        .iter()
        .filter(|p| p.visit_types.as_ref().is_none_or(|v| v.contains(&bill.visit.visit_type)))
        .filter(|p| p.categories.contains_key(&card.category))
        .filter(|p| p.require_tags.iter().flatten().all(|t| card.tags.contains(t)))
        .collect();
    prop_assert_eq!(
        s.payments.iter().map(|p| p.program.as_str()).collect::<Vec<_>>(),
        covering.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        "one line per covering program, in ruleset order"
    );
    let mut residual = b.residual();
    for (p, pay) in covering.iter().zip(&s.payments) {
        let t = &p.categories[&card.category];
        let u = usage(&p.id);
        let base: i64 = p.covers.iter().map(|b| residual[b.index()]).sum();
        prop_assert!(pay.paid_fen >= 0 && pay.deductible_applied_fen >= 0, "{pay:?}");
        prop_assert!(pay.paid_fen <= base, "{} pays {} above its base {base}", p.id, pay.paid_fen);
        prop_assert!(pay.deductible_applied_fen <= base);
        prop_assert!(pay.deductible_applied_fen <= (t.deductible_fen.unwrap_or(0) - u.deductible_met_fen).max(0));
        let uncapped = pct(base - pay.deductible_applied_fen, u32::try_from(t.ratio_bp).unwrap());
        prop_assert!(pay.paid_fen <= uncapped);
        if let Some(cap) = t.per_visit_cap_fen {
            prop_assert!(pay.paid_fen <= cap, "per-visit cap {cap} broken: {pay:?}");
        }
        if let Some(cap) = t.annual_cap_fen {
            prop_assert!(pay.paid_fen <= (cap - u.paid_fen).max(0), "annual cap {cap} broken: {pay:?} {u:?}");
        }
        if let Some(pool) = p.annual_pool_fen {
            prop_assert!(pay.paid_fen <= (pool - u.program_paid_fen).max(0), "pool {pool} broken: {pay:?} {u:?}");
        }
        match pay.capped_by {
            None => prop_assert_eq!(pay.paid_fen, uncapped),
            Some(CappedBy::PerVisitCap) => prop_assert_eq!(Some(pay.paid_fen), t.per_visit_cap_fen),
            Some(CappedBy::AnnualCap) => prop_assert!(t.annual_cap_fen.is_some()),
            Some(CappedBy::Pool) => prop_assert!(p.annual_pool_fen.is_some()),
        }
        let mut left = pay.paid_fen;
        for b in &p.covers {
            let take = left.min(residual[b.index()]);
            residual[b.index()] -= take;
            left -= take;
        }
        prop_assert_eq!(left, 0);
    }
    prop_assert_eq!(residual.iter().sum::<i64>(), s.patient_fen);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// One split on arbitrary counters (also counters beyond every cap).
    #[test]
    fn split_invariants_hold_for_any_counters(
        rs in ruleset(ANY),
        card in card(),
        bill in bill(),
        used in usages(),
    ) {
        let usage = |id: &str| usage_of(&used, id);
        let b = bill.bill("C0");
        let s = split(&rs, &card, bill.visit.visit_type, bill.amounts.total_fen, b.residual(), |p| usage(&p.id));
        check_split(&rs, &card, &bill, usage, &s)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Settlements of several cards with counters carried: every split within bounds, no card above its annual
    /// cap, no program above its pool; a reversal restores the counters exactly, right away or at the end in any
    /// order.
    #[test]
    fn caps_and_pools_hold_over_sequences_and_reversals_restore_counters(seq in sequence(ANY)) {
        let mut counters = Counters::default();
        let mut recorded: Vec<Recorded> = Vec::new();
        for Step { card: idx, bill, undo } in &seq.steps {
            let card = &seq.cards[idx % seq.cards.len()];
            let year = bill.visit.date.year();
            let before = counters.normal();
            let s = counters.engine(&seq.ruleset, card, bill);
            check_split(&seq.ruleset, card, bill, |id| counters.usage(&card.card_id, year, id), &s)?;
            counters.apply(&card.card_id, year, &s.payments, 1);
            for ((c, _, program), (paid, ded)) in &counters.usage {
                prop_assert!(*paid >= 0 && *ded >= 0);
                let p = seq.ruleset.programs.iter().find(|p| &p.id == program).unwrap();
                let holder = seq.cards.iter().find(|x| &x.card_id == c).unwrap();
                let t = &p.categories[&holder.category];
                if let Some(cap) = t.annual_cap_fen {
                    prop_assert!(*paid <= cap, "card {c} got {paid} from {program}, annual cap {cap}");
                }
                prop_assert!(*ded <= t.deductible_fen.unwrap_or(0), "deductible met beyond the deductible");
            }
            for ((_, program), total) in &counters.program {
                let p = seq.ruleset.programs.iter().find(|p| &p.id == program).unwrap();
                if let Some(pool) = p.annual_pool_fen {
                    prop_assert!(*total <= pool, "{program} paid {total}, pool {pool}");
                }
            }
            if *undo {
                counters.apply(&card.card_id, year, &s.payments, -1);
                prop_assert_eq!(counters.normal(), before, "a reversal must restore the counters exactly");
            } else {
                recorded.push(Recorded { card_id: card.card_id.clone(), year, payments: s.payments });
            }
        }
        prop_assert_eq!(counters.normal(), recount(&recorded));
        let mut order: Vec<usize> = (0..recorded.len()).collect();
        order.sort_by_key(|&i| seq.undo_order[i % seq.undo_order.len()]);
        let mut remaining: Vec<Option<Recorded>> = recorded.into_iter().map(Some).collect();
        for i in order {
            let r = remaining[i].take().unwrap();
            counters.apply(&r.card_id, r.year, &r.payments, -1);
            let rest: Vec<_> = remaining.iter().flatten().cloned().collect();
            prop_assert_eq!(counters.normal(), recount(&rest));
        }
        prop_assert_eq!(counters.normal(), NonZero::default());
    }
}
