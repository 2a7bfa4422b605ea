//! Property tests of the split (RULES.md) at three levels:
//!
//! a. engine invariants: payers add up, nobody pays a negative amount, no payment above its base or its caps, caps
//!    and pools hold over whole sequences of settlements, reversals give back exactly what was taken;
//! b. the engine (`domain::split::split`) against a deliberately naive, straight-line i128 model of RULES.md written
//!    here (it shares only the data types with src/domain/split.rs);
//! c. the Lua settle script, through `App` and a real Redis, against the engine run on counters this test keeps:
//!    random rulesets, cards, settles, identical retries, conflicting retries, reversals (by id and by settlement
//!    id, before and after the settlement), quotes; afterwards Redis's counters must equal the test's exactly.
//!    Amounts reach 10^12 and 2^53 − 1 fen, which proves the script's integer arithmetic exact.
//!
//! Redis-backed properties start one private redis-server per test function (`common::Redis`) and give every case
//! its own card ids and program ids (a case-number prefix), so cases never see each other's counters.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate};
use proptest::prelude::*;
use proptest::sample::subsequence;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};

use settlegate::app::{ApiError, App, EligibilityRequest, Reversal, ReversalRequest};
use settlegate::domain::bill::{Amounts, Bill, Insurance, QuoteRequest, SettleRequest, Visit};
use settlegate::domain::card::{CardStatus, Cardholder};
use settlegate::domain::money::{pct, MAX_FEN};
use settlegate::domain::rules::{in_force, Bucket, CategoryTerms, Program, Ruleset, RulesetInput, VisitType};
use settlegate::domain::settlement::{Settlement, SettlementStatus};
use settlegate::domain::split::{split, CappedBy, Payment, ProgramUsage, Split};
use settlegate::rulebook::RulebookCache;
use settlegate::store::link::Link;
use settlegate::store::Store;

const CATEGORIES: [&str; 4] = ["tekun", "dibao", "low_income", "dibao_edge"];
/// Card categories: one more than the rulesets know ("temporary" is never covered).
const CARD_CATEGORIES: [&str; 5] = ["tekun", "dibao", "low_income", "dibao_edge", "temporary"];
const TAGS: [&str; 3] = ["elderly_80", "disabled", "child"];
const BUCKETS: [Bucket; 4] = [Bucket::InScope, Bucket::PreSelfPay, Bucket::OverLimit, Bucket::SelfPay];
const TERA: i64 = 1_000_000_000_000;

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

// ---- strategies ------------------------------------------------------------------------------------------------

/// Amounts of every size: zero, small, up to 10^12, and up to 2^53 − 1 (with the edges themselves).
fn amount() -> BoxedStrategy<i64> {
    prop_oneof![
        2 => Just(0i64),
        4 => 0i64..=100_000,
        4 => 0i64..=TERA,
        1 => (TERA - 1_000)..=TERA,
        1 => 0i64..=MAX_FEN,
        1 => (MAX_FEN - 10_000)..=MAX_FEN,
    ]
    .boxed()
}

/// Amounts at the top of the range only.
fn big_amount() -> BoxedStrategy<i64> {
    prop_oneof![
        2 => (TERA - 1_000)..=(TERA + 1_000),
        2 => (MAX_FEN / 2)..=MAX_FEN,
        3 => (MAX_FEN - 100_000)..=MAX_FEN,
        1 => Just(MAX_FEN),
        1 => 0i64..=100,
    ]
    .boxed()
}

/// An optional limit (deductible, cap, pool): often absent, often small enough to bite, sometimes huge.
fn limit() -> BoxedStrategy<Option<i64>> {
    prop_oneof![
        4 => Just(None),
        3 => (0i64..=300_000).prop_map(Some),
        2 => (0i64..=2 * TERA).prop_map(Some),
        1 => amount().prop_map(Some),
    ]
    .boxed()
}

/// Limits for the "top of the range" runs: mostly absent, so payments stay near 2^53.
fn big_limit() -> BoxedStrategy<Option<i64>> {
    prop_oneof![6 => Just(None), 1 => big_amount().prop_map(Some), 1 => (0i64..=1_000).prop_map(Some)].boxed()
}

fn ratio_bp() -> BoxedStrategy<i64> {
    prop_oneof![Just(0i64), Just(1), Just(5_000), Just(9_999), Just(10_000), 0i64..=10_000].boxed()
}

fn big_ratio_bp() -> BoxedStrategy<i64> {
    prop_oneof![Just(9_999i64), Just(10_000), Just(3_333), 5_000i64..=10_000, 0i64..=10_000].boxed()
}

/// How rulesets are drawn: the limits, the ratios, and how many of the four categories a program serves.
#[derive(Clone, Copy)]
struct Profile {
    limit: fn() -> BoxedStrategy<Option<i64>>,
    ratio: fn() -> BoxedStrategy<i64>,
    min_categories: usize,
}

/// Every kind of ruleset.
const ANY: Profile = Profile { limit, ratio: ratio_bp, min_categories: 1 };
/// Rulesets that let payments reach the top of the range: mostly no limits, high ratios, every category served.
const BIG: Profile = Profile { limit: big_limit, ratio: big_ratio_bp, min_categories: 4 };

fn terms(pr: Profile) -> impl Strategy<Value = CategoryTerms> {
    ((pr.ratio)(), (pr.limit)(), (pr.limit)(), (pr.limit)()).prop_map(
        |(ratio_bp, deductible_fen, annual_cap_fen, per_visit_cap_fen)| CategoryTerms {
            ratio_bp,
            deductible_fen,
            annual_cap_fen,
            per_visit_cap_fen,
        },
    )
}

/// A program without its id (the caller numbers them).
fn program(pr: Profile) -> impl Strategy<Value = Program> {
    (
        subsequence(BUCKETS.to_vec(), 1..=4).prop_shuffle(),
        proptest::option::weighted(0.3, subsequence(VisitType::ALL.to_vec(), 1..=3).prop_shuffle()),
        proptest::option::weighted(0.3, subsequence(TAGS.to_vec(), 0..=2)),
        (pr.limit)(),
        subsequence(CATEGORIES.to_vec(), pr.min_categories..=4),
        proptest::collection::vec(terms(pr), 4),
    )
        .prop_map(|(covers, visit_types, require_tags, annual_pool_fen, cats, terms)| Program {
            id: String::new(),
            name: String::new(),
            visit_types,
            covers,
            require_tags: require_tags.map(|t| t.into_iter().map(String::from).collect()),
            annual_pool_fen,
            categories: cats.into_iter().map(String::from).zip(terms).collect(),
        })
}

