//! Reversal: `scripts/reverse.lua` undoes exactly what a settlement recorded (never recomputing with today's
//! rules), or records a tombstone for an id that was never settled so that a late original is refused.

use super::codec::{pairs, parse_settlement, parse_tombstone};
use super::error::{StoreError, StoreResult};
use super::keys::{self, SettlementRef};
use super::Store;
use crate::domain::bill::Operator;
use crate::domain::settlement::{Settlement, Tombstone};

/// What the reversal script did.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one value per request, moved once
pub enum ReverseOutcome {
    /// The settlement, now reversed; `changed` is false when it was reversed before.
    Reversed {
        settlement: Settlement,
        changed: bool,
    },
    /// A cancellation of an id never settled (now or before).
    Tombstone(Tombstone),
    NotFound,
    /// The id is held by a settlement of another card.
    Conflict,
}

/// One call of the reversal script: done, or the settlement's ref must be declared first.
#[allow(clippy::large_enum_variant)] // one value per request, moved once
enum ReverseStep {
    Done(ReverseOutcome),
    NeedRef(String),
}

/// One reversal, as the script takes it.
#[derive(Debug, Clone, Copy)]
pub struct ReverseCall<'a> {
    /// Where the settlement lives.
    pub at: &'a SettlementRef,
    /// Record a tombstone when no settlement is there (a reversal by `hospital_settlement_id`); a reversal by
    /// `settlement_id` of an unknown id is only "not found".
    pub tombstone_if_absent: bool,
    /// The hospital's reason, kept with the record (may be empty).
    pub reason: &'a str,
    /// When it is reversed (RFC 3339, local time).
    pub reversed_at: &'a str,
    /// The local day it counts on, negative, for reconciliation.
    pub reversed_day: &'a str,
    /// Who reversed it (recorded as `reversed_by`), if the request said.
    pub operator: Option<&'a Operator>,
}

impl Store {
    /// Reverses in one script call; two when the settlement holds an `insurance.settlement_ref` (the script names
    /// it, and the second call declares its key, as Redis Cluster requires of every key a script touches).
    pub async fn reverse(&self, call: &ReverseCall<'_>) -> StoreResult<ReverseOutcome> {
        let first = self.reverse_once(call, "").await?;
        match first {
            ReverseStep::NeedRef(r) => match self.reverse_once(call, &r).await? {
                ReverseStep::Done(outcome) => Ok(outcome),
                // refs are recorded once and never change: a second "need" is a corrupt record
                ReverseStep::NeedRef(_) => {
                    Err(StoreError::corrupt("reverse", String::from("the record's ref changed")))
                }
            },
            ReverseStep::Done(outcome) => Ok(outcome),
        }
    }

    async fn reverse_once(&self, call: &ReverseCall<'_>, insurance_ref: &str) -> StoreResult<ReverseStep> {
        let at = call.at;
        let mut inv = self.reverse_script.prepare_invoke();
        inv.key(at.key())
            .key(keys::claim(&at.hospital_id, &at.hsid))
            .key(keys::usage(&at.card_id))
            .key(keys::PROGRAM_PAID)
            .key(keys::recon_events(call.reversed_day, &at.hospital_id))
            .key(keys::recon_hospitals(call.reversed_day))
            .key(keys::EVENTS);
        if !insurance_ref.is_empty() {
            inv.key(keys::insurance_ref(insurance_ref));
        }
        let operator_name = call.operator.and_then(|o| o.name.as_deref());
        inv.arg(&at.card_id)
            .arg(&at.hospital_id)
            .arg(&at.hsid)
            .arg(call.reversed_at)
            .arg(call.reversed_day)
            .arg(call.reason)
            .arg(if call.tombstone_if_absent { "1" } else { "0" })
            .arg(call.operator.map_or("", |o| o.id.as_str()))
            .arg(operator_name.unwrap_or(""))
            .arg(insurance_ref);
        let conn = self.conn("reverse")?;
        let reply: Vec<String> = { self.run_write("reverse", conn, inv) }.await?;
        let corrupt = |e: String| StoreError::corrupt("reverse", e);
        let Some(tag) = reply.first() else {
            return Err(corrupt("empty reply".into()));
        };
        if tag == "need_ref" {
            let r = reply.get(1).filter(|r| !r.is_empty() && r.as_str() != insurance_ref);
            return r.map(|r| ReverseStep::NeedRef(r.clone())).ok_or_else(|| corrupt(format!("need_ref {reply:?}")));
        }
        let record = pairs(&reply[1..]);
        Ok(ReverseStep::Done(match tag.as_str() {
            "not_found" => ReverseOutcome::NotFound,
            "conflict" => ReverseOutcome::Conflict,
            "reversed" | "unchanged" | "tombstoned" => {
                if record.get("kind").map(String::as_str) == Some("tombstone") {
                    ReverseOutcome::Tombstone(parse_tombstone(&record).map_err(corrupt)?)
                } else {
                    ReverseOutcome::Reversed {
                        settlement: parse_settlement(&record).map_err(corrupt)?,
                        changed: tag == "reversed",
                    }
                }
            }
            other => return Err(corrupt(format!("unknown reply {other:?}"))),
        }))
    }

    /// A settlement by where it lives; `None` when absent or when only a tombstone is there.
    pub async fn get_settlement(&self, at: &SettlementRef) -> StoreResult<Option<Settlement>> {
        let mut conn = self.conn("get_settlement")?;
        let key = at.key();
        let record: std::collections::HashMap<String, String> = self
            .call("get_settlement", false, async move { redis::AsyncCommands::hgetall(&mut conn, key).await })
            .await?;
        if record.get("kind").map(String::as_str) != Some("settlement") {
            return Ok(None);
        }
        parse_settlement(&record).map(Some).map_err(|e| StoreError::corrupt("get_settlement", e))
    }
}
