//! The relief office's `contribution` operation: money into and out of a program's pool during the load
//! (`POST /admin/v1/pools/{program}/contributions` as the admin identity), and the [`ContributionBook`] of what was
//! answered, which the audit checks the pools, the event stream and the audit trail against.
//!
//! One request is, by the scenario's `[contributions]` shares: a replay of an earlier accepted contribution (the
//! same body: 200 and the identical contribution), a conflicting reuse of an earlier id (another amount: 409
//! `idempotency_conflict`, an expected refusal), or a new one: a donation, or a withdrawal (409
//! `pool_would_overdraw` once the pool has paid more than it would keep: an expected refusal). Ids are
//! `<run id>-C-<sequence>`, unique per run; the body is derived from the record, not stored.

use http::Method;
use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::{json, Value};

use super::{Outcome, Workload};
use crate::client::{Answer, Failure, Payload};
use crate::scenario::Op;

/// The donors the run's contributions name (the pool lists each with its net amount).
pub const DONORS: [&str; 4] = ["区红十字会", "区慈善总会", "区残疾人联合会", "Loadtest \"Trust\" Fund"];
/// The note some contributions carry: quotes, a backslash and Chinese text, for the audit's canonical encoding.
pub const NOTE: &str = "负载测试 \"loadtest\" C:\\pool";

/// Which way a contribution goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContributionKind {
    /// Into the pool: raises its budget.
    Donation,
    /// Out of it: lowers its budget, refused when the budget would fall below what the pool paid.
    Withdrawal,
}

impl ContributionKind {
    /// The API's `kind`.
    pub fn name(self) -> &'static str {
        match self {
            ContributionKind::Donation => "donation",
            ContributionKind::Withdrawal => "withdrawal",
        }
    }
}

/// What became of a contribution, as far as the run knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContributionState {
    /// Answered 201 (or found recorded by a replay or the audit's resend): it is in the pool, with one event and
    /// one audit entry.
    Accepted,
    /// Refused (`pool_would_overdraw`, or the audit's probes): nothing recorded, no event, no audit entry.
    Refused,
    /// No answer (timeout, broken connection, 504): the audit resolves it by sending it again.
    Unknown,
}

/// One contribution the run sent (a new id; replays and conflicts are not records of their own).
#[derive(Debug, Clone)]
pub struct ContributionRecord {
    /// `contribution_id` = `<run id>-C-<seq>`; also the record's index in the book.
    pub seq: u64,
    pub kind: ContributionKind,
    /// Index into [`DONORS`].
    pub donor: u8,
    /// Always positive; `kind` says which way.
    pub amount_fen: i64,
    /// The body carries [`NOTE`].
    pub note: bool,
    pub state: ContributionState,
    /// The contribution as first answered (the answer without `pool`): replays, its event's data and its audit
    /// entry's detail must all be this.
    pub answer: Option<Value>,
}

/// The run's contributions, in the order their ids were handed out; locked briefly, never across an `.await`.
#[derive(Debug, Default)]
pub struct ContributionBook {
    /// Every id handed out: `records[i].seq == i`.
    pub records: Vec<ContributionRecord>,
    /// Indices of accepted records: the candidates of replays and conflicts.
    accepted: Vec<u32>,
    /// Replays sent (the same body again: 200 and the identical contribution expected).
    pub replays: u64,
    /// Conflicting reuses sent (an earlier id, another amount: 409 `idempotency_conflict` expected).
    pub conflicts: u64,
}

impl ContributionBook {
    /// A new record (state unknown until answered); returns its index.
    pub fn open(&mut self, kind: ContributionKind, donor: u8, amount_fen: i64, note: bool) -> usize {
        let i = self.records.len();
        self.records.push(ContributionRecord {
            seq: i as u64,
            kind,
            donor,
            amount_fen,
            note,
            state: ContributionState::Unknown,
            answer: None,
        });
        i
    }

    /// Records the outcome of record `i` (an accepted one becomes a replay candidate).
    pub fn settle(&mut self, i: usize, state: ContributionState, answer: Option<Value>) {
        let r = &mut self.records[i];
        if state == ContributionState::Accepted && r.state != ContributionState::Accepted {
            self.accepted.push(u32::try_from(i).expect("below 2^32 contributions"));
        }
        r.state = state;
        if answer.is_some() {
            r.answer = answer;
        }
    }