/// 1–5 programs with distinct ids `p0`..`p5` in random order (two rulesets of a scenario share ids, as versions of
/// the same programs do).
fn programs(pr: Profile) -> impl Strategy<Value = Vec<Program>> {
    (1usize..=5)
        .prop_flat_map(move |n| {
            (proptest::collection::vec(program(pr), n), subsequence((0..6usize).collect::<Vec<_>>(), n).prop_shuffle())
        })
        .prop_map(|(mut ps, ids)| {
            for (p, i) in ps.iter_mut().zip(ids) {
                p.id = format!("p{i}");
                p.name = format!("Program {i}");
            }
            ps
        })
}

fn ruleset(pr: Profile) -> impl Strategy<Value = Ruleset> {
    programs(pr).prop_map(|programs| Ruleset {
        version: 1,
        effective_from: ymd(2024, 1, 1),
        published_at: String::new(),
        programs,
    })
}

fn date_between(from: NaiveDate, to: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    let days = (to - from).num_days() as u64;
    (0..=days).prop_map(move |d| from + Days::new(d))
}

/// Visit dates: mostly 2026 up to "today" (2026-11-30 local), some in 2025, a few in 2024 (before any ruleset of
/// the Redis scenarios, so `no_rules_in_force`).
fn visit_date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        6 => date_between(ymd(2026, 1, 1), ymd(2026, 11, 30)),
        2 => date_between(ymd(2025, 1, 1), ymd(2025, 12, 31)),
        1 => date_between(ymd(2024, 7, 1), ymd(2024, 12, 31)),
    ]
}

fn visit_type() -> impl Strategy<Value = VisitType> {
    prop_oneof![Just(VisitType::Outpatient), Just(VisitType::Chronic), Just(VisitType::Inpatient)]
}

fn card() -> impl Strategy<Value = Cardholder> {
    let validity = prop_oneof![
        8 => Just((ymd(2024, 1, 1), ymd(2026, 12, 31))),
        2 => (date_between(ymd(2024, 6, 1), ymd(2026, 12, 31)), date_between(ymd(2024, 6, 1), ymd(2026, 12, 31)))
            .prop_map(|(a, b)| (a.min(b), a.max(b))),
    ];
    (
        proptest::sample::select(CARD_CATEGORIES.to_vec()),
        subsequence(TAGS.to_vec(), 0..=3),
        proptest::bool::weighted(0.05),
        validity,
    )
        .prop_map(|(category, tags, suspended, (valid_from, valid_until))| Cardholder {
            card_id: String::new(),
            category: category.to_string(),
            valid_from,
            valid_until,
            status: if suspended { CardStatus::Suspended } else { CardStatus::Active },
            tags: tags.into_iter().map(String::from).collect(),
        })
}

fn cards() -> impl Strategy<Value = Vec<Cardholder>> {
    proptest::collection::vec(card(), 1..=4).prop_map(|mut cs| {
        for (i, c) in cs.iter_mut().enumerate() {
            c.card_id = format!("C{i}");
        }
        cs
    })
}

#[derive(Debug, Clone)]
struct BillDraft {
    visit: Visit,
    amounts: Amounts,
    insurance: Insurance,
}

impl BillDraft {
    fn bill<'a>(&self, card_id: &'a str) -> Bill<'a> {
        Bill { card_id, visit: self.visit, amounts: self.amounts, insurance: self.insurance }
    }
}

/// A valid bill: four buckets (their sum at most 2^53 − 1), insurance ≤ in_scope split over three fields.
fn bill_with(amount: fn() -> BoxedStrategy<i64>, insured: u32) -> impl Strategy<Value = BillDraft> {
    (
        visit_type(),
        visit_date(),
        proptest::array::uniform4(amount()),
        (0u32..10).prop_map(move |x| if x < insured { (x % 2) + 1 } else { 0 }),
        any::<[u64; 3]>(),
    )
        .prop_map(|(visit_type, date, mut b, mode, seeds)| {
            let mut excess = b.iter().map(|&x| x as i128).sum::<i128>() - MAX_FEN as i128;
            while excess > 0 {
                let i = (0..4).max_by_key(|&i| b[i]).unwrap();
                let cut = excess.min(b[i] as i128);
                b[i] -= cut as i64;
                excess -= cut;
            }
            let in_scope = b[0];
            let insured = match mode {
                0 => 0,
                1 => in_scope,
                _ => (seeds[0] % (in_scope as u64 + 1)) as i64,
            };
            let basic = (seeds[1] % (insured as u64 + 1)) as i64;
            let critical = (seeds[2] % ((insured - basic) as u64 + 1)) as i64;
            BillDraft {
                visit: Visit { visit_type, date },
                amounts: Amounts {
                    total_fen: b.iter().sum(),
                    in_scope_fen: b[0],
                    pre_self_pay_fen: b[1],
                    over_limit_fen: b[2],
                    self_pay_fen: b[3],
                },
                insurance: Insurance {
                    basic_fen: basic,
                    critical_illness_fen: critical,
                    other_fen: insured - basic - critical,
                },
            }
        })
}

fn bill() -> impl Strategy<Value = BillDraft> {
    bill_with(amount, 6)
}

/// Counters a program's step may read: zero, small, or anything (also beyond every cap).
fn usage_value() -> BoxedStrategy<i64> {
    prop_oneof![3 => Just(0i64), 3 => 0i64..=1_000_000, 2 => amount()].boxed()
}

// ---- counters kept by the test ---------------------------------------------------------------------------------

/// What the store keeps: per card, year and program (paid, deductible met); per year and program the total paid.
#[derive(Debug, Clone, Default)]
struct Counters {
    usage: HashMap<(String, i32, String), (i64, i64)>,
    program: HashMap<(i32, String), i64>,
}

type Normal = (BTreeMap<(String, i32, String), (i64, i64)>, BTreeMap<(i32, String), i64>);

impl Counters {
    fn usage(&self, card: &str, year: i32, program: &str) -> ProgramUsage {
        let (paid, ded) = self.usage.get(&(card.to_string(), year, program.to_string())).copied().unwrap_or((0, 0));
        ProgramUsage {
            paid_fen: paid,
            deductible_met_fen: ded,
            program_paid_fen: self.program.get(&(year, program.to_string())).copied().unwrap_or(0),
        }
    }

    fn apply(&mut self, card: &str, year: i32, payments: &[Payment], sign: i64) {
        for p in payments {
            let u = self.usage.entry((card.to_string(), year, p.program.clone())).or_default();
            u.0 += sign * p.paid_fen;
            u.1 += sign * p.deductible_applied_fen;
            *self.program.entry((year, p.program.clone())).or_default() += sign * p.paid_fen;
        }
    }

