//! The operations of API.md, between the HTTP layer (JSON in, JSON out) and the store. Each operation validates,
//! applies the API's order of checks, calls the store once (settle, quote, reverse: one atomic script call) and
//! returns domain values or an [`ApiError`] that names the API error code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

pub use crate::domain::audit::Actor;
use crate::domain::bill::{Bill, Operator, QuoteRequest, SettleRequest};
use crate::domain::card::{CardStatus, Cardholder};
use crate::domain::rules::{Ruleset, RulesetInput};
use crate::domain::settlement::Settlement;
use crate::domain::split::{covering_programs, split, ProgramUsage};
use crate::domain::{is_valid_id, FieldError};
use crate::rulebook::{CompiledRuleset, RulebookCache};
use crate::store::keys::SettlementRef;
use crate::store::{
    DayTotals, ReverseCall, ReverseOutcome, RulesInForce, ScriptReads, SettleCall, SettleMode, SettleOutcome, Store,
};

mod audit;
pub mod check;
mod clearing;
mod contributions;
mod error;
mod history;
pub mod preview;
mod report;
pub mod today;
mod types;

pub use audit::{cli_actor, system_actor, AuditPage, AuditQuery};
pub use check::Caller;
pub use clearing::{ClearingRequest, PaidRequest};
pub use contributions::{Contribution, ContributionReceipt, ContributionRequest, POOL_GAUGE_INTERVAL_MS};
pub use error::{ApiError, ApiResult};
pub use history::DEFAULT_EVENTS_PAGE;
pub use report::{ReportLimits, ReportRequest};
pub use types::*;

pub use crate::redact::mask_card;
use crate::redact::mask_card_in;

/// The operations, shared by every request.
pub struct App {
    /// Redis: every read and atomic step.
    pub store: Arc<Store>,
    /// The published rulesets, refreshed within a second.
    pub rules: Arc<RulebookCache>,
    /// The zone of local dates (years, reconciliation days).
    pub tz: Tz,
    /// Which settlements the engine cross-checks (`cross_check_every`).
    cross_check: Sampler,
}

/// Picks one call in `every` (0 = none).
struct Sampler {
    every: u64,
    seen: AtomicU64,
}

impl Sampler {
    fn pick(&self) -> bool {
        self.every != 0 && self.seen.fetch_add(1, Ordering::Relaxed) % self.every == 0
    }
}

impl App {
    /// An `App` that cross-checks every settlement.
    pub fn new(store: Arc<Store>, rules: Arc<RulebookCache>, tz: Tz) -> App {
        App { store, rules, tz, cross_check: Sampler { every: 1, seen: AtomicU64::new(0) } }
    }

    /// Cross-checks one settlement in `every` (0 = none).
    pub fn with_cross_check_every(mut self, every: u64) -> App {
        self.cross_check.every = every;
        self
    }

