//! Random scenarios for the settle and reverse scripts: rulesets, cards and a sequence of operations of two
//! hospitals (settles, retries, conflicts, reversals, cancellations, quotes, republished rulesets, card updates).

use proptest::prelude::*;
use settlegate::domain::card::Cardholder;
use settlegate::domain::rules::RulesetInput;

use super::strategies::{card, cards, date_between, programs, ymd, BillDraft, Profile};

/// The hospitals of a scenario (`Op`'s `hospital` indexes them).
pub const HOSPITALS: [&str; 2] = ["H0001", "H0002"];

#[derive(Debug, Clone)]
pub enum Op {
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
        ruleset: RulesetInput,
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
pub struct Scenario {
    /// The first is effective 2025-01-01 (before every 2025/2026 visit, after the 2024 ones); a second one, if
    /// any, later in 2025 or 2026. Program ids are shared between the two, as between versions of one program.
    pub rulesets: Vec<RulesetInput>,
    pub cards: Vec<Cardholder>,
    pub ops: Vec<Op>,
}

pub fn card_ref() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![9 => (0usize..4).prop_map(Some), 1 => Just(None)]
}

pub fn op(pr: Profile, bill: fn() -> BoxedStrategy<BillDraft>) -> impl Strategy<Value = Op> {
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
            .prop_map(|(effective_from, programs)| Op::Republish { ruleset: RulesetInput { effective_from, programs } }),
        1 => (0usize..4, card()).prop_map(|(card, holder)| Op::UpdateCard { card, holder }),
        1 => (card_ref(), bill()).prop_map(|(card, bill)| Op::Eligibility { card, bill }),
    ]
}

pub fn scenario(pr: Profile, bill: fn() -> BoxedStrategy<BillDraft>) -> impl Strategy<Value = Scenario> {
    (
        programs(pr),
        proptest::option::weighted(0.4, (date_between(ymd(2025, 1, 2), ymd(2026, 11, 30)), programs(pr))),
        cards(),
        proptest::collection::vec(op(pr, bill), 1..=24),
    )
        .prop_map(|(first, second, cards, ops)| {
            let mut rulesets = vec![RulesetInput { effective_from: ymd(2025, 1, 1), programs: first }];
            rulesets.extend(second.map(|(effective_from, programs)| RulesetInput { effective_from, programs }));
            Scenario { rulesets, cards, ops }
        })
}