    /// The non-zero counters (a counter taken back to 0 equals one never touched).
    fn normal(&self) -> Normal {
        (
            self.usage.iter().filter(|(_, v)| **v != (0, 0)).map(|(k, v)| (k.clone(), *v)).collect(),
            self.program.iter().filter(|(_, v)| **v != 0).map(|(k, v)| (k.clone(), *v)).collect(),
        )
    }

    fn engine(&self, ruleset: &Ruleset, card: &Cardholder, bill: &BillDraft) -> Split {
        let year = bill.visit.date.year();
        let b = bill.bill(&card.card_id);
        split(ruleset, card, bill.visit.visit_type, bill.amounts.total_fen, b.residual(), |p| {
            self.usage(&card.card_id, year, &p.id)
        })
    }
}

// ---- a. invariants of one split ---------------------------------------------------------------------------------

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
        let uncapped = pct(base - pay.deductible_applied_fen, t.ratio_bp as u32);
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

#[derive(Debug, Clone)]
struct Sequence {
    ruleset: Ruleset,
    cards: Vec<Cardholder>,
    /// (card index, bill, reverse it right away)
    steps: Vec<(usize, BillDraft, bool)>,
    /// Sort keys: the order in which the remaining settlements are reversed at the end.
    undo_order: Vec<u64>,
}

fn sequence(pr: Profile) -> impl Strategy<Value = Sequence> {
    (
        ruleset(pr),
        cards(),
        proptest::collection::vec((0usize..4, bill(), proptest::bool::weighted(0.2)), 1..=20),
        proptest::collection::vec(any::<u64>(), 20),
    )
        .prop_map(|(ruleset, cards, steps, undo_order)| Sequence { ruleset, cards, steps, undo_order })
}

fn recount(recorded: &[(String, i32, Vec<Payment>)]) -> Normal {
    let mut c = Counters::default();
    for (card, year, payments) in recorded {
        c.apply(card, *year, payments, 1);
    }
    c.normal()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// One split on arbitrary counters (also counters beyond every cap).
    #[test]
    fn split_invariants_hold_for_any_counters(
        rs in ruleset(ANY),
        card in card(),
        bill in bill(),
        used in proptest::collection::vec((usage_value(), usage_value(), usage_value()), 6),
    ) {
        let usage = |id: &str| {
            let i: usize = id[1..].parse().unwrap();
            ProgramUsage { paid_fen: used[i].0, deductible_met_fen: used[i].1, program_paid_fen: used[i].2 }
        };
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
        let mut recorded: Vec<(String, i32, Vec<Payment>)> = Vec::new();
        for (idx, bill, undo) in &seq.steps {
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
                recorded.push((card.card_id.clone(), year, s.payments));
            }
        }
        prop_assert_eq!(counters.normal(), recount(&recorded));
        let mut order: Vec<usize> = (0..recorded.len()).collect();
        order.sort_by_key(|&i| seq.undo_order[i % seq.undo_order.len()]);
        let mut remaining: Vec<Option<(String, i32, Vec<Payment>)>> = recorded.into_iter().map(Some).collect();
        for i in order {
            let (card, year, payments) = remaining[i].take().unwrap();
            counters.apply(&card, year, &payments, -1);
            let rest: Vec<_> = remaining.iter().flatten().cloned().collect();
            prop_assert_eq!(counters.normal(), recount(&rest));
        }
        prop_assert_eq!(counters.normal(), (BTreeMap::new(), BTreeMap::new()));
    }
}

// ---- b. a naive model of RULES.md --------------------------------------------------------------------------------

/// RULES.md "The algorithm", straight from the text, in i128: no shared code with src/domain/split.rs.
mod naive {
    use super::*;

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

