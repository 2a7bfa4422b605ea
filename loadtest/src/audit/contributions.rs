//! Check family 4a: the relief office's contributions of the run (the `contribution` operation), before the pools
//! are compared.
//!
//! - `contribution_outcomes_resolved`: a contribution without an answer (timeout, broken connection, 504) is sent
//!   again with the identical body, which the API makes safe (idempotent by `contribution_id`): 201 or 200 →
//!   accepted, with that answer; 409 `pool_would_overdraw` → refused;
//! - `contribution_refusals_as_documented`: three probes that must change nothing: a withdrawal larger than any
//!   budget (409 `pool_would_overdraw`), one to a program without a pool (422 `not_a_pool`) and one to a program no
//!   ruleset has (404 `not_found`). Their ids join the book as refused, so the events and audit trail checks also
//!   see that no event and no audit entry exists for them.
//!
//! The book, resolved, is what the pools, events and audit trail checks compare with.

use std::collections::BTreeMap;

use http::Method;
use serde::Serialize;

use super::check::Check;
use super::AuditInput;
use crate::client::Payload;
use crate::workload::{
    contribution_body, without_pool, ContributionKind, ContributionRecord, ContributionState, DONORS,
};

/// The largest amount the API takes (2^53 − 1 fen): a withdrawal of it is refused by every pool.
const MAX_FEN: i64 = 9_007_199_254_740_991;
/// A program no ruleset has (ids are `a-z0-9_`).
const NO_SUCH_PROGRAM: &str = "zz_loadtest_no_such_program";

/// What the run's contributions came to (`audit.contributions` in report.json).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContributionsSummary {
    /// The program whose pool they went to.
    pub program: String,
    /// New contributions sent (replays and conflicting reuses are not new ones).
    pub sent: u64,
    /// Accepted donations and withdrawals (after resolution).
    pub donations: u64,
    pub withdrawals: u64,
    /// Refused (`pool_would_overdraw`, other refusals, the probes).
    pub refused: u64,
    /// Replays (the same body again) and conflicting reuses (an earlier id, another amount) sent during the load;
    /// how they were answered is in `operations.contribution` and `expected_refusals`.
    pub replays: u64,
    pub conflicts: u64,
    /// Without an answer during the load, and of those the ones resolved by resending.
    pub unknown: u64,
    pub resolved: u64,
    /// Donations minus withdrawals accepted, fen: what the pool's `contributions_fen` must have moved by.
    pub net_fen: i64,
    /// The same, by donor.
    pub by_donor: BTreeMap<String, i64>,
    /// Some outcome stayed unknown: the net is not exact.
    pub uncertain: bool,
}

fn signed(r: &ContributionRecord) -> i64 {
    match r.kind {
        ContributionKind::Donation => r.amount_fen,
        ContributionKind::Withdrawal => -r.amount_fen,
    }
}

/// Resolves the unknown outcomes, runs the probes, and returns the resolved book with the checks and the summary.
/// A run without the `contribution` operation gets no checks and an empty summary.
pub(super) async fn check(input: &AuditInput) -> (Vec<ContributionRecord>, Vec<Check>, Option<ContributionsSummary>) {
    let w = &input.workload;
    let Some(program) = w.scenario.pool_program().filter(|_| w.scenario.operations.contribution > 0) else {
        return (Vec::new(), Vec::new(), None);
    };
    let year: i32 = input.year.parse().unwrap_or_default();
    let path = |program: &str| format!("/admin/v1/pools/{program}/contributions");
    let mut resolved = Check::new("contribution_outcomes_resolved");
    let unknown: Vec<ContributionRecord> = {
        let book = w.contributions.lock().expect("contributions");
        book.records.iter().filter(|r| r.state == ContributionState::Unknown).cloned().collect()
    };
    let mut summary = ContributionsSummary { program: program.to_string(), ..Default::default() };
    summary.unknown = unknown.len() as u64;
    for r in unknown {
        let body = contribution_body(&w.run_id, year, &r);
        let answer = input.admin.json(Method::POST, &path(program), Some(&body)).await;
        let outcome = match &answer {
            Ok(a) if a.status == 201 || a.status == 200 => {
                Some((ContributionState::Accepted, Some(without_pool(a.body.clone()))))
            }
            Ok(a)
                if a.status == 409
                    && a.body["code"] == "pool_would_overdraw"
                    && r.kind == ContributionKind::Withdrawal =>
            {
                Some((ContributionState::Refused, None))
            }
            _ => None,
        };
        match outcome {
            Some((state, answer)) => {
                w.contributions.lock().expect("contributions").settle(
                    usize::try_from(r.seq).expect("a record index"),
                    state,
                    answer,
                );
                summary.resolved += 1;
                resolved.ok();
            }
            None => resolved.fail(format!("{}: resent, answered {answer:?}", body["contribution_id"])),
        }
    }

    let mut probes = Check::new("contribution_refusals_as_documented");
    for (target, status, code) in [
        (Some(program), 409, "pool_would_overdraw"),
        (
            w.scenario.ruleset.programs.iter().find(|p| p.annual_pool_fen.is_none()).map(|p| p.id.as_str()),
            422,
            "not_a_pool",
        ),
        (Some(NO_SUCH_PROGRAM), 404, "not_found"),
    ] {
        let Some(target) = target else { continue };
        let (i, body) = {
            let mut book = w.contributions.lock().expect("contributions");
            let i = book.open(ContributionKind::Withdrawal, 0, MAX_FEN, false);
            (i, contribution_body(&w.run_id, year, &book.records[i]))
        };
        let answer = input.admin.call(Method::POST, &path(target), Some(Payload::json_of(&body))).await;
        let ok = matches!(&answer, Ok(a) if a.status == status && a.problem_code().as_deref() == Some(code));
        // refused whatever the answer: should it have been accepted, the events and trail checks fail on it
        w.contributions.lock().expect("contributions").settle(i, ContributionState::Refused, None);
        probes.expect(ok, || {
            let got = answer.as_ref().map(|a| (a.status, a.error_code())).map_err(|f| f.code());
            format!("a withdrawal of {MAX_FEN} fen to {target}: {got:?}, expected {status} {code}")
        });
    }

    let records = {
        let book = w.contributions.lock().expect("contributions");
        (summary.replays, summary.conflicts) = (book.replays, book.conflicts);
        book.records.clone()
    };
    summary.sent = records.len() as u64;
    for r in &records {
        match r.state {
            ContributionState::Accepted => {
                match r.kind {
                    ContributionKind::Donation => summary.donations += 1,
                    ContributionKind::Withdrawal => summary.withdrawals += 1,
                }
                summary.net_fen += signed(r);
                *summary.by_donor.entry(DONORS[r.donor as usize % DONORS.len()].to_string()).or_insert(0) += signed(r);
            }
            ContributionState::Refused => summary.refused += 1,
            ContributionState::Unknown => summary.uncertain = true,
        }
    }
    (records, vec![resolved, probes], Some(summary))
}
