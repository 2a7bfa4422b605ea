//! Check family 1: unknown outcomes (timeouts, broken connections, 504) resolved by lookup, as a billing system
//! would: every record whose outcome the hospital does not know becomes Settled, Reversed or NotApplied.

use std::sync::Arc;

use serde::Serialize;

use super::check::Check;
use super::read::{bounded, read_json};
use crate::client::JsonAnswer;
use crate::workload::{RecordState, SettlementAnswer, SettlementRecord, Workload};

/// How the unknown outcomes turned out (`audit.resolution` in report.json).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resolution {
    /// Settles whose outcome was unknown (timeout, broken connection, 504) or whose answer was unreadable.
    pub settle_unknown: u64,
    /// Of those, found settled by lookup: the gateway applied them.
    pub resolved_settled: u64,
    /// Of those, not found: never applied, so they count for nothing.
    pub resolved_not_applied: u64,
    /// Reversals whose outcome was unknown (or that were still in flight when the load ended).
    pub reverse_unknown: u64,
    /// Of those, found reversed.
    pub resolved_reversed: u64,
    /// Of those, found still settled.
    pub resolved_not_reversed: u64,
    /// Lookups that failed themselves: each fails `unknown_outcomes_resolved`.
    pub unresolved: u64,
}

/// How one unknown outcome turned out.
enum Resolved {
    Settled,
    NotApplied,
    Reversal,
    Problem(String),
}

/// Step 1: settle into Settled / Reversed / NotApplied every record whose outcome the hospital does not know.
pub(super) async fn resolve(
    records: Vec<SettlementRecord>,
    workload: &Arc<Workload>,
    concurrency: usize,
    resolution: &mut Resolution,
    check: &mut Check,
) -> Vec<SettlementRecord> {
    let w = workload.clone();
    let results = bounded(records, concurrency, move |mut r: SettlementRecord| {
        let w = w.clone();
        async move {
            let hospital = w.hospitals[r.hospital].clone();
            let card_id = w.cards.card_id(r.card);
            let needs_lookup = r.answer.is_none() || r.state == RecordState::SettleUnknown;
            let reversing = matches!(r.state, RecordState::ReverseUnknown | RecordState::Reversing);
            if !needs_lookup && !reversing {
                return (r, None::<Resolved>);
            }
            let path = match (&r.answer, needs_lookup) {
                (Some(a), false) => format!("/v1/settlements/{}", a.settlement_id),
                _ => format!("/v1/settlements?card_id={card_id}&hospital_settlement_id={}", r.hsid),
            };
            let note = match read_json(&hospital, &path).await {
                Ok(JsonAnswer { status: 200, body: v }) => match serde_json::from_value::<SettlementAnswer>(v) {
                    Ok(found) => {
                        r.state = if found.status == "reversed" { RecordState::Reversed } else { RecordState::Settled };
                        if r.state == RecordState::Reversed {
                            r.reversed_at = found.reversed_at.clone();
                        }
                        if r.answer.is_none() {
                            r.answer = Some(found);
                        }
                        Some(if reversing { Resolved::Reversal } else { Resolved::Settled })
                    }
                    Err(e) => Some(Resolved::Problem(format!("unreadable {path}: {e}"))),
                },
                Ok(JsonAnswer { status: 404, .. }) if needs_lookup => {
                    r.state = RecordState::NotApplied;
                    Some(Resolved::NotApplied)
                }
                Ok(JsonAnswer { status, body: v }) => Some(Resolved::Problem(format!("{path}: HTTP {status} {v}"))),
                Err(e) => Some(Resolved::Problem(e)),
            };
            (r, note)
        }
    })
    .await;
    let mut out = Vec::with_capacity(results.len());
    for (r, note) in results {
        match note {
            None => {}
            Some(Resolved::Settled) => {
                resolution.settle_unknown += 1;
                resolution.resolved_settled += 1;
                check.ok();
            }
            Some(Resolved::NotApplied) => {
                resolution.settle_unknown += 1;
                resolution.resolved_not_applied += 1;
                check.ok();
            }
            Some(Resolved::Reversal) => {
                resolution.reverse_unknown += 1;
                if r.state == RecordState::Reversed {
                    resolution.resolved_reversed += 1;
                } else {
                    resolution.resolved_not_reversed += 1;
                }
                check.ok();
            }
            Some(Resolved::Problem(problem)) => {
                resolution.unresolved += 1;
                check.fail(format!("{}: {problem}", r.hsid));
            }
        }
        out.push(r);
    }
    out
}
