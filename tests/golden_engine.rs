//! Every golden vector of tests/golden through the pure engine, no Redis, no HTTP.
//!
//! A small in-memory ledger inside this test applies the API.md semantics with the domain types only: parse
//! (serde_json) → validate (400) → tombstone (409 already_reversed) → idempotency per (hospital,
//! hospital_settlement_id) with `canonical()` (replay 200 / 409 idempotency_conflict) → card (404) → eligibility
//! (422 not_eligible) → ruleset in force (422 no_rules_in_force) → `split` with counters held in HashMaps; reversals
//! subtract exactly what was recorded. "Today" is the gateway's (`common::today`, its time zone), as over HTTPS.
//! Each step's answer is checked with `common::check_expectation`, so adding a golden file adds a case here (and in
//! tests/golden_http.rs).

mod common;

use std::collections::HashMap;

use chrono::{Datelike, Days, NaiveDate};
use serde::Deserialize;
use serde_json::{json, Value};
use settlegate::domain::bill::{Bill, QuoteRequest, SettleRequest};
use settlegate::domain::card::Cardholder;
use settlegate::domain::is_valid_id;
use settlegate::domain::rules::{in_force, Ruleset, RulesetInput};
use settlegate::domain::split::{split, Payment, ProgramUsage, Split};

/// The reversal body of API.md (kept here so the test does not lean on the app layer).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReversalBody {
    card_id: String,
    #[serde(default)]
    hospital_settlement_id: Option<String>,
    #[serde(default)]
    settlement_id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Settled,
    Reversed,
}

#[derive(Debug, Clone)]
struct Record {
    settlement_id: String,
    hospital_settlement_id: String,
    card_id: String,
    category: String,
    canonical: String,
    request: SettleRequest,
    year: i32,
    ruleset_version: u64,
    split: Split,
    status: Status,
}

#[derive(Debug, Clone)]
enum Entry {
    Settlement(Box<Record>),
    Tombstone { card_id: String },
}

/// What one step answers: an HTTP status and a JSON body.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply { status, body }
}

fn problem(status: u16, code: &str, detail: impl std::fmt::Display) -> Reply {
    reply(status, json!({"type": "about:blank", "status": status, "code": code, "detail": detail.to_string()}))
}

/// What the card, eligibility and ruleset checks let through: the split and what the answer names.
struct Computed {
    category: String,
    ruleset_version: u64,
    split: Split,
}

fn payments_json(payments: &[Payment]) -> Value {
    Value::Array(
        payments
            .iter()
            .map(|p| {
                json!({
                    "program": p.program,
                    "paid_fen": p.paid_fen,
                    "deductible_applied_fen": p.deductible_applied_fen,
                    "capped_by": p.capped_by.map(|c| c.as_str()),
                })
            })
            .collect(),
    )
}

fn split_json(status: &str, bill: &Bill<'_>, category: &str, version: u64, s: &Split) -> Value {
    json!({
        "status": status,
        "card_id": bill.card_id,
        "category": category,
        "visit": serde_json::to_value(bill.visit).unwrap(),
        "ruleset_version": version,
        "total_fen": s.total_fen,
        "insurance_fen": s.insurance_fen,
        "payments": payments_json(&s.payments),
        "relief_fen": s.relief_fen,
        "patient_fen": s.patient_fen,
    })
}

fn record_json(r: &Record) -> Value {
    let status = match r.status {
        Status::Settled => "settled",
        Status::Reversed => "reversed",
    };
    let mut body = split_json(status, &r.request.bill(), &r.category, r.ruleset_version, &r.split);
    body["settlement_id"] = json!(r.settlement_id);
    body["hospital_settlement_id"] = json!(r.hospital_settlement_id);
    body
}

