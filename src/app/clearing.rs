//! Monthly clearing statements (API.md "Clearing"): what the relief fund owes a hospital for the relief share it
//! paid at the counter during one local month.
//!
//! Each operation reads (the statement, then the month's reconciliation days), decides, and makes at most one
//! write: `store::write_clearing`, a compare-and-set on the statement's `rev` that stores it and appends its event
//! in the same script. A write that finds the statement changed since it was read writes nothing ("stale"); the
//! operation then reads again and decides afresh, a few times at most (503 after that: nothing was changed).

use chrono::Days;
use futures_util::future::try_join_all;

use super::{Actor, ApiError, ApiResult, App, Stamp};
use crate::domain::clearing::{parse_clearing_id, Clearing, ClearingFigures, ClearingStatus, Period};
use crate::domain::{is_valid_id, FieldError};
use crate::store::{ClearingEvent, ClearingWrite, ClearingWriteOutcome, StoreErrorKind};

/// `POST /admin/v1/clearings`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearingRequest {
    pub hospital_id: String,
    /// `YYYY-MM`.
    pub period: String,
}

/// `POST /admin/v1/clearings/{clearing_id}/paid`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaidRequest {
    /// The relief office's reference of the payment (1–64 chars of `A-Za-z0-9._:-`).
    pub payment_ref: String,
    /// The local date of the payment, `YYYY-MM-DD`, at most one day after today.
    pub paid_at: String,
}

/// How many times an operation reads and decides again after a stale write.
const ATTEMPTS: usize = 3;

const ID_RULE: &str = "must be 1-64 chars of A-Za-z0-9._:-";
const PERIOD_RULE: &str = "must be a month YYYY-MM (year 1900-9999, month 01-12)";

impl App {
    /// Creates the statement of a hospital's month as a draft (`true`: created now), or answers the one there is:
    /// a draft recomputed from the reconciliation as it stands (written, with a new `clearing.created` event, only
    /// when its figures changed), a confirmed or paid one as it was frozen.
    pub async fn create_clearing(&self, req: &ClearingRequest, by: &Actor) -> ApiResult<(Clearing, bool)> {
        let mut errors = Vec::new();
        if !is_valid_id(&req.hospital_id) {
            errors.push(FieldError::new("hospital_id", ID_RULE));
        }
        let period = match Period::parse(&req.period) {
            None => {
                errors.push(FieldError::new("period", PERIOD_RULE));
                None
            }
            Some(p) if p > Period::of(self.today()) => {
                errors.push(FieldError::new("period", "must not be after the current month (local time)"));
                None
            }
            Some(p) => Some(p),
        };
        let Some(period) = period.filter(|_| errors.is_empty()) else {
            return Err(ApiError::Invalid(errors));
        };
        let hospital_id = req.hospital_id.as_str();
        for _ in 0..ATTEMPTS {
            let stored = self.store.clearing(hospital_id, period).await?;
            if let Some(s) = stored.as_ref().filter(|s| s.clearing.status != ClearingStatus::Draft) {
                return Ok((s.clearing.clone(), false));
            }
            let figures = self.month_figures(hospital_id, period).await?;
            let now = self.stamp().at;
            let (clearing, rev) = match stored {
                Some(s) if s.clearing.figures == figures => return Ok((s.clearing, false)),
                Some(s) => (Clearing { figures, ..s.clearing }, s.rev),
                None => (Clearing::draft(hospital_id, period, figures, now.clone()), 0),
            };
            if self.write_clearing(&clearing, ClearingEvent::Created, rev, &now, by).await? {
                return Ok((clearing, rev == 0));
            }
        }
        Err(changed_concurrently())
    }

    /// Confirms a draft: its figures recomputed a last time (the month has ended, so they are final) and frozen.
    /// A confirmed or paid statement is answered as it is.
    pub async fn confirm_clearing(&self, clearing_id: &str, by: &Actor) -> ApiResult<Clearing> {
        let (hospital_id, period) = parse_clearing_id(clearing_id).ok_or_else(|| not_found(clearing_id))?;
        for _ in 0..ATTEMPTS {
            let stored = self.store.clearing(hospital_id, period).await?.ok_or_else(|| not_found(clearing_id))?;
            if stored.clearing.status != ClearingStatus::Draft {
                return Ok(stored.clearing);
            }
            let Stamp { at: now, day: today, .. } = self.stamp();
            if !period.ended_by(today) {
                return Err(ApiError::PeriodNotEnded(format!(
                    "{period} has not ended (local time); its statement can be confirmed from {}",
                    period.ends_on()
                )));
            }
            let figures = self.month_figures(hospital_id, period).await?;
            let clearing = Clearing {
                status: ClearingStatus::Confirmed,
                figures,
                confirmed_at: Some(now.clone()),
                ..stored.clearing
            };
            if self.write_clearing(&clearing, ClearingEvent::Confirmed, stored.rev, &now, by).await? {
                return Ok(clearing);
            }
        }
        Err(changed_concurrently())
    }