    /// `used(program)` = (paid this year by this card, deductible met this year, paid to everybody this year).
    pub fn settle(
        programs: &[Program],
        category: &str,
        tags: &[String],
        visit_type: VisitType,
        amounts: &Amounts,
        insurance: &Insurance,
        used: &dyn Fn(&str) -> (i128, i128, i128),
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
            let (paid_before, ded_met, program_paid) = used(&p.id);
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
        used in proptest::collection::vec((usage_value(), usage_value(), usage_value()), 6),
    ) {
        let pick = |id: &str| used[id[1..].parse::<usize>().unwrap()];
        let b = bill.bill("C0");
        let s = split(&rs, &card, bill.visit.visit_type, bill.amounts.total_fen, b.residual(), |p| {
            let (paid_fen, deductible_met_fen, program_paid_fen) = pick(&p.id);
            ProgramUsage { paid_fen, deductible_met_fen, program_paid_fen }
        });
        let model = naive::settle(&rs.programs, &card.category, &card.tags, bill.visit.visit_type, &bill.amounts,
            &bill.insurance, &|id| { let u = pick(id); (u.0 as i128, u.1 as i128, u.2 as i128) });
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
        for (idx, bill, undo) in &seq.steps {
            let card = &seq.cards[idx % seq.cards.len()];
            let year = bill.visit.date.year();
            let s = counters.engine(&seq.ruleset, card, bill);
            let n = naive::settle(&seq.ruleset.programs, &card.category, &card.tags, bill.visit.visit_type,
                &bill.amounts, &bill.insurance, &|id| {
                    let (paid, ded) = model.get(&(card.card_id.clone(), year, id.to_string())).copied().unwrap_or((0, 0));
                    (paid, ded, model_total.get(&(year, id.to_string())).copied().unwrap_or(0))
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

// ---- c. the Lua script through App and a real Redis ----------------------------------------------------------------

/// A metrics recorder that counts every counter by name (installed once for the whole test binary), so the tests
/// can see `settlegate_engine_mismatch_total`, the gateway's alarm for "settle script and engine disagree".
#[derive(Default)]
struct CountingRecorder {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl CountingRecorder {
    fn get(&self, name: &str) -> u64 {
        self.counters.lock().unwrap().get(name).map(|c| c.load(Ordering::SeqCst)).unwrap_or(0)
    }
}

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let c = self.counters.lock().unwrap().entry(key.name().to_string()).or_default().clone();
        metrics::Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

fn recorder() -> &'static CountingRecorder {
    static RECORDER: OnceLock<&'static CountingRecorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let r: &'static CountingRecorder = Box::leak(Box::default());
        metrics::set_global_recorder(r).unwrap_or_else(|_| panic!("another metrics recorder is installed"));
        r
    })
}

const MISMATCH: &str = "settlegate_engine_mismatch_total";
const HOSPITALS: [&str; 2] = ["H0001", "H0002"];

fn code(e: &ApiError) -> &'static str {
    e.code()
}

#[derive(Debug, Clone)]
enum Op {
    /// A new settlement (card `None` = an unknown card).
    Settle {
        card: Option<usize>,
        hospital: usize,
        bill: BillDraft,
    },
    /// The very same request again (any earlier settle attempt).
    Retry {
        which: usize,
    },
    /// An earlier id with another bill.
    Conflict {
        which: usize,
        bill: BillDraft,
    },
    /// Reverse an earlier settle attempt, by hospital_settlement_id or settlement_id, sometimes naming a wrong card.
    Reverse {
        which: usize,
        by_settlement_id: bool,
        wrong_card: bool,
    },
    /// Cancel an id never sent (tombstone).
    Cancel {
        card: Option<usize>,
        hospital: usize,
    },
    /// The late original of a cancelled id.
    LateOriginal {
        which: usize,
        bill: BillDraft,
    },
    Quote {
        card: Option<usize>,
        bill: BillDraft,
    },
    /// The relief office publishes a new version mid-way (same program ids): settlements already made keep
    /// their version, and a reversal undoes what was recorded, never recomputing with the new rules.
    Republish {
        effective_from: NaiveDate,
        programs: Vec<Program>,
    },
    /// `POST /v1/eligibility` for a card and visit.
    Eligibility {
        card: Option<usize>,
        bill: BillDraft,
    },
    /// The relief office replaces a cardholder (category, status, tags, validity may all change).
    UpdateCard {
        card: usize,
        holder: Cardholder,
    },
}

#[derive(Debug, Clone)]
struct Scenario {
    /// The first is effective 2025-01-01 (before every 2025/2026 visit, after the 2024 ones); a second one, if
    /// any, later in 2025 or 2026. Program ids are shared between the two, as between versions of one program.
    rulesets: Vec<(NaiveDate, Vec<Program>)>,
    cards: Vec<Cardholder>,
    ops: Vec<Op>,
}

fn card_ref() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![9 => (0usize..4).prop_map(Some), 1 => Just(None)]
}

fn op(pr: Profile, bill: fn() -> BoxedStrategy<BillDraft>) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (card_ref(), 0..HOSPITALS.len(), bill()).prop_map(|(card, hospital, bill)| Op::Settle { card, hospital, bill }),
        3 => any::<usize>().prop_map(|which| Op::Retry { which }),
        1 => (any::<usize>(), bill()).prop_map(|(which, bill)| Op::Conflict { which, bill }),
        3 => (any::<usize>(), any::<bool>(), proptest::bool::weighted(0.15))
            .prop_map(|(which, by_settlement_id, wrong_card)| Op::Reverse { which, by_settlement_id, wrong_card }),
        1 => (card_ref(), 0..HOSPITALS.len()).prop_map(|(card, hospital)| Op::Cancel { card, hospital }),
        1 => (any::<usize>(), bill()).prop_map(|(which, bill)| Op::LateOriginal { which, bill }),
        1 => (card_ref(), bill()).prop_map(|(card, bill)| Op::Quote { card, bill }),
        1 => (prop_oneof![Just(ymd(2025, 1, 1)), date_between(ymd(2025, 1, 2), ymd(2026, 11, 30))], programs(pr))
            .prop_map(|(effective_from, programs)| Op::Republish { effective_from, programs }),
        1 => (0usize..4, card()).prop_map(|(card, holder)| Op::UpdateCard { card, holder }),
        1 => (card_ref(), bill()).prop_map(|(card, bill)| Op::Eligibility { card, bill }),
    ]
}

fn scenario(pr: Profile, bill: fn() -> BoxedStrategy<BillDraft>) -> impl Strategy<Value = Scenario> {
    (
        programs(pr),
        proptest::option::weighted(0.4, (date_between(ymd(2025, 1, 2), ymd(2026, 11, 30)), programs(pr))),
        cards(),
        proptest::collection::vec(op(pr, bill), 1..=24),
    )
        .prop_map(|(first, second, cards, ops)| {
            let mut rulesets = vec![(ymd(2025, 1, 1), first)];
            rulesets.extend(second);
            Scenario { rulesets, cards, ops }
        })
}

fn normal_bill() -> BoxedStrategy<BillDraft> {
    bill().boxed()
}

fn big_bill() -> BoxedStrategy<BillDraft> {
    bill_with(big_amount, 3).boxed()
}

enum Entry {
    Settled { canonical: String, settlement: Box<Settlement> },
    Tombstone { card_id: String },
}

/// (program, ratio_bp, deductible_left_fen, annual_cap_left_fen, per_visit_cap_fen) of an eligibility answer.
type EligibleProgram = (String, i64, i64, Option<i64>, Option<i64>);

/// One case's view of the store: the cards, the counters, the settlements and tombstones.
struct Model {
    rulesets: Vec<Ruleset>,
    cards: HashMap<String, Cardholder>,
    counters: Counters,
    entries: HashMap<(String, String), Entry>,
    /// Every settle request sent, with its hospital.
    sent: Vec<(usize, SettleRequest)>,
    /// Ids cancelled before they were sent: (hospital, hsid).
    cancelled: Vec<(usize, String)>,
}

/// What the cases exercised, so a green run cannot be a vacuous one.
#[derive(Default, Debug)]
struct Stats {
    created: AtomicU64,
    paid_lines: AtomicU64,
    capped_lines: AtomicU64,
    /// Payments of 2^52 fen or more.
    huge_payments: AtomicU64,
    replays: AtomicU64,
    replays_of_reversed: AtomicU64,
    conflicts: AtomicU64,
    refusals: AtomicU64,
    reversals: AtomicU64,
    tombstones: AtomicU64,
    already_reversed: AtomicU64,
    quotes: AtomicU64,
    republished: AtomicU64,
    eligibility: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A private Redis, a runtime and an `App` on them; one per test function.
struct Live {
    rt: tokio::runtime::Runtime,
    app: App,
    cases: AtomicU64,
    stats: Stats,
    _redis: common::Redis,
}

impl Live {
    fn start() -> Live {
        recorder();
        let redis = common::Redis::start();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let link = Link::new(&redis.url(), Duration::from_secs(5), Duration::from_secs(10), 10_000).unwrap();
        rt.block_on(link.connect()).expect("connect to the private redis");
        let store = Arc::new(Store::new(link, Duration::from_secs(10)));
        let app = App { store, rules: Arc::new(RulebookCache::default()), tz: chrono_tz::Asia::Shanghai };
        Live { rt, app, stats: Stats::default(), cases: AtomicU64::new(0), _redis: redis }
    }

    fn run(&self, sc: &Scenario) -> Result<(), TestCaseError> {
        let case = self.cases.fetch_add(1, Ordering::SeqCst);
        self.rt.block_on(self.case(case, sc))
    }

