//! What one simulated request is, and what the hospitals remember of the answers.
//!
//! - [`CardBook`]: the run's card population (ids, categories, tags), derived from the scenario and a run id,
//!   so the seed step, the request generator and the audit agree without sharing state.
//! - [`BillMaker`]: bills drawn from the scenario's distributions.
//! - [`Workload::execute`]: picks an operation by the scenario's mix, sends it as one hospital, judges the
//!   answer and records it in the [`Ledger`] (answered settlements, reversals, cancellations, unknown outcomes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Method;
use rand::rngs::SmallRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::client::{Answer, Endpoint, Failure, JSON};
use crate::scenario::{BillProfile, Op, Scenario};

/// A 64-bit mixer (splitmix64): a deterministic "random" attribute per card index.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// The run's cardholders: `<prefix>-<index:07>`; category and tags are a pure function of the index.
#[derive(Debug, Clone)]
pub struct CardBook {
    pub prefix: String,
    pub count: u32,
    categories: Vec<(String, u64)>,
    total_weight: u64,
    tags: Vec<(String, u32)>,
}

/// One line of the cardholder import (RULES.md fields).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct CardholderLine {
    pub card_id: String,
    pub category: String,
    pub valid_from: String,
    pub valid_until: String,
    pub status: String,
    pub tags: Vec<String>,
}

impl CardBook {
    pub fn new(scenario: &Scenario, prefix: &str) -> CardBook {
        let categories: Vec<(String, u64)> = scenario
            .cardholders
            .categories
            .iter()
            .filter(|(_, &w)| w > 0)
            .map(|(c, &w)| (c.clone(), w as u64))
            .collect();
        let total_weight = categories.iter().map(|(_, w)| w).sum();
        let tags = scenario.cardholders.tags_percent.iter().map(|(t, &p)| (t.clone(), p)).collect();
        CardBook { prefix: prefix.to_string(), count: scenario.cardholders.count, categories, total_weight, tags }
    }

    pub fn card_id(&self, index: u32) -> String {
        format!("{}-{:07}", self.prefix, index)
    }

    pub fn index_of(&self, card_id: &str) -> Option<u32> {
        card_id.strip_prefix(&self.prefix)?.strip_prefix('-')?.parse().ok()
    }

    pub fn category(&self, index: u32) -> &str {
        let mut x = mix64(index as u64 ^ 0xCA7E_6021) % self.total_weight;
        for (category, weight) in &self.categories {
            if x < *weight {
                return category;
            }
            x -= weight;
        }
        &self.categories[0].0
    }

    pub fn tags(&self, index: u32) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(tag, pct)| mix64(index as u64 ^ hash_str(tag)) % 100 < *pct as u64)
            .map(|(tag, _)| tag.clone())
            .collect()
    }

    /// The import line of one card: active from January 1st of `year` to December 31st of the next year.
    pub fn line(&self, index: u32, year: i32) -> CardholderLine {
        CardholderLine {
            card_id: self.card_id(index),
            category: self.category(index).to_string(),
            valid_from: format!("{year}-01-01"),
            valid_until: format!("{}-12-31", year + 1),
            status: "active".into(),
            tags: self.tags(index),
        }
    }
}

/// A bill as the hospital sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bill {
    pub visit_type: &'static str,
    pub total_fen: u64,
    pub in_scope_fen: u64,
    pub pre_self_pay_fen: u64,
    pub over_limit_fen: u64,
    pub self_pay_fen: u64,
    pub basic_fen: u64,
    pub critical_illness_fen: u64,
}

fn visit_type_static(s: &str) -> &'static str {
    match s {
        "outpatient" => "outpatient",
        "chronic" => "chronic",
        _ => "inpatient",
    }
}

#[derive(Debug, Clone)]
pub struct BillMaker {
    profiles: Vec<BillProfile>,
    total_weight: u64,
}

fn share(rng: &mut SmallRng, amount: u64, pct: [u32; 2]) -> u64 {
    let fraction =
        if pct[0] == pct[1] { pct[0] as f64 } else { rng.random_range(pct[0] as f64..pct[1] as f64) } / 100.0;
    ((amount as f64) * fraction).floor() as u64
}

