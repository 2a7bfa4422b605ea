//! The post-run money audit. It compares what the hospitals were told (the [`Ledger`](crate::workload::Ledger))
//! with what the gateway holds afterwards, one file per family of checks:
//!
//! 1. `resolve.rs`: unknown outcomes (timeouts, broken connections, 504) are resolved by lookup, as a billing
//!    system would;
//! 2. `settlements.rs`: every settlement answered 201/200 exists once, with the answered amounts and payments
//!    (`GET /v1/settlements/{id}` as the same hospital); reversed ones are reversed, the others are not;
//! 3. `cards.rs`: per card and program, usage `paid_fen` / `deductible_met_fen` equal the sums over the card's
//!    answered, not reversed settlements (the run owns its cards), and no card is above the ruleset's annual cap;
//! 4. `contributions.rs`: the relief office's contributions of the run: unknown outcomes resolved by resending,
//!    probes of the documented refusals (`pool_would_overdraw`, `not_a_pool`, `not_found`); then `pools.rs`: no
//!    pool is above its budget, budget = base + net contributions (and, when the run owns the store, pool totals
//!    moved by exactly the run's payments and contributions);
//! 5. `reconciliation.rs`: each hospital's reconciliation totals moved by exactly the sum of its answers
//!    (settlements +, reversals −);
//! 6. `cancels.rs`: cancelled-before-settled ids have no settlement, and a late settle with one is refused 409
//!    `already_reversed`;
//! 7. `events.rs`: the event stream from where it ended before the load: exactly one event per answered
//!    settlement, acknowledged reversal and cancel, with the answered amounts (and the insurance ref and operators
//!    sent); none for a refused request; no `event_id` twice;
//! 8. `history.rs`: the office's history of a sample of cards lists exactly their applied settlements;
//!    `reconciliation.rs` also sends each hospital's day to `POST /v1/reconciliation/check` (when served), and
//!    `settlements.rs` checks that no applied settlement reused a standing settlement's insurance ref;
//! 9. `trail.rs`: the audit trail (`GET /admin/v1/audit`): the whole hash chain verified (`chain.rs`), one entry
//!    per accepted contribution of the run, the `audit.appended` events the events audit read in the chain.
//!
//! `check.rs` is one check's tally, `read.rs` the retried, bounded reads, `tamper.rs` the `--tamper` faults.

mod cancels;
mod cards;
mod chain;
mod check;
mod contributions;
mod events;
mod history;
mod pools;
mod read;
mod reconciliation;
mod resolve;
mod settlements;
mod tamper;
mod trail;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::client::Endpoint;
use crate::scenario::AuditOptions;
use crate::stats::elapsed_ms;
use crate::workload::{RecordState, SettlementRecord, Workload};
use crate::BoxError;

pub use chain::{canonical, seal, sha256_hex, stored, ChainVerifier, Entry as AuditEntry, GENESIS_SHA256};
pub use check::Check;
pub use contributions::ContributionsSummary;
pub use events::{stream_end, EventsStart, EventsSummary};
pub use pools::Pool;
pub use reconciliation::{HospitalDay, Recon};
pub use resolve::Resolution;
pub use tamper::{tamper, tamper_audit, tamper_events, tamper_names, AuditTamper, EventsTamper, Tamper, TamperTarget};
pub use trail::TrailSummary;