/// The whole store, in memory.
struct Ledger {
    /// The gateway's local date: a visit may lie at most one day after it.
    today: NaiveDate,
    rulesets: Vec<Ruleset>,
    cards: HashMap<String, Cardholder>,
    /// (card, year, program) → (paid, deductible met)
    usage: HashMap<(String, i32, String), (i64, i64)>,
    /// (year, program) → paid to all cards
    program_paid: HashMap<(i32, String), i64>,
    /// (hospital, hospital_settlement_id) → settlement or tombstone
    entries: HashMap<(String, String), Entry>,
    /// settlement_id → (hospital, hospital_settlement_id)
    by_sid: HashMap<String, (String, String)>,
    next_sid: u64,
}

impl Ledger {
    fn new(today: NaiveDate) -> Ledger {
        Ledger {
            today,
            rulesets: Vec::new(),
            cards: HashMap::new(),
            usage: HashMap::new(),
            program_paid: HashMap::new(),
            entries: HashMap::new(),
            by_sid: HashMap::new(),
            next_sid: 0,
        }
    }

    fn publish(&mut self, input: RulesetInput) -> u64 {
        let errors = input.validate();
        assert!(errors.is_empty(), "golden ruleset does not validate: {errors:?}");
        let version = self.rulesets.len() as u64 + 1;
        self.rulesets.push(Ruleset {
            version,
            effective_from: input.effective_from,
            published_at: String::new(),
            programs: input.programs,
        });
        version
    }

    fn put_card(&mut self, card: Cardholder) {
        let errors = card.validate();
        assert!(errors.is_empty(), "golden cardholder does not validate: {errors:?}");
        self.cards.insert(card.card_id.clone(), card);
    }

    /// Card, eligibility and ruleset checks, then the split on the current counters (changes nothing).
    fn compute(&self, bill: &Bill<'_>) -> Result<Computed, Reply> {
        let Some(card) = self.cards.get(bill.card_id) else {
            return Err(problem(404, "card_not_found", format!("card {} not found", bill.card_id)));
        };
        if let Err(why) = card.eligibility(bill.visit.date) {
            return Err(problem(422, "not_eligible", format!("card {} is {}", card.card_id, why.as_str())));
        }
        let Some(ruleset) = in_force(&self.rulesets, bill.visit.date) else {
            return Err(problem(422, "no_rules_in_force", format!("no ruleset in force on {}", bill.visit.date)));
        };
        let year = bill.visit.date.year();
        let usage = |p: &settlegate::domain::rules::Program| {
            let (paid, ded) = self.usage.get(&(card.card_id.clone(), year, p.id.clone())).copied().unwrap_or((0, 0));
            ProgramUsage {
                paid_fen: paid,
                deductible_met_fen: ded,
                program_paid_fen: self.program_paid.get(&(year, p.id.clone())).copied().unwrap_or(0),
                pool_contributions_fen: 0,
            }
        };
        let s = split(ruleset, card, bill.visit.visit_type, bill.amounts.total_fen, bill.residual(), usage);
        check_split_invariants(bill, &s);
        Ok(Computed { category: card.category.clone(), ruleset_version: ruleset.version, split: s })
    }

    /// Adds (sign 1) or takes back (sign -1) exactly the recorded amounts.
    fn apply(&mut self, card_id: &str, year: i32, payments: &[Payment], sign: i64) {
        for p in payments {
            let u = self.usage.entry((card_id.to_string(), year, p.program.clone())).or_default();
            u.0 += sign * p.paid_fen;
            u.1 += sign * p.deductible_applied_fen;
            assert!(u.0 >= 0 && u.1 >= 0, "counters went negative: {u:?}");
            let t = self.program_paid.entry((year, p.program.clone())).or_default();
            *t += sign * p.paid_fen;
            assert!(*t >= 0);
        }
    }

