//! What one simulated request is, and what the hospitals remember of the answers.
//!
//! - `cards.rs`: [`CardBook`], the run's card population (ids, categories, tags), derived from the scenario and a
//!   run id, so the seed step, the request generator and the audit agree without sharing state.
//! - `bills.rs`: [`BillMaker`], bills drawn from the scenario's distributions; `bodies.rs`: the request bodies.
//! - `ops.rs`: [`Workload::execute`] picks an operation by the scenario's mix, sends it as one hospital, judges the
//!   answer and records it in the [`Ledger`] (`ledger.rs`: answered settlements, reversals, cancellations, unknown
//!   outcomes); `answers.rs` holds the fields of a settlement answer the tool checks; `fields.rs` the optional
//!   version 2 fields (insurance refs, operators), derived from a record rather than stored in it.
//! - `contributions.rs`: the relief office's `contribution` operation (donations, withdrawals, replays, conflicts
//!   to the charity fund, as the admin identity) and the [`ContributionBook`] of what it was answered.

mod answers;
mod bills;
mod bodies;
mod cards;
mod contributions;
mod fields;
mod ledger;
mod ops;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::client::Endpoint;
use crate::scenario::{Op, Scenario};

pub use answers::{Echo, Operator, Payment, SettlementAnswer};
pub use bills::{Bill, BillMaker};
pub use bodies::{settle_body, settle_body_with, Extras};
pub use cards::{mix64, CardBook, CardholderLine};
pub use contributions::{
    contribution_body, contribution_id, judge_answer, parse_contribution_id, without_pool, ContributionBook,
    ContributionKind, ContributionRecord, ContributionState, DONORS, NOTE,
};
pub use fields::{insurance_ref, operator, MAX_REF_CHARS};
pub use ledger::{CancelRecord, CancelState, Ledger, RecordState, RefSent, SettlementRecord};
pub use ops::{CANCEL_REASON, HISTORY_LIMIT, REVERSAL_REASON};

/// The run's request generator and the hospitals' memory.
pub struct Workload {
    /// The operation mix, bills and ruleset of the run.
    pub scenario: Arc<Scenario>,
    /// Run-unique prefix of card ids and hospital settlement ids.
    pub run_id: String,
    /// Local date of the visits (today in the gateway's timezone).
    pub visit_date: String,
    /// The run's cards (the seed step imported the same ones).
    pub cards: CardBook,
    /// Where bills come from.
    pub bills: BillMaker,
    /// One endpoint per simulated hospital, each with its own certificate and pool.
    pub hospitals: Vec<Arc<Endpoint>>,
    /// What the hospitals were answered; locked briefly per completion, never across an `.await`.
    pub ledger: Mutex<Ledger>,
    /// The relief office's identity, for the `contribution` operation (`None`: floor runs, the seed step alone).
    pub admin: Option<Arc<Endpoint>>,
    /// What the relief office's contributions were answered; locked like the ledger.
    pub contributions: Mutex<ContributionBook>,
    /// The target is a floor server: any 2xx is success, answers are not parsed or remembered.
    pub floor: bool,
    /// Remember answered settlements (needed by the audit, retries and reversals).
    pub keep_ledger: bool,
    /// The next `hospital_settlement_id` sequence number, shared by all hospitals.
    seq: AtomicU64,
}

/// What one request came to, for the recorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The operation actually executed: a retry or reversal without a candidate becomes a settle, and is
    /// counted as one.
    pub op: Op,
    /// The error code when the answer was not the expected one (`timeout`, `bad_answer`, a problem `code`, …);
    /// `None` for a success.
    pub error: Option<String>,
    /// A success that is a refusal the request was made to provoke (`insurance_ref_reused`): counted apart.
    pub expected_refusal: Option<&'static str>,
}

impl Outcome {
    /// An outcome that is not an expected refusal.
    pub fn of(op: Op, error: Option<String>) -> Outcome {
        Outcome { op, error, expected_refusal: None }
    }
}

/// The hospital index and sequence number of a `hospital_settlement_id` of run `run_id`
/// (`<run id>-<hospital>-<sequence>`); `None` for any other id.
pub fn parse_hsid(run_id: &str, hsid: &str) -> Option<(usize, u64)> {
    let rest = hsid.strip_prefix(run_id)?.strip_prefix('-')?;
    let (h, n) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(n) {
        return None;
    }
    Some((h.parse().ok()?, n.parse().ok()?))
}

impl Workload {
    pub fn new(
        scenario: Arc<Scenario>,
        run_id: String,
        visit_date: String,
        hospitals: Vec<Arc<Endpoint>>,
        floor: bool,
        keep_ledger: bool,
    ) -> Workload {
        let cards = CardBook::new(&scenario, &run_id);
        let bills = BillMaker::new(&scenario);
        let ledger = Mutex::new(Ledger::new(hospitals.len()));
        Workload {
            scenario,
            run_id,
            visit_date,
            cards,
            bills,
            hospitals,
            ledger,
            admin: None,
            contributions: Mutex::new(ContributionBook::default()),
            floor,
            keep_ledger,
            seq: AtomicU64::new(0),
        }
    }

    /// A fresh `hospital_settlement_id`: `<run id>-<hospital index>-<sequence>`.
    pub fn next_hsid(&self, hospital: usize) -> String {
        self.next_hsid_seq(hospital).0
    }

    /// [`next_hsid`](Workload::next_hsid) and its sequence number.
    pub fn next_hsid_seq(&self, hospital: usize) -> (String, u64) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        (format!("{}-{}-{:08}", self.run_id, hospital, n), n)
    }

    /// Sequence numbers handed out so far: every id of the run is below it.
    pub fn hsids_issued(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// The hospital index and sequence number of one of the run's `hospital_settlement_id`s; `None` for any other id.
    pub fn hsid_seq(&self, hsid: &str) -> Option<(usize, u64)> {
        parse_hsid(&self.run_id, hsid)
    }

    /// The longest `hospital_settlement_id` this run can make (for checking derived fields against API limits).
    pub fn longest_hsid(&self) -> usize {
        format!("{}-{}-{:08}", self.run_id, self.hospitals.len().saturating_sub(1), 99_999_999u64).len()
    }

    /// The insurance ref a record was sent with, if any; `holder_hsid` finds the id of the record whose ref a
    /// `ref_reuse` request reused (by its index in the ledger).
    pub fn ref_sent<'a>(r: &SettlementRecord, holder_hsid: impl FnOnce(u32) -> Option<&'a str>) -> Option<String> {
        match r.insurance_ref {
            RefSent::None => None,
            RefSent::Own => Some(insurance_ref(&r.hsid)),
            RefSent::Holder(i) => holder_hsid(i).map(insurance_ref),
        }
    }

    pub fn year(&self) -> &str {
        &self.visit_date[..4]
    }
}
