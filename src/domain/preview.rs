//! A rule change tried before it is published (API.md "A rule change, tried before it is published"): the pure
//! replay of a period's standing settlements, twice, through [`split`] — the same engine the settle path is
//! cross-checked against and the tests use as their oracle. Nothing here reads Redis or the clock: the store layer
//! (`store::preview`) streams the settlements in, page by page, in settlement order, and [`Replay::finish`] gives
//! the answer.
//!
//! Both replays start from fresh counters (zero at the start of the period; a new calendar year inside the period
//! starts its own counters, as it does in production) and keep their own:
//!
//! * **baseline** — each settlement under the ruleset version it recorded, covered by exactly the programs its
//!   payment lines list (`split` lists a covering program also when it pays 0, so the lines *are* the covering set;
//!   the card is given the union of those programs' `require_tags`, which selects that set again: any program
//!   whose tags are a subset of it would have covered the real card too, and be listed);
//! * **draft** — each settlement whose visit date is on or after the draft's `effective_from` under the draft,
//!   covered by the card's tags as the caller supplies them (the store layer documents which: the card's current
//!   tags); an earlier visit under its recorded version, as in the baseline, so that the difference between the
//!   two is the draft's effect alone.
//!
//! Pools are at their budgets including contributions: for (program, year), the `annual_pool_fen` of the ruleset
//! used plus that year's net contributions (RULES.md step 6).
//!
//! Memory is bounded by cards × programs × years (the counters) and by the distinct categories, never by the
//! number of settlements.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::bill::Visit;
use super::card::{CardStatus, Cardholder};
use super::money::MAX_FEN;
use super::rules::{Program, Ruleset};
use super::split::{split, CappedBy, ProgramUsage, Split};

/// One standing settlement of the period, as the replay needs it.
#[derive(Debug, Clone, Copy)]
pub struct ReplayItem<'a> {
    /// The card the settlement was for: the key of its counters.
    pub card_id: &'a str,
    /// The card's category as recorded with the settlement.
    pub category: &'a str,
    /// Type and local date of the visit: the date picks the ruleset and the counters' year.
    pub visit: Visit,
    /// The bill's total.
    pub total_fen: i64,
    /// `[in_scope, pre_self_pay, over_limit, self_pay]` after insurance.
    pub residual_fen: [i64; 4],
    /// The ruleset version the settlement used.
    pub ruleset_version: u64,
    /// The programs of its payment lines, in ruleset order: the programs that covered the card.
    pub covered: &'a [String],
    /// The card's tags the draft's `require_tags` are checked against.
    pub draft_tags: &'a [String],
    /// The local day the settlement was made: a pool's `exhausted_on`.
    pub settled_day: NaiveDate,
}

/// What a replay is run against.
#[derive(Debug, Clone)]
pub struct ReplaySetup {
    /// First visit date of the period, inclusive.
    pub from: NaiveDate,
    /// Last visit date of the period, inclusive.
    pub to: NaiveDate,
    /// Every published ruleset (the baseline's versions).
    pub published: Vec<Ruleset>,
    /// The draft, as a ruleset (its version is not used).
    pub draft: Ruleset,
    /// Net contributions (donations less withdrawals) per (year, program), added to that year's pool budget.
    pub contributions_fen: BTreeMap<(i32, String), i64>,
}

/// Relief and patient share of one replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub relief_fen: i64,
    pub patient_fen: i64,
}

/// One program's payments in both replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgramRow {
    pub program: String,
    pub baseline_fen: i64,
    pub draft_fen: i64,
}

/// One category's relief in both replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryRow {
    pub category: String,
    pub baseline_fen: i64,
    pub draft_fen: i64,
}

/// Cards with at least one payment capped by `annual_cap`, per replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CardsAtCap {
    pub baseline: u64,
    pub draft: u64,
}

/// One pool of the draft in one calendar year of the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolRow {
    pub program: String,
    /// The calendar year of the budget (a period may span two).
    pub year: i32,
    /// The draft's `annual_pool_fen` plus the year's net contributions.
    pub budget_fen: i64,
    /// What the program paid that year in the draft replay (settlements before the draft's `effective_from`
    /// included: RULES.md step 8, the year total counts against a pool whichever version paid it).
    pub draft_paid_fen: i64,
    /// The day (of settling) of the first settlement under the draft after which the pool had nothing left.
    #[serde(serialize_with = "optional_date")]
    pub exhausted_on: Option<NaiveDate>,
}

fn optional_date<S: serde::Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.collect_str(d),
        None => s.serialize_none(),
    }
}