    fn settle(&mut self, hospital: &str, body: &Value) -> Reply {
        let req: SettleRequest = match serde_json::from_value(body.clone()) {
            Ok(r) => r,
            Err(e) => return problem(400, "invalid_request", e),
        };
        let mut errors = Vec::new();
        if !is_valid_id(&req.hospital_settlement_id) {
            errors.push("hospital_settlement_id".to_string());
        }
        errors.extend(req.bill().validate(self.today).iter().map(|e| e.to_string()));
        if !errors.is_empty() {
            return problem(400, "invalid_request", errors.join("; "));
        }
        let key = (hospital.to_string(), req.hospital_settlement_id.clone());
        let canonical = req.bill().canonical();
        match self.entries.get(&key) {
            Some(Entry::Tombstone { .. }) => {
                return problem(409, "already_reversed", "cancelled before it arrived");
            }
            Some(Entry::Settlement(r)) => {
                return if r.canonical == canonical {
                    reply(200, record_json(r))
                } else {
                    problem(409, "idempotency_conflict", "same id, different request")
                };
            }
            None => {}
        }
        let Computed { category, ruleset_version, split: s } = match self.compute(&req.bill()) {
            Ok(x) => x,
            Err(refused) => return refused,
        };
        let year = req.visit.date.year();
        self.apply(&req.card_id, year, &s.payments, 1);
        self.next_sid += 1;
        let record = Record {
            settlement_id: format!("sid-{}", self.next_sid),
            hospital_settlement_id: req.hospital_settlement_id.clone(),
            card_id: req.card_id.clone(),
            category,
            canonical,
            request: req,
            year,
            ruleset_version,
            split: s,
            status: Status::Settled,
        };
        self.by_sid.insert(record.settlement_id.clone(), key.clone());
        let body = record_json(&record);
        self.entries.insert(key, Entry::Settlement(Box::new(record)));
        reply(201, body)
    }

    fn quote(&self, body: &Value) -> Reply {
        let req: QuoteRequest = match serde_json::from_value(body.clone()) {
            Ok(r) => r,
            Err(e) => return problem(400, "invalid_request", e),
        };
        let errors: Vec<String> = req.bill().validate(self.today).iter().map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            return problem(400, "invalid_request", errors.join("; "));
        }
        match self.compute(&req.bill()) {
            Ok(c) => reply(200, split_json("quote", &req.bill(), &c.category, c.ruleset_version, &c.split)),
            Err(refused) => refused,
        }
    }

    fn reverse(&mut self, hospital: &str, body: &Value) -> Reply {
        let req: ReversalBody = match serde_json::from_value(body.clone()) {
            Ok(r) => r,
            Err(e) => return problem(400, "invalid_request", e),
        };
        if !is_valid_id(&req.card_id) {
            return problem(400, "invalid_request", "card_id");
        }
        let (key, by_hsid) = match (&req.hospital_settlement_id, &req.settlement_id) {
            (Some(hsid), None) => {
                if !is_valid_id(hsid) {
                    return problem(400, "invalid_request", "hospital_settlement_id");
                }
                ((hospital.to_string(), hsid.clone()), true)
            }
            (None, Some(sid)) => match self.by_sid.get(sid) {
                Some(k) if k.0 == hospital => (k.clone(), false),
                _ => return problem(404, "not_found", format!("no settlement {sid}")),
            },
            _ => {
                return problem(400, "invalid_request", "give exactly one of hospital_settlement_id and settlement_id")
            }
        };
        match self.entries.get(&key).cloned() {
            Some(Entry::Settlement(r)) if r.card_id == req.card_id => {
                if r.status == Status::Settled {
                    self.apply(&r.card_id, r.year, &r.split.payments, -1);
                    let mut reversed = r;
                    reversed.status = Status::Reversed;
                    let reversed = reversed;
                    let body = record_json(&reversed);
                    self.entries.insert(key, Entry::Settlement(reversed));
                    reply(200, body)
                } else {
                    reply(200, record_json(&r))
                }
            }
            Some(Entry::Tombstone { card_id }) if card_id == req.card_id => reply(
                200,
                json!({"status": "reversed_before_settled", "card_id": card_id, "hospital_settlement_id": key.1}),
            ),
            Some(_) if by_hsid => problem(409, "idempotency_conflict", "the id belongs to another card"),
            Some(_) => problem(404, "not_found", "no settlement for this card"),
            None if by_hsid => {
                self.entries.insert(key.clone(), Entry::Tombstone { card_id: req.card_id.clone() });
                reply(
                    200,
                    json!({"status": "reversed_before_settled", "card_id": req.card_id, "hospital_settlement_id": key.1}),
                )
            }
            None => problem(404, "not_found", "no settlement"),
        }
    }

    /// Every settled (not reversed) record's amounts, summed, must equal the counters: nothing is lost or doubled.
    fn check_counters(&self, file: &str, i: usize) {
        let mut usage: HashMap<(String, i32, String), (i64, i64)> = HashMap::new();
        let mut totals: HashMap<(i32, String), i64> = HashMap::new();
        for e in self.entries.values() {
            if let Entry::Settlement(r) = e {
                if r.status == Status::Settled {
                    for p in &r.split.payments {
                        let u = usage.entry((r.card_id.clone(), r.year, p.program.clone())).or_default();
                        u.0 += p.paid_fen;
                        u.1 += p.deductible_applied_fen;
                        *totals.entry((r.year, p.program.clone())).or_default() += p.paid_fen;
                    }
                }
            }
        }
        let nonzero_u = |m: &HashMap<(String, i32, String), (i64, i64)>| {
            m.iter().filter(|(_, v)| **v != (0, 0)).map(|(k, v)| (k.clone(), *v)).collect::<HashMap<_, _>>()
        };
        let nonzero_t = |m: &HashMap<(i32, String), i64>| {
            m.iter().filter(|(_, v)| **v != 0).map(|(k, v)| (k.clone(), *v)).collect::<HashMap<_, _>>()
        };
        assert_eq!(nonzero_u(&self.usage), nonzero_u(&usage), "{file} step {i}: card counters");
        assert_eq!(nonzero_t(&self.program_paid), nonzero_t(&totals), "{file} step {i}: program totals");
    }
}

