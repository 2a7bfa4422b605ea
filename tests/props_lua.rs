//! Property tests of the Lua settle and reverse scripts, through `App` and a real Redis, against the engine run on
//! counters this test keeps: random rulesets, cards, settles, identical retries, conflicting retries, reversals (by
//! id and by settlement id, before and after the settlement), quotes, eligibility, republished rulesets and card
//! updates; afterwards Redis's counters must equal the test's exactly. Amounts reach 10^12 and 2^53 − 1 fen, which
//! proves the script's integer arithmetic exact.
//!
//! Each test function starts one private redis-server (`common::Redis`) and gives every case its own card ids and
//! program ids (a case-number prefix), so cases never see each other's counters.

mod common;
mod props_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Datelike;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use settlegate::app::{ApiError, App, EligibilityRequest, Reversal, ReversalRequest};
use settlegate::domain::bill::{QuoteRequest, SettleRequest};
use settlegate::domain::card::Cardholder;
use settlegate::domain::rules::{in_force, Program, Ruleset, RulesetInput};
use settlegate::domain::settlement::{Settlement, SettlementStatus};

use common::app::connect_app;
use common::{Redis, PUBLISHED_AT};
use props_support::counters::Counters;
use props_support::model::{bump, check_against_engine, Cancelled, EligibleProgram, Entry, Model, Sent, Stats};
use props_support::recorder::{recorder, MISMATCH};
use props_support::scenario::{scenario, Op, Scenario, HOSPITALS};
use props_support::strategies::{big_bill, normal_bill, BillDraft, ANY, BIG};

/// How these tests store cards: as the office's import would (its event included).
const IMPORT: settlegate::store::CardholderEvent<'static> =
    settlegate::store::CardholderEvent::Import { at: "2026-01-01T08:00:00.000+08:00" };

fn code(e: &ApiError) -> &'static str {
    e.code()
}

/// A private Redis, a runtime and an `App` on them; one per test function.
struct Live {
    rt: tokio::runtime::Runtime,
    app: App,
    cases: AtomicU64,
    stats: Stats,
    _redis: Redis,
}

impl Live {
    fn start() -> Live {
        recorder();
        let redis = Redis::start();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let app = rt.block_on(connect_app(&redis));
        Live { rt, app, stats: Stats::default(), cases: AtomicU64::new(0), _redis: redis }
    }

    fn run(&self, sc: &Scenario) -> Result<(), TestCaseError> {
        let case = self.cases.fetch_add(1, Ordering::SeqCst);
        self.rt.block_on(self.case(case, sc))
    }

