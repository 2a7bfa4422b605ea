//! Tests of the pure replay (`domain::preview`): worked cases, and a property test against an oracle that settles
//! each bill one after the other through `split` on plain string-keyed counters.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;

use super::*;
use crate::domain::bill::Visit;
use crate::domain::card::{CardStatus, Cardholder};
use crate::domain::rules::{Bucket, CategoryTerms, Program, Ruleset, VisitType};
use crate::domain::split::{split, ProgramUsage, Split};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn terms(ratio_bp: i64, annual_cap_fen: Option<i64>) -> CategoryTerms {
    CategoryTerms { ratio_bp, deductible_fen: None, annual_cap_fen, per_visit_cap_fen: None }
}

fn program(id: &str, cats: &[(&str, CategoryTerms)], pool: Option<i64>, tags: &[&str]) -> Program {
    Program {
        id: id.into(),
        name: id.into(),
        visit_types: None,
        covers: vec![Bucket::InScope, Bucket::SelfPay],
        require_tags: (!tags.is_empty()).then(|| tags.iter().map(|t| t.to_string()).collect()),
        annual_pool_fen: pool,
        categories: cats.iter().map(|(c, t)| (c.to_string(), t.clone())).collect(),
    }
}

fn ruleset(version: u64, from: &str, programs: Vec<Program>) -> Ruleset {
    Ruleset { version, effective_from: d(from), published_at: String::new(), programs }
}

/// One settlement as the test makes it: who, when, how much.
#[derive(Debug, Clone)]
struct Bill {
    card: String,
    category: String,
    tags: Vec<String>,
    date: NaiveDate,
    residual: [i64; 4],
}

/// A bill settled by the oracle: what the store would have recorded.
struct Settled {
    bill: Bill,
    version: u64,
    covered: Vec<String>,
    split: Split,
}

/// The oracle: settles bills one after the other through `split`, counters keyed by strings, pools raised by
/// the contributions by hand.
#[derive(Default)]
struct Oracle {
    usage: HashMap<(String, String, i32), (i64, i64)>,
    totals: HashMap<(String, i32), i64>,
}

impl Oracle {
    fn settle(&mut self, r: &Ruleset, b: &Bill, contributions: &BTreeMap<(i32, String), i64>) -> Split {
        let year = b.date.year();
        let mut r = r.clone();
        for p in &mut r.programs {
            if let Some(pool) = p.annual_pool_fen.as_mut() {
                *pool = (*pool + contributions.get(&(year, p.id.clone())).copied().unwrap_or(0)).max(0);
            }
        }
        let card = Cardholder {
            card_id: b.card.clone(),
            category: b.category.clone(),
            valid_from: NaiveDate::MIN,
            valid_until: NaiveDate::MAX,
            status: CardStatus::Active,
            tags: b.tags.clone(),
            street: None,
            community: None,
        };
        let usage = |p: &Program| {
            let (paid_fen, deductible_met_fen) =
                self.usage.get(&(b.card.clone(), p.id.clone(), year)).copied().unwrap_or_default();
            let program_paid_fen = self.totals.get(&(p.id.clone(), year)).copied().unwrap_or(0);
            ProgramUsage { paid_fen, deductible_met_fen, program_paid_fen, pool_contributions_fen: 0 }
        };
        let total: i64 = b.residual.iter().sum::<i64>() + 1000; // 1000 fen paid by insurance
        let s = split(&r, &card, VisitType::Outpatient, total, b.residual, usage);
        for p in &s.payments {
            let u = self.usage.entry((b.card.clone(), p.program.clone(), year)).or_default();
            u.0 += p.paid_fen;
            u.1 += p.deductible_applied_fen;
            *self.totals.entry((p.program.clone(), year)).or_default() += p.paid_fen;
        }
        s
    }
}

