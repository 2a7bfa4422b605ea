//! The post-run money audit. It compares what the hospitals were told (the [`Ledger`]) with what the gateway
//! holds afterwards:
//!
//! 1. unknown outcomes (timeouts, broken connections, 504) are resolved by lookup, as a billing system would;
//! 2. every settlement answered 201/200 exists once, with the answered amounts and payments
//!    (`GET /v1/settlements/{id}` as the same hospital); reversed ones are reversed, the others are not;
//! 3. per card and program, usage `paid_fen` / `deductible_met_fen` equal the sums over the card's answered,
//!    not reversed settlements (the run owns its cards), and no card is above the ruleset's annual cap;
//! 4. no pool is above its budget (and, when the run owns the store, pool totals moved by exactly the run's payments);
//! 5. each hospital's reconciliation totals moved by exactly the sum of its answers (settlements +, reversals −);
//! 6. cancelled-before-settled ids have no settlement, and a late settle with one is refused 409 `already_reversed`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use http::Method;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::client::{Endpoint, JSON};
use crate::scenario::{AuditOptions, Scenario};
use crate::workload::{settle_body, CancelState, RecordState, SettlementAnswer, SettlementRecord, Workload};
use crate::BoxError;

const MAX_EXAMPLES: usize = 10;
const READ_ATTEMPTS: usize = 3;

/// One audit check: how many things it looked at, how many were wrong, and a few examples.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub checked: u64,
    pub failed: u64,
    pub examples: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Check {
    pub fn new(name: &str) -> Check {
        Check { name: name.into(), passed: true, checked: 0, failed: 0, examples: Vec::new(), note: None }
    }
    pub fn ok(&mut self) {
        self.checked += 1;
    }
    pub fn fail(&mut self, example: String) {
        self.checked += 1;
        self.failed += 1;
        self.passed = false;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example);
        }
    }
    pub fn expect(&mut self, condition: bool, example: impl FnOnce() -> String) {
        if condition {
            self.ok()
        } else {
            self.fail(example())
        }
    }
}

/// The deliberate fault of `--tamper`, reported with the audit that should catch it.
#[derive(Debug, Clone, Serialize)]
pub struct Tamper {
    pub card_id: String,
    pub key: String,
    pub field: String,
    pub applied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Resolution {
    pub settle_unknown: u64,
    pub resolved_settled: u64,
    pub resolved_not_applied: u64,
    pub reverse_unknown: u64,
    pub resolved_reversed: u64,
    pub resolved_not_reversed: u64,
    pub unresolved: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub enabled: bool,
    /// `None` when the audit did not run.
    pub passed: Option<bool>,
    pub checks: Vec<Check>,
    pub settlements: u64,
    pub reversals: u64,
    pub cancels: u64,
    pub cards: u64,
    pub resolution: Resolution,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tamper: Option<Tamper>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AuditReport {
    pub fn disabled() -> AuditReport {
        AuditReport {
            enabled: false,
            passed: None,
            checks: Vec::new(),
            settlements: 0,
            reversals: 0,
            cancels: 0,
            cards: 0,
            resolution: Resolution::default(),
            tamper: None,
            duration_ms: 0,
            error: None,
        }
    }
}

/// A hospital's reconciliation totals for one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recon {
    pub settled_count: i64,
    pub reversed_count: i64,
    pub total_fen: i64,
    pub insurance_fen: i64,
    pub relief_fen: i64,
    pub patient_fen: i64,
    pub by_program: BTreeMap<String, i64>,
}

impl Recon {
    fn from_json(v: &serde_json::Value) -> Result<Recon, String> {
        #[derive(Deserialize)]
        struct Net {
            total_fen: i64,
            insurance_fen: i64,
            relief_fen: i64,
            patient_fen: i64,
            #[serde(default)]
            by_program: BTreeMap<String, i64>,
        }
        #[derive(Deserialize)]
        struct Body {
            settled_count: i64,
            reversed_count: i64,
            net: Net,
        }
        let b: Body = serde_json::from_value(v.clone()).map_err(|e| format!("reconciliation body {v}: {e}"))?;
        Ok(Recon {
            settled_count: b.settled_count,
            reversed_count: b.reversed_count,
            total_fen: b.net.total_fen,
            insurance_fen: b.net.insurance_fen,
            relief_fen: b.net.relief_fen,
            patient_fen: b.net.patient_fen,
            by_program: b.net.by_program,
        })
    }

