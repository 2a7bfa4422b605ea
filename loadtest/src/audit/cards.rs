//! Check family 3: per card and program, usage `paid_fen` / `deductible_met_fen` equal the sums over the card's
//! answered, not reversed settlements (the run owns its cards), and no card is above the ruleset's annual cap.

use std::collections::{BTreeMap, BTreeSet};

use super::check::Check;
use super::read::{bounded, read_json};
use super::tamper::Tamper;
use super::AuditInput;
use crate::workload::{RecordState, SettlementRecord, Workload};

/// The cards the audit reads: every card with an answered settlement, and the one `--tamper` changed.
pub(super) fn touched(settled: &[SettlementRecord], w: &Workload, tamper: Option<&Tamper>) -> BTreeSet<u32> {
    let mut touched: BTreeSet<u32> = settled.iter().map(|r| r.card).collect();
    if let Some(t) = tamper {
        if let Some(i) = w.cards.index_of(&t.card_id) {
            touched.insert(i);
        }
    }
    touched
}

/// `card_usage_equals_answers` and `annual_caps_respected` over the `touched` cards.
pub(super) async fn check(input: &AuditInput, settled: &[SettlementRecord], touched: &BTreeSet<u32>) -> [Check; 2] {
    let w = &input.workload;
    let scenario = &w.scenario;
    let concurrency = input.options.concurrency;
    let mut expected_usage: BTreeMap<u32, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    for r in settled.iter().filter(|r| r.state == RecordState::Settled) {
        let entry = expected_usage.entry(r.card).or_default();
        for p in &r.answer.as_ref().expect("answered").payments {
            let e = entry.entry(p.program.clone()).or_insert((0, 0));
            e.0 += p.paid_fen;
            e.1 += p.deductible_applied_fen;
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
            Ok((200, v)) => v,
            Ok((status, v)) => {
                usage_check.fail(format!("{card_id}: HTTP {status} {v}"));
                continue;
            }
            Err(e) => {
                usage_check.fail(e);
                continue;
            }
        };
        let mut got: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for u in usage["usage"].as_array().cloned().unwrap_or_default() {
            got.insert(
                u["program"].as_str().unwrap_or_default().to_string(),
                (u["paid_fen"].as_u64().unwrap_or(u64::MAX), u["deductible_met_fen"].as_u64().unwrap_or(u64::MAX)),
            );
        }
        let want = expected_usage.get(&card).cloned().unwrap_or_default();
        let programs: BTreeSet<&String> = got.keys().chain(want.keys()).collect();
        for program in programs {
            let g = got.get(program).copied().unwrap_or((0, 0));
            let e = want.get(program).copied().unwrap_or((0, 0));
            usage_check.expect(g == e, || {
                format!(
                    "{card_id} {program}: usage paid {} deductible_met {} != answers paid {} deductible {}",
                    g.0, g.1, e.0, e.1
                )
            });
            if let Some(cap) = scenario.rule(program, &category).and_then(|r| r.annual_cap_fen) {
                caps_check.expect(g.0 <= cap, || {
                    format!("{card_id} ({category}) {program}: paid {} above annual cap {cap}", g.0)
                });
            }
        }
    }
    [usage_check, caps_check]
}