    async fn case(&self, case: u64, sc: &Scenario) -> Result<(), TestCaseError> {
        let app = &self.app;
        // Publish this case's rulesets (program ids carry the case number) and refresh the rule cache.
        let rulesets = self.publish(case, &sc.rulesets).await?;

        let cards: Vec<Cardholder> = sc
            .cards
            .iter()
            .enumerate()
            .map(|(i, c)| Cardholder { card_id: format!("k{case}-C{i}"), ..c.clone() })
            .collect();
        app.store.put_cardholders(&cards).await.expect("put cards");
        let card_id = |c: Option<usize>| match c {
            Some(i) => cards[i % cards.len()].card_id.clone(),
            None => format!("k{case}-C404"),
        };

        let mut m = Model {
            rulesets,
            cards: cards.iter().map(|c| (c.card_id.clone(), c.clone())).collect(),
            counters: Counters::default(),
            entries: HashMap::new(),
            sent: Vec::new(),
            cancelled: Vec::new(),
        };
        let request = |card: String, bill: &BillDraft, hsid: String| SettleRequest {
            hospital_settlement_id: hsid,
            card_id: card,
            visit: bill.visit,
            amounts: bill.amounts,
            insurance: bill.insurance,
        };

        for (i, op) in sc.ops.iter().enumerate() {
            let fresh = format!("k{case}-{i}");
            match op {
                Op::Settle { card, hospital, bill } => {
                    let req = request(card_id(*card), bill, fresh);
                    self.settle(&mut m, *hospital, req).await?;
                }
                Op::Retry { which } => {
                    if m.sent.is_empty() {
                        continue;
                    }
                    let (h, req) = m.sent[which % m.sent.len()].clone();
                    self.settle(&mut m, h, req).await?;
                }
                Op::Conflict { which, bill } => {
                    if m.sent.is_empty() {
                        continue;
                    }
                    let (h, old) = m.sent[which % m.sent.len()].clone();
                    let req = request(old.card_id.clone(), bill, old.hospital_settlement_id.clone());
                    self.settle(&mut m, h, req).await?;
                }
                Op::LateOriginal { which, bill } => {
                    if m.cancelled.is_empty() {
                        continue;
                    }
                    let (h, hsid) = m.cancelled[which % m.cancelled.len()].clone();
                    let req = request(cards[which % cards.len()].card_id.clone(), bill, hsid);
                    self.settle(&mut m, h, req).await?;
                }
                Op::Reverse { which, by_settlement_id, wrong_card } => {
                    if m.sent.is_empty() {
                        continue;
                    }
                    let (h, req) = m.sent[which % m.sent.len()].clone();
                    let card = if *wrong_card { format!("k{case}-C9") } else { req.card_id.clone() };
                    self.reverse(&mut m, h, card, req.hospital_settlement_id.clone(), *by_settlement_id).await?;
                }
                Op::Cancel { card, hospital } => {
                    m.cancelled.push((*hospital, fresh.clone()));
                    self.reverse(&mut m, *hospital, card_id(*card), fresh, false).await?;
                }
                Op::Republish { effective_from, programs } => {
                    m.rulesets = self.publish(case, &[(*effective_from, programs.clone())]).await?;
                    bump(&self.stats.republished);
                }
                Op::UpdateCard { card, holder } => {
                    let holder = Cardholder { card_id: cards[card % cards.len()].card_id.clone(), ..holder.clone() };
                    app.store.put_cardholders(std::slice::from_ref(&holder)).await.expect("put card");
                    m.cards.insert(holder.card_id.clone(), holder);
                }
                Op::Eligibility { card, bill } => {
                    let req = EligibilityRequest { card_id: card_id(*card), visit: bill.visit };
                    self.eligibility(&m, &req).await?;
                }
                Op::Quote { card, bill } => {
                    let req = QuoteRequest {
                        hospital_settlement_id: None,
                        card_id: card_id(*card),
                        visit: bill.visit,
                        amounts: bill.amounts,
                        insurance: bill.insurance,
                    };
                    let expected = expect_split(&m, &req.bill());
                    match (app.quote(&req).await, expected) {
                        (Ok(s), Ok((version, category, e))) => {
                            prop_assert_eq!(s.status, SettlementStatus::Quote);
                            bump(&self.stats.quotes);
                            check_against_engine(&s, version, &category, &e)?;
                        }
                        (Err(err), Err(c)) => prop_assert_eq!(code(&err), c, "quote {:?}", req),
                        (got, want) => prop_assert!(false, "quote {req:?}: got {got:?}, want {want:?}"),
                    }
                }
            }
        }

        // Redis's counters equal the test's, exactly.
        for year in [2024, 2025, 2026] {
            for c in &cards {
                let (stored, usage) =
                    app.store.cardholder_with_usage(&c.card_id, year).await.expect("usage").expect("card exists");
                prop_assert_eq!(&stored, &m.cards[&c.card_id]);
                let got: Vec<(String, i64, i64)> = usage
                    .into_iter()
                    .filter(|u| u.paid_fen != 0 || u.deductible_met_fen != 0)
                    .map(|u| (u.program, u.paid_fen, u.deductible_met_fen))
                    .collect();
                let mut want: Vec<(String, i64, i64)> = m
                    .counters
                    .normal()
                    .0
                    .into_iter()
                    .filter(|((card, y, _), _)| card == &c.card_id && *y == year)
                    .map(|((_, _, p), (paid, ded))| (p, paid, ded))
                    .collect();
                want.sort();
                prop_assert_eq!(got, want, "usage of {} in {}", c.card_id, year);
            }
            let ids: Vec<String> = (0..6).map(|i| format!("k{case}_p{i}")).collect();
            let got = app.store.program_paid(year, &ids).await.expect("program_paid");
            let want: Vec<i64> = ids.iter().map(|id| m.counters.usage("", year, id).program_paid_fen).collect();
            prop_assert_eq!(got, want, "program totals of {}", year);
        }
        prop_assert_eq!(recorder().get(MISMATCH), 0, "the gateway's engine cross-check fired");
        Ok(())
    }

    /// Publishes rulesets and refreshes the cache; returns every ruleset Redis now holds (earlier cases' versions
    /// included: the model of `sg:rulesets`), after checking that ours are the newest.
    async fn publish(&self, case: u64, rulesets: &[(NaiveDate, Vec<Program>)]) -> Result<Vec<Ruleset>, TestCaseError> {
        let app = &self.app;
        let stamp = "2026-11-30T08:00:00.000+08:00";
        let mut inputs = Vec::new();
        for (effective_from, programs) in rulesets {
            let programs: Vec<Program> =
                programs.iter().map(|p| Program { id: format!("k{case}_{}", p.id), ..p.clone() }).collect();
            let input = RulesetInput { effective_from: *effective_from, programs };
            prop_assert!(input.validate().is_empty(), "generated an invalid ruleset: {:?}", input.validate());
            app.store.publish_ruleset(&input, stamp).await.expect("publish");
            inputs.push(input);
        }
        app.rules.refresh(&app.store).await.expect("refresh rules");
        let all = app.store.load_rulesets().await.expect("load rulesets");
        prop_assert!(all.len() >= inputs.len());
        for (r, input) in all[all.len() - inputs.len()..].iter().zip(&inputs) {
            prop_assert_eq!((&r.effective_from, &r.programs), (&input.effective_from, &input.programs));
        }
        prop_assert!(all.windows(2).all(|w| w[0].version + 1 == w[1].version));
        prop_assert_eq!(app.rules.snapshot().latest_version(), all.last().unwrap().version);
        Ok(all)
    }