fn items(settled: &[Settled]) -> Vec<ReplayItem<'_>> {
    settled
        .iter()
        .map(|s| ReplayItem {
            card_id: &s.bill.card,
            category: &s.bill.category,
            visit: Visit { visit_type: VisitType::Outpatient, date: s.bill.date },
            total_fen: s.split.total_fen,
            residual_fen: s.bill.residual,
            ruleset_version: s.version,
            covered: &s.covered,
            draft_tags: &s.bill.tags,
            settled_day: s.bill.date,
        })
        .collect()
}

/// Settles `bills` in order under `published` (the one in force by date), as production would have.
fn settle_all(published: &[Ruleset], bills: &[Bill], contributions: &BTreeMap<(i32, String), i64>) -> Vec<Settled> {
    let mut oracle = Oracle::default();
    bills
        .iter()
        .map(|b| {
            let r = crate::domain::rules::in_force(published, b.date).unwrap();
            let split = oracle.settle(r, b, contributions);
            let covered = split.payments.iter().map(|p| p.program.clone()).collect();
            Settled { bill: b.clone(), version: r.version, covered, split }
        })
        .collect()
}

fn bill(card: &str, category: &str, tags: &[&str], date: &str, in_scope: i64) -> Bill {
    Bill {
        card: card.into(),
        category: category.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        date: d(date),
        residual: [in_scope, 0, 0, 500],
    }
}

fn published() -> Vec<Ruleset> {
    vec![ruleset(
        1,
        "2020-01-01",
        vec![
            program("assist", &[("dibao", terms(9000, Some(100_000))), ("tekun", terms(10000, None))], None, &[]),
            program("elderly", &[("dibao", terms(2000, None))], None, &["elderly_80"]),
            program("charity", &[("dibao", terms(3000, None)), ("tekun", terms(3000, None))], Some(40_000), &[]),
        ],
    )]
}

fn bills() -> Vec<Bill> {
    vec![
        bill("C1", "dibao", &["elderly_80"], "2026-03-01", 80_000),
        bill("C2", "tekun", &[], "2026-03-02", 50_000),
        bill("C1", "dibao", &["elderly_80"], "2026-04-01", 80_000),
        bill("C3", "dibao", &[], "2026-05-01", 250_000),
        bill("C2", "tekun", &[], "2026-06-01", 90_000),
    ]
}

fn setup(draft: Ruleset, contributions: BTreeMap<(i32, String), i64>) -> ReplaySetup {
    ReplaySetup {
        from: d("2026-01-01"),
        to: d("2026-12-31"),
        published: published(),
        draft,
        contributions_fen: contributions,
    }
}

#[test]
fn the_published_ruleset_as_draft_gives_the_recorded_figures_twice() {
    let settled = settle_all(&published(), &bills(), &BTreeMap::new());
    let mut draft = published()[0].clone();
    draft.version = 2;
    let report = replay(&setup(draft, BTreeMap::new()), items(&settled)).unwrap();
    let relief: i64 = settled.iter().map(|s| s.split.relief_fen).sum();
    let patient: i64 = settled.iter().map(|s| s.split.patient_fen).sum();
    assert_eq!(report.settlements, 5);
    assert_eq!(report.baseline, Totals { relief_fen: relief, patient_fen: patient });
    assert_eq!(report.draft, report.baseline);
    assert!(report.by_program.iter().all(|r| r.baseline_fen == r.draft_fen), "{:?}", report.by_program);
    assert_eq!(
        report.by_program.iter().map(|r| r.program.as_str()).collect::<Vec<_>>(),
        ["assist", "elderly", "charity"]
    );
    // C1 reaches the assistance cap on its second visit, C3 on its first; tekun has no cap
    assert_eq!(report.cards_at_annual_cap, CardsAtCap { baseline: 2, draft: 2 });
    let charity = &report.pools[0];
    assert_eq!((charity.program.as_str(), charity.year, charity.budget_fen), ("charity", 2026, 40_000));
    assert_eq!(charity.draft_paid_fen, 40_000, "the pool runs dry: {report:?}");
    assert_eq!(charity.exhausted_on, Some(d("2026-05-01")), "on C3's visit");
    assert_eq!(report.by_category.iter().map(|c| c.category.as_str()).collect::<Vec<_>>(), ["dibao", "tekun"]);
}