impl BillMaker {
    pub fn new(scenario: &Scenario) -> BillMaker {
        let profiles: Vec<BillProfile> = scenario.bills.iter().filter(|b| b.weight > 0).cloned().collect();
        let total_weight = profiles.iter().map(|b| b.weight as u64).sum();
        BillMaker { profiles, total_weight }
    }

    pub fn make(&self, rng: &mut SmallRng) -> Bill {
        let mut x = rng.random_range(0..self.total_weight);
        let mut profile = &self.profiles[0];
        for p in &self.profiles {
            if x < p.weight as u64 {
                profile = p;
                break;
            }
            x -= p.weight as u64;
        }
        let (min, max) = (profile.total_fen.min, profile.total_fen.max);
        let total_fen = if min == max {
            min
        } else {
            let ln = rng.random_range((min as f64).ln()..(max as f64).ln());
            (ln.exp().round() as u64).clamp(min, max)
        };
        let in_scope_fen = share(rng, total_fen, profile.in_scope_pct);
        let pre_self_pay_fen = share(rng, total_fen, profile.pre_self_pay_pct).min(total_fen - in_scope_fen);
        let over_limit_fen =
            share(rng, total_fen, profile.over_limit_pct).min(total_fen - in_scope_fen - pre_self_pay_fen);
        let self_pay_fen = total_fen - in_scope_fen - pre_self_pay_fen - over_limit_fen;
        let insurance = share(rng, in_scope_fen, profile.insurance_pct);
        let critical_illness_fen = share(rng, insurance, profile.critical_illness_share_pct);
        Bill {
            visit_type: visit_type_static(&profile.visit_type),
            total_fen,
            in_scope_fen,
            pre_self_pay_fen,
            over_limit_fen,
            self_pay_fen,
            basic_fen: insurance - critical_illness_fen,
            critical_illness_fen,
        }
    }
}

#[derive(Serialize)]
struct VisitBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    date: &'a str,
}

#[derive(Serialize)]
struct AmountsBody {
    total_fen: u64,
    in_scope_fen: u64,
    pre_self_pay_fen: u64,
    over_limit_fen: u64,
    self_pay_fen: u64,
}

#[derive(Serialize)]
struct InsuranceBody {
    basic_fen: u64,
    critical_illness_fen: u64,
    other_fen: u64,
}

#[derive(Serialize)]
struct SettleBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    hospital_settlement_id: Option<&'a str>,
    card_id: &'a str,
    visit: VisitBody<'a>,
    amounts: AmountsBody,
    insurance: InsuranceBody,
}

/// The JSON body of a settlement (with an id) or a quote (without).
pub fn settle_body(hsid: Option<&str>, card_id: &str, date: &str, bill: &Bill) -> Bytes {
    let body = SettleBody {
        hospital_settlement_id: hsid,
        card_id,
        visit: VisitBody { kind: bill.visit_type, date },
        amounts: AmountsBody {
            total_fen: bill.total_fen,
            in_scope_fen: bill.in_scope_fen,
            pre_self_pay_fen: bill.pre_self_pay_fen,
            over_limit_fen: bill.over_limit_fen,
            self_pay_fen: bill.self_pay_fen,
        },
        insurance: InsuranceBody {
            basic_fen: bill.basic_fen,
            critical_illness_fen: bill.critical_illness_fen,
            other_fen: 0,
        },
    };
    Bytes::from(serde_json::to_vec(&body).expect("json"))
}

/// One program's line of a settlement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payment {
    pub program: String,
    pub paid_fen: u64,
    pub deductible_applied_fen: u64,
    pub capped_by: Option<String>,
}

/// The fields of a settlement answer the tool checks (201, replay 200, reversal 200, GET).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettlementAnswer {
    pub settlement_id: String,
    pub hospital_settlement_id: String,
    pub status: String,
    pub card_id: String,
    pub ruleset_version: u64,
    pub total_fen: u64,
    pub insurance_fen: u64,
    pub relief_fen: u64,
    pub patient_fen: u64,
    pub payments: Vec<Payment>,
    #[serde(default)]
    pub settled_at: Option<String>,
    #[serde(default)]
    pub reversed_at: Option<String>,
}