    async fn case(&self, case: u64, sc: &Scenario) -> Result<(), TestCaseError> {
        let app = &self.app;
        // Publish this case's rulesets (program ids carry the case number) and refresh the rule cache.
        let rulesets = self.publish(case, &sc.rulesets).await?;

        let cards: Vec<Cardholder> = sc
            .cards
            .iter()
            .enumerate()
            .map(|(i, c)| Cardholder { card_id: format!("k{case}-C{i}"), ..c.clone() })
            .collect();
        app.store.put_cardholders(&cards, &IMPORT, &settlegate::app::cli_actor(), None).await.expect("put cards");
        let card_id = |c: Option<usize>| match c {
            Some(i) => cards[i % cards.len()].card_id.clone(),
            None => format!("k{case}-C404"),
        };

        let mut m = Model {
            rulesets,
            cards: cards.iter().map(|c| (c.card_id.clone(), c.clone())).collect(),
            counters: Counters::default(),
            entries: HashMap::new(),
            sent: Vec::new(),
            cancelled: Vec::new(),
        };
        let request = |card: String, bill: &BillDraft, hsid: String| SettleRequest {
            hospital_settlement_id: hsid,
            card_id: card,
            visit: bill.visit,
            amounts: bill.amounts,
            insurance: bill.insurance.clone(),
            operator: None,
        };

        for (i, op) in sc.ops.iter().enumerate() {
            let fresh = format!("k{case}-{i}");
            match op {
                Op::Settle { card, hospital, bill } => {
                    let req = request(card_id(*card), bill, fresh);
                    self.settle(&mut m, *hospital, req).await?;
                }
                Op::Retry { which } => {
                    if m.sent.is_empty() {
                        continue;
                    }
                    let Sent { hospital, request: req } = m.sent[which % m.sent.len()].clone();
                    self.settle(&mut m, hospital, req).await?;
                }
                Op::Conflict { which, bill } => {
                    if m.sent.is_empty() {
                        continue;
                    }
                    let Sent { hospital, request: old } = m.sent[which % m.sent.len()].clone();
                    let req = request(old.card_id.clone(), bill, old.hospital_settlement_id.clone());
                    self.settle(&mut m, hospital, req).await?;
                }
                Op::LateOriginal { which, bill } => {
                    if m.cancelled.is_empty() {
                        continue;
                    }
                    let Cancelled { hospital, hsid } = m.cancelled[which % m.cancelled.len()].clone();
                    let req = request(cards[which % cards.len()].card_id.clone(), bill, hsid);
                    self.settle(&mut m, hospital, req).await?;
                }
                Op::Reverse { which, by_settlement_id, wrong_card } => {
                    if m.sent.is_empty() {
                        continue;
                    }
                    let Sent { hospital, request: req } = m.sent[which % m.sent.len()].clone();
                    let card = if *wrong_card { format!("k{case}-C9") } else { req.card_id.clone() };
                    self.reverse(&mut m, hospital, card, req.hospital_settlement_id.clone(), *by_settlement_id).await?;
                }
                Op::Cancel { card, hospital } => {
                    m.cancelled.push(Cancelled { hospital: *hospital, hsid: fresh.clone() });
                    self.reverse(&mut m, *hospital, card_id(*card), fresh, false).await?;
                }
                Op::Republish { ruleset } => {
                    m.rulesets = self.publish(case, std::slice::from_ref(ruleset)).await?;
                    bump(&self.stats.republished);
                }
                Op::UpdateCard { card, holder } => {
                    let holder = Cardholder { card_id: cards[card % cards.len()].card_id.clone(), ..holder.clone() };
                    app.store
                        .put_cardholders(std::slice::from_ref(&holder), &IMPORT, &settlegate::app::cli_actor(), None)
                        .await
                        .expect("put card");
                    m.cards.insert(holder.card_id.clone(), holder);
                }
                Op::Eligibility { card, bill } => {
                    let req = EligibilityRequest { card_id: card_id(*card), visit: bill.visit };
                    self.eligibility(&m, &req).await?;
                }
                Op::Quote { card, bill } => {
                    let req = QuoteRequest {
                        hospital_settlement_id: None,
                        card_id: card_id(*card),
                        visit: bill.visit,
                        amounts: bill.amounts,
                        insurance: bill.insurance.clone(),
                        operator: None,
                    };
                    let expected = m.expect_split(&req.bill());
                    match (app.quote(&req).await, expected) {
                        (Ok(s), Ok(e)) => {
                            prop_assert_eq!(s.status, SettlementStatus::Quote);
                            bump(&self.stats.quotes);
                            check_against_engine(&s, &e)?;
                        }
                        (Err(err), Err(c)) => prop_assert_eq!(code(&err), c, "quote {:?}", req),
                        (got, want) => prop_assert!(false, "quote {req:?}: got {got:?}, want {want:?}"),
                    }
                }
            }
        }

        // Redis's counters equal the test's, exactly.
        for year in [2024, 2025, 2026] {
            for c in &cards {
                let (stored, usage) =
                    app.store.cardholder_with_usage(&c.card_id, year).await.expect("usage").expect("card exists");
                prop_assert_eq!(&stored, &m.cards[&c.card_id]);
                let got: Vec<(String, i64, i64)> = usage
                    .into_iter()
                    .filter(|u| u.paid_fen != 0 || u.deductible_met_fen != 0)
                    .map(|u| (u.program, u.paid_fen, u.deductible_met_fen))
                    .collect();
                let mut want: Vec<(String, i64, i64)> = m
                    .counters
                    .normal()
                    .usage
                    .into_iter()
                    .filter(|((card, y, _), _)| card == &c.card_id && *y == year)
                    .map(|((_, _, p), (paid, ded))| (p, paid, ded))
                    .collect();
                want.sort();
                prop_assert_eq!(got, want, "usage of {} in {}", c.card_id, year);
            }
            let ids: Vec<String> = (0..6).map(|i| format!("k{case}_p{i}")).collect();
            let got = app.store.program_paid(year, &ids).await.expect("program_paid");
            let want: Vec<i64> = ids.iter().map(|id| m.counters.usage("", year, id).program_paid_fen).collect();
            prop_assert_eq!(got, want, "program totals of {}", year);
        }
        prop_assert_eq!(recorder().get(MISMATCH), 0, "the gateway's engine cross-check fired");
        Ok(())
    }