/// The answer of `POST /admin/v1/rulesets/preview`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewReport {
    /// Standing settlements replayed.
    pub settlements: u64,
    pub baseline: Totals,
    pub draft: Totals,
    /// The draft's programs in its order, then every other program that covered a settlement.
    pub by_program: Vec<ProgramRow>,
    /// By the category recorded with each settlement, in name order.
    pub by_category: Vec<CategoryRow>,
    pub cards_at_annual_cap: CardsAtCap,
    /// The draft's pools, per program (draft order) and year.
    pub pools: Vec<PoolRow>,
}

/// Why an item cannot be replayed: the store holds something the replay cannot trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("a settlement used ruleset version {0}, which is not published")]
    UnknownVersion(u64),
    #[error("a settlement's amounts are out of range")]
    Amounts,
}

/// The baseline's slot and the draft's in every two-sided figure.
const BASELINE: usize = 0;
const DRAFT: usize = 1;

/// FxHash (rustc's): the replay's maps are looked up several times per settlement with keys from the store, not
/// from the network, so a fast hash beats SipHash's flood resistance here.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A ruleset as replayed: pools raised by one year's contributions, and each program's index.
struct Book {
    ruleset: Ruleset,
    /// The index of `ruleset.programs[i]`.
    ids: Vec<u16>,
}

/// One replay's counters: per (card, program, year) and per (program, year).
#[derive(Default)]
struct Ledger {
    /// `(paid_fen, deductible_met_fen)` per (card index, program index, year).
    card: FxMap<(u32, u16, i32), (i64, i64)>,
    /// The program's year total, all cards.
    program: FxMap<(u16, i32), i64>,
}

/// The running replay: push the period's standing settlements in settlement order, then [`Replay::finish`].
pub struct Replay {
    from: NaiveDate,
    to: NaiveDate,
    draft_from: NaiveDate,
    /// Published rulesets by (version, year), pools raised by that year's contributions.
    published: HashMap<(u64, i32), Book>,
    /// The draft by year, pools raised likewise.
    draft: HashMap<i32, Book>,
    /// Program ids by index.
    program_names: Vec<String>,
    /// The draft's program ids, in its order.
    draft_programs: Vec<u16>,
    /// Card id → index (one entry per card seen).
    cards: FxMap<String, u32>,
    /// Per card index: bit 0 = capped by `annual_cap` in the baseline, bit 1 = in the draft.
    capped: Vec<u8>,
    ledgers: [Ledger; 2],
    settlements: u64,
    totals: [Totals; 2],
    /// Paid per program index, per replay; and whether it covered anything.
    by_program: Vec<([i64; 2], bool)>,
    by_category: BTreeMap<String, [i64; 2]>,
    /// Per draft pool (program index, year): budget, and the day it ran out.
    pools: BTreeMap<(usize, i32), (i64, Option<NaiveDate>)>,
    /// Scratch card handed to `split` (no allocation per item once warm).
    card: Cardholder,
    /// Scratch: the program index of each payment line of the last split, per replay.
    paid_ids: [Vec<u16>; 2],
}

/// `ruleset` with each pool's budget for `year`: `annual_pool_fen` plus the net contributions (not below 0).
fn with_contributions(ruleset: &Ruleset, year: i32, contributions: &BTreeMap<(i32, String), i64>) -> Ruleset {
    let mut r = ruleset.clone();
    for p in &mut r.programs {
        if let Some(pool) = p.annual_pool_fen {
            let extra = contributions.get(&(year, p.id.clone())).copied().unwrap_or(0);
            p.annual_pool_fen = Some(pool.saturating_add(extra).max(0));
        }
    }
    r
}