    /// Adds (sign +1) or subtracts (sign −1) one settlement's amounts.
    pub fn apply(&mut self, a: &SettlementAnswer, sign: i64) {
        if sign > 0 {
            self.settled_count += 1;
        } else {
            self.reversed_count += 1;
        }
        self.total_fen += sign * a.total_fen as i64;
        self.insurance_fen += sign * a.insurance_fen as i64;
        self.relief_fen += sign * a.relief_fen as i64;
        self.patient_fen += sign * a.patient_fen as i64;
        for p in &a.payments {
            *self.by_program.entry(p.program.clone()).or_insert(0) += sign * p.paid_fen as i64;
        }
    }

    pub fn minus(&self, before: &Recon) -> Recon {
        let mut by_program = self.by_program.clone();
        for (k, v) in &before.by_program {
            *by_program.entry(k.clone()).or_insert(0) -= v;
        }
        Recon {
            settled_count: self.settled_count - before.settled_count,
            reversed_count: self.reversed_count - before.reversed_count,
            total_fen: self.total_fen - before.total_fen,
            insurance_fen: self.insurance_fen - before.insurance_fen,
            relief_fen: self.relief_fen - before.relief_fen,
            patient_fen: self.patient_fen - before.patient_fen,
            by_program,
        }
    }