#[test]
fn a_changed_ratio_cap_and_pool_match_the_oracle_and_contributions_raise_the_pool() {
    let contributions = BTreeMap::from([((2026, "charity".to_string()), 40_000)]);
    let settled = settle_all(&published(), &bills(), &contributions);
    let mut draft = published()[0].clone();
    draft.version = 2;
    draft.programs[0].categories.insert("dibao".into(), terms(7000, Some(150_000)));
    draft.programs[2].annual_pool_fen = Some(10_000);
    let report = replay(&setup(draft.clone(), contributions.clone()), items(&settled)).unwrap();
    // independently: settle the same bills under the draft alone
    let expected = settle_all(&[draft], &bills(), &contributions);
    let relief: i64 = expected.iter().map(|s| s.split.relief_fen).sum();
    assert_eq!(report.draft.relief_fen, relief);
    assert_eq!(report.baseline.relief_fen, settled.iter().map(|s| s.split.relief_fen).sum::<i64>());
    let charity_paid: i64 =
        expected.iter().flat_map(|s| &s.split.payments).filter(|p| p.program == "charity").map(|p| p.paid_fen).sum();
    let pool = &report.pools[0];
    assert_eq!((pool.budget_fen, pool.draft_paid_fen), (50_000, charity_paid));
    assert_eq!(report.cards_at_annual_cap.draft, 1, "only C3 reaches 150 000 under the draft");
}

#[test]
fn a_year_boundary_starts_fresh_counters_and_the_draft_applies_from_its_date() {
    let bills = vec![
        bill("C3", "dibao", &[], "2025-12-30", 200_000), // capped in 2025
        bill("C3", "dibao", &[], "2026-01-02", 200_000), // capped again: a new year
    ];
    let settled = settle_all(&published(), &bills, &BTreeMap::new());
    let mut draft = published()[0].clone();
    draft.version = 2;
    draft.effective_from = d("2026-01-01");
    draft.programs[0].categories.insert("dibao".into(), terms(5000, None));
    let setup = ReplaySetup { from: d("2025-12-01"), to: d("2026-01-31"), ..setup(draft, BTreeMap::new()) };
    let report = replay(&setup, items(&settled)).unwrap();
    let assist = &report.by_program[0];
    assert_eq!(assist.baseline_fen, 200_000, "100 000 in each year");
    // the 2025 visit keeps version 1 (100 000); the 2026 one: 50 % of 200 500, no cap
    assert_eq!(assist.draft_fen, 200_250);
    assert_eq!(report.cards_at_annual_cap, CardsAtCap { baseline: 1, draft: 1 });
    // the draft's pool rows: only 2026, the only year it is in force in
    assert_eq!(report.pools.iter().map(|p| p.year).collect::<Vec<_>>(), [2026]);
}

#[test]
fn draft_coverage_follows_the_tags_given_and_baseline_the_recorded_lines() {
    let settled = settle_all(&published(), &bills()[..1], &BTreeMap::new());
    let mut item = items(&settled)[0];
    let no_tags: Vec<String> = Vec::new();
    item.draft_tags = &no_tags; // the card lost its tag since
    let mut draft = published()[0].clone();
    draft.version = 2;
    let report = replay(&setup(draft, BTreeMap::new()), [item]).unwrap();
    let elderly = report.by_program.iter().find(|r| r.program == "elderly").unwrap();
    assert!(elderly.baseline_fen > 0);
    assert_eq!(elderly.draft_fen, 0);
}