impl Replay {
    pub fn new(setup: &ReplaySetup) -> Replay {
        let years: Vec<i32> = (setup.from.year()..=setup.to.year()).collect();
        let mut programs = HashMap::new();
        let mut program_names = Vec::new();
        let mut intern = |id: &str| -> u16 {
            *programs.entry(id.to_string()).or_insert_with(|| {
                program_names.push(id.to_string());
                u16::try_from(program_names.len() - 1).expect("programs fit u16")
            })
        };
        let draft_programs: Vec<u16> = setup.draft.programs.iter().map(|p| intern(&p.id)).collect();
        for r in &setup.published {
            for p in &r.programs {
                intern(&p.id);
            }
        }
        let mut published = HashMap::new();
        let mut draft = HashMap::new();
        let mut pools = BTreeMap::new();
        let book = |ruleset: Ruleset| {
            let ids = ruleset.programs.iter().map(|p| programs[&p.id]).collect();
            Book { ruleset, ids }
        };
        for &year in &years {
            for r in &setup.published {
                published.insert((r.version, year), book(with_contributions(r, year, &setup.contributions_fen)));
            }
            let d = with_contributions(&setup.draft, year, &setup.contributions_fen);
            // the draft's pools of a year in which it is in force on some day of the period
            let last = NaiveDate::from_ymd_opt(year, 12, 31).map_or(setup.to, |end| end.min(setup.to));
            if setup.from.max(setup.draft.effective_from) <= last {
                for (i, p) in d.programs.iter().enumerate() {
                    if let Some(budget) = p.annual_pool_fen {
                        pools.insert((i, year), (budget, None));
                    }
                }
            }
            draft.insert(year, book(d));
        }
        let n = program_names.len();
        Replay {
            from: setup.from,
            to: setup.to,
            draft_from: setup.draft.effective_from,
            published,
            draft,
            program_names,
            draft_programs,
            cards: FxMap::default(),
            capped: Vec::new(),
            ledgers: [Ledger::default(), Ledger::default()],
            settlements: 0,
            totals: [Totals::default(); 2],
            by_program: vec![([0, 0], false); n],
            by_category: BTreeMap::new(),
            pools,
            card: Cardholder {
                card_id: String::new(),
                category: String::new(),
                valid_from: NaiveDate::MIN,
                valid_until: NaiveDate::MAX,
                status: CardStatus::Active,
                tags: Vec::new(),
                street: None,
                community: None,
            },
            paid_ids: [Vec::new(), Vec::new()],
        }
    }

    /// Whether a visit on `date` is in the period (the caller streams only those; a stray one is skipped).
    pub fn in_period(&self, date: NaiveDate) -> bool {
        (self.from..=self.to).contains(&date)
    }

    /// Settlements replayed so far.
    pub fn settlements(&self) -> u64 {
        self.settlements
    }

    /// Whether the draft's coverage depends on tags (else the caller need not look them up).
    pub fn draft_needs_tags(&self) -> bool {
        self.draft.values().next().is_some_and(|d| d.ruleset.programs.iter().any(|p| !p.required_tags().is_empty()))
    }