    /// Publishes rulesets and refreshes the cache; returns every ruleset Redis now holds (earlier cases' versions
    /// included: the model of `{sg}:rulesets`), after checking that ours are the newest.
    async fn publish(&self, case: u64, rulesets: &[RulesetInput]) -> Result<Vec<Ruleset>, TestCaseError> {
        let app = &self.app;
        let mut inputs = Vec::new();
        for ruleset in rulesets {
            let programs: Vec<Program> =
                ruleset.programs.iter().map(|p| Program { id: format!("k{case}_{}", p.id), ..p.clone() }).collect();
            let input = RulesetInput { effective_from: ruleset.effective_from, programs };
            prop_assert!(input.validate().is_empty(), "generated an invalid ruleset: {:?}", input.validate());
            app.store.publish_ruleset(&input, PUBLISHED_AT, &settlegate::app::cli_actor()).await.expect("publish");
            inputs.push(input);
        }
        app.rules.refresh(&app.store).await.expect("refresh rules");
        let all = app.store.load_rulesets().await.expect("load rulesets");
        prop_assert!(all.len() >= inputs.len());
        for (r, input) in all[all.len() - inputs.len()..].iter().zip(&inputs) {
            prop_assert_eq!((&r.effective_from, &r.programs), (&input.effective_from, &input.programs));
        }
        prop_assert!(all.windows(2).all(|w| w[0].version + 1 == w[1].version));
        prop_assert_eq!(app.rules.snapshot().latest_version(), all.last().unwrap().version);
        Ok(all)
    }

    /// API.md `/v1/eligibility`: 404 for an unknown card; `eligible: false` with the reason for a card that cannot
    /// be served; 422 without a ruleset in force; else the covering programs with what is left of the deductible
    /// and the annual cap, from the test's counters.
    async fn eligibility(&self, m: &Model, req: &EligibilityRequest) -> Result<(), TestCaseError> {
        let got = self.app.eligibility(req).await;
        let Some(card) = m.cards.get(&req.card_id) else {
            prop_assert_eq!(got.as_ref().err().map(code), Some("card_not_found"));
            return Ok(());
        };
        let rs = in_force(&m.rulesets, req.visit.date);
        if let Err(why) = card.eligibility(req.visit.date) {
            let e = got.map_err(|e| TestCaseError::fail(format!("eligibility {req:?}: {e:?}")))?;
            prop_assert!(!e.eligible);
            prop_assert_eq!(e.reason, Some(why.as_str()));
            prop_assert!(e.programs.is_empty());
            prop_assert_eq!(e.ruleset_version, rs.map(|r| r.version));
            return Ok(());
        }
        let Some(rs) = rs else {
            prop_assert_eq!(got.as_ref().err().map(code), Some("no_rules_in_force"));
            return Ok(());
        };
        let e = got.map_err(|e| TestCaseError::fail(format!("eligibility {req:?}: {e:?}")))?;
        prop_assert!(e.eligible && e.reason.is_none());
        prop_assert_eq!(&e.category, &card.category);
        prop_assert_eq!(e.ruleset_version, Some(rs.version));
        prop_assert_eq!(EligibleProgram::of(&e), m.eligible_programs(rs, card, req), "eligibility {:?}", req);
        bump(&self.stats.eligibility);
        Ok(())
    }

