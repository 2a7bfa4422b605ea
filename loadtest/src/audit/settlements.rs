//! Check family 2: the answers add up and used the published ruleset; every answered settlement exists once
//! with the answered amounts (`GET /v1/settlements/{id}` as the same hospital); reversed ones are reversed, the
//! others are not; a sample is also found by the hospital's own id.

use std::collections::HashSet;
use std::sync::Arc;

use super::check::Check;
use super::read::{bounded, read_json};
use crate::client::JsonAnswer;
use crate::workload::{RecordState, RefSent, SettlementAnswer, SettlementRecord, Workload};

/// The answers themselves: `answers_add_up`, `answers_used_the_published_ruleset`, `settlement_ids_unique`.
pub(super) fn check_answers(settled: &[&SettlementRecord], ruleset_version: u64) -> [Check; 3] {
    let mut invariant = Check::new("answers_add_up");
    let mut version = Check::new("answers_used_the_published_ruleset");
    let mut unique = Check::new("settlement_ids_unique");
    let mut ids = HashSet::new();
    for r in settled {
        let a = r.answer.as_ref().expect("answered");
        invariant.expect(a.invariant_holds(), || {
            format!(
                "{}: insurance {} + relief {} + patient {} != total {} or payments != relief",
                a.settlement_id, a.insurance_fen, a.relief_fen, a.patient_fen, a.total_fen
            )
        });
        version.expect(a.ruleset_version == ruleset_version, || {
            format!("{}: ruleset_version {} (published {})", a.settlement_id, a.ruleset_version, ruleset_version)
        });
        unique.expect(ids.insert(a.settlement_id.clone()), || {
            format!("settlement_id {} answered for two ids", a.settlement_id)
        });
    }
    [invariant, version, unique]
}

/// `insurance_ref_held_once`: no settlement was applied with a ref another standing settlement held. The run's
/// own refs are unique by construction; a `ref_reuse` request only counts when it was applied (answered 201, or
/// found after an unknown outcome), and then only if its holder had been reversed before it settled.
/// `records` is the whole resolved ledger (a reuse names its holder by ledger index).
pub(super) fn check_refs(records: &[SettlementRecord]) -> Check {
    let mut check = Check::new("insurance_ref_held_once");
    let applied = |r: &SettlementRecord| matches!(r.state, RecordState::Settled | RecordState::Reversed);
    for r in records.iter().filter(|r| applied(r)) {
        match r.insurance_ref {
            RefSent::None => {}
            RefSent::Own => check.ok(),
            RefSent::Holder(i) => {
                let Some(holder) = records.get(i as usize) else {
                    check.fail(format!("{}: reused the ref of record {i}, which is not in the ledger", r.hsid));
                    continue;
                };
                let settled_at = r.answer.as_ref().and_then(|a| a.settled_at.as_deref());
                let freed_before = holder.state == RecordState::Reversed
                    && matches!((holder.reversed_at.as_deref(), settled_at), (Some(rev), Some(set)) if rev < set);
                check.expect(freed_before, || {
                    format!(
                        "{}: applied with the insurance ref of {} ({:?}, reversed_at {:?}), which stood",
                        r.hsid, holder.hsid, holder.state, holder.reversed_at
                    )
                });
            }
        }
    }
    check
}

/// The stored settlements: `settlements_exist_with_answered_amounts`, `reversed_settlements_are_reversed`,
/// `lookup_by_hospital_settlement_id`.
pub(super) async fn check_stored(settled: &[&SettlementRecord], w: &Arc<Workload>, concurrency: usize) -> [Check; 3] {
    let mut exists = Check::new("settlements_exist_with_answered_amounts");
    let mut reversed_check = Check::new("reversed_settlements_are_reversed");
    let mut by_hsid = Check::new("lookup_by_hospital_settlement_id");
    let items: Vec<(usize, SettlementRecord)> = settled.iter().map(|r| (*r).clone()).enumerate().collect();
    let wc = w.clone();
    let lookups = bounded(items, concurrency, move |(i, r): (usize, SettlementRecord)| {
        let w = wc.clone();
        async move {
            let hospital = w.hospitals[r.hospital].clone();
            let a = r.answer.as_ref().expect("answered");
            let by_id = read_json(&hospital, &format!("/v1/settlements/{}", a.settlement_id)).await;
            // A sample is also looked up by the hospital's own id ("did my settlement go through?").
            let by_hsid = if i % 10 == 0 {
                Some(
                    read_json(
                        &hospital,
                        &format!("/v1/settlements?card_id={}&hospital_settlement_id={}", a.card_id, r.hsid),
                    )
                    .await,
                )
            } else {
                None
            };
            (r, by_id, by_hsid)
        }
    })
    .await;
    for (r, by_id, by_hsid_answer) in lookups {
        let a = r.answer.as_ref().expect("answered");
        let want_status = if r.state == RecordState::Reversed { "reversed" } else { "settled" };
        match by_id {
            Ok(JsonAnswer { status: 200, body: v }) => match serde_json::from_value::<SettlementAnswer>(v.clone()) {
                Ok(found) => {
                    exists.expect(found.same_money(a), || {
                        format!(
                            "{}: stored {v} != answered {}",
                            a.settlement_id,
                            serde_json::to_string(a).unwrap_or_default()
                        )
                    });
                    let status_ok =
                        found.status == want_status && (want_status != "reversed" || found.reversed_at.is_some());
                    if r.state == RecordState::Reversed {
                        reversed_check.expect(status_ok, || {
                            format!(
                                "{}: status {} reversed_at {:?}, reversal was answered",
                                a.settlement_id, found.status, found.reversed_at
                            )
                        });
                    } else if !status_ok {
                        exists.fail(format!("{}: status {} but never reversed", a.settlement_id, found.status));
                    }
                }
                Err(e) => exists.fail(format!("{}: unreadable {v}: {e}", a.settlement_id)),
            },
            Ok(JsonAnswer { status, body: v }) => {
                exists.fail(format!("{} ({}): HTTP {status} {v}", a.settlement_id, r.hsid));
            }
            Err(e) => exists.fail(e),
        }
        if let Some(answer) = by_hsid_answer {
            match answer {
                Ok(JsonAnswer { status: 200, body: v }) => by_hsid
                    .expect(v["settlement_id"] == a.settlement_id.as_str(), || {
                        format!("{}: lookup by id gives {v}", r.hsid)
                    }),
                Ok(JsonAnswer { status, body: v }) => by_hsid.fail(format!("{}: HTTP {status} {v}", r.hsid)),
                Err(e) => by_hsid.fail(e),
            }
        }
    }
    [exists, reversed_check, by_hsid]
}