/// The audit's outcome (`audit` in report.json): every check, and what it covered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    /// The audit ran (not `--no-audit`, not a floor target, not disabled by the scenario).
    pub enabled: bool,
    /// `None` when the audit did not run.
    pub passed: Option<bool>,
    /// Every check, in the order the families ran; the audit passes when all of them do.
    pub checks: Vec<Check>,
    /// Settlements the audit holds as answered (201/200, or resolved as settled), reversed ones included.
    pub settlements: u64,
    /// Of those, the reversed ones.
    pub reversals: u64,
    /// Cancel-before-settle requests that got an answer or an unknown outcome.
    pub cancels: u64,
    /// Cards whose usage the audit read.
    pub cards: u64,
    /// Settles and cancels that were refused (none of them may have an event).
    pub refused: u64,
    /// What the events audit read; absent when the audit did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsSummary>,
    /// What the run's contributions came to; absent when the run had none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<ContributionsSummary>,
    /// What the audit trail check read; absent when it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_trail: Option<TrailSummary>,
    /// `POST /v1/reconciliation/check` at the end: `match`, `mismatch`, `not served` (404) or `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciliation_check: Option<String>,
    /// How the unknown outcomes turned out.
    pub resolution: Resolution,
    /// The `--tamper` fault, when one was injected: the audit is then expected to fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tamper: Option<Tamper>,
    /// The `--tamper-events` fault, when one was injected: the events audit is then expected to fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tamper_events: Option<EventsTamper>,
    /// The `--tamper-audit` fault, when one was injected: the audit trail check is then expected to fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tamper_audit: Option<AuditTamper>,
    /// How long the audit took, milliseconds (it reads every answered settlement once).
    pub duration_ms: u64,
    /// Why the audit could not run at all, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AuditReport {
    /// The report of an audit that did not run: no checks, `passed: None`.
    pub fn disabled() -> AuditReport {
        AuditReport::default()
    }
}

/// Shared totals read before the run, so the audit can compare deltas.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Each hospital's totals on each day the run may touch (today and tomorrow: a run can cross midnight).
    pub reconciliation: BTreeMap<HospitalDay, Recon>,
    /// Each program's pool this year: on an exclusive store, pool paid totals must move by exactly the answers.
    pub pools: BTreeMap<String, Pool>,
    /// Where the event stream ended before the load (the events audit reads from there).
    pub events: EventsStart,
}

/// Reads the shared totals the audit compares deltas of, and (with `events`) where the event stream ends.
pub async fn snapshot(
    hospitals: &[Arc<Endpoint>],
    admin: &Endpoint,
    dates: &[String],
    year: &str,
    events: bool,
) -> Result<Snapshot, BoxError> {
    let mut snap = Snapshot::default();
    for (h, endpoint) in hospitals.iter().enumerate() {
        for date in dates {
            let day = HospitalDay { hospital: h, date: date.clone() };
            snap.reconciliation.insert(day, reconciliation::read_recon(endpoint, date).await?);
        }
    }
    snap.pools = pools::read_pools(admin, year).await?;
    if events {
        snap.events = stream_end(admin).await?;
    }
    Ok(snap)
}

/// What the audit needs from the run.
pub struct AuditInput {
    /// The run's cards, hospitals and ledger: what the hospitals were told.
    pub workload: Arc<Workload>,
    /// The relief office identity: reads card usage and pools (admin API).
    pub admin: Arc<Endpoint>,
    /// The ruleset version the seed step published: every answer must have used it.
    pub ruleset_version: u64,
    /// The usage and pool year, `YYYY` (of the visit date).
    pub year: String,
    /// The shared totals read before the load, to compare deltas against.
    pub before: Snapshot,
    /// The scenario's `[audit]`: concurrency, exclusive store, cancel sample size.
    pub options: AuditOptions,
    /// The `--tamper` fault, if one was injected (its card is read even without a settlement).
    pub tamper: Option<Tamper>,
}

/// An answered amount (u64 fen) as the signed fen of the gateway's totals. The API bounds amounts by 2^53 − 1, so
/// a real answer always converts; an absurd one saturates at i64::MAX, and then fails its check, instead of wrapping
/// into a negative payment as `as` would.
fn signed_fen(fen: u64) -> i64 {
    i64::try_from(fen).unwrap_or(i64::MAX)
}