fn check_split_invariants(bill: &Bill<'_>, s: &Split) {
    assert_eq!(s.total_fen, bill.amounts.total_fen);
    assert_eq!(s.insurance_fen, bill.insurance.total_fen());
    assert_eq!(s.insurance_fen + s.relief_fen + s.patient_fen, s.total_fen, "payers must add up: {s:?}");
    assert_eq!(s.payments.iter().map(|p| p.paid_fen).sum::<i64>(), s.relief_fen);
    assert!(s.insurance_fen >= 0 && s.relief_fen >= 0 && s.patient_fen >= 0, "{s:?}");
    assert!(s.payments.iter().all(|p| p.paid_fen >= 0 && p.deductible_applied_fen >= 0), "{s:?}");
}

fn run_vector(golden: &common::Golden) -> usize {
    let file = &golden.name;
    let mut ledger = Ledger::new(common::today());
    for (k, r) in golden.rulesets().iter().enumerate() {
        let input: RulesetInput =
            serde_json::from_value(r.clone()).unwrap_or_else(|e| panic!("{file}: ruleset {k}: {e}"));
        assert_eq!(ledger.publish(input), k as u64 + 1);
    }
    for c in golden.cardholders() {
        let card: Cardholder = serde_json::from_value(c.clone()).unwrap_or_else(|e| panic!("{file}: cardholder: {e}"));
        ledger.put_card(card);
    }
    let steps = golden.steps();
    for (i, step) in steps.iter().enumerate() {
        let hospital = step["as"].as_str().unwrap_or_else(|| panic!("{file} step {i}: no `as`"));
        let request = &step["request"];
        let Reply { status, body } = match step["op"].as_str() {
            Some("settle") => ledger.settle(hospital, request),
            Some("quote") => ledger.quote(request),
            Some("reverse") => ledger.reverse(hospital, request),
            other => panic!("{file} step {i}: unknown op {other:?}"),
        };
        common::check_expectation(file, i, step, status, &body);
        ledger.check_counters(file, i);
    }
    steps.len()
}