impl SettlementAnswer {
    /// RULES.md: insurance + relief + patient = total; relief = sum of payments.
    pub fn invariant_holds(&self) -> bool {
        let paid: u64 = self.payments.iter().map(|p| p.paid_fen).sum();
        self.insurance_fen.checked_add(self.relief_fen).and_then(|s| s.checked_add(self.patient_fen))
            == Some(self.total_fen)
            && paid == self.relief_fen
    }

    /// The same money: everything but status and timestamps.
    pub fn same_money(&self, other: &SettlementAnswer) -> bool {
        self.settlement_id == other.settlement_id
            && self.hospital_settlement_id == other.hospital_settlement_id
            && self.card_id == other.card_id
            && self.ruleset_version == other.ruleset_version
            && self.total_fen == other.total_fen
            && self.insurance_fen == other.insurance_fen
            && self.relief_fen == other.relief_fen
            && self.patient_fen == other.patient_fen
            && self.payments == other.payments
    }
}

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

#[derive(Debug, Clone)]
pub struct SettlementRecord {
    pub hospital: usize,
    pub card: u32,
    pub hsid: String,
    pub body: Bytes,
    pub answer: Option<SettlementAnswer>,
    pub state: RecordState,
    /// `reversed_at` of the reversal answer (the reconciliation day of the reversal).
    pub reversed_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelState {
    /// Answered 200 `reversed_before_settled`.
    Cancelled,
    /// No definite answer.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct CancelRecord {
    pub hospital: usize,
    pub card: u32,
    pub hsid: String,
    pub state: CancelState,
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
    pub cancels: Vec<CancelRecord>,
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

    fn take_reversible(&mut self, hospital: usize, rng: &mut SmallRng) -> Option<usize> {
        let list = &mut self.reversible[hospital];
        if list.is_empty() {
            return None;
        }
        let i = list.swap_remove(rng.random_range(0..list.len()));
        self.records[i].state = RecordState::Reversing;
        Some(i)
    }

    fn pick_answered(&self, hospital: usize, rng: &mut SmallRng) -> Option<usize> {
        let list = &self.answered[hospital];
        if list.is_empty() {
            None
        } else {
            Some(list[rng.random_range(0..list.len())])
        }
    }

    /// The reversal failed definitely (refused, or nothing changed): the settlement can be reversed later.
    fn put_back(&mut self, i: usize) {
        let record = &mut self.records[i];
        record.state = RecordState::Settled;
        self.reversible[record.hospital].push(i);
    }
}

/// The run's request generator and the hospitals' memory.
pub struct Workload {
    pub scenario: Arc<Scenario>,
    /// Run-unique prefix of card ids and hospital settlement ids.
    pub run_id: String,
    /// Local date of the visits (today in the gateway's timezone).
    pub visit_date: String,
    pub cards: CardBook,
    pub bills: BillMaker,
    pub hospitals: Vec<Arc<Endpoint>>,
    pub ledger: Mutex<Ledger>,
    /// The target is a floor server: any 2xx is success, answers are not parsed or remembered.
    pub floor: bool,
    /// Remember answered settlements (needed by the audit, retries and reversals).
    pub keep_ledger: bool,
    seq: AtomicU64,
}

/// An outcome: the operation actually executed (a retry or reversal without a candidate becomes a settle)
/// and the error code when the answer was not the expected one.
pub type Outcome = (Op, Option<String>);

fn is_unknown_outcome(result: &Result<Answer, Failure>) -> bool {
    match result {
        Err(Failure::Timeout) | Err(Failure::Io(_)) => true,
        Err(Failure::Connect(_)) => false,
        Ok(answer) => answer.status == 504,
    }
}

fn failure_code(result: &Result<Answer, Failure>) -> String {
    match result {
        Err(f) => f.code().to_string(),
        Ok(a) => a.error_code(),
    }
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

    /// Sends one request chosen by the scenario's mix; never panics on a bad answer, only counts it.
    pub async fn execute(&self, rng: &mut SmallRng) -> Outcome {
        let op = self.scenario.operations.pick(rng.random_range(0..self.scenario.operations.total()));
        let hospital = rng.random_range(0..self.hospitals.len());
        let card = rng.random_range(0..self.cards.count);
        match op {
            Op::Eligibility => self.eligibility(hospital, card, rng).await,
            Op::Quote => self.quote(hospital, card, rng).await,
            Op::Settle => self.settle(hospital, card, rng).await,
            Op::Retry => self.retry(hospital, card, rng).await,
            Op::Reversal => self.reversal(hospital, card, rng).await,
            Op::Cancel => self.cancel(hospital, card).await,
        }
    }

    fn ok_if(&self, result: &Result<Answer, Failure>, expected: u16) -> Option<String> {
        match result {
            Ok(a) if self.floor && (200..300).contains(&a.status) => None,
            Ok(a) if a.status == expected => None,
            _ => Some(failure_code(result)),
        }
    }

    async fn eligibility(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let bill = self.bills.make(rng);
        let body = serde_json::json!({
            "card_id": self.cards.card_id(card),
            "visit": {"type": bill.visit_type, "date": self.visit_date},
        });
        let body = Bytes::from(serde_json::to_vec(&body).expect("json"));
        let result = self.hospitals[hospital].call(Method::POST, "/v1/eligibility", Some((body, JSON))).await;
        let mut error = self.ok_if(&result, 200);
        if error.is_none() && !self.floor {
            #[derive(Deserialize)]
            struct Eligibility {
                eligible: bool,
            }
            match serde_json::from_slice::<Eligibility>(&result.as_ref().expect("ok").body) {
                Ok(e) if e.eligible => {}
                Ok(_) => error = Some("ineligible".into()),
                Err(_) => error = Some("bad_answer".into()),
            }
        }
        (Op::Eligibility, error)
    }

    async fn quote(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let bill = self.bills.make(rng);
        let body = settle_body(None, &self.cards.card_id(card), &self.visit_date, &bill);
        let result = self.hospitals[hospital].call(Method::POST, "/v1/settlements/quote", Some((body, JSON))).await;
        let mut error = self.ok_if(&result, 200);
        if error.is_none() && !self.floor {
            match serde_json::from_slice::<serde_json::Value>(&result.as_ref().expect("ok").body) {
                Ok(v) if v["status"] == "quote" => {}
                _ => error = Some("bad_answer".into()),
            }
        }
        (Op::Quote, error)
    }

    async fn settle(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let bill = self.bills.make(rng);
        let hsid = self.next_hsid(hospital);
        let card_id = self.cards.card_id(card);
        let body = settle_body(Some(&hsid), &card_id, &self.visit_date, &bill);
        let result = self.hospitals[hospital].call(Method::POST, "/v1/settlements", Some((body.clone(), JSON))).await;
        if self.floor {
            return (Op::Settle, self.ok_if(&result, 201));
        }
        let mut record = SettlementRecord {
            hospital,
            card,
            hsid: hsid.clone(),
            body,
            answer: None,
            state: RecordState::SettleUnknown,
            reversed_at: None,
        };
        let error = match &result {
            Ok(a) if a.status == 201 => match serde_json::from_slice::<SettlementAnswer>(&a.body) {
                Ok(answer) => {
                    let error = if answer.status != "settled"
                        || answer.hospital_settlement_id != hsid
                        || answer.card_id != card_id
                    {
                        Some("bad_answer".to_string())
                    } else if !answer.invariant_holds() {
                        Some("invariant".to_string())
                    } else {
                        None
                    };
                    record.answer = Some(answer);
                    record.state = RecordState::Settled;
                    error
                }
                // Applied, but we cannot read what: the audit resolves it by lookup.
                Err(_) => Some("bad_answer".to_string()),
            },
            _ if is_unknown_outcome(&result) => Some(failure_code(&result)),
            _ => return (Op::Settle, Some(failure_code(&result))), // refused: nothing stored
        };
        if self.keep_ledger {
            self.ledger.lock().expect("ledger").add(record);
        }
        (Op::Settle, error)
    }

    async fn retry(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let picked = if self.keep_ledger {
            let ledger = self.ledger.lock().expect("ledger");
            ledger.pick_answered(hospital, rng).map(|i| {
                let r = &ledger.records[i];
                (i, r.body.clone(), r.answer.clone().expect("answered"))
            })
        } else {
            None
        };
        let Some((i, body, original)) = picked else {
            return self.settle(hospital, card, rng).await;
        };
        let result = self.hospitals[hospital].call(Method::POST, "/v1/settlements", Some((body, JSON))).await;
        let mut error = self.ok_if(&result, 200);
        if error.is_none() {
            let answer = result.as_ref().expect("ok");
            error = match serde_json::from_slice::<SettlementAnswer>(&answer.body) {
                Ok(replayed) => {
                    let state_now = self.ledger.lock().expect("ledger").records[i].state;
                    let status_ok = match state_now {
                        RecordState::Settled => replayed.status == "settled",
                        _ => replayed.status == "settled" || replayed.status == "reversed",
                    };
                    if !answer.replayed {
                        Some("replay_header_missing".into())
                    } else if !replayed.same_money(&original) || !status_ok {
                        Some("replay_mismatch".into())
                    } else {
                        None
                    }
                }
                Err(_) => Some("bad_answer".into()),
            };
        }
        (Op::Retry, error)
    }

    async fn reversal(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let picked = if self.keep_ledger {
            let mut ledger = self.ledger.lock().expect("ledger");
            ledger.take_reversible(hospital, rng).map(|i| {
                let r = &ledger.records[i];
                (i, r.hsid.clone(), self.cards.card_id(r.card), r.answer.clone().expect("answered"))
            })
        } else {
            None
        };
        let Some((i, hsid, card_id, original)) = picked else {
            return self.settle(hospital, card, rng).await;
        };
        let body = serde_json::json!({"card_id": card_id, "hospital_settlement_id": hsid, "reason": "loadtest: visit cancelled"});
        let body = Bytes::from(serde_json::to_vec(&body).expect("json"));
        let result = self.hospitals[hospital].call(Method::POST, "/v1/reversals", Some((body, JSON))).await;
        let mut ledger = self.ledger.lock().expect("ledger");
        let error = match &result {
            Ok(a) if a.status == 200 => match serde_json::from_slice::<SettlementAnswer>(&a.body) {
                Ok(reversed) if reversed.status == "reversed" && reversed.same_money(&original) => {
                    ledger.records[i].state = RecordState::Reversed;
                    ledger.records[i].reversed_at = reversed.reversed_at.clone();
                    None
                }
                _ => {
                    // 200 means reversed, whatever the body says; the audit reads the truth.
                    ledger.records[i].state = RecordState::ReverseUnknown;
                    Some("bad_answer".into())
                }
            },
            _ if is_unknown_outcome(&result) => {
                ledger.records[i].state = RecordState::ReverseUnknown;
                Some(failure_code(&result))
            }
            _ => {
                ledger.put_back(i);
                Some(failure_code(&result))
            }
        };
        (Op::Reversal, error)
    }

    async fn cancel(&self, hospital: usize, card: u32) -> Outcome {
        let hsid = self.next_hsid(hospital);
        let body = serde_json::json!({"card_id": self.cards.card_id(card), "hospital_settlement_id": hsid, "reason": "loadtest: cancel before settle"});
        let body = Bytes::from(serde_json::to_vec(&body).expect("json"));
        let result = self.hospitals[hospital].call(Method::POST, "/v1/reversals", Some((body, JSON))).await;
        if self.floor {
            return (Op::Cancel, self.ok_if(&result, 200));
        }
        let (state, error) = match &result {
            Ok(a) if a.status == 200 => match serde_json::from_slice::<serde_json::Value>(&a.body) {
                Ok(v) if v["status"] == "reversed_before_settled" => (Some(CancelState::Cancelled), None),
                _ => (Some(CancelState::Unknown), Some("bad_answer".to_string())),
            },
            _ if is_unknown_outcome(&result) => (Some(CancelState::Unknown), Some(failure_code(&result))),
            _ => (None, Some(failure_code(&result))),
        };
        if let (Some(state), true) = (state, self.keep_ledger) {
            self.ledger.lock().expect("ledger").cancels.push(CancelRecord { hospital, card, hsid, state });
        }
        (Op::Cancel, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn scenario() -> Scenario {
        Scenario::from_toml(include_str!("../scenarios/smoke.toml")).unwrap()
    }

    #[test]
    fn card_book_is_deterministic_and_follows_the_mix() {
        let s = scenario();
        let book = CardBook::new(&s, "LTabc");
        assert_eq!(book.card_id(42), "LTabc-0000042");
        assert_eq!(book.index_of("LTabc-0000042"), Some(42));
        assert_eq!(book.index_of("LTabd-0000042"), None);
        let mut counts = std::collections::BTreeMap::new();
        let mut tagged = 0;
        for i in 0..20_000 {
            *counts.entry(book.category(i).to_string()).or_insert(0u32) += 1;
            tagged += book.tags(i).len();
        }
        // weights 10/40/30/20 of 100
        assert!((1600..2400).contains(&counts["tekun"]), "{counts:?}");
        assert!((7400..8600).contains(&counts["dibao"]), "{counts:?}");
        assert!((3600..4400).contains(&tagged), "20 % elderly_80: {tagged}");
        assert_eq!(book.category(7), CardBook::new(&s, "LTother").category(7));
        let line = book.line(3, 2026);
        assert_eq!(line.valid_from, "2026-01-01");
        assert_eq!(line.valid_until, "2027-12-31");
        assert_eq!(line.status, "active");
    }

    #[test]
    fn bills_add_up_and_respect_insurance() {
        let s = scenario();
        let maker = BillMaker::new(&s);
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let b = maker.make(&mut rng);
            assert_eq!(b.total_fen, b.in_scope_fen + b.pre_self_pay_fen + b.over_limit_fen + b.self_pay_fen, "{b:?}");
            assert!(b.basic_fen + b.critical_illness_fen <= b.in_scope_fen, "{b:?}");
            assert!(b.total_fen >= 2000 && b.total_fen <= 5_000_000, "{b:?}");
        }
    }

    #[test]
    fn settle_body_has_the_api_shape() {
        let bill = Bill {
            visit_type: "inpatient",
            total_fen: 2_000_000,
            in_scope_fen: 1_799_999,
            pre_self_pay_fen: 30_001,
            over_limit_fen: 20_000,
            self_pay_fen: 150_000,
            basic_fen: 1_203_999,
            critical_illness_fen: 94_900,
        };
        let v: serde_json::Value =
            serde_json::from_slice(&settle_body(Some("H-1"), "C1", "2026-11-29", &bill)).unwrap();
        assert_eq!(v["hospital_settlement_id"], "H-1");
        assert_eq!(v["visit"]["type"], "inpatient");
        assert_eq!(v["amounts"]["in_scope_fen"], 1_799_999);
        assert_eq!(v["insurance"]["critical_illness_fen"], 94_900);
        let q: serde_json::Value = serde_json::from_slice(&settle_body(None, "C1", "2026-11-29", &bill)).unwrap();
        assert!(q.get("hospital_settlement_id").is_none());
    }

    #[test]
    fn invariant_check() {
        let mut a = SettlementAnswer {
            settlement_id: "s".into(),
            hospital_settlement_id: "h".into(),
            status: "settled".into(),
            card_id: "C1".into(),
            ruleset_version: 1,
            total_fen: 2_000_000,
            insurance_fen: 1_298_899,
            relief_fen: 350_000,
            patient_fen: 351_101,
            payments: vec![
                Payment { program: "a".into(), paid_fen: 300_000, deductible_applied_fen: 0, capped_by: None },
                Payment { program: "b".into(), paid_fen: 50_000, deductible_applied_fen: 0, capped_by: None },
            ],
            settled_at: None,
            reversed_at: None,
        };
        assert!(a.invariant_holds());
        a.patient_fen += 1;
        assert!(!a.invariant_holds());
    }
}