    pub fn now(&self) -> DateTime<Tz> {
        Utc::now().with_timezone(&self.tz)
    }

    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    /// The time of a change (RFC 3339, milliseconds) and its local day, from one clock reading.
    fn stamp(&self) -> Stamp {
        let now = self.now();
        let day = now.date_naive();
        Stamp { at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false), day_text: day.to_string(), day }
    }

    // ---- hospital operations ------------------------------------------------------------------------------

    pub async fn settle(&self, hospital_id: &str, req: &SettleRequest) -> ApiResult<(Settlement, bool)> {
        let stamp = self.stamp();
        let errors = req.validate(stamp.day);
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let mode = SettleMode::Settle {
            hospital_id,
            hospital_settlement_id: &req.hospital_settlement_id,
            settled_at: &stamp.at,
            settled_day: &stamp.day_text,
        };
        match self.run_settle(mode, req.bill(), req.operator.as_ref()).await? {
            SettleOutcome::Split { settlement, .. } => {
                metrics::counter!("settlegate_settlements_total", "outcome" => "settled").increment(1);
                for p in &settlement.payments {
                    metrics::counter!("settlegate_relief_paid_fen_total", "program" => p.program.clone())
                        .increment(u64::try_from(p.paid_fen).unwrap_or(0));
                }
                tracing::info!(card = %mask_card(&req.card_id),
                    hsid = %mask_card_in(&req.hospital_settlement_id, &req.card_id),
                    relief_fen = settlement.relief_fen, patient_fen = settlement.patient_fen, "settled");
                Ok((settlement, true))
            }
            SettleOutcome::Replayed(settlement) => {
                metrics::counter!("settlegate_settlements_total", "outcome" => "replayed").increment(1);
                Ok((settlement, false))
            }
            other => Err(refusal(&other, &req.card_id)),
        }
    }

    pub async fn quote(&self, req: &QuoteRequest) -> ApiResult<Settlement> {
        let errors = req.validate(self.today());
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        match self.run_settle(SettleMode::Quote, req.bill(), req.operator.as_ref()).await? {
            SettleOutcome::Split { settlement, .. } => Ok(settlement),
            other => Err(refusal(&other, &req.card_id)),
        }
    }

    /// One settle-script call, then the engine cross-check on what it computed.
    async fn run_settle(
        &self,
        mode: SettleMode<'_>,
        bill: Bill<'_>,
        operator: Option<&Operator>,
    ) -> ApiResult<SettleOutcome> {
        let book = self.rules.snapshot();
        let compiled = book.in_force(bill.visit.date);
        let rules =
            compiled.as_deref().map(|c| RulesInForce { ruleset: &c.ruleset, script: c.script(bill.visit.visit_type) });
        let outcome = self.store.settle(&SettleCall { bill, rules, mode, operator }).await?;
        if let (SettleOutcome::Split { settlement, reads }, Some(c)) = (&outcome, compiled.as_deref()) {
            if self.cross_check.pick() {
                cross_check(c, &bill, settlement, reads);
            }
        }
        Ok(outcome)
    }

    pub async fn eligibility(&self, req: &EligibilityRequest) -> ApiResult<Eligibility> {
        let mut errors = Vec::new();
        if !is_valid_id(&req.card_id) {
            errors.push(FieldError::new("card_id", "must be 1-64 chars of A-Za-z0-9._:-"));
        }
        if req.visit.date > self.today() + chrono::Days::new(1) {
            errors.push(FieldError::new("visit.date", "must not be more than 1 day after today"));
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let compiled = self.rules.snapshot().in_force(req.visit.date);
        let names: Vec<&str> =
            compiled.as_deref().map(|c| c.ruleset.programs.iter().map(|p| p.id.as_str()).collect()).unwrap_or_default();
        let year = req.visit.date.year();
        let Some((card, usage)) = self.store.card_and_usage(&req.card_id, year, &names).await? else {
            return Err(ApiError::CardNotFound(req.card_id.clone()));
        };
        let mut answer = Eligibility {
            card_id: card.card_id.clone(),
            eligible: false,
            reason: None,
            category: card.category.clone(),
            ruleset_version: compiled.as_ref().map(|c| c.ruleset.version),
            programs: Vec::new(),
        };
        if let Err(why) = card.eligibility(req.visit.date) {
            answer.reason = Some(why.as_str());
            return Ok(answer);
        }
        let Some(c) = compiled.as_deref() else {
            return Err(ApiError::NoRulesInForce(format!("no published ruleset is in force on {}", req.visit.date)));
        };
        answer.eligible = true;
        for (program, terms) in covering_programs(&c.ruleset, &card, req.visit.visit_type) {
            let idx = names.iter().position(|n| *n == program.id).expect("names come from this ruleset");
            let used = usage.get(idx).copied().unwrap_or_default();
            answer.programs.push(ProgramEligibility {
                program: program.id.clone(),
                ratio_bp: terms.ratio_bp,
                deductible_left_fen: (terms.deductible_fen.unwrap_or(0) - used.deductible_met_fen).max(0),
                annual_cap_left_fen: terms.annual_cap_fen.map(|cap| (cap - used.paid_fen).max(0)),
                per_visit_cap_fen: terms.per_visit_cap_fen,
            });
        }
        Ok(answer)
    }

    pub async fn get_settlement(&self, hospital_id: &str, settlement_id: &str) -> ApiResult<Settlement> {
        let not_found = || ApiError::NotFound(format!("no settlement {settlement_id}"));
        let at = self.store.resolve_settlement_id(hospital_id, settlement_id).await?.ok_or_else(not_found)?;
        self.store.get_settlement(&at).await?.ok_or_else(not_found)
    }

    pub async fn find_settlement(&self, hospital_id: &str, card_id: &str, hsid: &str) -> ApiResult<Settlement> {
        check_ids(card_id, Some(hsid))?;
        let at = SettlementRef { card_id: card_id.into(), hospital_id: hospital_id.into(), hsid: hsid.into() };
        self.store
            .get_settlement(&at)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no settlement {hsid} for card {card_id}")))
    }

    pub async fn reverse(&self, hospital_id: &str, req: &ReversalRequest) -> ApiResult<Reversal> {
        let reason = req.reason.clone().unwrap_or_default();
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ApiError::invalid("reason", format!("at most {MAX_REASON_CHARS} characters")));
        }
        let operator_errors: Vec<_> = req.operator.iter().flat_map(|o| o.validate("operator")).collect();
        if !operator_errors.is_empty() {
            return Err(ApiError::Invalid(operator_errors));
        }
        let (at, by_hsid) = match (&req.hospital_settlement_id, &req.settlement_id) {
            (Some(hsid), None) => {
                check_ids(&req.card_id, Some(hsid))?;
                (SettlementRef::new(&req.card_id, hospital_id, hsid), true)
            }
            (None, Some(sid)) => {
                check_ids(&req.card_id, None)?;
                let not_found = || ApiError::NotFound(format!("no settlement {sid}"));
                let at = self.store.resolve_settlement_id(hospital_id, sid).await?.ok_or_else(not_found)?;
                if at.card_id != req.card_id {
                    return Err(not_found());
                }
                (at, false)
            }
            _ => {
                return Err(ApiError::invalid(
                    "hospital_settlement_id",
                    "give exactly one of hospital_settlement_id and settlement_id",
                ))
            }
        };
        let stamp = self.stamp();
        let call = ReverseCall {
            at: &at,
            tombstone_if_absent: by_hsid,
            reason: &reason,
            reversed_at: &stamp.at,
            reversed_day: &stamp.day_text,
            operator: req.operator.as_ref(),
        };
        match self.store.reverse(&call).await? {
            ReverseOutcome::Reversed { settlement, changed } => {
                if changed {
                    metrics::counter!("settlegate_reversals_total", "outcome" => "reversed").increment(1);
                    tracing::info!(card = %mask_card(&at.card_id), hsid = %mask_card_in(&at.hsid, &at.card_id),
                        relief_fen = settlement.relief_fen, "reversed");
                }
                Ok(Reversal::Settlement(Box::new(settlement)))
            }
            ReverseOutcome::Tombstone(t) => {
                metrics::counter!("settlegate_reversals_total", "outcome" => "before_settled").increment(1);
                Ok(Reversal::ReversedBeforeSettled(t))
            }
            ReverseOutcome::NotFound => Err(ApiError::NotFound(format!("no settlement {}", at.hsid))),
            ReverseOutcome::Conflict => Err(ApiError::IdempotencyConflict(format!(
                "hospital_settlement_id {} belongs to a settlement of another card",
                at.hsid
            ))),
        }
    }

    pub async fn day_totals(&self, hospital_id: &str, date: NaiveDate) -> ApiResult<DayTotals> {
        self.refuse_archived(date).await?;
        Ok(self.store.day_totals(&date.to_string(), hospital_id).await?)
    }

    /// 410 `day_archived` for a day whose lines were archived ([retention]): its totals would read as zero.
    pub async fn refuse_archived(&self, date: NaiveDate) -> ApiResult<()> {
        match self.store.archive_horizon().await? {
            Some(through) if date <= through => Err(ApiError::DayArchived(format!(
                "{date} is archived (every day up to {through}): its lines are in the relief office's exports"
            ))),
            _ => Ok(()),
        }
    }

    // ---- relief-office operations --------------------------------------------------------------------------

    /// `PUT /admin/v1/cardholders/{card_id}`. `street`: the calling street office's street (API.md "Three
    /// levels"): the new card must be of it (else 403), and so must the stored card if there is one, checked in the
    /// store's write itself (a card moved to another street meanwhile is refused, never overwritten).
    pub async fn put_cardholder(
        &self,
        card_id: &str,
        card: Cardholder,
        by: &Actor,
        street: Option<&str>,
    ) -> ApiResult<Cardholder> {
        let mut errors = card.validate();
        if card.card_id != card_id {
            errors.push(FieldError::new("card_id", format!("must equal the card id of the path, {card_id}")));
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        if let Some(own) = street {
            if card.street.as_deref() != Some(own) {
                return Err(ApiError::Forbidden(format!(
                    "a street office stores only cards of its own street: street must be {own:?}"
                )));
            }
        }
        let at = self.stamp().at;
        let refused = self
            .store
            .put_cardholders(std::slice::from_ref(&card), &crate::store::CardholderEvent::Put { at: &at }, by, street)
            .await?;
        if !refused.is_empty() {
            return Err(ApiError::Forbidden(format!(
                "card {card_id} belongs to another street: a street office cannot move it into its own"
            )));
        }
        tracing::info!(card = %mask_card(card_id), status = card.status.as_str(), "cardholder stored");
        Ok(card)
    }

    /// `GET /admin/v1/cardholders/{card_id}`. `street`: the calling street office's street; a card of another
    /// street (or of none) reads as 404 `card_not_found`, exactly like a missing one.
    pub async fn get_cardholder(
        &self,
        card_id: &str,
        year: Option<i32>,
        street: Option<&str>,
    ) -> ApiResult<CardholderYear> {
        check_ids(card_id, None)?;
        let year = year.unwrap_or_else(|| self.today().year());
        let (card, usage) = self
            .store
            .cardholder_with_usage(card_id, year)
            .await?
            .filter(|(card, _)| street.is_none() || card.street.as_deref() == street)
            .ok_or_else(|| ApiError::CardNotFound(card_id.to_string()))?;
        Ok(CardholderYear { card, year, usage })
    }

    pub async fn publish_ruleset(&self, input: &RulesetInput, by: &Actor) -> ApiResult<Ruleset> {
        let errors = input.validate();
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let published_at = self.stamp().at;
        let version = self.store.publish_ruleset(input, &published_at, by).await?;
        if let Err(e) = self.rules.refresh(&self.store).await {
            tracing::warn!(error = %e, "published, but the local refresh failed; the periodic refresh will retry");
        }
        tracing::info!(version, effective_from = %input.effective_from, "ruleset published");
        Ok(Ruleset { version, effective_from: input.effective_from, published_at, programs: input.programs.clone() })
    }

    pub async fn rulesets(&self) -> ApiResult<Vec<Ruleset>> {
        Ok(self.store.load_rulesets().await?)
    }

    pub async fn admin_day_totals(&self, date: NaiveDate) -> ApiResult<Vec<HospitalDay>> {
        self.refuse_archived(date).await?;
        let day = date.to_string();
        let mut out = Vec::new();
        for hospital_id in self.store.day_hospitals(&day).await? {
            let totals = self.store.day_totals(&day, &hospital_id).await?;
            out.push(HospitalDay { hospital_id, totals });
        }
        Ok(out)
    }
}