    /// API.md `/v1/eligibility`: 404 for an unknown card; `eligible: false` with the reason for a card that cannot
    /// be served; 422 without a ruleset in force; else the covering programs with what is left of the deductible
    /// and the annual cap, from the test's counters.
    async fn eligibility(&self, m: &Model, req: &EligibilityRequest) -> Result<(), TestCaseError> {
        let got = self.app.eligibility(req).await;
        let Some(card) = m.cards.get(&req.card_id) else {
            prop_assert_eq!(got.as_ref().err().map(code), Some("card_not_found"));
            return Ok(());
        };
        let rs = in_force(&m.rulesets, req.visit.date);
        if let Err(why) = card.eligibility(req.visit.date) {
            let e = got.map_err(|e| TestCaseError::fail(format!("eligibility {req:?}: {e:?}")))?;
            prop_assert!(!e.eligible);
            prop_assert_eq!(e.reason, Some(why.as_str()));
            prop_assert!(e.programs.is_empty());
            prop_assert_eq!(e.ruleset_version, rs.map(|r| r.version));
            return Ok(());
        }
        let Some(rs) = rs else {
            prop_assert_eq!(got.as_ref().err().map(code), Some("no_rules_in_force"));
            return Ok(());
        };
        let e = got.map_err(|e| TestCaseError::fail(format!("eligibility {req:?}: {e:?}")))?;
        prop_assert!(e.eligible && e.reason.is_none());
        prop_assert_eq!(&e.category, &card.category);
        prop_assert_eq!(e.ruleset_version, Some(rs.version));
        let year = req.visit.date.year();
        let want: Vec<EligibleProgram> = rs
            .programs
            .iter()
            .filter(|p| p.visit_types.as_ref().is_none_or(|v| v.contains(&req.visit.visit_type)))
            .filter(|p| p.require_tags.iter().flatten().all(|t| card.tags.contains(t)))
            .filter_map(|p| p.categories.get(&card.category).map(|t| (p, t)))
            .map(|(p, t)| {
                let u = m.counters.usage(&card.card_id, year, &p.id);
                (
                    p.id.clone(),
                    t.ratio_bp,
                    (t.deductible_fen.unwrap_or(0) - u.deductible_met_fen).max(0),
                    t.annual_cap_fen.map(|cap| (cap - u.paid_fen).max(0)),
                    t.per_visit_cap_fen,
                )
            })
            .collect();
        let got: Vec<_> = e
            .programs
            .iter()
            .map(|p| (p.program.clone(), p.ratio_bp, p.deductible_left_fen, p.annual_cap_left_fen, p.per_visit_cap_fen))
            .collect();
        prop_assert_eq!(got, want, "eligibility {:?}", req);
        bump(&self.stats.eligibility);
        Ok(())
    }

    async fn settle(&self, m: &mut Model, hospital: usize, req: SettleRequest) -> Result<(), TestCaseError> {
        let h = HOSPITALS[hospital];
        m.sent.push((hospital, req.clone()));
        let key = (h.to_string(), req.hospital_settlement_id.clone());
        let canonical = req.bill().canonical();
        let got = self.app.settle(h, &req).await;
        match m.entries.get(&key) {
            Some(Entry::Tombstone { .. }) => {
                prop_assert_eq!(got.as_ref().err().map(code), Some("already_reversed"), "{:?}", req);
                bump(&self.stats.already_reversed);
            }
            Some(Entry::Settled { canonical: c, settlement }) if *c == canonical => {
                let (s, created) = got.map_err(|e| TestCaseError::fail(format!("replay {req:?}: {e:?}")))?;
                prop_assert!(!created, "a retry must not create");
                prop_assert_eq!(&s, &**settlement, "a retry answers the settlement as it stands");
                bump(&self.stats.replays);
                if s.status == SettlementStatus::Reversed {
                    bump(&self.stats.replays_of_reversed);
                }
            }
            Some(Entry::Settled { .. }) => {
                prop_assert_eq!(got.as_ref().err().map(code), Some("idempotency_conflict"), "{:?}", req);
                bump(&self.stats.conflicts);
            }
            None => match expect_split(m, &req.bill()) {
                Err(c) => {
                    prop_assert_eq!(got.as_ref().err().map(code), Some(c), "{:?}: {:?}", req, got);
                    bump(&self.stats.refusals);
                }
                Ok((version, category, e)) => {
                    let (s, created) = got.map_err(|e| TestCaseError::fail(format!("settle {req:?}: {e:?}")))?;
                    prop_assert!(created);
                    prop_assert_eq!(s.status, SettlementStatus::Settled);
                    prop_assert_eq!(s.hospital_settlement_id.as_deref(), Some(req.hospital_settlement_id.as_str()));
                    prop_assert_eq!(&s.card_id, &req.card_id);
                    prop_assert_eq!(s.amounts, req.amounts);
                    prop_assert_eq!(s.insurance, req.insurance);
                    check_against_engine(&s, version, &category, &e)?;
                    bump(&self.stats.created);
                    for p in &s.payments {
                        if p.paid_fen > 0 {
                            bump(&self.stats.paid_lines);
                        }
                        if p.capped_by.is_some() {
                            bump(&self.stats.capped_lines);
                        }
                        if p.paid_fen >= 1 << 52 {
                            bump(&self.stats.huge_payments);
                        }
                    }
                    m.counters.apply(&req.card_id, req.visit.date.year(), &s.payments, 1);
                    m.entries.insert(key, Entry::Settled { canonical, settlement: Box::new(s) });
                }
            },
        }
        Ok(())
    }