    /// Replays one standing settlement under both.
    pub fn push(&mut self, item: &ReplayItem<'_>) -> Result<(), ReplayError> {
        if !self.in_period(item.visit.date) {
            return Ok(());
        }
        let residual_ok = item.residual_fen.iter().all(|b| (0..=MAX_FEN).contains(b));
        if !residual_ok || !(0..=MAX_FEN).contains(&item.total_fen) || item.total_fen < item.residual_fen.iter().sum() {
            return Err(ReplayError::Amounts);
        }
        let year = item.visit.date.year();
        let recorded = self
            .published
            .get(&(item.ruleset_version, year))
            .ok_or(ReplayError::UnknownVersion(item.ruleset_version))?;
        let card_idx = match self.cards.get(item.card_id) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.cards.len()).expect("cards fit u32");
                self.cards.insert(item.card_id.to_string(), i);
                self.capped.push(0);
                i
            }
        };
        self.card.category.clear();
        self.card.category.push_str(item.category);

        // the baseline: the recorded version, the recorded coverage
        self.card.tags.clear();
        for p in recorded.ruleset.programs.iter().filter(|p| item.covered.contains(&p.id)) {
            self.card.tags.extend(p.required_tags().iter().cloned());
        }
        let [base_ids, draft_ids] = &mut self.paid_ids;
        let base = run(recorded, &self.card, item, &mut self.ledgers[BASELINE], card_idx, year, base_ids);
        // the draft from its effective date; before it, the recorded version again (on the draft's own counters)
        let under_draft = item.visit.date >= self.draft_from;
        let draft = if under_draft {
            self.card.tags.clear();
            self.card.tags.extend(item.draft_tags.iter().cloned());
            &self.draft[&year]
        } else {
            recorded
        };
        let drafted = run(draft, &self.card, item, &mut self.ledgers[DRAFT], card_idx, year, draft_ids);

        self.settlements += 1;
        let category = match self.by_category.get_mut(item.category) {
            Some(c) => c,
            None => self.by_category.entry(item.category.to_string()).or_default(),
        };
        for (k, s) in [(BASELINE, &base), (DRAFT, &drafted)] {
            self.totals[k].relief_fen += s.relief_fen;
            self.totals[k].patient_fen += s.patient_fen;
            category[k] += s.relief_fen;
            for (p, &id) in s.payments.iter().zip(&self.paid_ids[k]) {
                let row = &mut self.by_program[usize::from(id)];
                row.0[k] += p.paid_fen;
                row.1 = true;
                if p.capped_by == Some(CappedBy::AnnualCap) {
                    self.capped[card_idx as usize] |= 1 << k;
                }
            }
        }
        if under_draft {
            for (&(i, y), (budget, exhausted)) in &mut self.pools {
                if y != year || exhausted.is_some() {
                    continue;
                }
                let id = self.draft_programs[i];
                let covered = self.paid_ids[DRAFT].contains(&id);
                let paid = self.ledgers[DRAFT].program.get(&(id, year)).copied().unwrap_or(0);
                if covered && paid >= *budget {
                    *exhausted = Some(item.settled_day);
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> PreviewReport {
        let mut order: Vec<u16> = self.draft_programs.clone();
        order.extend((0..self.program_names.len()).map(|i| u16::try_from(i).expect("u16")));
        let mut seen = vec![false; self.program_names.len()];
        let mut by_program = Vec::new();
        for (n, i) in order.into_iter().enumerate() {
            let i = usize::from(i);
            let (fen, covered) = self.by_program[i];
            if seen[i] || (n >= self.draft_programs.len() && !covered) {
                continue;
            }
            seen[i] = true;
            by_program.push(ProgramRow {
                program: self.program_names[i].clone(),
                baseline_fen: fen[BASELINE],
                draft_fen: fen[DRAFT],
            });
        }
        let by_category = self
            .by_category
            .into_iter()
            .map(|(category, fen)| CategoryRow { category, baseline_fen: fen[BASELINE], draft_fen: fen[DRAFT] })
            .collect();
        let count = |bit: u8| self.capped.iter().filter(|c| *c & bit != 0).count() as u64;
        let pools = self
            .pools
            .into_iter()
            .map(|((i, year), (budget_fen, exhausted_on))| {
                let id = self.draft_programs[i];
                PoolRow {
                    program: self.program_names[usize::from(id)].clone(),
                    year,
                    budget_fen,
                    draft_paid_fen: self.ledgers[DRAFT].program.get(&(id, year)).copied().unwrap_or(0),
                    exhausted_on,
                }
            })
            .collect();
        PreviewReport {
            settlements: self.settlements,
            baseline: self.totals[BASELINE],
            draft: self.totals[DRAFT],
            by_program,
            by_category,
            cards_at_annual_cap: CardsAtCap { baseline: count(1), draft: count(2) },
            pools,
        }
    }
}

/// One split of `item` under `book` on `ledger`'s counters, which it then advances (RULES.md step 8). `paid_ids`
/// gets the program index of each payment line.
fn run(
    book: &Book,
    card: &Cardholder,
    item: &ReplayItem<'_>,
    ledger: &mut Ledger,
    card_idx: u32,
    year: i32,
    paid_ids: &mut Vec<u16>,
) -> Split {
    let ruleset = &book.ruleset;
    // `split` hands back the ruleset's own programs: their position gives their index, no string hashing
    let index = |p: &Program| ruleset.programs.iter().position(|q| std::ptr::eq(q, p)).map(|i| book.ids[i]);
    let usage = |p: &Program| {
        let id = index(p).expect("split passes the ruleset's own programs");
        let (paid_fen, deductible_met_fen) = ledger.card.get(&(card_idx, id, year)).copied().unwrap_or_default();
        let program_paid_fen = ledger.program.get(&(id, year)).copied().unwrap_or(0);
        // the contributions are already in the pools of `ruleset` (`with_contributions`)
        ProgramUsage { paid_fen, deductible_met_fen, program_paid_fen, pool_contributions_fen: 0 }
    };
    let s = split(ruleset, card, item.visit.visit_type, item.total_fen, item.residual_fen, usage);
    paid_ids.clear();
    // the payment lines are in ruleset order: one walk over the programs finds each line's program
    let mut at = 0;
    for p in &s.payments {
        while ruleset.programs[at].id != p.program {
            at += 1;
        }
        let id = book.ids[at];
        at += 1;
        paid_ids.push(id);
        let c = ledger.card.entry((card_idx, id, year)).or_default();
        c.0 += p.paid_fen;
        c.1 += p.deductible_applied_fen;
        *ledger.program.entry((id, year)).or_default() += p.paid_fen;
    }
    s
}

/// Replays `items` (in settlement order) from fresh counters: the whole preview of a period held in memory, for
/// tests and small periods; the store layer pushes page by page instead.
pub fn replay<'a>(
    setup: &ReplaySetup,
    items: impl IntoIterator<Item = ReplayItem<'a>>,
) -> Result<PreviewReport, ReplayError> {
    let mut r = Replay::new(setup);
    for item in items {
        r.push(&item)?;
    }
    Ok(r.finish())
}

#[cfg(test)]
#[path = "preview_tests.rs"]
mod tests;
