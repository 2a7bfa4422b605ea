//! The operations one simulated request can be: each sends as one hospital, judges the answer and records it
//! in the ledger.

use http::Method;
use rand::rngs::SmallRng;
use rand::Rng;
use serde::Deserialize;

use super::answers::SettlementAnswer;
use super::bodies::settle_body;
use super::ledger::{CancelRecord, CancelState, RecordState, SettlementRecord};
use super::{Outcome, Workload};
use crate::client::{Answer, Failure, Payload};
use crate::scenario::Op;

fn is_unknown_outcome(result: &Result<Answer, Failure>) -> bool {
    match result {
        Err(Failure::Timeout | Failure::Io(_)) => true,
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
        let result =
            self.hospitals[hospital].call(Method::POST, "/v1/eligibility", Some(Payload::json_of(&body))).await;
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
        Outcome { op: Op::Eligibility, error }
    }

    async fn quote(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let bill = self.bills.make(rng);
        let body = settle_body(None, &self.cards.card_id(card), &self.visit_date, &bill);
        let result =
            self.hospitals[hospital].call(Method::POST, "/v1/settlements/quote", Some(Payload::json(body))).await;
        let mut error = self.ok_if(&result, 200);
        if error.is_none() && !self.floor {
            match serde_json::from_slice::<serde_json::Value>(&result.as_ref().expect("ok").body) {
                Ok(v) if v["status"] == "quote" => {}
                _ => error = Some("bad_answer".into()),
            }
        }
        Outcome { op: Op::Quote, error }
    }

    async fn settle(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let bill = self.bills.make(rng);
        let hsid = self.next_hsid(hospital);
        let card_id = self.cards.card_id(card);
        let body = settle_body(Some(&hsid), &card_id, &self.visit_date, &bill);
        let result =
            self.hospitals[hospital].call(Method::POST, "/v1/settlements", Some(Payload::json(body.clone()))).await;
        if self.floor {
            return Outcome { op: Op::Settle, error: self.ok_if(&result, 201) };
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
            _ => return Outcome { op: Op::Settle, error: Some(failure_code(&result)) }, // refused: nothing stored
        };
        if self.keep_ledger {
            self.ledger.lock().expect("ledger").add(record);
        }
        Outcome { op: Op::Settle, error }
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
        let result = self.hospitals[hospital].call(Method::POST, "/v1/settlements", Some(Payload::json(body))).await;
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
        Outcome { op: Op::Retry, error }
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
        let result = self.hospitals[hospital].call(Method::POST, "/v1/reversals", Some(Payload::json_of(&body))).await;
        let mut ledger = self.ledger.lock().expect("ledger");
        let error = match &result {
            Ok(a) if a.status == 200 => match serde_json::from_slice::<SettlementAnswer>(&a.body) {
                Ok(reversed) if reversed.status == "reversed" && reversed.same_money(&original) => {
                    ledger.records[i].state = RecordState::Reversed;
                    ledger.records[i].reversed_at = reversed.reversed_at;
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
        Outcome { op: Op::Reversal, error }
    }

    async fn cancel(&self, hospital: usize, card: u32) -> Outcome {
        let hsid = self.next_hsid(hospital);
        let body = serde_json::json!({"card_id": self.cards.card_id(card), "hospital_settlement_id": hsid, "reason": "loadtest: cancel before settle"});
        let result = self.hospitals[hospital].call(Method::POST, "/v1/reversals", Some(Payload::json_of(&body))).await;
        if self.floor {
            return Outcome { op: Op::Cancel, error: self.ok_if(&result, 200) };
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
        Outcome { op: Op::Cancel, error }
    }
}