    /// Records the payment of a confirmed statement. The same payment again is answered as it stands; another
    /// payment of a paid statement is 409 `idempotency_conflict`, a draft 409 `not_confirmed`.
    pub async fn pay_clearing(&self, clearing_id: &str, req: &PaidRequest, by: &Actor) -> ApiResult<Clearing> {
        let mut errors = Vec::new();
        if !is_valid_id(&req.payment_ref) {
            errors.push(FieldError::new("payment_ref", ID_RULE));
        }
        match crate::domain::date::parse(&req.paid_at) {
            None => errors.push(FieldError::new("paid_at", "must be a date YYYY-MM-DD")),
            Some(d) if d > self.today() + Days::new(1) => {
                errors.push(FieldError::new("paid_at", "must not be more than 1 day after today"));
            }
            Some(_) => {}
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let (hospital_id, period) = parse_clearing_id(clearing_id).ok_or_else(|| not_found(clearing_id))?;
        for _ in 0..ATTEMPTS {
            let stored = self.store.clearing(hospital_id, period).await?.ok_or_else(|| not_found(clearing_id))?;
            let c = &stored.clearing;
            match c.status {
                ClearingStatus::Draft => {
                    return Err(ApiError::NotConfirmed(format!("{clearing_id} is a draft; confirm it first")));
                }
                ClearingStatus::Paid
                    if c.payment_ref.as_deref() == Some(req.payment_ref.as_str())
                        && c.paid_at.as_deref() == Some(req.paid_at.as_str()) =>
                {
                    return Ok(stored.clearing);
                }
                ClearingStatus::Paid => {
                    return Err(ApiError::IdempotencyConflict(format!(
                        "{clearing_id} was already paid with another payment_ref or paid_at"
                    )));
                }
                ClearingStatus::Confirmed => {}
            }
            let now = self.stamp().at;
            let clearing = Clearing {
                status: ClearingStatus::Paid,
                payment_ref: Some(req.payment_ref.clone()),
                paid_at: Some(req.paid_at.clone()),
                ..stored.clearing
            };
            if self.write_clearing(&clearing, ClearingEvent::Paid, stored.rev, &now, by).await? {
                return Ok(clearing);
            }
        }
        Err(changed_concurrently())
    }

    /// The statements as stored (a draft is not recomputed by a read), by period then hospital, filtered by any of
    /// `period` (`YYYY-MM`), `hospital_id` and `status`.
    pub async fn list_clearings(
        &self,
        period: Option<&str>,
        hospital_id: Option<&str>,
        status: Option<&str>,
    ) -> ApiResult<Vec<Clearing>> {
        let mut errors = Vec::new();
        let period = period.and_then(|p| {
            let parsed = Period::parse(p);
            if parsed.is_none() {
                errors.push(FieldError::new("period", PERIOD_RULE));
            }
            parsed
        });
        if hospital_id.is_some_and(|h| !is_valid_id(h)) {
            errors.push(FieldError::new("hospital_id", ID_RULE));
        }
        let status = status.and_then(|s| {
            let parsed = ClearingStatus::parse(s);
            if parsed.is_none() {
                errors.push(FieldError::new("status", "must be one of draft, confirmed, paid"));
            }
            parsed
        });
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let stored = self.store.clearings(hospital_id, period).await?;
        Ok(stored.into_iter().map(|s| s.clearing).filter(|c| status.is_none_or(|want| c.status == want)).collect())
    }

    /// The sums of the hospital's reconciliation over every local day of the month (the days read concurrently).
    async fn month_figures(&self, hospital_id: &str, period: Period) -> ApiResult<ClearingFigures> {
        let days: Vec<String> = period.days().map(|d| d.to_string()).collect();
        let totals = try_join_all(days.iter().map(|day| self.store.day_totals(day, hospital_id))).await?;
        let overflow = || {
            tracing::error!(hospital = hospital_id, %period, "clearing figures overflow: the store is corrupt");
            ApiError::Internal("internal error".into())
        };
        let mut f = ClearingFigures::default();
        for t in &totals {
            f.settled_count = f.settled_count.checked_add(t.settled_count).ok_or_else(overflow)?;
            f.reversed_count = f.reversed_count.checked_add(t.reversed_count).ok_or_else(overflow)?;
            f.relief_fen = f.relief_fen.checked_add(t.relief_fen).ok_or_else(overflow)?;
            for p in &t.by_program {
                let entry = f.by_program.entry(p.program.clone()).or_default();
                *entry = entry.checked_add(p.fen).ok_or_else(overflow)?;
            }
        }
        Ok(f)
    }

    /// One compare-and-set write of a statement with its event; `false` when it was stale (nothing written).
    async fn write_clearing(
        &self,
        clearing: &Clearing,
        event: ClearingEvent,
        expected_rev: u64,
        at: &str,
        by: &Actor,
    ) -> ApiResult<bool> {
        let outcome = self.store.write_clearing(&ClearingWrite { clearing, event, expected_rev, at, by }).await;
        let applied = match outcome {
            Ok(ClearingWriteOutcome::Applied) => true,
            Ok(ClearingWriteOutcome::Stale) => false,
            Err(e) if e.kind == StoreErrorKind::OutcomeUnknown => {
                return Err(ApiError::OutcomeUnknown(
                    "the settlement store did not answer in time; the change may still be applied. \
                     Repeating the same request is safe"
                        .into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let label = if applied { "applied" } else { "stale" };
        metrics::counter!("settlegate_clearing_writes_total", "event" => event.as_str(), "outcome" => label)
            .increment(1);
        if applied {
            tracing::info!(clearing_id = %clearing.clearing_id, event = event.as_str(),
                status = clearing.status.as_str(), relief_fen = clearing.figures.relief_fen, "clearing written");
        }
        Ok(applied)
    }
}

fn not_found(clearing_id: &str) -> ApiError {
    ApiError::NotFound(format!("no clearing {clearing_id}"))
}

fn changed_concurrently() -> ApiError {
    ApiError::Unavailable("the clearing changed concurrently while it was computed; nothing was changed, retry".into())
}
