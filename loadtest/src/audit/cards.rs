//! Check family 3: per card and program, usage `paid_fen` / `deductible_met_fen` equal the sums over the card's
//! answered, not reversed settlements (the run owns its cards), and no card is above the ruleset's annual cap.

use std::collections::{BTreeMap, BTreeSet};

use super::check::Check;
use super::read::{bounded, read_json};
use super::tamper::Tamper;
use super::AuditInput;
use crate::client::JsonAnswer;
use crate::workload::{RecordState, SettlementRecord, Workload};

/// One program's usage on one card this year: as the gateway holds it, or as the answers add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    /// Fen the program paid for the card (`paid_fen`; the answers' `paid_fen`).
    paid_fen: u64,
    /// Fen of the program's deductible the card has met (`deductible_met_fen`; the answers'
    /// `deductible_applied_fen`).
    deductible_fen: u64,
}

/// The cards the audit reads: every card with an answered settlement, and the one `--tamper` changed.
pub(super) fn touched(settled: &[&SettlementRecord], w: &Workload, tamper: Option<&Tamper>) -> BTreeSet<u32> {
    let mut touched: BTreeSet<u32> = settled.iter().map(|r| r.card).collect();
    if let Some(t) = tamper {
        if let Some(i) = w.cards.index_of(&t.card_id) {
            touched.insert(i);
        }
    }
    touched
}

/// `card_usage_equals_answers` and `annual_caps_respected` over the `touched` cards.
pub(super) async fn check(input: &AuditInput, settled: &[&SettlementRecord], touched: &BTreeSet<u32>) -> [Check; 2] {
    let w = &input.workload;
    let scenario = &w.scenario;
    let concurrency = input.options.concurrency;
    let mut expected_usage: BTreeMap<u32, BTreeMap<String, Usage>> = BTreeMap::new();
    for r in settled.iter().filter(|r| r.state == RecordState::Settled) {
        let entry = expected_usage.entry(r.card).or_default();
        for p in &r.answer.as_ref().expect("answered").payments {
            let e = entry.entry(p.program.clone()).or_default();
            e.paid_fen += p.paid_fen;
            e.deductible_fen += p.deductible_applied_fen;
        }
    }
    let mut usage_check = Check::new("card_usage_equals_answers");
    let mut caps_check = Check::new("annual_caps_respected");
    let admin = input.admin.clone();
    let year = input.year.clone();
    let wc = w.clone();
    let card_reads = bounded(touched.iter().copied().collect(), concurrency, move |card: u32| {
        let admin = admin.clone();
        let path = format!("/admin/v1/cardholders/{}?year={year}", wc.cards.card_id(card));
        async move { (card, read_json(&admin, &path).await) }
    })
    .await;
    for (card, read) in card_reads {
        let card_id = w.cards.card_id(card);
        let category = w.cards.category(card).to_string();
        let usage = match read {
            Ok(JsonAnswer { status: 200, body: v }) => v,
            Ok(JsonAnswer { status, body: v }) => {
                usage_check.fail(format!("{card_id}: HTTP {status} {v}"));
                continue;
            }
            Err(e) => {
                usage_check.fail(e);
                continue;
            }
        };
        let mut got: BTreeMap<String, Usage> = BTreeMap::new();
        for u in usage["usage"].as_array().cloned().unwrap_or_default() {
            got.insert(
                u["program"].as_str().unwrap_or_default().to_string(),
                Usage {
                    paid_fen: u["paid_fen"].as_u64().unwrap_or(u64::MAX),
                    deductible_fen: u["deductible_met_fen"].as_u64().unwrap_or(u64::MAX),
                },
            );
        }
        let want = expected_usage.get(&card).cloned().unwrap_or_default();
        let programs: BTreeSet<&String> = got.keys().chain(want.keys()).collect();
        for program in programs {
            let g = got.get(program).copied().unwrap_or_default();
            let e = want.get(program).copied().unwrap_or_default();
            usage_check.expect(g == e, || {
                format!(
                    "{card_id} {program}: usage paid {} deductible_met {} != answers paid {} deductible {}",
                    g.paid_fen, g.deductible_fen, e.paid_fen, e.deductible_fen
                )
            });
            if let Some(cap) = scenario.rule(program, &category).and_then(|r| r.annual_cap_fen) {
                caps_check.expect(g.paid_fen <= cap, || {
                    format!("{card_id} ({category}) {program}: paid {} above annual cap {cap}", g.paid_fen)
                });
            }
        }
    }
    [usage_check, caps_check]
}