    async fn reverse(
        &self,
        m: &mut Model,
        hospital: usize,
        card_id: String,
        hsid: String,
        by_settlement_id: bool,
    ) -> Result<(), TestCaseError> {
        let h = HOSPITALS[hospital];
        let key = (h.to_string(), hsid.clone());
        let sid = match m.entries.get(&key) {
            Some(Entry::Settled { settlement, .. }) if by_settlement_id => settlement.settlement_id.clone(),
            _ => None,
        };
        let req = ReversalRequest {
            card_id: card_id.clone(),
            hospital_settlement_id: if sid.is_none() { Some(hsid.clone()) } else { None },
            settlement_id: sid.clone(),
            reason: Some("property test".into()),
        };
        let got = self.app.reverse(h, &req).await;
        match m.entries.get_mut(&key) {
            Some(Entry::Settled { settlement, .. }) if settlement.card_id == card_id => {
                let Ok(Reversal::Settlement(s)) = got else {
                    return Err(TestCaseError::fail(format!("reverse {req:?}: not a settlement")));
                };
                // (works whether the app hands the settlement over boxed or not)
                let s: Settlement = {
                    let r: &Settlement = &s;
                    r.clone()
                };
                prop_assert_eq!(s.status, SettlementStatus::Reversed);
                prop_assert!(s.reversed_at.is_some());
                if settlement.status == SettlementStatus::Reversed {
                    prop_assert_eq!(&s, &**settlement, "a second reversal answers the same");
                } else {
                    let as_settled = Settlement { status: SettlementStatus::Settled, reversed_at: None, ..s.clone() };
                    prop_assert_eq!(&as_settled, &**settlement, "a reversal undoes what was recorded");
                    m.counters.apply(&s.card_id, s.visit.date.year(), &s.payments, -1);
                    bump(&self.stats.reversals);
                    **settlement = s;
                }
            }
            Some(Entry::Tombstone { card_id: holder }) if *holder == card_id => {
                let Ok(Reversal::ReversedBeforeSettled(t)) = got else {
                    return Err(TestCaseError::fail(format!("reverse {req:?}: not a tombstone")));
                };
                prop_assert_eq!(&t.card_id, &card_id);
                prop_assert_eq!(&t.hospital_settlement_id, &hsid);
            }
            Some(_) if sid.is_none() => {
                prop_assert_eq!(got.as_ref().err().map(code), Some("idempotency_conflict"), "{:?}", req);
            }
            Some(_) => prop_assert_eq!(got.as_ref().err().map(code), Some("not_found"), "{:?}", req),
            None => {
                let Ok(Reversal::ReversedBeforeSettled(t)) = got else {
                    return Err(TestCaseError::fail(format!("reverse {req:?}: not a tombstone")));
                };
                prop_assert_eq!(&t.card_id, &card_id);
                bump(&self.stats.tombstones);
                m.entries.insert(key, Entry::Tombstone { card_id });
            }
        }
        Ok(())
    }
}

/// API.md's checks after the id: card (404), eligibility (422), ruleset in force (422); then the engine's split on
/// the test's counters. Returns (ruleset version, category, split) or the error code.
fn expect_split(m: &Model, bill: &Bill<'_>) -> Result<(u64, String, Split), &'static str> {
    let card = m.cards.get(bill.card_id).ok_or("card_not_found")?;
    card.eligibility(bill.visit.date).map_err(|_| "not_eligible")?;
    let rs = in_force(&m.rulesets, bill.visit.date).ok_or("no_rules_in_force")?;
    let year = bill.visit.date.year();
    let s = split(rs, card, bill.visit.visit_type, bill.amounts.total_fen, bill.residual(), |p| {
        m.counters.usage(&card.card_id, year, &p.id)
    });
    Ok((rs.version, card.category.clone(), s))
}

fn check_against_engine(s: &Settlement, version: u64, category: &str, e: &Split) -> Result<(), TestCaseError> {
    prop_assert_eq!(&s.payments, &e.payments, "Lua and engine disagree on the payments");
    prop_assert_eq!(s.insurance_fen, e.insurance_fen);
    prop_assert_eq!(s.relief_fen, e.relief_fen);
    prop_assert_eq!(s.patient_fen, e.patient_fen);
    prop_assert_eq!(s.ruleset_version, version);
    prop_assert_eq!(&s.category, category);
    prop_assert!(s.check_invariants());
    Ok(())
}

fn run_live(name: &str, cases: u32, strategy: impl Strategy<Value = Scenario>) -> Live {
    let live = Live::start();
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 400,
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&strategy, |sc| live.run(&sc)) {
        panic!("{name}: {e}");
    }
    eprintln!("{name}: {} cases, {:?}", live.cases.load(Ordering::SeqCst), live.stats);
    assert_eq!(recorder().get(MISMATCH), 0);
    let s = &live.stats;
    for (what, n) in [
        ("settlements", &s.created),
        ("paying lines", &s.paid_lines),
        ("capped lines", &s.capped_lines),
        ("replays", &s.replays),
        ("conflicts", &s.conflicts),
        ("refusals", &s.refusals),
        ("reversals", &s.reversals),
        ("tombstones", &s.tombstones),
        ("late originals", &s.already_reversed),
        ("quotes", &s.quotes),
        ("republished rulesets", &s.republished),
        ("eligibility answers", &s.eligibility),
    ] {
        assert!(n.load(Ordering::Relaxed) > 0, "{name}: no {what} exercised: {s:?}");
    }
    live
}

/// Random rulesets, cards and operations through `App` and Redis; every answer checked against the engine and the
/// model, Redis's counters checked at the end of each case.
#[test]
fn lua_settle_matches_engine_through_app() {
    let live = run_live("lua_settle_matches_engine_through_app", 128, scenario(ANY, normal_bill));
    assert!(live.stats.replays_of_reversed.load(Ordering::Relaxed) > 0, "{:?}", live.stats);
}

/// The same at the top of the range (bills near 2^53 − 1 and 10^12, mostly no caps): Lua's integer arithmetic is
/// exact, also in `pct` and in the counters.
#[test]
fn lua_is_exact_near_2_pow_53() {
    let live = run_live("lua_is_exact_near_2_pow_53", 96, scenario(BIG, big_bill));
    assert!(live.stats.huge_payments.load(Ordering::Relaxed) >= 20, "{:?}", live.stats);
}

/// The worked example of RULES.md and a bill of 2^53 − 1 through `App`: the gateway's cross-check
/// (`settlegate_engine_mismatch_total`) stays at 0 while the recorder demonstrably counts.
#[test]
fn engine_cross_check_never_fires() {
    let live = Live::start();
    let rec = recorder();
    live.rt.block_on(async {
        let app = &live.app;
        let input: RulesetInput = serde_json::from_value(serde_json::json!({
            "effective_from": "2026-01-01",
            "programs": [
                {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
                 "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}, "tekun": {"ratio_bp": 9999}}},
                {"id": "charity", "name": "Charity", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
                 "categories": {"dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000}, "tekun": {"ratio_bp": 3333}}}
            ]
        }))
        .unwrap();
        let version = app.store.publish_ruleset(&input, "2026-11-30T08:00:00.000+08:00").await.unwrap();
        app.rules.refresh(&app.store).await.unwrap();
        let card = |id: &str, category: &str| Cardholder {
            card_id: id.into(),
            category: category.into(),
            valid_from: ymd(2026, 1, 1),
            valid_until: ymd(2026, 12, 31),
            status: CardStatus::Active,
            tags: vec![],
        };
        let cards = vec![card("CX1", "dibao"), card("CX2", "tekun")];
        app.store.put_cardholders(&cards).await.unwrap();
        let settled_before = rec.get("settlegate_settlements_total");
        let req = |hsid: &str, card: &str, amounts: Amounts, basic: i64, critical: i64| SettleRequest {
            hospital_settlement_id: hsid.into(),
            card_id: card.into(),
            visit: Visit { visit_type: VisitType::Inpatient, date: ymd(2026, 11, 20) },
            amounts,
            insurance: Insurance { basic_fen: basic, critical_illness_fen: critical, other_fen: 0 },
        };
        let worked = req(
            "X-1",
            "CX1",
            Amounts {
                total_fen: 2_000_000,
                in_scope_fen: 1_799_999,
                pre_self_pay_fen: 30_001,
                over_limit_fen: 20_000,
                self_pay_fen: 150_000,
            },
            1_203_999,
            94_900,
        );
        let top = req(
            "X-2",
            "CX2",
            Amounts {
                total_fen: MAX_FEN,
                in_scope_fen: MAX_FEN - 3,
                pre_self_pay_fen: 1,
                over_limit_fen: 1,
                self_pay_fen: 1,
            },
            0,
            0,
        );
        let mut counters = Counters::default();
        let rs = Ruleset {
            version,
            effective_from: input.effective_from,
            published_at: String::new(),
            programs: input.programs.clone(),
        };
        for (r, holder) in [(&worked, &cards[0]), (&top, &cards[1])] {
            let (s, created) = app.settle("H0001", r).await.unwrap();
            assert!(created);
            let draft = BillDraft { visit: r.visit, amounts: r.amounts, insurance: r.insurance };
            let e = counters.engine(&rs, holder, &draft);
            assert_eq!(s.payments, e.payments, "{}", r.hospital_settlement_id);
            assert_eq!((s.insurance_fen, s.relief_fen, s.patient_fen), (e.insurance_fen, e.relief_fen, e.patient_fen));
            counters.apply(&holder.card_id, 2026, &s.payments, 1);
        }
        // RULES.md's worked example, to the fen
        let (s, created) = app.settle("H0001", &worked).await.unwrap();
        assert!(!created);
        assert_eq!(
            s.payments.iter().map(|p| (p.paid_fen, p.capped_by)).collect::<Vec<_>>(),
            vec![(300_000, Some(CappedBy::AnnualCap)), (50_000, Some(CappedBy::PerVisitCap))]
        );
        assert_eq!((s.insurance_fen, s.relief_fen, s.patient_fen), (1_298_899, 350_000, 351_101));
        // 2^53 - 1 - 3 at 99.99 %: 9006298534815514 (half up), then 33.33 % of what is left
        let (s, _) = app.settle("H0001", &top).await.unwrap();
        assert_eq!(s.payments[0].paid_fen, pct(MAX_FEN - 3, 9_999));
        assert_eq!(s.payments[0].paid_fen, 9_006_298_534_815_514);
        assert!(
            rec.get("settlegate_settlements_total") >= settled_before + 2,
            "the recorder must see the gateway's counters"
        );
    });
    assert_eq!(rec.get(MISMATCH), 0, "settle script and engine disagree");
}

/// API.md: idempotency ids are scoped to the hospital, and "a hospital sees and changes only its own settlements".
///
/// Regression: hospital ids and hospital_settlement_ids may both contain ':'; the store keys join them with '/',
/// which neither may contain, so hospital `H1:x` with id `y` and hospital `H1` with id `x:y` never share a record.
#[test]
fn ids_of_different_hospitals_never_collide() {
    let live = Live::start();
    let failures = live.rt.block_on(async {
        let app = &live.app;
        let input: RulesetInput = serde_json::from_value(serde_json::json!({
            "effective_from": "2026-01-01",
            "programs": [{"id": "ma", "name": "MA", "covers": ["in_scope"], "categories": {"dibao": {"ratio_bp": 9000}}}]
        }))
        .unwrap();
        app.store.publish_ruleset(&input, "2026-11-30T08:00:00.000+08:00").await.unwrap();
        app.rules.refresh(&app.store).await.unwrap();
        let holder = Cardholder {
            card_id: "CH1".into(),
            category: "dibao".into(),
            valid_from: ymd(2026, 1, 1),
            valid_until: ymd(2026, 12, 31),
            status: CardStatus::Active,
            tags: vec![],
        };
        app.store.put_cardholders(std::slice::from_ref(&holder)).await.unwrap();
        let req = |hsid: &str| SettleRequest {
            hospital_settlement_id: hsid.into(),
            card_id: "CH1".into(),
            visit: Visit { visit_type: VisitType::Outpatient, date: ymd(2026, 11, 2) },
            amounts: Amounts { total_fen: 1000, in_scope_fen: 1000, pre_self_pay_fen: 0, over_limit_fen: 0, self_pay_fen: 0 },
            insurance: Insurance::default(),
        };
        let mut failures = Vec::new();
        // settle: hospital H1's first use of its id `x:y` must create a settlement of its own
        assert!(app.settle("H1:x", &req("y")).await.unwrap().1);
        match app.settle("H1", &req("x:y")).await {
            Ok((_, true)) => {}
            Ok((s, false)) => failures.push(format!(
                "settle as H1 with id x:y replayed the settlement of hospital {:?} (settlement_id {:?})",
                s.hospital_id, s.settlement_id
            )),
            Err(e) => failures.push(format!("settle as H1 with id x:y refused: {e:?}")),
        }
        // reverse: hospital H2 cancelling its id `x:y` (never settled) must not touch H2:x's settlement `y`
        assert!(app.settle("H2:x", &req("y")).await.unwrap().1);
        let cancel = ReversalRequest {
            card_id: "CH1".into(),
            hospital_settlement_id: Some("x:y".into()),
            settlement_id: None,
            reason: None,
        };
        match app.reverse("H2", &cancel).await {
            Ok(Reversal::ReversedBeforeSettled(_)) => {}
            Ok(Reversal::Settlement(s)) => failures.push(format!(
                "reverse as H2 with id x:y reversed the settlement of hospital {:?} (status {:?})",
                s.hospital_id, s.status
            )),
            Err(e) => failures.push(format!("reverse as H2 with id x:y refused: {e:?}")),
        }
        failures
    });
    assert!(failures.is_empty(), "{failures:#?}");
}
