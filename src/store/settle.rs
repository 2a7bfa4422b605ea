//! Settle and quote: `scripts/settle.lua` checks the id, the card and its eligibility, splits the bill and records
//! the settlement in one atomic script call (one round trip). Concurrent settlements of one card are serialised by
//! Redis itself, so a hot card never causes retries.

use chrono::Datelike;

use super::codec::{pairs, parse_payments, parse_reads, parse_settlement, parse_tags, ProgramReads};
use super::error::{StoreError, StoreResult};
use super::keys::{self, SettlementRef};
use super::Store;
use crate::domain::bill::{Bill, Operator};
use crate::domain::card::Ineligible;
use crate::domain::rules::Ruleset;
use crate::domain::settlement::{Settlement, SettlementStatus};

/// Whether the settle script records a settlement or only computes one.
#[derive(Debug, Clone, Copy)]
pub enum SettleMode<'a> {
    /// Record it under the hospital's own id (the idempotency key, scoped to the hospital).
    Settle {
        /// The calling hospital (certificate CN).
        hospital_id: &'a str,
        /// The hospital's id of this settlement.
        hospital_settlement_id: &'a str,
        /// When it is settled (RFC 3339, local time).
        settled_at: &'a str,
        /// The local day it counts on for reconciliation (`YYYY-MM-DD`).
        settled_day: &'a str,
    },
    /// Compute what a settlement would be now; write nothing.
    Quote,
}

impl SettleMode<'_> {
    fn op(&self) -> &'static str {
        match self {
            SettleMode::Settle { .. } => "settle",
            SettleMode::Quote => "quote",
        }
    }
}

/// The ruleset in force for the visit, with its settle script for the visit type.
#[derive(Clone, Copy)]
pub struct RulesInForce<'a> {
    /// The ruleset the settlement records (its version).
    pub ruleset: &'a Ruleset,
    /// `scripts/settle.lua` after the prelude of the programs serving the visit type (`store::program_code`).
    pub script: &'a redis::Script,
}

impl std::fmt::Debug for RulesInForce<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesInForce")
            .field("version", &self.ruleset.version)
            .field("script", &self.script.get_hash())
            .finish()
    }
}

/// Everything the settle script needs besides the keys.
#[derive(Debug, Clone, Copy)]
pub struct SettleCall<'a> {
    /// The validated bill: card, visit, amounts, insurance (the residual and canonical form derive from it).
    pub bill: Bill<'a>,
    /// `None` = no ruleset in force on the visit date (the script still checks the id and the card first).
    pub rules: Option<RulesInForce<'a>>,
    /// Record or only compute.
    pub mode: SettleMode<'a>,
    /// Who is at the counter (recorded, echoed; not part of the canonical request).
    pub operator: Option<&'a Operator>,
}

/// What the settle script decided.
#[derive(Debug)]
pub enum SettleOutcome {
    /// Applied now (or, for a quote, computed). `reads` is what the script read, for the engine cross-check.
    Split {
        settlement: Settlement,
        reads: ScriptReads,
    },
    /// The same request was settled before: the settlement as it stands now.
    Replayed(Settlement),
    IdempotencyConflict,
    AlreadyReversed,
    /// Another standing settlement holds the request's `insurance.settlement_ref`.
    InsuranceRefReused,
    CardNotFound,
    NotEligible(Ineligible),
    NoRulesInForce,
    /// A new settlement whose visit date is not after the archived days: the earliest visit date accepted
    /// (docs/API.md "Retention").
    VisitArchived {
        visit_floor: String,
    },
    /// A ledger counter is so large (> 2^62 fen) that recording could overflow: refused, nothing written.
    CounterLimit,
}

/// What the settle script read before splitting: the card's tags and, per covering program in order, its counters.
/// The gateway re-runs the pure engine on these and must get the same split.
#[derive(Debug, Clone, Default)]
pub struct ScriptReads {
    /// The card's tags (they decide which programs cover it).
    pub card_tags: Vec<String>,
    /// Per covering program, in ruleset order: the counters before this settlement.
    pub programs: Vec<ProgramReads>,
}