    /// A random accepted record with its answer, if there is one, counted as a replay or a conflict.
    fn pick_accepted(&mut self, rng: &mut SmallRng, replay: bool) -> Option<(ContributionRecord, Value)> {
        if self.accepted.is_empty() {
            return None;
        }
        let r = &self.records[self.accepted[rng.random_range(0..self.accepted.len())] as usize];
        let picked = (r.clone(), r.answer.clone()?);
        if replay {
            self.replays += 1;
        } else {
            self.conflicts += 1;
        }
        Some(picked)
    }
}

/// `contribution_id` of record `seq` of run `run_id`.
pub fn contribution_id(run_id: &str, seq: u64) -> String {
    format!("{run_id}-C-{seq:08}")
}

/// The record sequence number of one of run `run_id`'s contribution ids; `None` for any other id.
pub fn parse_contribution_id(run_id: &str, id: &str) -> Option<u64> {
    let n = id.strip_prefix(run_id)?.strip_prefix("-C-")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.parse().ok()).flatten()
}

/// The body of record `r` (what a replay resends byte for byte).
pub fn contribution_body(run_id: &str, year: i32, r: &ContributionRecord) -> Value {
    let mut body = json!({
        "contribution_id": contribution_id(run_id, r.seq),
        "year": year,
        "donor": DONORS[r.donor as usize % DONORS.len()],
        "amount_fen": r.amount_fen,
        "kind": r.kind.name(),
    });
    if r.note {
        body["note"] = Value::from(NOTE);
    }
    body
}

/// The answer without its `pool`: the contribution itself.
pub fn without_pool(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("pool");
    }
    v
}

/// Does a 201/200 answer say what was sent (every field of the body, the program, an `at`), with a pool row that
/// adds up (`budget = base + contributions`, `left = max(budget − paid, 0)`, `paid <= budget`)?
pub fn judge_answer(answer: &Value, body: &Value, program: &str) -> Result<(), &'static str> {
    for (field, sent) in body.as_object().expect("a body is an object") {
        if &answer[field] != sent {
            return Err("bad_answer");
        }
    }
    if answer["program"] != program
        || !answer["at"].is_string()
        || (body.get("note").is_none() && answer.get("note").is_some_and(|n| !n.is_null()))
    {
        return Err("bad_answer");
    }
    let pool = &answer["pool"];
    let fen = |f: &str| pool[f].as_i64();
    match (fen("base_fen"), fen("contributions_fen"), fen("budget_fen"), fen("paid_fen"), fen("left_fen")) {
        (Some(base), Some(contributions), Some(budget), Some(paid), Some(left))
            if pool["program"] == program
                && budget == base + contributions
                && paid <= budget
                && left == (budget - paid).max(0) =>
        {
            Ok(())
        }
        _ => Err("invariant"),
    }
}

fn unknown(result: &Result<Answer, Failure>) -> bool {
    match result {
        Err(Failure::Timeout | Failure::Io(_)) => true,
        Err(Failure::Connect(_)) => false,
        Ok(a) => a.status == 504,
    }
}

fn code(result: &Result<Answer, Failure>) -> String {
    match result {
        Err(f) => f.code().to_string(),
        Ok(a) => a.error_code(),
    }
}

fn refusal(result: &Result<Answer, Failure>, status: u16, problem: &str) -> bool {
    matches!(result, Ok(a) if a.status == status && a.problem_code().as_deref() == Some(problem))
}