    async fn settle(&self, m: &mut Model, hospital: usize, req: SettleRequest) -> Result<(), TestCaseError> {
        let h = HOSPITALS[hospital];
        m.sent.push(Sent { hospital, request: req.clone() });
        let key = (h.to_string(), req.hospital_settlement_id.clone());
        let canonical = req.bill().canonical();
        let got = self.app.settle(h, &req).await;
        match m.entries.get(&key) {
            Some(Entry::Tombstone { .. }) => {
                prop_assert_eq!(got.as_ref().err().map(code), Some("already_reversed"), "{:?}", req);
                bump(&self.stats.already_reversed);
            }
            Some(Entry::Settled { canonical: c, settlement }) if *c == canonical => {
                let (s, created) = got.map_err(|e| TestCaseError::fail(format!("replay {req:?}: {e:?}")))?;
                prop_assert!(!created, "a retry must not create");
                prop_assert_eq!(&s, &**settlement, "a retry answers the settlement as it stands");
                bump(&self.stats.replays);
                if s.status == SettlementStatus::Reversed {
                    bump(&self.stats.replays_of_reversed);
                }
            }
            Some(Entry::Settled { .. }) => {
                prop_assert_eq!(got.as_ref().err().map(code), Some("idempotency_conflict"), "{:?}", req);
                bump(&self.stats.conflicts);
            }
            None => match m.expect_split(&req.bill()) {
                Err(c) => {
                    prop_assert_eq!(got.as_ref().err().map(code), Some(c), "{:?}: {:?}", req, got);
                    bump(&self.stats.refusals);
                }
                Ok(e) => {
                    let (s, created) = got.map_err(|e| TestCaseError::fail(format!("settle {req:?}: {e:?}")))?;
                    prop_assert!(created);
                    prop_assert_eq!(s.status, SettlementStatus::Settled);
                    prop_assert_eq!(s.hospital_settlement_id.as_deref(), Some(req.hospital_settlement_id.as_str()));
                    prop_assert_eq!(&s.card_id, &req.card_id);
                    prop_assert_eq!(s.amounts, req.amounts);
                    prop_assert_eq!(&s.insurance, &req.insurance);
                    check_against_engine(&s, &e)?;
                    bump(&self.stats.created);
                    for p in &s.payments {
                        if p.paid_fen > 0 {
                            bump(&self.stats.paid_lines);
                        }
                        if p.capped_by.is_some() {
                            bump(&self.stats.capped_lines);
                        }
                        if p.paid_fen >= 1 << 52 {
                            bump(&self.stats.huge_payments);
                        }
                    }
                    m.counters.apply(&req.card_id, req.visit.date.year(), &s.payments, 1);
                    m.entries.insert(key, Entry::Settled { canonical, settlement: Box::new(s) });
                }
            },
        }
        Ok(())
    }

