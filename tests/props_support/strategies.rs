//! Proptest strategies: rulesets, cards, bills and counters of every size (amounts up to 2^53 − 1 fen).

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use proptest::sample::subsequence;
use settlegate::domain::bill::{Amounts, Bill, Insurance, Visit};
use settlegate::domain::card::{CardStatus, Cardholder};
use settlegate::domain::money::MAX_FEN;
use settlegate::domain::rules::{Bucket, CategoryTerms, Program, Ruleset, VisitType};
use settlegate::domain::split::ProgramUsage;

pub const CATEGORIES: [&str; 4] = ["tekun", "dibao", "low_income", "dibao_edge"];
/// Card categories: one more than the rulesets know ("temporary" is never covered).
pub const CARD_CATEGORIES: [&str; 5] = ["tekun", "dibao", "low_income", "dibao_edge", "temporary"];
pub const TAGS: [&str; 3] = ["elderly_80", "disabled", "child"];
pub const BUCKETS: [Bucket; 4] = [Bucket::InScope, Bucket::PreSelfPay, Bucket::OverLimit, Bucket::SelfPay];
pub const TERA: i64 = 1_000_000_000_000;

pub fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Amounts of every size: zero, small, up to 10^12, and up to 2^53 − 1 (with the edges themselves).
pub fn amount() -> BoxedStrategy<i64> {
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
pub fn big_amount() -> BoxedStrategy<i64> {
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
pub fn limit() -> BoxedStrategy<Option<i64>> {
    prop_oneof![
        4 => Just(None),
        3 => (0i64..=300_000).prop_map(Some),
        2 => (0i64..=2 * TERA).prop_map(Some),
        1 => amount().prop_map(Some),
    ]
    .boxed()
}

/// Limits for the "top of the range" runs: mostly absent, so payments stay near 2^53.
pub fn big_limit() -> BoxedStrategy<Option<i64>> {
    prop_oneof![6 => Just(None), 1 => big_amount().prop_map(Some), 1 => (0i64..=1_000).prop_map(Some)].boxed()
}

pub fn ratio_bp() -> BoxedStrategy<i64> {
    prop_oneof![Just(0i64), Just(1), Just(5_000), Just(9_999), Just(10_000), 0i64..=10_000].boxed()
}

pub fn big_ratio_bp() -> BoxedStrategy<i64> {
    prop_oneof![Just(9_999i64), Just(10_000), Just(3_333), 5_000i64..=10_000, 0i64..=10_000].boxed()
}

/// How rulesets are drawn: the limits, the ratios, and how many of the four categories a program serves.
#[derive(Clone, Copy)]
pub struct Profile {
    pub limit: fn() -> BoxedStrategy<Option<i64>>,
    pub ratio: fn() -> BoxedStrategy<i64>,
    pub min_categories: usize,
}

/// Every kind of ruleset.
pub const ANY: Profile = Profile { limit, ratio: ratio_bp, min_categories: 1 };
/// Rulesets that let payments reach the top of the range: mostly no limits, high ratios, every category served.
pub const BIG: Profile = Profile { limit: big_limit, ratio: big_ratio_bp, min_categories: 4 };

pub fn terms(pr: Profile) -> impl Strategy<Value = CategoryTerms> {
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
pub fn program(pr: Profile) -> impl Strategy<Value = Program> {
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
pub fn programs(pr: Profile) -> impl Strategy<Value = Vec<Program>> {
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

pub fn ruleset(pr: Profile) -> impl Strategy<Value = Ruleset> {
    programs(pr).prop_map(|programs| Ruleset {
        version: 1,
        effective_from: ymd(2024, 1, 1),
        published_at: String::new(),
        programs,
    })
}

pub fn date_between(from: NaiveDate, to: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    let days = u64::try_from((to - from).num_days()).expect("from <= to");
    (0..=days).prop_map(move |d| from + Days::new(d))
}

/// Visit dates: mostly 2026 up to "today" (2026-11-30 local), some in 2025, a few in 2024 (before any ruleset of
/// the Redis scenarios, so `no_rules_in_force`).
pub fn visit_date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        6 => date_between(ymd(2026, 1, 1), ymd(2026, 11, 30)),
        2 => date_between(ymd(2025, 1, 1), ymd(2025, 12, 31)),
        1 => date_between(ymd(2024, 7, 1), ymd(2024, 12, 31)),
    ]
}

pub fn visit_type() -> impl Strategy<Value = VisitType> {
    prop_oneof![Just(VisitType::Outpatient), Just(VisitType::Chronic), Just(VisitType::Inpatient)]
}

pub fn card() -> impl Strategy<Value = Cardholder> {
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
            street: None,
            community: None,
        })
}

pub fn cards() -> impl Strategy<Value = Vec<Cardholder>> {
    proptest::collection::vec(card(), 1..=4).prop_map(|mut cs| {
        for (i, c) in cs.iter_mut().enumerate() {
            c.card_id = format!("C{i}");
        }
        cs
    })
}

#[derive(Debug, Clone)]
pub struct BillDraft {
    pub visit: Visit,
    pub amounts: Amounts,
    pub insurance: Insurance,
}

impl BillDraft {
    pub fn bill<'a>(&'a self, card_id: &'a str) -> Bill<'a> {
        Bill { card_id, visit: self.visit, amounts: self.amounts, insurance: &self.insurance }
    }
}

/// A valid bill: four buckets (their sum at most 2^53 − 1), insurance ≤ in_scope split over three fields.
pub fn bill_with(amount: fn() -> BoxedStrategy<i64>, insured: u32) -> impl Strategy<Value = BillDraft> {
    (
        visit_type(),
        visit_date(),
        proptest::array::uniform4(amount()),
        (0u32..10).prop_map(move |x| if x < insured { (x % 2) + 1 } else { 0 }),
        any::<[u64; 3]>(),
    )
        .prop_map(|(visit_type, date, mut b, mode, seeds)| {
            let mut excess = b.iter().map(|&x| i128::from(x)).sum::<i128>() - i128::from(MAX_FEN);
            while excess > 0 {
                let i = (0..4).max_by_key(|&i| b[i]).unwrap();
                let cut = excess.min(i128::from(b[i]));
                b[i] -= i64::try_from(cut).unwrap();
                excess -= cut;
            }
            // A share in 0..=max (max >= 0) chosen by a seed.
            let up_to = |seed: u64, max: i64| i64::try_from(seed % (u64::try_from(max).unwrap() + 1)).unwrap();
            let in_scope = b[0];
            let insured = match mode {
                0 => 0,
                1 => in_scope,
                _ => up_to(seeds[0], in_scope),
            };
            let basic = up_to(seeds[1], insured);
            let critical = up_to(seeds[2], insured - basic);
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
                    settlement_ref: None,
                },
            }
        })
}