impl Store {
    /// Settles (or, in [`SettleMode::Quote`], only computes) one bill in one atomic script call.
    pub async fn settle(&self, call: &SettleCall<'_>) -> StoreResult<SettleOutcome> {
        let op = call.mode.op();
        let bill = &call.bill;
        let version = call.rules.map(|r| r.ruleset.version).unwrap_or(0);
        let mut inv = call.rules.map_or(&self.settle_script, |r| r.script).prepare_invoke();
        inv.key(keys::card(bill.card_id)).key(keys::usage(bill.card_id)).key(keys::PROGRAM_PAID);
        // ARGV, named at the top of settle.lua (the card, visit date, amounts and ref it reads from the request)
        inv.arg(op).arg(bill.canonical()).arg(version);
        let settlement_id = match call.mode {
            SettleMode::Settle { hospital_id, hospital_settlement_id: hsid, settled_at, settled_day, .. } => {
                let id = self.ids().await?.encode(&SettlementRef::new(bill.card_id, hospital_id, hsid));
                inv.key(keys::settlement(bill.card_id, hospital_id, hsid))
                    .key(keys::claim(hospital_id, hsid))
                    .key(keys::recon_events(settled_day, hospital_id))
                    .key(keys::recon_hospitals(settled_day))
                    .key(keys::EVENTS)
                    .key(keys::history(bill.card_id, bill.visit.date.year()));
                inv.arg(hospital_id).arg(hsid).arg(settled_at).arg(&id);
                Some(id)
            }
            SettleMode::Quote => {
                inv.arg("").arg("").arg("").arg("");
                None
            }
        };
        if let Some(r) = bill.insurance.settlement_ref.as_deref() {
            inv.key(keys::insurance_ref(r));
        }
        let operator_name = call.operator.and_then(|o| o.name.as_deref());
        inv.arg(call.operator.map_or("", |o| o.id.as_str())).arg(operator_name.unwrap_or(""));
        let mut conn = self.conn(op)?;
        let reply: redis::Value = if matches!(call.mode, SettleMode::Settle { .. }) {
            self.run_write(op, conn, inv).await?
        } else {
            self.call(op, false, async move { inv.invoke_async(&mut conn).await }).await?
        };
        let corrupt = |e: String| StoreError::corrupt(op, e);
        match reply {
            // a split: one string of '|'-separated fields (settle.lua says why)
            redis::Value::BulkString(bytes) => {
                let text = String::from_utf8(bytes).map_err(|e| corrupt(format!("reply: {e}")))?;
                let fields: Vec<&str> = text.split('|').collect();
                decode_split(op, call, settlement_id, &fields)
            }
            other => {
                let reply: Vec<String> =
                    redis::FromRedisValue::from_redis_value(other).map_err(|e| corrupt(format!("reply: {e}")))?;
                decode_reply(op, &reply)
            }
        }
    }
}

/// The settle script's split: `"settled"|"quote"`, reads, tags, category, insurance, relief, patient, payments.
fn decode_split(
    op: &'static str,
    call: &SettleCall<'_>,
    settlement_id: Option<String>,
    fields: &[&str],
) -> StoreResult<SettleOutcome> {
    let corrupt = |e: String| StoreError::corrupt(op, e);
    Ok(match fields {
        [tag @ ("settled" | "quote"), reads, tags, category, insurance_fen, relief_fen, patient_fen, payments] => {
            let tag = *tag;
            let int = |s: &str| s.parse::<i64>().map_err(|e| corrupt(format!("{s:?}: {e}")));
            let reads = ScriptReads { programs: parse_reads(reads).map_err(corrupt)?, card_tags: parse_tags(tags) };
            let recorded = match call.mode {
                SettleMode::Settle { hospital_id, hospital_settlement_id, settled_at, .. } if tag == "settled" => {
                    Some((hospital_id, hospital_settlement_id, settled_at))
                }
                SettleMode::Quote if tag == "quote" => None,
                _ => return Err(corrupt(format!("reply {tag:?} to a {op}"))),
            };
            let bill = &call.bill;
            let settlement = Settlement {
                settlement_id,
                hospital_settlement_id: recorded.map(|r| r.1.to_string()),
                hospital_id: recorded.map(|r| r.0.to_string()),
                status: if recorded.is_some() { SettlementStatus::Settled } else { SettlementStatus::Quote },
                card_id: bill.card_id.to_string(),
                category: category.to_string(),
                visit: bill.visit,
                amounts: bill.amounts,
                insurance: bill.insurance.clone(),
                ruleset_version: call.rules.map(|r| r.ruleset.version).unwrap_or(0),
                insurance_fen: int(insurance_fen)?,
                payments: parse_payments(payments).map_err(corrupt)?,
                relief_fen: int(relief_fen)?,
                patient_fen: int(patient_fen)?,
                settled_at: recorded.map(|r| r.2.to_string()),
                reversed_at: None,
                operator: call.operator.cloned(),
                reversed_by: None,
                reason: None,
            };
            if !settlement.check_invariants() {
                return Err(corrupt(format!("settlement breaks the invariants: {}", settlement.amounts_text())));
            }
            SettleOutcome::Split { settlement, reads }
        }
        _ => return Err(corrupt(format!("split reply of {} fields: {:?}", fields.len(), fields.first()))),
    })
}

/// The settle script's other replies: `{"replay", record…}` or a refusal tag (with its detail).
fn decode_reply(op: &'static str, reply: &[String]) -> StoreResult<SettleOutcome> {
    let corrupt = |e: String| StoreError::corrupt(op, e);
    let Some(tag) = reply.first() else {
        return Err(corrupt("empty reply".into()));
    };
    Ok(match tag.as_str() {
        "replay" => SettleOutcome::Replayed(parse_settlement(&pairs(&reply[1..])).map_err(corrupt)?),
        "conflict" => SettleOutcome::IdempotencyConflict,
        "already_reversed" => SettleOutcome::AlreadyReversed,
        "insurance_ref_reused" => SettleOutcome::InsuranceRefReused,
        "card_not_found" => SettleOutcome::CardNotFound,
        "no_rules_in_force" => SettleOutcome::NoRulesInForce,
        "counter_limit" => SettleOutcome::CounterLimit,
        "visit_archived" => SettleOutcome::VisitArchived {
            visit_floor: reply.get(1).cloned().ok_or_else(|| corrupt("visit_archived without its floor".into()))?,
        },
        "not_eligible" => SettleOutcome::NotEligible(match reply.get(1).map(String::as_str) {
            Some("suspended") => Ineligible::Suspended,
            Some("not_yet_valid") => Ineligible::NotYetValid,
            Some("expired") => Ineligible::Expired,
            other => return Err(corrupt(format!("unknown ineligibility {other:?}"))),
        }),
        other => return Err(corrupt(format!("unknown reply {other:?}"))),
    })
}