    /// Field-by-field differences (programs with 0 on one side and absent on the other are equal).
    pub fn differences(&self, expected: &Recon) -> Vec<String> {
        let mut out = Vec::new();
        let pairs = [
            ("settled_count", self.settled_count, expected.settled_count),
            ("reversed_count", self.reversed_count, expected.reversed_count),
            ("net.total_fen", self.total_fen, expected.total_fen),
            ("net.insurance_fen", self.insurance_fen, expected.insurance_fen),
            ("net.relief_fen", self.relief_fen, expected.relief_fen),
            ("net.patient_fen", self.patient_fen, expected.patient_fen),
        ];
        for (name, got, want) in pairs {
            if got != want {
                out.push(format!("{name} moved by {got}, answers sum to {want}"));
            }
        }
        let programs: BTreeSet<&String> = self.by_program.keys().chain(expected.by_program.keys()).collect();
        for p in programs {
            let got = self.by_program.get(p).copied().unwrap_or(0);
            let want = expected.by_program.get(p).copied().unwrap_or(0);
            if got != want {
                out.push(format!("net.by_program.{p} moved by {got}, answers sum to {want}"));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub budget_fen: i64,
    pub paid_fen: i64,
    pub left_fen: i64,
}

/// Shared totals read before the run, so the audit can compare deltas.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// (hospital index, date) → totals.
    pub reconciliation: BTreeMap<(usize, String), Recon>,
    pub pools: BTreeMap<String, Pool>,
}

/// A read with a few attempts: the audit must not fail because one read timed out.
async fn read_json(who: &Endpoint, path: &str) -> Result<(u16, serde_json::Value), String> {
    let mut last = String::new();
    for _ in 0..READ_ATTEMPTS {
        match who.json(Method::GET, path, None).await {
            Ok((status, v)) if status < 500 => return Ok((status, v)),
            Ok((status, v)) => last = format!("HTTP {status} {v}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(format!("GET {path} as {}: {last}", who.name))
}

async fn read_pools(admin: &Endpoint, year: &str) -> Result<BTreeMap<String, Pool>, String> {
    let (status, v) = read_json(admin, &format!("/admin/v1/pools?year={year}")).await?;
    if status != 200 {
        return Err(format!("GET /admin/v1/pools: HTTP {status} {v}"));
    }
    let mut pools = BTreeMap::new();
    for p in v["pools"].as_array().ok_or_else(|| format!("pools body without pools: {v}"))? {
        let program = p["program"].as_str().unwrap_or_default().to_string();
        pools.insert(
            program,
            Pool {
                budget_fen: p["budget_fen"].as_i64().unwrap_or(-1),
                paid_fen: p["paid_fen"].as_i64().unwrap_or(-1),
                left_fen: p["left_fen"].as_i64().unwrap_or(-1),
            },
        );
    }
    Ok(pools)
}

async fn read_recon(hospital: &Endpoint, date: &str) -> Result<Recon, String> {
    let (status, v) = read_json(hospital, &format!("/v1/reconciliation?date={date}")).await?;
    if status != 200 {
        return Err(format!("GET /v1/reconciliation?date={date} as {}: HTTP {status} {v}", hospital.name));
    }
    Recon::from_json(&v)
}

/// Reads the shared totals the audit compares deltas of.
pub async fn snapshot(
    hospitals: &[Arc<Endpoint>],
    admin: &Endpoint,
    dates: &[String],
    year: &str,
) -> Result<Snapshot, BoxError> {
    let mut snap = Snapshot::default();
    for (h, endpoint) in hospitals.iter().enumerate() {
        for date in dates {
            snap.reconciliation.insert((h, date.clone()), read_recon(endpoint, date).await?);
        }
    }
    snap.pools = read_pools(admin, year).await?;
    Ok(snap)
}

/// Runs `f` over `items` with at most `concurrency` at once; results in input order.
async fn bounded<T, R, F, Fut>(items: Vec<T>, concurrency: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let n = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let fut = f(item);
        set.spawn(async move {
            let r = fut.await;
            drop(permit);
            (i, r)
        });
    }
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.expect("audit task");
        out[i] = Some(r);
    }
    out.into_iter().map(|r| r.expect("every item answered")).collect()
}

/// What the audit needs from the run.
pub struct AuditInput {
    pub workload: Arc<Workload>,
    pub admin: Arc<Endpoint>,
    pub ruleset_version: u64,
    pub year: String,
    pub dates: Vec<String>,
    pub before: Snapshot,
    pub options: AuditOptions,
    pub tamper: Option<Tamper>,
}

fn date_of(timestamp: &Option<String>) -> Option<String> {
    timestamp.as_ref().filter(|t| t.len() >= 10).map(|t| t[..10].to_string())
}

/// How one unknown outcome turned out.
enum Resolved {
    Settled,
    NotApplied,
    Reversal,
    Problem(String),
}

/// Step 1: settle into Settled / Reversed / NotApplied every record whose outcome the hospital does not know.
async fn resolve(
    records: Vec<SettlementRecord>,
    workload: &Arc<Workload>,
    concurrency: usize,
    resolution: &mut Resolution,
    check: &mut Check,
) -> Vec<SettlementRecord> {
    let w = workload.clone();
    let results = bounded(records, concurrency, move |mut r: SettlementRecord| {
        let w = w.clone();
        async move {
            let hospital = w.hospitals[r.hospital].clone();
            let card_id = w.cards.card_id(r.card);
            let needs_lookup = r.answer.is_none() || r.state == RecordState::SettleUnknown;
            let reversing = matches!(r.state, RecordState::ReverseUnknown | RecordState::Reversing);
            if !needs_lookup && !reversing {
                return (r, None::<Resolved>);
            }
            let path = match (&r.answer, needs_lookup) {
                (Some(a), false) => format!("/v1/settlements/{}", a.settlement_id),
                _ => format!("/v1/settlements?card_id={card_id}&hospital_settlement_id={}", r.hsid),
            };
            let note = match read_json(&hospital, &path).await {
                Ok((200, v)) => match serde_json::from_value::<SettlementAnswer>(v.clone()) {
                    Ok(found) => {
                        r.state = if found.status == "reversed" { RecordState::Reversed } else { RecordState::Settled };
                        if r.state == RecordState::Reversed {
                            r.reversed_at = found.reversed_at.clone();
                        }
                        if r.answer.is_none() {
                            r.answer = Some(found);
                        }
                        Some(if reversing { Resolved::Reversal } else { Resolved::Settled })
                    }
                    Err(e) => Some(Resolved::Problem(format!("unreadable {path}: {e}"))),
                },
                Ok((404, _)) if needs_lookup => {
                    r.state = RecordState::NotApplied;
                    Some(Resolved::NotApplied)
                }
                Ok((status, v)) => Some(Resolved::Problem(format!("{path}: HTTP {status} {v}"))),
                Err(e) => Some(Resolved::Problem(e)),
            };
            (r, note)
        }
    })
    .await;
    let mut out = Vec::with_capacity(results.len());
    for (r, note) in results {
        match note {
            None => {}
            Some(Resolved::Settled) => {
                resolution.settle_unknown += 1;
                resolution.resolved_settled += 1;
                check.ok();
            }
            Some(Resolved::NotApplied) => {
                resolution.settle_unknown += 1;
                resolution.resolved_not_applied += 1;
                check.ok();
            }
            Some(Resolved::Reversal) => {
                resolution.reverse_unknown += 1;
                if r.state == RecordState::Reversed {
                    resolution.resolved_reversed += 1;
                } else {
                    resolution.resolved_not_reversed += 1;
                }
                check.ok();
            }
            Some(Resolved::Problem(problem)) => {
                resolution.unresolved += 1;
                check.fail(format!("{}: {problem}", r.hsid));
            }
        }
        out.push(r);
    }
    out
}

pub async fn run(input: AuditInput) -> AuditReport {
    let t0 = Instant::now();
    let mut report = AuditReport::disabled();
    report.enabled = true;
    report.tamper = input.tamper.clone();
    let (records, cancels) = {
        let ledger = input.workload.ledger.lock().expect("ledger");
        (ledger.records.iter().map(|r| (**r).clone()).collect::<Vec<_>>(), ledger.cancels.clone())
    };
    let w = &input.workload;
    let scenario: &Scenario = &w.scenario;
    let concurrency = input.options.concurrency;

    // 1. Unknown outcomes.
    let mut resolved_check = Check::new("unknown_outcomes_resolved");
    let records = resolve(records, w, concurrency, &mut report.resolution, &mut resolved_check).await;
    let settled: Vec<SettlementRecord> = records
        .into_iter()
        .filter(|r| matches!(r.state, RecordState::Settled | RecordState::Reversed) && r.answer.is_some())
        .collect();
    report.settlements = settled.len() as u64;
    report.reversals = settled.iter().filter(|r| r.state == RecordState::Reversed).count() as u64;
    report.cancels = cancels.len() as u64;

    // Answers themselves.
    let mut invariant = Check::new("answers_add_up");
    let mut version = Check::new("answers_used_the_published_ruleset");
    let mut unique = Check::new("settlement_ids_unique");
    let mut ids = HashSet::new();
    for r in &settled {
        let a = r.answer.as_ref().expect("answered");
        invariant.expect(a.invariant_holds(), || {
            format!(
                "{}: insurance {} + relief {} + patient {} != total {} or payments != relief",
                a.settlement_id, a.insurance_fen, a.relief_fen, a.patient_fen, a.total_fen
            )
        });
        version.expect(a.ruleset_version == input.ruleset_version, || {
            format!("{}: ruleset_version {} (published {})", a.settlement_id, a.ruleset_version, input.ruleset_version)
        });
        unique.expect(ids.insert(a.settlement_id.clone()), || {
            format!("settlement_id {} answered for two ids", a.settlement_id)
        });
    }

    // 2. Every answered settlement exists once, with the answered amounts; reversed ones are reversed.
    let mut exists = Check::new("settlements_exist_with_answered_amounts");
    let mut reversed_check = Check::new("reversed_settlements_are_reversed");
    let mut by_hsid = Check::new("lookup_by_hospital_settlement_id");
    let items: Vec<(usize, SettlementRecord)> = settled.iter().cloned().enumerate().collect();
    let wc = w.clone();
    let lookups = bounded(items, concurrency, move |(i, r): (usize, SettlementRecord)| {
        let w = wc.clone();
        async move {
            let hospital = w.hospitals[r.hospital].clone();
            let a = r.answer.as_ref().expect("answered");
            let by_id = read_json(&hospital, &format!("/v1/settlements/{}", a.settlement_id)).await;
            // A sample is also looked up by the hospital's own id ("did my settlement go through?").
            let by_hsid = if i % 10 == 0 {
                Some(
                    read_json(
                        &hospital,
                        &format!("/v1/settlements?card_id={}&hospital_settlement_id={}", a.card_id, r.hsid),
                    )
                    .await,
                )
            } else {
                None
            };
            (r, by_id, by_hsid)
        }
    })
    .await;
    for (r, by_id, by_hsid_answer) in lookups {
        let a = r.answer.as_ref().expect("answered");
        let want_status = if r.state == RecordState::Reversed { "reversed" } else { "settled" };
        match by_id {
            Ok((200, v)) => match serde_json::from_value::<SettlementAnswer>(v.clone()) {
                Ok(found) => {
                    exists.expect(found.same_money(a), || {
                        format!(
                            "{}: stored {v} != answered {}",
                            a.settlement_id,
                            serde_json::to_string(a).unwrap_or_default()
                        )
                    });
                    let status_ok =
                        found.status == want_status && (want_status != "reversed" || found.reversed_at.is_some());
                    if r.state == RecordState::Reversed {
                        reversed_check.expect(status_ok, || {
                            format!(
                                "{}: status {} reversed_at {:?}, reversal was answered",
                                a.settlement_id, found.status, found.reversed_at
                            )
                        });
                    } else if !status_ok {
                        exists.fail(format!("{}: status {} but never reversed", a.settlement_id, found.status));
                    }
                }
                Err(e) => exists.fail(format!("{}: unreadable {v}: {e}", a.settlement_id)),
            },
            Ok((status, v)) => exists.fail(format!("{} ({}): HTTP {status} {v}", a.settlement_id, r.hsid)),
            Err(e) => exists.fail(e),
        }
        if let Some(answer) = by_hsid_answer {
            match answer {
                Ok((200, v)) => by_hsid.expect(v["settlement_id"] == a.settlement_id.as_str(), || {
                    format!("{}: lookup by id gives {v}", r.hsid)
                }),
                Ok((status, v)) => by_hsid.fail(format!("{}: HTTP {status} {v}", r.hsid)),
                Err(e) => by_hsid.fail(e),
            }
        }
    }

    // 3. Card usage = sum of the answers; caps respected.
    let mut expected_usage: BTreeMap<u32, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    let mut touched: BTreeSet<u32> = BTreeSet::new();
    for r in &settled {
        touched.insert(r.card);
        let entry = expected_usage.entry(r.card).or_default();
        if r.state == RecordState::Settled {
            for p in &r.answer.as_ref().expect("answered").payments {
                let e = entry.entry(p.program.clone()).or_insert((0, 0));
                e.0 += p.paid_fen;
                e.1 += p.deductible_applied_fen;
            }
        }
    }
    if let Some(t) = &input.tamper {
        if let Some(i) = w.cards.index_of(&t.card_id) {
            touched.insert(i);
        }
    }
    report.cards = touched.len() as u64;
    let mut usage_check = Check::new("card_usage_equals_answers");
    let mut caps_check = Check::new("annual_caps_respected");
    let admin = input.admin.clone();
    let year = input.year.clone();
    let wc = w.clone();
    let card_reads = bounded(touched.iter().copied().collect(), concurrency, move |card: u32| {
        let admin = admin.clone();
        let path = format!("/admin/v1/cardholders/{}?year={year}", wc.cards.card_id(card));
        async move { (card, read_json(&admin, &path).await) }
    })
    .await;
    for (card, read) in card_reads {
        let card_id = w.cards.card_id(card);
        let category = w.cards.category(card).to_string();
        let usage = match read {
            Ok((200, v)) => v,
            Ok((status, v)) => {
                usage_check.fail(format!("{card_id}: HTTP {status} {v}"));
                continue;
            }
            Err(e) => {
                usage_check.fail(e);
                continue;
            }
        };
        let mut got: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for u in usage["usage"].as_array().cloned().unwrap_or_default() {
            got.insert(
                u["program"].as_str().unwrap_or_default().to_string(),
                (u["paid_fen"].as_u64().unwrap_or(u64::MAX), u["deductible_met_fen"].as_u64().unwrap_or(u64::MAX)),
            );
        }
        let want = expected_usage.get(&card).cloned().unwrap_or_default();
        let programs: BTreeSet<&String> = got.keys().chain(want.keys()).collect();
        for program in programs {
            let g = got.get(program).copied().unwrap_or((0, 0));
            let e = want.get(program).copied().unwrap_or((0, 0));
            usage_check.expect(g == e, || {
                format!(
                    "{card_id} {program}: usage paid {} deductible_met {} != answers paid {} deductible {}",
                    g.0, g.1, e.0, e.1
                )
            });
            if let Some(cap) = scenario.rule(program, &category).and_then(|r| r.annual_cap_fen) {
                caps_check.expect(g.0 <= cap, || {
                    format!("{card_id} ({category}) {program}: paid {} above annual cap {cap}", g.0)
                });
            }
        }
    }

    // 4. Pools within budget; with an exclusive store, moved by exactly the run's payments.
    let mut pools_check = Check::new("pools_within_budget");
    let mut pool_delta = Check::new("pool_totals_moved_by_the_answers");
    if !input.options.exclusive_store {
        pool_delta.note =
            Some("informational: the store is shared with other traffic (audit.exclusive_store = false)".into());
    }
    let mut paid_by_program: BTreeMap<String, i64> = BTreeMap::new();
    for r in settled.iter().filter(|r| r.state == RecordState::Settled) {
        for p in &r.answer.as_ref().expect("answered").payments {
            *paid_by_program.entry(p.program.clone()).or_insert(0) += p.paid_fen as i64;
        }
    }
    match read_pools(&input.admin, &input.year).await {
        Ok(pools) => {
            for (program, pool) in &pools {
                pools_check.expect(pool.paid_fen <= pool.budget_fen && pool.paid_fen >= 0, || {
                    format!("{program}: paid {} above budget {}", pool.paid_fen, pool.budget_fen)
                });
                let before = input.before.pools.get(program).map(|p| p.paid_fen).unwrap_or(0);
                let want = paid_by_program.get(program).copied().unwrap_or(0);
                let delta = pool.paid_fen - before;
                if delta == want {
                    pool_delta.ok();
                } else if input.options.exclusive_store {
                    pool_delta.fail(format!("{program}: paid moved by {delta}, answers sum to {want}"));
                } else {
                    pool_delta.checked += 1;
                    if pool_delta.examples.len() < MAX_EXAMPLES {
                        pool_delta
                            .examples
                            .push(format!("{program}: paid moved by {delta}, answers sum to {want} (shared store)"));
                    }
                }
            }
            for p in scenario.ruleset.programs.iter().filter(|p| p.annual_pool_fen.is_some()) {
                pools_check.expect(pools.contains_key(&p.id), || {
                    format!("{}: has annual_pool_fen but no pool is listed", p.id)
                });
            }
        }
        Err(e) => pools_check.fail(e),
    }

    // 5. Reconciliation deltas per hospital and day.
    let mut recon_check = Check::new("reconciliation_moved_by_the_answers");
    let mut expected_recon: BTreeMap<(usize, String), Recon> = BTreeMap::new();
    let mut outside = Vec::new();
    for r in &settled {
        let a = r.answer.as_ref().expect("answered");
        match date_of(&a.settled_at) {
            Some(d) => expected_recon.entry((r.hospital, d)).or_default().apply(a, 1),
            None => outside.push(format!("{}: answer without settled_at", a.settlement_id)),
        }
        if r.state == RecordState::Reversed {
            match date_of(&r.reversed_at) {
                Some(d) => expected_recon.entry((r.hospital, d)).or_default().apply(a, -1),
                None => outside.push(format!("{}: reversal without reversed_at", a.settlement_id)),
            }
        }
    }
    for key in expected_recon.keys() {
        if !input.before.reconciliation.contains_key(key) {
            outside.push(format!("hospital {} has events on {}, a day not snapshotted before the run", key.0, key.1));
        }
    }
    for problem in outside {
        recon_check.fail(problem);
    }
    for ((h, date), before) in &input.before.reconciliation {
        let hospital = &w.hospitals[*h];
        match read_recon(hospital, date).await {
            Ok(after) => {
                let delta = after.minus(before);
                let want = expected_recon.get(&(*h, date.clone())).cloned().unwrap_or_default();
                let diffs = delta.differences(&want);
                recon_check.expect(diffs.is_empty(), || format!("{} on {date}: {}", hospital.name, diffs.join("; ")));
            }
            Err(e) => recon_check.fail(e),
        }
    }

    // 6. Cancelled ids stay cancelled (refusals only: nothing changes if the gateway is right).
    let mut cancel_check = Check::new("cancelled_ids_stay_cancelled");
    let sample: Vec<_> = cancels
        .iter()
        .filter(|c| c.state == CancelState::Cancelled)
        .take(input.options.max_cancel_checks)
        .cloned()
        .collect();
    let wc = w.clone();
    let cancel_results = bounded(sample, concurrency, move |c: crate::workload::CancelRecord| {
        let w = wc.clone();
        async move {
            let hospital = w.hospitals[c.hospital].clone();
            let card_id = w.cards.card_id(c.card);
            let lookup =
                read_json(&hospital, &format!("/v1/settlements?card_id={card_id}&hospital_settlement_id={}", c.hsid))
                    .await;
            let mut rng = SmallRng::seed_from_u64(c.card as u64);
            let bill = w.bills.make(&mut rng);
            let body = settle_body(Some(&c.hsid), &card_id, &w.visit_date, &bill);
            let late = hospital.call(Method::POST, "/v1/settlements", Some((body, JSON))).await;
            (c, lookup, late)
        }
    })
    .await;
    for (c, lookup, late) in cancel_results {
        match lookup {
            Ok((404, _)) => cancel_check.ok(),
            Ok((status, v)) => cancel_check.fail(format!("{}: lookup HTTP {status} {v}", c.hsid)),
            Err(e) => cancel_check.fail(e),
        }
        match late {
            Ok(a) if a.status == 409 && a.problem_code().as_deref() == Some("already_reversed") => cancel_check.ok(),
            Ok(a) => cancel_check.fail(format!(
                "{}: late settle answered {} {}",
                c.hsid,
                a.status,
                String::from_utf8_lossy(&a.body)
            )),
            Err(f) => cancel_check.fail(format!("{}: late settle {}", c.hsid, f.code())),
        }
    }

    report.checks = vec![
        resolved_check,
        invariant,
        version,
        unique,
        exists,
        reversed_check,
        by_hsid,
        usage_check,
        caps_check,
        pools_check,
        pool_delta,
        recon_check,
        cancel_check,
    ];
    report.passed = Some(report.checks.iter().all(|c| c.passed));
    report.duration_ms = t0.elapsed().as_millis() as u64;
    report
}

/// `--tamper`: adds 1 fen to one card's usage directly in Redis, bypassing the gateway.
pub async fn tamper(redis_url: &str, key: &str, field: &str) -> Result<i64, String> {
    let client = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    redis::cmd("HINCRBY").arg(key).arg(field).arg(1).query_async::<i64>(&mut conn).await.map_err(|e| e.to_string())
}

/// Fills the `--tamper-key` / `--tamper-field` templates.
pub fn tamper_names(
    key_template: &str,
    field_template: &str,
    card_id: &str,
    year: &str,
    program: &str,
) -> (String, String) {
    let fill = |t: &str| t.replace("$CARD", card_id).replace("$YEAR", year).replace("$PROGRAM", program);
    (fill(key_template), fill(field_template))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Payment;

    fn answer(total: u64, ins: u64, pays: &[(&str, u64)]) -> SettlementAnswer {
        let relief: u64 = pays.iter().map(|p| p.1).sum();
        SettlementAnswer {
            settlement_id: "s".into(),
            hospital_settlement_id: "h".into(),
            status: "settled".into(),
            card_id: "C".into(),
            ruleset_version: 1,
            total_fen: total,
            insurance_fen: ins,
            relief_fen: relief,
            patient_fen: total - ins - relief,
            payments: pays
                .iter()
                .map(|(p, f)| Payment {
                    program: p.to_string(),
                    paid_fen: *f,
                    deductible_applied_fen: 0,
                    capped_by: None,
                })
                .collect(),
            settled_at: Some("2026-11-30T10:00:00.000+08:00".into()),
            reversed_at: None,
        }
    }

    #[test]
    fn reconciliation_arithmetic() {
        let before = Recon::from_json(&serde_json::json!({
            "date": "2026-11-30", "hospital_id": "H0001", "settled_count": 5, "reversed_count": 1,
            "net": {"total_fen": 1000, "insurance_fen": 100, "relief_fen": 300, "patient_fen": 600, "by_program": {"charity": 50}}
        }))
        .unwrap();
        let a = answer(10_000, 4_000, &[("medical_assistance", 3_000), ("charity", 500)]);
        let b = answer(2_000, 0, &[("medical_assistance", 1_000)]);
        let mut want = Recon::default();
        want.apply(&a, 1);
        want.apply(&b, 1);
        want.apply(&b, -1);
        let mut after = before.clone();
        after.apply(&a, 1);
        after.apply(&b, 1);
        after.apply(&b, -1);
        assert_eq!(after.minus(&before).differences(&want), Vec::<String>::new());
        assert_eq!(want.settled_count, 2);
        assert_eq!(want.reversed_count, 1);
        assert_eq!(want.relief_fen, 3_500);
        assert_eq!(want.by_program["medical_assistance"], 3_000);
        // one fen off is caught, per field
        after.relief_fen += 1;
        let diffs = after.minus(&before).differences(&want);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(diffs[0].contains("net.relief_fen moved by 3501"));
    }

    #[test]
    fn zero_programs_equal_absent_ones() {
        let mut a = Recon::default();
        a.by_program.insert("charity".into(), 0);
        assert!(a.differences(&Recon::default()).is_empty());
    }

    #[test]
    fn checks_keep_a_few_examples() {
        let mut c = Check::new("x");
        for i in 0..25 {
            c.expect(i % 2 == 0, || format!("odd {i}"));
        }
        assert!(!c.passed);
        assert_eq!(c.checked, 25);
        assert_eq!(c.failed, 12);
        assert_eq!(c.examples.len(), MAX_EXAMPLES);
    }

    #[test]
    fn tamper_templates() {
        let (k, f) =
            tamper_names("sg:{$CARD}:usage", "$YEAR:$PROGRAM:paid", "LT1-0000001", "2026", "medical_assistance");
        assert_eq!(k, "sg:{LT1-0000001}:usage");
        assert_eq!(f, "2026:medical_assistance:paid");
    }
}
