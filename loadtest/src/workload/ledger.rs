//! What the hospitals remember of the answers: answered settlements, reversals, cancellations and unknown
//! outcomes, which the audit later checks against the gateway.

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::Rng;

use super::answers::SettlementAnswer;

/// Where one settlement stands, as far as its hospital knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Answered 201 (or resolved by lookup after an unknown outcome).
    Settled,
    /// A reversal is in flight.
    Reversing,
    /// A reversal was answered 200 `reversed`.
    Reversed,
    /// The settle got a timeout / broken connection / 504: resolved by the audit.
    SettleUnknown,
    /// The reversal got a timeout / broken connection / 504: resolved by the audit.
    ReverseUnknown,
    /// Resolved: the settle with an unknown outcome was never applied.
    NotApplied,
}

/// Which `insurance.settlement_ref` a settlement request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefSent {
    /// None.
    None,
    /// Its own: [`insurance_ref`](super::insurance_ref) of its `hospital_settlement_id`.
    Own,
    /// The ref of the record at this index of [`Ledger::records`] (a `ref_reuse` request, which should have been
    /// refused; it is only recorded when it was not, or when its outcome is unknown).
    Holder(u32),
}

/// One settlement a hospital sent, and what it knows of it.
#[derive(Debug, Clone)]
pub struct SettlementRecord {
    /// Index of the hospital that sent it: only that hospital may read, retry or reverse it.
    pub hospital: usize,
    /// Index of the card in the run's [`CardBook`](super::CardBook).
    pub card: u32,
    /// The `hospital_settlement_id` sent.
    pub hsid: String,
    /// The exact body sent: an identical retry resends these bytes.
    pub body: Bytes,
    /// The answer, when one could be read (the money the audit checks the gateway against).
    pub answer: Option<SettlementAnswer>,
    /// Where it stands.
    pub state: RecordState,
    /// `reversed_at` of the reversal answer (the reconciliation day of the reversal).
    pub reversed_at: Option<String>,
    /// The `insurance.settlement_ref` sent.
    pub insurance_ref: RefSent,
    /// The operator sent with the settlement (its number, see [`operator`](super::operator)).
    pub operator: Option<u32>,
    /// The operator sent with the (last) reversal of it: the event's `reversed_by`.
    pub reversal_operator: Option<u32>,
}

/// What a cancel-before-settle was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelState {
    /// Answered 200 `reversed_before_settled`.
    Cancelled,
    /// No definite answer.
    Unknown,
}

/// A reversal sent for a `hospital_settlement_id` that was never settled.
#[derive(Debug, Clone)]
pub struct CancelRecord {
    /// Index of the hospital that sent it.
    pub hospital: usize,
    /// Index of the card it named.
    pub card: u32,
    /// The never-settled `hospital_settlement_id`: it must stay unusable.
    pub hsid: String,
    /// What the cancel was answered.
    pub state: CancelState,
    /// The operator sent with it: the event's `reversed_by`.
    pub operator: Option<u32>,
}

/// What the hospitals know at the end of the run.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Boxed, so that growing the list under the lock moves pointers, not records (a reallocation copying
    /// tens of megabytes while every completion waits for the lock shows up as a latency spike).
    pub records: Vec<Box<SettlementRecord>>,
    /// Per hospital: records in state Settled (candidates for a reversal).
    reversible: Vec<Vec<usize>>,
    /// Per hospital: records with an answer (candidates for an identical retry).
    answered: Vec<Vec<usize>>,
    /// Every cancel-before-settle with a definite or unknown answer (refused ones changed nothing).
    pub cancels: Vec<CancelRecord>,
    /// Sequence numbers (see [`Workload::hsid_seq`](super::Workload::hsid_seq)) of the settles and cancels that were
    /// refused: 8 bytes each, so the audit can say that none of them has an event.
    pub refused: Vec<u64>,
}

impl Ledger {
    pub fn new(hospitals: usize) -> Ledger {
        Ledger { reversible: vec![Vec::new(); hospitals], answered: vec![Vec::new(); hospitals], ..Default::default() }
    }

    pub fn add(&mut self, record: SettlementRecord) -> usize {
        let i = self.records.len();
        if record.state == RecordState::Settled {
            self.reversible[record.hospital].push(i);
            self.answered[record.hospital].push(i);
        }
        self.records.push(Box::new(record));
        i
    }

    pub(super) fn take_reversible(&mut self, hospital: usize, rng: &mut SmallRng) -> Option<usize> {
        let list = &mut self.reversible[hospital];
        if list.is_empty() {
            return None;
        }
        let i = list.swap_remove(rng.random_range(0..list.len()));
        self.records[i].state = RecordState::Reversing;
        Some(i)
    }

    pub(super) fn pick_answered(&self, hospital: usize, rng: &mut SmallRng) -> Option<usize> {
        let list = &self.answered[hospital];
        if list.is_empty() {
            None
        } else {
            Some(list[rng.random_range(0..list.len())])
        }
    }

    /// A standing settlement of any hospital that carries its own insurance ref, taken off the reversal candidates
    /// (so that it stands while another request reuses its ref); [`put_back`](Ledger::put_back) returns it.
    pub(super) fn take_ref_holder(&mut self, rng: &mut SmallRng) -> Option<usize> {
        for _ in 0..8 {
            let h = rng.random_range(0..self.reversible.len());
            let list = &mut self.reversible[h];
            if list.is_empty() {
                continue;
            }
            let pos = rng.random_range(0..list.len());
            let i = list[pos];
            if self.records[i].insurance_ref == RefSent::Own {
                list.swap_remove(pos);
                return Some(i);
            }
        }
        None
    }

    /// The reversal failed definitely (refused, or nothing changed): the settlement can be reversed later.
    pub(super) fn put_back(&mut self, i: usize) {
        let record = &mut self.records[i];
        record.state = RecordState::Settled;
        self.reversible[record.hospital].push(i);
    }
}
