//! Contributions to a program's pool and what the pools have paid (API.md "The charity fund").
//!
//! The net total raised for (program, year) lives in the hash the settle script already reads the pool's paid total
//! from (`{sg}:program_paid`, field `<year>:<program>:contrib`), so a settlement reads the pool's budget and its paid
//! total in one command of its own atomic step: it sees a contribution entirely or not at all, on every instance,
//! from the next settlement on. `scripts/contribution.lua` refuses a withdrawal that would leave the budget below
//! the paid total in the same atomic step, so no interleaving of withdrawals and settlements overdraws a pool.

use redis::AsyncCommands;

use super::audit;
use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;
use crate::domain::audit::Actor;

/// One contribution to store.
pub struct ContributionWrite<'a> {
    pub contribution_id: &'a str,
    pub program: &'a str,
    pub year: i32,
    pub donor: &'a str,
    /// Signed: a withdrawal is negative.
    pub signed_fen: i64,
    /// What "the same contribution" means (every field of the body).
    pub canonical: &'a str,
    /// The smallest `annual_pool_fen` among the rulesets in force during the year: a withdrawal must leave even
    /// that budget at or above the paid total.
    pub base_fen: i64,
    /// The contribution as served (and as its event's data).
    pub json: &'a str,
    /// RFC 3339, local time.
    pub at: &'a str,
    pub by: &'a Actor,
    /// The audit entry's detail.
    pub detail: serde_json::Value,
}

/// What the contribution script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContributionOutcome {
    Applied,
    /// The same `contribution_id` with the same body: the stored JSON.
    Replay(String),
    /// The same `contribution_id` with another body.
    Conflict,
    /// A withdrawal that would leave the budget below the paid total.
    WouldOverdraw {
        paid_fen: i64,
        contributions_fen: i64,
    },
    /// A donation that would take the budget past 2^53 - 1 fen.
    TooLarge,
}

/// One pool's totals for a year.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolTotals {
    pub paid_fen: i64,
    /// Net contributions (donations minus withdrawals).
    pub contributions_fen: i64,
}

impl Store {
    /// Records a contribution, its event and its audit entry in one script call (or none of them).
    pub async fn contribute(&self, w: &ContributionWrite<'_>) -> StoreResult<ContributionOutcome> {
        const OP: &str = "contribute";
        let draft = w.by.draft(w.at, "pool.contribution", w.program, w.detail.clone());
        for _ in 0..audit::AUDIT_ATTEMPTS {
            let sealed = self.seal(&draft).await?;
            let mut inv = self.contribution_script.prepare_invoke();
            sealed.push(&mut inv);
            inv.key(keys::PROGRAM_PAID)
                .key(keys::contribution(w.contribution_id))
                .key(keys::pool_donors(w.year, w.program))
                .arg(w.program)
                .arg(w.year)
                .arg(w.canonical)
                .arg(w.signed_fen)
                .arg(w.base_fen)
                .arg(w.donor)
                .arg(w.json);
            let conn = self.conn(OP)?;
            let reply: Vec<String> = { self.run_write(OP, conn, inv) }.await?;
            let n = |i: usize| -> StoreResult<i64> {
                reply
                    .get(i)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| StoreError::corrupt(OP, format!("reply {reply:?}")))
            };
            return match reply.first().map(String::as_str) {
                Some("audit_stale") => continue,
                Some("applied") => Ok(ContributionOutcome::Applied),
                Some("replay") => Ok(ContributionOutcome::Replay(reply.get(1).cloned().unwrap_or_default())),
                Some("conflict") => Ok(ContributionOutcome::Conflict),
                Some("overdraw") => {
                    Ok(ContributionOutcome::WouldOverdraw { paid_fen: n(1)?, contributions_fen: n(2)? })
                }
                Some("too_large") => Ok(ContributionOutcome::TooLarge),
                other => Err(StoreError::corrupt(OP, format!("unknown reply {other:?}"))),
            };
        }
        Err(audit::busy(OP))
    }

    /// The paid and raised totals of each of `programs` in `year`, in order.
    pub async fn pool_totals(&self, year: i32, programs: &[String]) -> StoreResult<Vec<PoolTotals>> {
        const OP: &str = "pool_totals";
        if programs.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<String> = programs
            .iter()
            .flat_map(|p| [keys::program_paid_field(year, p), keys::pool_contributions_field(year, p)])
            .collect();
        let mut conn = self.conn(OP)?;
        let got: Vec<Option<i64>> = self
            .call(OP, false, async move {
                redis::cmd("HMGET").arg(keys::PROGRAM_PAID).arg(&fields).query_async(&mut conn).await
            })
            .await?;
        Ok(got
            .chunks(2)
            .map(|c| PoolTotals { paid_fen: c[0].unwrap_or(0), contributions_fen: c[1].unwrap_or(0) })
            .collect())
    }

    /// What each donor gave `program`'s pool in `year`, net, by donor (donors whose net is 0 included).
    pub async fn pool_donors(&self, year: i32, program: &str) -> StoreResult<Vec<(String, i64)>> {
        const OP: &str = "pool_donors";
        let mut conn = self.conn(OP)?;
        let key = keys::pool_donors(year, program);
        let all: std::collections::BTreeMap<String, i64> =
            self.call(OP, false, async move { conn.hgetall(key).await }).await?;
        Ok(all.into_iter().collect())
    }
}