    async fn reverse(
        &self,
        m: &mut Model,
        hospital: usize,
        card_id: String,
        hsid: String,
        by_settlement_id: bool,
    ) -> Result<(), TestCaseError> {
        let h = HOSPITALS[hospital];
        let key = (h.to_string(), hsid.clone());
        let sid = match m.entries.get(&key) {
            Some(Entry::Settled { settlement, .. }) if by_settlement_id => settlement.settlement_id.clone(),
            _ => None,
        };
        let req = ReversalRequest {
            card_id: card_id.clone(),
            hospital_settlement_id: if sid.is_none() { Some(hsid.clone()) } else { None },
            settlement_id: sid.clone(),
            reason: Some("property test".into()),
            operator: None,
        };
        let got = self.app.reverse(h, &req).await;
        match m.entries.get_mut(&key) {
            Some(Entry::Settled { settlement, .. }) if settlement.card_id == card_id => {
                let Ok(Reversal::Settlement(s)) = got else {
                    return Err(TestCaseError::fail(format!("reverse {req:?}: not a settlement")));
                };
                // (works whether the app hands the settlement over boxed or not)
                let s: Settlement = {
                    let r: &Settlement = &s;
                    r.clone()
                };
                prop_assert_eq!(s.status, SettlementStatus::Reversed);
                prop_assert!(s.reversed_at.is_some());
                if settlement.status == SettlementStatus::Reversed {
                    prop_assert_eq!(&s, &**settlement, "a second reversal answers the same");
                } else {
                    let as_settled = Settlement {
                        status: SettlementStatus::Settled,
                        reversed_at: None,
                        reason: None,
                        reversed_by: None,
                        ..s.clone()
                    };
                    prop_assert_eq!(&as_settled, &**settlement, "a reversal undoes what was recorded");
                    m.counters.apply(&s.card_id, s.visit.date.year(), &s.payments, -1);
                    bump(&self.stats.reversals);
                    **settlement = s;
                }
            }
            Some(Entry::Tombstone { card_id: holder }) if *holder == card_id => {
                let Ok(Reversal::ReversedBeforeSettled(t)) = got else {
                    return Err(TestCaseError::fail(format!("reverse {req:?}: not a tombstone")));
                };
                prop_assert_eq!(&t.card_id, &card_id);
                prop_assert_eq!(&t.hospital_settlement_id, &hsid);
            }
            Some(_) if sid.is_none() => {
                prop_assert_eq!(got.as_ref().err().map(code), Some("idempotency_conflict"), "{:?}", req);
            }
            Some(_) => prop_assert_eq!(got.as_ref().err().map(code), Some("not_found"), "{:?}", req),
            None => {
                let Ok(Reversal::ReversedBeforeSettled(t)) = got else {
                    return Err(TestCaseError::fail(format!("reverse {req:?}: not a tombstone")));
                };
                prop_assert_eq!(&t.card_id, &card_id);
                bump(&self.stats.tombstones);
                m.entries.insert(key, Entry::Tombstone { card_id });
            }
        }
        Ok(())
    }
}

fn run_live(name: &str, cases: u32, strategy: impl Strategy<Value = Scenario>) -> Live {
    let live = Live::start();
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 400,
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&strategy, |sc| live.run(&sc)) {
        panic!("{name}: {e}");
    }
    eprintln!("{name}: {} cases, {:?}", live.cases.load(Ordering::SeqCst), live.stats);
    assert_eq!(recorder().get(MISMATCH), 0);
    let s = &live.stats;
    for (what, n) in [
        ("settlements", &s.created),
        ("paying lines", &s.paid_lines),
        ("capped lines", &s.capped_lines),
        ("replays", &s.replays),
        ("conflicts", &s.conflicts),
        ("refusals", &s.refusals),
        ("reversals", &s.reversals),
        ("tombstones", &s.tombstones),
        ("late originals", &s.already_reversed),
        ("quotes", &s.quotes),
        ("republished rulesets", &s.republished),
        ("eligibility answers", &s.eligibility),
    ] {
        assert!(n.load(Ordering::Relaxed) > 0, "{name}: no {what} exercised: {s:?}");
    }
    live
}

/// Random rulesets, cards and operations through `App` and Redis; every answer checked against the engine and the
/// model, Redis's counters checked at the end of each case.
#[test]
fn lua_settle_matches_engine_through_app() {
    let live = run_live("lua_settle_matches_engine_through_app", 128, scenario(ANY, normal_bill));
    assert!(live.stats.replays_of_reversed.load(Ordering::Relaxed) > 0, "{:?}", live.stats);
}

/// The same at the top of the range (bills near 2^53 − 1 and 10^12, mostly no caps): Lua's integer arithmetic is
/// exact, also in `pct` and in the counters.
#[test]
fn lua_is_exact_near_2_pow_53() {
    let live = run_live("lua_is_exact_near_2_pow_53", 96, scenario(BIG, big_bill));
    assert!(live.stats.huge_payments.load(Ordering::Relaxed) >= 20, "{:?}", live.stats);
}
