//! The operations one simulated request can be: each sends as one hospital, judges the answer and records it
//! in the ledger.

use http::Method;
use rand::rngs::SmallRng;
use rand::Rng;
use serde::Deserialize;

use super::answers::{Echo, Operator, SettlementAnswer};
use super::bodies::{settle_body, settle_body_with, Extras};
use super::fields::{insurance_ref, operator};
use super::ledger::{CancelRecord, CancelState, RecordState, RefSent, SettlementRecord};
use super::{Outcome, Workload};
use crate::client::{Answer, Failure, Payload};
use crate::scenario::Op;

/// The reason sent with the run's reversals (the `reason` of their events).
pub const REVERSAL_REASON: &str = "loadtest: visit cancelled";
/// The reason sent with the run's cancels-before-settle.
pub const CANCEL_REASON: &str = "loadtest: cancel before settle";
/// Most settlements a card's history lists (the gateway's default `limits.max_history_items`): a history at least
/// this long may leave older settlements out, so it is not checked for completeness.
pub const HISTORY_LIMIT: usize = 1000;

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
            Op::Cancel => self.cancel(hospital, card, rng).await,
            Op::History => self.history(hospital, card, rng).await,
            Op::RefReuse => self.ref_reuse(hospital, card, rng).await,
            Op::Contribution => self.contribution(hospital, card, rng).await,
        }
    }

    /// `true` with probability `pct` %; draws nothing when `pct` is 0, so scenarios without the version 2 fields
    /// keep their request streams.
    fn chance(rng: &mut SmallRng, pct: u32) -> bool {
        pct > 0 && (pct >= 100 || rng.random_range(0..100) < pct)
    }

    /// Which operator (if any) a request of `hospital` carries, by `fields.operator_pct`.
    fn pick_operator(&self, rng: &mut SmallRng) -> Option<u32> {
        let f = &self.scenario.fields;
        Self::chance(rng, f.operator_pct).then(|| rng.random_range(0..f.operators_per_hospital))
    }

    /// The version 2 fields of an answer, when the run sends them (else nothing is parsed twice).
    fn echo(&self, body: &[u8]) -> Option<Result<Echo, ()>> {
        self.scenario.fields.any().then(|| serde_json::from_slice::<Echo>(body).map_err(|_| ()))
    }

    /// Does an answer's echo say what was sent (`None`: nothing to check)?
    fn echo_ok(&self, body: &[u8], sent_ref: Option<&str>, sent_operator: Option<&Operator>) -> bool {
        match self.echo(body) {
            None => true,
            Some(Err(())) => false,
            Some(Ok(e)) => e.insurance_settlement_ref.as_deref() == sent_ref && e.operator.as_ref() == sent_operator,
        }
    }

    fn refused(&self, seq: u64) {
        if self.keep_ledger {
            self.ledger.lock().expect("ledger").refused.push(seq);
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
        Outcome::of(Op::Eligibility, error)
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
        Outcome::of(Op::Quote, error)
    }

    pub(super) async fn settle(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let with_ref = Self::chance(rng, self.scenario.fields.insurance_ref_pct);
        let insurance = if with_ref { RefSent::Own } else { RefSent::None };
        self.settle_as(Op::Settle, hospital, card, rng, insurance, None).await.0
    }

    /// A new settlement carrying `insurance` (for a `ref_reuse`, the holder's ref `reused_ref`); also says whether
    /// its outcome is unknown (it may be applied later).
    async fn settle_as(
        &self,
        op: Op,
        hospital: usize,
        card: u32,
        rng: &mut SmallRng,
        insurance: RefSent,
        reused_ref: Option<String>,
    ) -> (Outcome, bool) {
        let bill = self.bills.make(rng);
        let operator_n = self.pick_operator(rng);
        let (hsid, seq) = self.next_hsid_seq(hospital);
        let card_id = self.cards.card_id(card);
        let own_ref = (insurance == RefSent::Own).then(|| insurance_ref(&hsid));
        let sent_ref = own_ref.or(reused_ref);
        let sent_operator = operator_n.map(|n| operator(hospital, n));
        let extras = Extras { settlement_ref: sent_ref.as_deref(), operator: sent_operator.as_ref() };
        let body = settle_body_with(Some(&hsid), &card_id, &self.visit_date, &bill, extras);
        let result =
            self.hospitals[hospital].call(Method::POST, "/v1/settlements", Some(Payload::json(body.clone()))).await;
        if self.floor {
            return (Outcome::of(op, self.ok_if(&result, 201)), false);
        }
        if op == Op::RefReuse {
            if let Ok(a) = &result {
                if a.status == 409 && a.problem_code().as_deref() == Some("insurance_ref_reused") {
                    self.refused(seq);
                    return (Outcome { op, error: None, expected_refusal: Some("insurance_ref_reused") }, false);
                }
            }
        }
        let unknown = is_unknown_outcome(&result);
        let mut record = SettlementRecord {
            hospital,
            card,
            hsid: hsid.clone(),
            body,
            answer: None,
            state: RecordState::SettleUnknown,
            reversed_at: None,
            insurance_ref: insurance,
            operator: operator_n,
            reversal_operator: None,
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
                    } else if !self.echo_ok(&a.body, sent_ref.as_deref(), sent_operator.as_ref()) {
                        Some("echo_mismatch".to_string())
                    } else if op == Op::RefReuse {
                        // Another standing settlement holds this ref: the gateway must not have accepted it.
                        Some("ref_reuse_accepted".to_string())
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
            _ if unknown => Some(failure_code(&result)),
            _ => {
                // refused: nothing stored, and no event may exist
                self.refused(seq);
                return (Outcome::of(op, Some(failure_code(&result))), false);
            }
        };
        if self.keep_ledger {
            self.ledger.lock().expect("ledger").add(record);
        }
        (Outcome::of(op, error), unknown)
    }

    /// A settlement with the insurance ref of a standing settlement (of any hospital): 409 `insurance_ref_reused`
    /// expected. The holder is kept from being reversed meanwhile, so the refusal is certain; without a holder
    /// yet, a plain settle.
    async fn ref_reuse(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let holder = if self.keep_ledger {
            let mut ledger = self.ledger.lock().expect("ledger");
            ledger.take_ref_holder(rng).map(|i| (i, insurance_ref(&ledger.records[i].hsid)))
        } else {
            None
        };
        let Some((i, held)) = holder else {
            return self.settle(hospital, card, rng).await;
        };
        let holder_index = u32::try_from(i).expect("ledger below 2^32 records");
        let (outcome, unknown) =
            self.settle_as(Op::RefReuse, hospital, card, rng, RefSent::Holder(holder_index), Some(held)).await;
        // An unknown outcome might still be applied later: the holder then stays standing for good.
        if !unknown {
            self.ledger.lock().expect("ledger").put_back(i);
        }
        outcome
    }

    async fn retry(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let picked = if self.keep_ledger {
            let ledger = self.ledger.lock().expect("ledger");
            ledger.pick_answered(hospital, rng).map(|i| {
                let r = &ledger.records[i];
                let sent_ref = Workload::ref_sent(r, |h| ledger.records.get(h as usize).map(|h| h.hsid.as_str()));
                (i, r.body.clone(), r.answer.clone().expect("answered"), sent_ref, r.operator)
            })
        } else {
            None
        };
        let Some((i, mut body, original, sent_ref, operator_n)) = picked else {
            return self.settle(hospital, card, rng).await;
        };
        let f = &self.scenario.fields;
        if Self::chance(rng, f.retry_other_operator_pct) {
            // From another terminal: another operator (or one more or less), the same request otherwise.
            let other = match operator_n {
                None => Some(0),
                Some(n) if f.operators_per_hospital > 1 => Some((n + 1) % f.operators_per_hospital),
                Some(_) => None,
            };
            if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) {
                match other {
                    Some(n) => v["operator"] = serde_json::to_value(operator(hospital, n)).expect("operator"),
                    None => {
                        v.as_object_mut().map(|o| o.remove("operator"));
                    }
                }
                body = crate::client::json_bytes(&v);
            }
        }
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
                    let recorded_operator = operator_n.map(|n| operator(hospital, n));
                    if !answer.replayed {
                        Some("replay_header_missing".into())
                    } else if !replayed.same_money(&original) || !status_ok {
                        Some("replay_mismatch".into())
                    } else if !self.echo_ok(&answer.body, sent_ref.as_deref(), recorded_operator.as_ref()) {
                        // The replay carries the recorded operator, whoever retried.
                        Some("replay_mismatch".into())
                    } else {
                        None
                    }
                }
                Err(_) => Some("bad_answer".into()),
            };
        }
        Outcome::of(Op::Retry, error)
    }

    async fn reversal(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let operator_n = if self.keep_ledger { self.pick_operator(rng) } else { None };
        let picked = if self.keep_ledger {
            let mut ledger = self.ledger.lock().expect("ledger");
            ledger.take_reversible(hospital, rng).map(|i| {
                ledger.records[i].reversal_operator = operator_n;
                let r = &ledger.records[i];
                let settled_by = r.operator;
                let (hsid, card_id, answer) = (r.hsid.clone(), self.cards.card_id(r.card), r.answer.clone());
                let sent_ref = Workload::ref_sent(r, |h| ledger.records.get(h as usize).map(|h| h.hsid.as_str()));
                (i, hsid, card_id, answer.expect("answered"), sent_ref, settled_by)
            })
        } else {
            None
        };
        let Some((i, hsid, card_id, original, sent_ref, settled_by)) = picked else {
            return self.settle(hospital, card, rng).await;
        };
        let mut body =
            serde_json::json!({"card_id": card_id, "hospital_settlement_id": hsid, "reason": REVERSAL_REASON});
        if let Some(n) = operator_n {
            body["operator"] = serde_json::to_value(operator(hospital, n)).expect("operator");
        }
        let result = self.hospitals[hospital].call(Method::POST, "/v1/reversals", Some(Payload::json_of(&body))).await;
        // The reversed body carries the settlement's own operator and ref, not the reversal's.
        let echo_ok = match &result {
            Ok(a) if a.status == 200 => {
                self.echo_ok(&a.body, sent_ref.as_deref(), settled_by.map(|n| operator(hospital, n)).as_ref())
            }
            _ => true,
        };
        let mut ledger = self.ledger.lock().expect("ledger");
        let error = match &result {
            Ok(a) if a.status == 200 => match serde_json::from_slice::<SettlementAnswer>(&a.body) {
                Ok(reversed) if reversed.status == "reversed" && reversed.same_money(&original) && echo_ok => {
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
                ledger.records[i].reversal_operator = None;
                ledger.put_back(i);
                Some(failure_code(&result))
            }
        };
        Outcome::of(Op::Reversal, error)
    }

    async fn cancel(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let (hsid, seq) = self.next_hsid_seq(hospital);
        let operator_n = self.pick_operator(rng);
        let mut body = serde_json::json!({"card_id": self.cards.card_id(card), "hospital_settlement_id": hsid, "reason": CANCEL_REASON});
        if let Some(n) = operator_n {
            body["operator"] = serde_json::to_value(operator(hospital, n)).expect("operator");
        }
        let result = self.hospitals[hospital].call(Method::POST, "/v1/reversals", Some(Payload::json_of(&body))).await;
        if self.floor {
            return Outcome::of(Op::Cancel, self.ok_if(&result, 200));
        }
        let (state, error) = match &result {
            Ok(a) if a.status == 200 => match serde_json::from_slice::<serde_json::Value>(&a.body) {
                Ok(v) if v["status"] == "reversed_before_settled" => (Some(CancelState::Cancelled), None),
                _ => (Some(CancelState::Unknown), Some("bad_answer".to_string())),
            },
            _ if is_unknown_outcome(&result) => (Some(CancelState::Unknown), Some(failure_code(&result))),
            _ => (None, Some(failure_code(&result))),
        };
        if self.keep_ledger {
            let mut ledger = self.ledger.lock().expect("ledger");
            match state {
                Some(state) => ledger.cancels.push(CancelRecord { hospital, card, hsid, state, operator: operator_n }),
                None => ledger.refused.push(seq),
            }
        }
        Outcome::of(Op::Cancel, error)
    }

    /// `GET /v1/settlements?card_id=` as `hospital`, for a card it settled when there is one (else `card`): the
    /// hospital's own settlements of the card, newest first, the one picked among them.
    async fn history(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let picked = if self.keep_ledger {
            let ledger = self.ledger.lock().expect("ledger");
            ledger.pick_answered(hospital, rng).map(|i| {
                let r = &ledger.records[i];
                (r.card, r.answer.as_ref().map(|a| a.settlement_id.clone()))
            })
        } else {
            None
        };
        let (card, expected) = picked.unwrap_or((card, None));
        let card_id = self.cards.card_id(card);
        let result =
            self.hospitals[hospital].call(Method::GET, &format!("/v1/settlements?card_id={card_id}"), None).await;
        let mut error = self.ok_if(&result, 200);
        if error.is_none() && !self.floor {
            let body = &result.as_ref().expect("ok").body;
            error = self.judge_history(body, hospital, &card_id, expected.as_deref()).err();
        }
        Outcome::of(Op::History, error)
    }

    /// A hospital's history of a card: only its own settlements of that card, each adding up, newest first, and
    /// (when the list is not at the gateway's length limit) the settlement `expected` among them.
    fn judge_history(&self, body: &[u8], hospital: usize, card_id: &str, expected: Option<&str>) -> Result<(), String> {
        #[derive(Deserialize)]
        struct History {
            settlements: Vec<SettlementAnswer>,
        }
        let history = serde_json::from_slice::<History>(body).map_err(|_| "bad_answer".to_string())?;
        let own = format!("{}-{hospital}-", self.run_id);
        let list = &history.settlements;
        if list.iter().any(|s| s.card_id != card_id || !s.hospital_settlement_id.starts_with(&own)) {
            return Err("history_foreign".into());
        }
        if list.iter().any(|s| !s.invariant_holds() || !(s.status == "settled" || s.status == "reversed")) {
            return Err("invariant".into());
        }
        // settled_at of one gateway's timezone: RFC 3339 strings of one offset order as the times do
        if list.windows(2).any(|w| w[0].settled_at < w[1].settled_at) {
            return Err("history_order".into());
        }
        if let Some(id) = expected {
            if list.len() < HISTORY_LIMIT && !list.iter().any(|s| s.settlement_id == id) {
                return Err("history_missing".into());
            }
        }
        Ok(())
    }
}