/// One clock reading, in the forms a change records.
pub(crate) struct Stamp {
    /// RFC 3339 with milliseconds, local time: `settled_at` / `reversed_at`.
    at: String,
    /// The local day, `YYYY-MM-DD`: the reconciliation day.
    day_text: String,
    day: NaiveDate,
}

pub(crate) fn check_ids(card_id: &str, hsid: Option<&str>) -> ApiResult<()> {
    let mut errors = Vec::new();
    if !is_valid_id(card_id) {
        errors.push(FieldError::new("card_id", "must be 1-64 chars of A-Za-z0-9._:-"));
    }
    if hsid.is_some_and(|h| !is_valid_id(h)) {
        errors.push(FieldError::new("hospital_settlement_id", "must be 1-64 chars of A-Za-z0-9._:-"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(errors))
    }
}

fn refusal(outcome: &SettleOutcome, card_id: &str) -> ApiError {
    metrics::counter!("settlegate_settlements_total", "outcome" => "refused").increment(1);
    match outcome {
        SettleOutcome::IdempotencyConflict => ApiError::IdempotencyConflict(
            "this hospital_settlement_id was already used with a different request".into(),
        ),
        SettleOutcome::AlreadyReversed => {
            ApiError::AlreadyReversed("this hospital_settlement_id was reversed before it was settled".into())
        }
        SettleOutcome::InsuranceRefReused => ApiError::InsuranceRefReused(
            "insurance.settlement_ref is held by another settlement that is not reversed".into(),
        ),
        SettleOutcome::CardNotFound => ApiError::CardNotFound(card_id.to_string()),
        SettleOutcome::NotEligible(why) => {
            ApiError::NotEligible(format!("card {card_id} is {}", why.as_str().replace('_', " ")))
        }
        SettleOutcome::NoRulesInForce => {
            ApiError::NoRulesInForce("no published ruleset is in force on the visit date".into())
        }
        SettleOutcome::VisitArchived { visit_floor } => ApiError::VisitArchived(format!(
            "settlements up to the archived days are closed: a new settlement needs a visit date on or after {visit_floor}"
        )),
        SettleOutcome::CounterLimit => {
            tracing::error!("a ledger counter passed 2^62 fen; settlement refused, nothing written");
            ApiError::Internal("a ledger counter is at its limit; nothing was changed".into())
        }
        SettleOutcome::Split { .. } | SettleOutcome::Replayed(_) => {
            ApiError::Internal("unexpected store outcome".into())
        }
    }
}

/// Re-runs the pure engine on the counters the settle script read and compares. A difference means the Lua and
/// Rust implementations of RULES.md disagree: the recorded settlement stands (it is what Redis applied), and the
/// alarm goes to the log and to `settlegate_engine_mismatch_total`.
pub fn cross_check(c: &CompiledRuleset, bill: &Bill<'_>, s: &Settlement, reads: &ScriptReads) -> bool {
    let card = Cardholder {
        card_id: bill.card_id.to_string(),
        category: s.category.clone(),
        valid_from: NaiveDate::MIN,
        valid_until: NaiveDate::MAX,
        status: CardStatus::Active,
        tags: reads.card_tags.clone(),
        street: None,
        community: None,
    };
    let usage = |p: &crate::domain::rules::Program| -> ProgramUsage {
        reads.programs.iter().find(|r| r.program == p.id).map(|r| r.usage).unwrap_or_default()
    };
    let expected = split(&c.ruleset, &card, bill.visit.visit_type, bill.amounts.total_fen, bill.residual(), usage);
    let same = expected.payments == s.payments
        && expected.relief_fen == s.relief_fen
        && expected.patient_fen == s.patient_fen
        && expected.insurance_fen == s.insurance_fen;
    if !same {
        metrics::counter!("settlegate_engine_mismatch_total").increment(1);
        tracing::error!(card = %mask_card(bill.card_id), script = ?s.payments, engine = ?expected.payments,
            "settle script and engine disagree");
    }
    same
}
