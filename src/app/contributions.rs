//! The charity fund raised during the year (API.md "The charity fund"): `POST /admin/v1/pools/{program}/
//! contributions` and the pools of `GET /admin/v1/pools`.
//!
//! Order of checks: the body (400 naming the field), the program (404 `not_found` when no published ruleset has
//! it, 422 `not_a_pool` when no ruleset in force during the year gives it an `annual_pool_fen`), then one script
//! call (`store::contributions`): replay / `idempotency_conflict`, `pool_would_overdraw`, the write with its event
//! and audit entry.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{Actor, ApiError, ApiResult, App, Pool, PoolsReport};
use crate::domain::money::MAX_FEN;
use crate::domain::rules::{in_force, Ruleset};
use crate::domain::{is_valid_id, FieldError};
use crate::store::contributions::{ContributionOutcome, ContributionWrite};

/// Longest `note`, in characters.
const MAX_NOTE_CHARS: usize = 256;
/// Longest `donor`, in characters.
const MAX_DONOR_CHARS: usize = 64;

/// The body of `POST /admin/v1/pools/{program}/contributions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContributionRequest {
    /// The office's own id for this contribution: the idempotency key.
    pub contribution_id: String,
    /// The pool's year (a pool is per program and calendar year).
    pub year: i32,
    /// Who gave it (or to whom a withdrawal goes back): 1–64 characters.
    pub donor: String,
    /// Always positive; `kind` says which way it goes.
    pub amount_fen: i64,
    /// `donation` (into the pool) or `withdrawal` (out of it).
    pub kind: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// A contribution as stored and served.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contribution {
    pub contribution_id: String,
    pub program: String,
    pub year: i32,
    pub donor: String,
    pub amount_fen: i64,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was recorded (RFC 3339, local time).
    pub at: String,
}

/// The answer: the contribution, the pool after it, and whether it was new (201) or a replay (200).
pub struct ContributionReceipt {
    pub contribution: Contribution,
    pub pool: Option<Pool>,
    pub created: bool,
}

fn text_ok(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.chars().count()) && !s.chars().any(char::is_control) && s.trim() == s
}

impl ContributionRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_valid_id(&self.contribution_id) {
            errors.push(FieldError::new("contribution_id", "must be 1-64 chars of A-Za-z0-9._:-"));
        }
        if !(1970..=9999).contains(&self.year) {
            errors.push(FieldError::new("year", "must be a year 1970..=9999"));
        }
        if !text_ok(&self.donor, MAX_DONOR_CHARS) {
            errors.push(FieldError::new("donor", "must be 1-64 characters, no control characters or edge spaces"));
        }
        if !(1..=MAX_FEN).contains(&self.amount_fen) {
            errors.push(FieldError::new("amount_fen", "must be 1..=9007199254740991"));
        }
        if !matches!(self.kind.as_str(), "donation" | "withdrawal") {
            errors.push(FieldError::new("kind", "must be \"donation\" or \"withdrawal\""));
        }
        if self.note.as_deref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS || n.chars().any(char::is_control)) {
            errors.push(FieldError::new("note", "must be at most 256 characters, no control characters"));
        }
        errors
    }
}

/// The rulesets in force on some day of `year`: the one in force on 1 January, and each that takes over during it.
pub fn in_force_during(rulesets: &[Ruleset], year: i32) -> Vec<&Ruleset> {
    let (Some(first), Some(last)) = (NaiveDate::from_ymd_opt(year, 1, 1), NaiveDate::from_ymd_opt(year, 12, 31)) else {
        return Vec::new();
    };
    let mut days = vec![first];
    days.extend(rulesets.iter().map(|r| r.effective_from).filter(|d| (first..=last).contains(d)));
    let mut out: Vec<&Ruleset> = days.into_iter().filter_map(|d| in_force(rulesets, d)).collect();
    out.sort_by_key(|r| r.version);
    out.dedup_by_key(|r| r.version);
    out
}