pub fn bill() -> impl Strategy<Value = BillDraft> {
    bill_with(amount, 6)
}

/// Counters a program's step may read: zero, small, or anything (also beyond every cap).
pub fn usage_value() -> BoxedStrategy<i64> {
    prop_oneof![3 => Just(0i64), 3 => 0i64..=1_000_000, 2 => amount()].boxed()
}

/// Counters for the six program ids `p0`..`p5` (index = the id's number).
pub fn usages() -> impl Strategy<Value = Vec<ProgramUsage>> {
    proptest::collection::vec(
        (usage_value(), usage_value(), usage_value()).prop_map(|(paid_fen, deductible_met_fen, program_paid_fen)| {
            ProgramUsage { paid_fen, deductible_met_fen, program_paid_fen, pool_contributions_fen: 0 }
        }),
        6,
    )
}

/// The usage of program `p<i>` in [`usages`].
pub fn usage_of(usages: &[ProgramUsage], program_id: &str) -> ProgramUsage {
    usages[program_id[1..].parse::<usize>().unwrap()]
}

pub fn normal_bill() -> BoxedStrategy<BillDraft> {
    bill().boxed()
}

/// Bills at the top of the range.
pub fn big_bill() -> BoxedStrategy<BillDraft> {
    bill_with(big_amount, 3).boxed()
}

/// One settlement of a [`Sequence`].
#[derive(Debug, Clone)]
pub struct Step {
    /// Index into the cards (modulo their number).
    pub card: usize,
    pub bill: BillDraft,
    /// Reverse it right away.
    pub undo: bool,
}

/// Settlements of several cards under one ruleset, with counters carried from one to the next.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub ruleset: Ruleset,
    pub cards: Vec<Cardholder>,
    pub steps: Vec<Step>,
    /// Sort keys: the order in which the remaining settlements are reversed at the end.
    pub undo_order: Vec<u64>,
}

pub fn sequence(pr: Profile) -> impl Strategy<Value = Sequence> {
    let step =
        (0usize..4, bill(), proptest::bool::weighted(0.2)).prop_map(|(card, bill, undo)| Step { card, bill, undo });
    (ruleset(pr), cards(), proptest::collection::vec(step, 1..=20), proptest::collection::vec(any::<u64>(), 20))
        .prop_map(|(ruleset, cards, steps, undo_order)| Sequence { ruleset, cards, steps, undo_order })
}