impl Workload {
    /// One `contribution` request (a settle when the run has no admin identity or no pool).
    pub(super) async fn contribution(&self, hospital: usize, card: u32, rng: &mut SmallRng) -> Outcome {
        let (Some(admin), Some(program)) = (self.admin.clone(), self.scenario.pool_program()) else {
            return self.settle(hospital, card, rng).await;
        };
        let c = &self.scenario.contributions;
        let roll = rng.random_range(0..100);
        let (earlier, replay, full) = {
            let mut book = self.contributions.lock().expect("contributions");
            // past `max_contributions` new ones, only replays
            let full = book.records.len() >= c.max_contributions;
            let replay = full || roll < c.replay_pct;
            let again = replay || roll < c.replay_pct + c.conflict_pct;
            (if again { book.pick_accepted(rng, replay) } else { None }, replay, full)
        };
        if full && earlier.is_none() {
            return self.settle(hospital, card, rng).await;
        }
        let path = format!("/admin/v1/pools/{program}/contributions");
        let year: i32 = self.year().parse().expect("a visit date's year");
        if let Some((r, first)) = earlier {
            let mut body = contribution_body(&self.run_id, year, &r);
            if !replay {
                body["amount_fen"] = Value::from(r.amount_fen + 1);
            }
            let result = admin.call(Method::POST, &path, Some(Payload::json_of(&body))).await;
            if !replay {
                if refusal(&result, 409, "idempotency_conflict") {
                    return Outcome {
                        op: Op::Contribution,
                        error: None,
                        expected_refusal: Some("idempotency_conflict"),
                    };
                }
                let accepted = matches!(&result, Ok(a) if a.status < 300);
                return Outcome::of(
                    Op::Contribution,
                    Some(if accepted { "conflict_accepted".into() } else { code(&result) }),
                );
            }
            let error = match &result {
                Ok(a) if a.status == 200 => match serde_json::from_slice::<Value>(&a.body) {
                    Ok(v) if judge_answer(&v, &contribution_body(&self.run_id, year, &r), program).is_err() => {
                        Some("bad_answer".to_string())
                    }
                    Ok(v) if without_pool(v.clone()) != first => Some("replay_mismatch".to_string()),
                    Ok(_) => None,
                    Err(_) => Some("bad_answer".to_string()),
                },
                _ => Some(code(&result)),
            };
            return Outcome::of(Op::Contribution, error);
        }
        let withdrawal = rng.random_range(0..100) < c.withdrawal_pct;
        let (kind, range) = if withdrawal {
            (ContributionKind::Withdrawal, c.withdrawal_fen)
        } else {
            (ContributionKind::Donation, c.donation_fen)
        };
        let amount_fen = i64::try_from(rng.random_range(range.min..=range.max)).expect("amounts below 2^53");
        let donor = u8::try_from(rng.random_range(0..DONORS.len())).expect("a few donors");
        let note = rng.random_range(0..100) < c.note_pct;
        let (i, body) = {
            let mut book = self.contributions.lock().expect("contributions");
            let i = book.open(kind, donor, amount_fen, note);
            (i, contribution_body(&self.run_id, year, &book.records[i]))
        };
        let result = admin.call(Method::POST, &path, Some(Payload::json_of(&body))).await;
        let (state, answer, error, expected) = match &result {
            Ok(a) if a.status == 201 => match serde_json::from_slice::<Value>(&a.body) {
                Ok(v) => {
                    let error = judge_answer(&v, &body, program).err().map(str::to_string);
                    (ContributionState::Accepted, Some(without_pool(v)), error, None)
                }
                // Recorded, but we cannot read what: the audit's resend returns it.
                Err(_) => (ContributionState::Unknown, None, Some("bad_answer".to_string()), None),
            },
            _ if kind == ContributionKind::Withdrawal && refusal(&result, 409, "pool_would_overdraw") => {
                (ContributionState::Refused, None, None, Some("pool_would_overdraw"))
            }
            _ if unknown(&result) => (ContributionState::Unknown, None, Some(code(&result)), None),
            _ => (ContributionState::Refused, None, Some(code(&result)), None),
        };
        self.contributions.lock().expect("contributions").settle(i, state, answer);
        Outcome { op: Op::Contribution, error, expected_refusal: expected }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_bodies_follow_the_record() {
        let id = contribution_id("LTabc", 7);
        assert_eq!(id, "LTabc-C-00000007");
        assert_eq!(parse_contribution_id("LTabc", &id), Some(7));
        assert_eq!(parse_contribution_id("LTabd", &id), None);
        assert_eq!(parse_contribution_id("LTabc", "LTabc-0-00000007"), None);
        let mut book = ContributionBook::default();
        let i = book.open(ContributionKind::Withdrawal, 1, 5000, true);
        let body = contribution_body("LTabc", 2026, &book.records[i]);
        assert_eq!(body["kind"], "withdrawal");
        assert_eq!(body["note"], NOTE);
        assert_eq!(body["donor"], DONORS[1]);
        let mut answer = body.clone();
        answer["program"] = "charity".into();
        answer["at"] = "2026-12-02T09:00:00.000+08:00".into();
        answer["pool"] = json!({"program": "charity", "base_fen": 100, "contributions_fen": 50, "budget_fen": 150,
            "paid_fen": 20, "left_fen": 130, "donors": []});
        assert_eq!(judge_answer(&answer, &body, "charity"), Ok(()));
        answer["pool"]["budget_fen"] = 100.into();
        assert_eq!(judge_answer(&answer, &body, "charity"), Err("invariant"));
        answer["amount_fen"] = 5001.into();
        assert_eq!(judge_answer(&answer, &body, "charity"), Err("bad_answer"));
        book.settle(i, ContributionState::Accepted, Some(without_pool(answer)));
        assert!(book.records[i].answer.as_ref().unwrap().get("pool").is_none());
        assert_eq!(book.accepted, vec![0]);
    }
}