impl App {
    pub async fn contribute(
        &self,
        program: &str,
        req: &ContributionRequest,
        by: &Actor,
    ) -> ApiResult<ContributionReceipt> {
        let errors = req.validate();
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let book = self.rules.snapshot();
        let all: Vec<Ruleset> = book.rulesets.iter().map(|c| c.ruleset.clone()).collect();
        if !all.iter().any(|r| r.programs.iter().any(|p| p.id == program)) {
            return Err(ApiError::NotFound(format!("no published ruleset has a program {program}")));
        }
        let bases: Vec<i64> = in_force_during(&all, req.year)
            .iter()
            .filter_map(|r| r.programs.iter().find(|p| p.id == program).and_then(|p| p.annual_pool_fen))
            .collect();
        let Some(base_fen) = bases.iter().copied().min() else {
            return Err(ApiError::NotAPool(format!("{program} has no annual_pool_fen in {}", req.year)));
        };
        let kind = req.kind.as_str();
        let contribution = Contribution {
            contribution_id: req.contribution_id.clone(),
            program: program.to_string(),
            year: req.year,
            donor: req.donor.clone(),
            amount_fen: req.amount_fen,
            kind: kind.to_string(),
            note: req.note.clone(),
            at: self.stamp().at,
        };
        let canonical = serde_json::to_string(&Contribution { at: String::new(), ..contribution.clone() })
            .expect("a contribution serialises");
        let json = serde_json::to_string(&contribution).expect("a contribution serialises");
        let signed_fen = if kind == "withdrawal" { -req.amount_fen } else { req.amount_fen };
        let detail = serde_json::to_value(&contribution).expect("a contribution serialises");
        let outcome = self
            .store
            .contribute(&ContributionWrite {
                contribution_id: &req.contribution_id,
                program,
                year: req.year,
                donor: &req.donor,
                signed_fen,
                canonical: &canonical,
                base_fen,
                json: &json,
                at: &contribution.at,
                by,
                detail,
            })
            .await?;
        let (contribution, created) = match outcome {
            ContributionOutcome::Applied => (contribution, true),
            ContributionOutcome::Replay(stored) => (
                serde_json::from_str(&stored)
                    .map_err(|e| ApiError::Internal(format!("stored contribution is not one: {e}")))?,
                false,
            ),
            ContributionOutcome::Conflict => {
                return Err(ApiError::IdempotencyConflict(
                    "this contribution_id was already used with a different contribution".into(),
                ))
            }
            ContributionOutcome::WouldOverdraw { paid_fen, contributions_fen } => {
                return Err(ApiError::PoolWouldOverdraw(format!(
                    "the pool of {program} has paid {paid_fen} fen of a budget of {} fen; withdrawing {} fen \
                     would leave it below that",
                    base_fen + contributions_fen,
                    req.amount_fen
                )))
            }
            ContributionOutcome::TooLarge => {
                return Err(ApiError::invalid("amount_fen", "would take the pool's budget past 9007199254740991"))
            }
        };
        if created {
            tracing::info!(program, year = req.year, kind, amount_fen = req.amount_fen, "pool contribution recorded");
        }
        let pool = self.pools(Some(req.year)).await?.pools.into_iter().find(|p| p.program == program);
        Ok(ContributionReceipt { contribution, pool, created })
    }

    /// Pools of the ruleset in force today (current year) or on the year's last day (other years), each with its
    /// base, the year's net contributions, the budget (their sum), what it paid, what is left, and its donors.
    pub async fn pools(&self, year: Option<i32>) -> ApiResult<PoolsReport> {
        let today = self.today();
        let year = year.unwrap_or(today.year());
        let date = if year == today.year() {
            today
        } else {
            NaiveDate::from_ymd_opt(year, 12, 31).ok_or_else(|| ApiError::invalid("year", "not a valid year"))?
        };
        let Some(c) = self.rules.snapshot().in_force(date) else {
            return Ok(PoolsReport { year, ruleset_version: None, pools: Vec::new() });
        };
        let programs: Vec<(String, i64)> =
            c.ruleset.programs.iter().filter_map(|p| p.annual_pool_fen.map(|b| (p.id.clone(), b))).collect();
        let ids: Vec<String> = programs.iter().map(|p| p.0.clone()).collect();
        let totals = self.store.pool_totals(year, &ids).await?;
        let mut pools = Vec::with_capacity(programs.len());
        for ((program, base_fen), t) in programs.into_iter().zip(totals) {
            let donors = self.store.pool_donors(year, &program).await?;
            let budget_fen = base_fen + t.contributions_fen;
            pools.push(Pool {
                program,
                base_fen,
                contributions_fen: t.contributions_fen,
                budget_fen,
                paid_fen: t.paid_fen,
                left_fen: (budget_fen - t.paid_fen).max(0),
                donors,
            });
        }
        Ok(PoolsReport { year, ruleset_version: Some(c.ruleset.version), pools })
    }
}

impl App {
    /// Sets the gauges `settlegate_pool_budget_fen` and `settlegate_pool_paid_fen` (labels `program`, `year`) from
    /// this year's pools; the gateway calls it every [`POOL_GAUGE_INTERVAL_MS`].
    pub async fn refresh_pool_gauges(&self) -> ApiResult<()> {
        let report = self.pools(None).await?;
        let year = report.year.to_string();
        for p in &report.pools {
            let labels = [("program", p.program.clone()), ("year", year.clone())];
            metrics::gauge!("settlegate_pool_budget_fen", &labels).set(p.budget_fen as f64);
            metrics::gauge!("settlegate_pool_paid_fen", &labels).set(p.paid_fen as f64);
        }
        Ok(())
    }
}

/// How often each instance refreshes the pool gauges from Redis.
pub const POOL_GAUGE_INTERVAL_MS: u64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rulesets_in_force_during_a_year() {
        let r = |version: u64, from: &str| Ruleset {
            version,
            effective_from: from.parse().unwrap(),
            published_at: String::new(),
            programs: Vec::new(),
        };
        let all = vec![r(1, "2025-01-01"), r(2, "2026-07-01"), r(3, "2027-01-01")];
        let v = |y| in_force_during(&all, y).iter().map(|r| r.version).collect::<Vec<_>>();
        assert_eq!(v(2025), vec![1]);
        assert_eq!(v(2026), vec![1, 2]);
        assert_eq!(v(2027), vec![3]);
        assert_eq!(v(2024), Vec::<u64>::new());
    }

    #[test]
    fn bodies_are_validated() {
        let ok = ContributionRequest {
            contribution_id: "RC-2026-0012".into(),
            year: 2026,
            donor: "区红十字会".into(),
            amount_fen: 5_000_000,
            kind: "donation".into(),
            note: None,
        };
        assert!(ok.validate().is_empty());
        let bad = ContributionRequest { amount_fen: 0, donor: " x".into(), year: 0, kind: "gift".into(), ..ok };
        let fields: Vec<String> = bad.validate().iter().map(|e| e.field.clone()).collect();
        assert_eq!(fields, ["year", "donor", "amount_fen", "kind"]);
    }
}