#[test]
fn every_golden_vector_through_the_pure_engine() {
    let mut files_run = 0;
    let mut steps = 0;
    for golden in &common::golden_files() {
        let n = run_vector(golden);
        eprintln!("golden engine: {}: {n} steps ok", golden.name);
        steps += n;
        files_run += 1;
    }
    eprintln!("golden engine: {files_run} files, {steps} steps");
    assert_eq!(files_run, common::golden_json_count(), "every json file of tests/golden must run");
}

/// The ledger itself must refuse what API.md refuses, in API.md's order (so a green golden run means something).
#[test]
fn ledger_follows_the_api_order_of_checks() {
    let mut ledger = Ledger::new(common::today());
    let ruleset = common::assistance_ruleset("2026-01-01", json!({"ratio_bp": 9000}));
    ledger.publish(serde_json::from_value(ruleset).unwrap());
    let mut card = common::cardholder("C1", "dibao");
    card["valid_from"] = json!("2026-01-01"); // so a visit in 2025 is not eligible
    ledger.put_card(serde_json::from_value(card).unwrap());
    let bill = |hsid: &str, card: &str, total: i64, date: &str| {
        json!({"hospital_settlement_id": hsid, "card_id": card, "visit": {"type": "outpatient", "date": date},
               "amounts": {"total_fen": total, "in_scope_fen": total, "pre_self_pay_fen": 0, "over_limit_fen": 0,
                           "self_pay_fen": 0}})
    };
    let settle = |ledger: &mut Ledger, hsid: &str, card: &str, total: i64, date: &str| {
        ledger.settle("H1", &bill(hsid, card, total, date))
    };
    // unknown field, and a visit more than one day after today
    let mut extra = bill("a", "C1", 10, "2026-05-01");
    extra["foo"] = json!(1);
    assert_eq!(ledger.settle("H1", &extra).status, 400);
    let too_late = (ledger.today + Days::new(2)).to_string();
    assert_eq!(settle(&mut ledger, "a", "C1", 10, &too_late).status, 400);
    // tombstone first, then the late original: 409 already_reversed; an invalid body still answers 400 first
    assert_eq!(
        ledger.reverse("H1", &json!({"card_id": "C1", "hospital_settlement_id": "t"})).body["status"],
        "reversed_before_settled"
    );
    assert_eq!(settle(&mut ledger, "t", "C1", 10, "2026-05-01").body["code"], "already_reversed");
    assert_eq!(settle(&mut ledger, "t", "C1", -1, "2026-05-01").status, 400);
    // idempotency is per hospital
    assert_eq!(settle(&mut ledger, "x", "C1", 10, "2026-05-01").status, 201);
    assert_eq!(settle(&mut ledger, "x", "C1", 10, "2026-05-01").status, 200);
    assert_eq!(settle(&mut ledger, "x", "C1", 11, "2026-05-01").body["code"], "idempotency_conflict");
    assert_eq!(ledger.settle("H2", &bill("x", "C1", 11, "2026-05-01")).status, 201);
    // the id check comes before the card check; the card check before the ruleset check
    assert_eq!(settle(&mut ledger, "x", "C404", 10, "2026-05-01").body["code"], "idempotency_conflict");
    assert_eq!(settle(&mut ledger, "y", "C404", 10, "2025-05-01").body["code"], "card_not_found");
    assert_eq!(settle(&mut ledger, "y", "C1", 10, "2025-05-01").body["code"], "not_eligible");
    // a reversal gives everything back; a replay afterwards shows `reversed`
    let before = ledger.usage.clone();
    let r = ledger.reverse("H1", &json!({"card_id": "C1", "hospital_settlement_id": "x"}));
    assert_eq!(r.body["status"], "reversed");
    assert_eq!(settle(&mut ledger, "x", "C1", 10, "2026-05-01").body["status"], "reversed");
    let paid = |l: &HashMap<(String, i32, String), (i64, i64)>| {
        l[&("C1".to_string(), 2026, "medical_assistance".to_string())].0
    };
    assert_eq!(paid(&before) - paid(&ledger.usage), 9);
    ledger.check_counters("ledger", 0);
}