#[test]
fn outside_the_period_is_skipped_and_corrupt_items_refused() {
    let settled = settle_all(&published(), &bills(), &BTreeMap::new());
    let mut draft = published()[0].clone();
    draft.version = 2;
    let narrow = ReplaySetup { from: d("2026-04-01"), to: d("2026-05-31"), ..setup(draft, BTreeMap::new()) };
    assert_eq!(replay(&narrow, items(&settled)).unwrap().settlements, 2);
    let mut bad = items(&settled)[0];
    bad.ruleset_version = 9;
    assert_eq!(replay(&narrow, [bad]).map(|r| r.settlements), Ok(0), "outside: never looked at");
    bad.visit.date = d("2026-04-02");
    assert_eq!(replay(&narrow, [bad]), Err(ReplayError::UnknownVersion(9)));
    let mut negative = items(&settled)[2];
    negative.residual_fen[0] = -1;
    assert_eq!(replay(&narrow, [negative]), Err(ReplayError::Amounts));
}

/// Random bills on a few cards over two years, a random draft: the baseline equals what was recorded, and the
/// draft equals the oracle's settling of the same bills under the draft.
fn arb_bill() -> impl Strategy<Value = Bill> {
    let cards = prop::sample::select(vec![("C1", "dibao"), ("C2", "tekun"), ("C3", "dibao"), ("C4", "low_income")]);
    (cards, any::<bool>(), 0u32..500, 0i64..300_000, 0i64..20_000).prop_map(
        |((card, cat), elderly, day, scope, own)| Bill {
            card: card.into(),
            category: cat.into(),
            tags: if elderly { vec!["elderly_80".into()] } else { vec![] },
            date: d("2025-10-01") + chrono::Days::new(u64::from(day)),
            residual: [scope, 0, 0, own],
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn replay_agrees_with_the_oracle(
        bills in prop::collection::vec(arb_bill(), 0..40),
        ratio in 0i64..=10000,
        cap in prop::option::of(0i64..300_000),
        pool in prop::option::of(0i64..200_000),
        contribution in -50_000i64..50_000,
    ) {
        // the bills in settlement order are not sorted by visit date
        let contributions = BTreeMap::from([((2026, "charity".to_string()), contribution)]);
        let settled = settle_all(&published(), &bills, &contributions);
        let mut draft = published()[0].clone();
        draft.version = 2;
        draft.effective_from = d("2020-01-01");
        draft.programs[0].categories.insert("dibao".into(), terms(ratio, cap));
        draft.programs[2].annual_pool_fen = pool;
        let setup = ReplaySetup {
            from: d("2025-10-01"), to: d("2027-02-12"), published: published(), draft: draft.clone(),
            contributions_fen: contributions.clone(),
        };
        let report = replay(&setup, items(&settled)).unwrap();
        prop_assert_eq!(report.settlements, bills.len() as u64);
        prop_assert_eq!(report.baseline.relief_fen, settled.iter().map(|s| s.split.relief_fen).sum::<i64>());
        prop_assert_eq!(report.baseline.patient_fen, settled.iter().map(|s| s.split.patient_fen).sum::<i64>());
        let expected = settle_all(&[draft], &bills, &contributions);
        prop_assert_eq!(report.draft.relief_fen, expected.iter().map(|s| s.split.relief_fen).sum::<i64>());
        prop_assert_eq!(report.draft.patient_fen, expected.iter().map(|s| s.split.patient_fen).sum::<i64>());
        for row in &report.by_program {
            let paid = |s: &[Settled]| -> i64 {
                s.iter().flat_map(|s| &s.split.payments).filter(|p| p.program == row.program).map(|p| p.paid_fen).sum()
            };
            prop_assert_eq!(row.baseline_fen, paid(&settled));
            prop_assert_eq!(row.draft_fen, paid(&expected));
        }
        let capped = |s: &[Settled]| {
            let mut cards: Vec<&str> = s.iter()
                .filter(|s| s.split.payments.iter().any(|p| p.capped_by == Some(CappedBy::AnnualCap)))
                .map(|s| s.bill.card.as_str()).collect();
            cards.sort_unstable();
            cards.dedup();
            cards.len() as u64
        };
        prop_assert_eq!(report.cards_at_annual_cap, CardsAtCap { baseline: capped(&settled), draft: capped(&expected) });
    }
}
