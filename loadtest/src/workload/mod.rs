//! What one simulated request is, and what the hospitals remember of the answers.
//!
//! - `cards.rs`: [`CardBook`], the run's card population (ids, categories, tags), derived from the scenario and a
//!   run id, so the seed step, the request generator and the audit agree without sharing state.
//! - `bills.rs`: [`BillMaker`], bills drawn from the scenario's distributions; `bodies.rs`: the request bodies.
//! - `ops.rs`: [`Workload::execute`] picks an operation by the scenario's mix, sends it as one hospital, judges the
//!   answer and records it in the [`Ledger`] (`ledger.rs`: answered settlements, reversals, cancellations, unknown
//!   outcomes); `answers.rs` holds the fields of a settlement answer the tool checks.

mod answers;
mod bills;
mod bodies;
mod cards;
mod ledger;
mod ops;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::client::Endpoint;
use crate::scenario::{Op, Scenario};

pub use answers::{Payment, SettlementAnswer};
pub use bills::{Bill, BillMaker};
pub use bodies::settle_body;
pub use cards::{mix64, CardBook, CardholderLine};
pub use ledger::{CancelRecord, CancelState, Ledger, RecordState, SettlementRecord};

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
            floor,
            keep_ledger,
            seq: AtomicU64::new(0),
        }
    }

    /// A fresh `hospital_settlement_id`: `<run id>-<hospital index>-<sequence>`.
    pub fn next_hsid(&self, hospital: usize) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}-{:08}", self.run_id, hospital, n)
    }

    pub fn year(&self) -> &str {
        &self.visit_date[..4]
    }
}