/// Runs every check family in order and tallies them into one report.
pub async fn run(input: AuditInput) -> AuditReport {
    let t0 = Instant::now();
    let mut report = AuditReport::disabled();
    report.enabled = true;
    report.tamper = input.tamper.clone();
    let (records, cancels, refused) = {
        let ledger = input.workload.ledger.lock().expect("ledger");
        (
            ledger.records.iter().map(|r| (**r).clone()).collect::<Vec<_>>(),
            ledger.cancels.clone(),
            ledger.refused.clone(),
        )
    };
    let w = &input.workload;
    let concurrency = input.options.concurrency;

    // 1. Unknown outcomes.
    let mut resolved_check = Check::new("unknown_outcomes_resolved");
    let records = resolve::resolve(records, w, concurrency, &mut report.resolution, &mut resolved_check).await;
    // Indices of `records` stay those of the ledger (a reused insurance ref names its holder by index).
    let settled: Vec<&SettlementRecord> = records
        .iter()
        .filter(|r| matches!(r.state, RecordState::Settled | RecordState::Reversed) && r.answer.is_some())
        .collect();
    report.settlements = settled.len() as u64;
    report.reversals = settled.iter().filter(|r| r.state == RecordState::Reversed).count() as u64;
    report.cancels = cancels.len() as u64;
    report.refused = refused.len() as u64;
    let mut checks = vec![resolved_check];
    checks.extend(settlements::check_answers(&settled, input.ruleset_version));
    checks.push(settlements::check_refs(&records));
    checks.extend(settlements::check_stored(&settled, w, concurrency).await);
    let touched = cards::touched(&settled, w, input.tamper.as_ref());
    report.cards = touched.len() as u64;
    checks.extend(cards::check(&input, &settled, &touched).await);
    if input.options.max_history_checks > 0 {
        checks.push(history::check(&input, &settled, &touched).await);
    }
    let (contribution_records, contribution_checks, contributions) = contributions::check(&input).await;
    checks.extend(contribution_checks);
    checks.extend(pools::check(&input, &settled, contributions.as_ref()).await);
    checks.push(reconciliation::check(&input, &settled).await);
    if input.options.reconciliation_check {
        let (check, outcome) = reconciliation::check_endpoint(&input, &settled).await;
        checks.push(check);
        report.reconciliation_check = Some(outcome);
    } else {
        report.reconciliation_check = Some("skipped".into());
    }
    checks.push(cancels::check(&input, &cancels).await);
    // Last, so that it also sees any event of the audit's own requests (the late settles must have none).
    let scenario = &w.scenario;
    let exclusive = input.options.exclusive_store;
    let pool_programs: Vec<String> =
        scenario.ruleset.programs.iter().filter(|p| p.annual_pool_fen.is_some()).map(|p| p.id.clone()).collect();
    let year: i64 = input.year.parse().unwrap_or_default();
    let mut refunds: BTreeMap<String, u64> = BTreeMap::new();
    for r in settled.iter().filter(|r| r.state == RecordState::Reversed) {
        for p in r.answer.as_ref().expect("answered").payments.iter().filter(|p| p.paid_fen > 0) {
            *refunds.entry(p.program.clone()).or_insert(0) += 1;
        }
    }
    let pool_events =
        events::PoolEvents::new(&w.run_id, &contribution_records, pool_programs, refunds, year, exclusive);
    let (event_checks, summary, appended) =
        events::check(&input.admin, w, &input.before.events, &records, &cancels, &refused, Some(pool_events)).await;
    checks.extend(event_checks);
    report.events = Some(summary);
    // After the events: it also finds their audit.appended entries in the chain.
    if input.options.audit_chain {
        let program = scenario.pool_program().unwrap_or_default();
        let trail = trail::Trail::new(&w.run_id, &scenario.admin, program, &contribution_records, appended, exclusive);
        let (trail_checks, trail_summary) = trail::check(&input.admin, trail).await;
        checks.extend(trail_checks);
        report.audit_trail = Some(trail_summary);
    }
    report.contributions = contributions;
    report.checks = checks;
    report.passed = Some(report.checks.iter().all(|c| c.passed));
    report.duration_ms = elapsed_ms(t0);
    report
}
