//! Scenario files (`loadtest/scenarios/*.toml`): who calls, on which cards, with which rules, doing what, and
//! what "good enough" means. Pure: parsing and validation only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Upper bounds that keep a scenario from asking for an unbounded run.
pub const MAX_CARDS: u32 = 2_000_000;
pub const MAX_HOSPITALS: usize = 256;
pub const MAX_DURATION_S: f64 = 3600.0;
pub const MAX_IN_FLIGHT: usize = 100_000;
pub const MAX_RATE_PER_S: f64 = 1_000_000.0;

/// One scenario file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Names the report and its default output directory (`target/loadtest/<name>`).
    pub name: String,
    /// Free text for the people who run it.
    #[serde(default)]
    pub description: String,
    /// The gateway's `timezone`: visit dates and reconciliation days are local dates there.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Certificate name (CN) of the relief office identity used for seeding and the audit.
    #[serde(default = "default_admin")]
    pub admin: String,
    /// Certificate names (CN = hospital id) of the simulated hospitals; each gets its own keep-alive pool.
    pub hospitals: Vec<String>,
    /// The run's card population, created fresh by the seed step of every run.
    pub cardholders: Cardholders,
    /// The rules the seed step publishes: the audit checks caps and answers against them.
    pub ruleset: Ruleset,
    /// What the hospitals do, by weight.
    pub operations: OperationMix,
    /// The bill distributions, by weight.
    pub bills: Vec<BillProfile>,
    /// What "good enough" means: the rollout gate.
    pub slo: Slo,
    /// Defaults of the load shape (command-line flags override them).
    #[serde(default)]
    pub load: LoadDefaults,
    /// How the post-run money audit runs.
    #[serde(default)]
    pub audit: AuditOptions,
}

fn default_timezone() -> String {
    "Asia/Shanghai".to_string()
}
fn default_admin() -> String {
    "relief-office".to_string()
}

/// The run's cardholders.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cardholders {
    /// Population size: cards `<prefix>-0000000 .. count-1`, created by the seed step of every run.
    pub count: u32,
    /// Category → weight (relative share of the population).
    pub categories: BTreeMap<String, u32>,
    /// Tag → percent of cards carrying it (0..=100).
    #[serde(default)]
    pub tags_percent: BTreeMap<String, u32>,
}

/// A ruleset as `POST /admin/v1/rulesets` takes it (RULES.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ruleset {
    /// First local date (`YYYY-MM-DD`) the ruleset applies to; it must not be after the run's visit date.
    pub effective_from: String,
    /// The programs, in the order they pay.
    pub programs: Vec<Program>,
}

/// One relief program (RULES.md, "A program").
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Stable identifier (`a-z0-9_`): the name of the program in answers, usage and pools.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The visit types it covers; absent = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_types: Option<Vec<String>>,
    /// The residual buckets it pays from, in order.
    pub covers: Vec<String>,
    /// Tags a card must carry to be covered; absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_tags: Option<Vec<String>>,
    /// What the program may pay to everybody in a year; absent = no pool limit. The audit expects the gateway to
    /// list a pool for every program that has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_pool_fen: Option<u64>,
    /// Category → rule; a card whose category is absent is not covered.
    pub categories: BTreeMap<String, CategoryRule>,
}

/// How a program pays for one card category.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    /// The share of the covered amount (after the deductible) it pays, in basis points (10000 = all).
    pub ratio_bp: u32,
    /// The card pays this much of covered amounts per year before the program pays; absent = 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deductible_fen: Option<u64>,
    /// The most it pays per card and year; the audit checks every card against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_cap_fen: Option<u64>,
    /// The most it pays per visit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_visit_cap_fen: Option<u64>,
}

/// Relative weights of the operations a hospital performs.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OperationMix {
    /// `POST /v1/eligibility`: is the card covered for this visit?
    #[serde(default)]
    pub eligibility: u32,
    /// `POST /v1/settlements/quote`: the split, without settling.
    #[serde(default)]
    pub quote: u32,
    /// `POST /v1/settlements` with a fresh `hospital_settlement_id`.
    #[serde(default)]
    pub settle: u32,
    /// Identical retry of a settlement that was already answered (expects 200 + `Idempotent-Replayed`).
    #[serde(default)]
    pub retry: u32,
    /// Reversal of a settlement that was answered 201.
    #[serde(default)]
    pub reversal: u32,
    /// Cancel-before-settle: a reversal for a `hospital_settlement_id` never settled.
    #[serde(default)]
    pub cancel: u32,
}

/// One kind of visit and its bill distribution.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BillProfile {
    /// `outpatient` | `chronic` | `inpatient`.
    pub visit_type: String,
    /// Relative share of the bills (0 = never drawn).
    pub weight: u32,
    /// Bill total, drawn log-uniformly between min and max (a heavy right tail, like real bills).
    pub total_fen: Range,
    /// Shares of the total, in percent, each drawn uniformly; `self_pay` takes the rest.
    pub in_scope_pct: [u32; 2],
    /// Partly self-paid items, `[low, high]` percent of the total.
    #[serde(default)]
    pub pre_self_pay_pct: [u32; 2],
    /// Above the insurance limits, `[low, high]` percent of the total.
    #[serde(default)]
    pub over_limit_pct: [u32; 2],
    /// What insurance already paid, in percent of `in_scope`.
    #[serde(default)]
    pub insurance_pct: [u32; 2],
    /// Share of the insurance payment made by critical-illness insurance (the rest is basic).
    #[serde(default)]
    pub critical_illness_share_pct: [u32; 2],
}

/// An inclusive range of fen.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// The smallest value, at least 1.
    pub min: u64,
    /// The largest value, at most 2^53 − 1 (JSON integers stay exact up to there).
    pub max: u64,
}

/// The service level a run must meet.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// The p99 latency limit, milliseconds (inclusive).
    pub p99_ms: f64,
    /// The error rate limit, 0 to 1 (inclusive); not-sent requests count as errors.
    pub max_error_rate: f64,
}

/// Defaults for the load shape; every one can be overridden on the command line.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoadDefaults {
    /// Open model arrival rate.
    pub rate_per_s: Option<f64>,
    /// Length of the load phase, seconds.
    pub duration_s: Option<f64>,
    /// Open model: requests outstanding at most.
    pub max_in_flight: Option<usize>,
    /// Closed model (set instead of a rate).
    pub concurrency: Option<usize>,
    /// Ramp `start:step:max` (requests per second) and the length of one step.
    pub ramp: Option<String>,
    /// Length of one ramp step, seconds.
    pub ramp_step_s: Option<f64>,
    /// Bound on one request, from waiting for a pooled connection to the last body byte.
    pub request_timeout_ms: Option<u64>,
    /// Size of each hospital's keep-alive pool (HTTP/1.1 connections, or HTTP/2 streams).
    pub connections_per_hospital: Option<usize>,
    /// Use HTTP/2 (one multiplexed connection per hospital) instead of HTTP/1.1 keep-alive pools.
    pub http2: Option<bool>,
    /// Seed of the request generator, for repeatable request streams.
    pub seed: Option<u64>,
}

/// The `[audit]` table: how the post-run money audit runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditOptions {
    /// Run the audit (`--no-audit` turns it off too).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The run owns the whole store (a private Redis): pool paid deltas must equal the run's payments exactly.
    #[serde(default)]
    pub exclusive_store: bool,
    /// Requests the audit keeps in flight.
    #[serde(default = "default_audit_concurrency")]
    pub concurrency: usize,
    /// How many cancelled ids to re-check (404 lookup + 409 `already_reversed` on a late settle).
    #[serde(default = "default_cancel_checks")]
    pub max_cancel_checks: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            enabled: true,
            exclusive_store: false,
            concurrency: default_audit_concurrency(),
            max_cancel_checks: default_cancel_checks(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_audit_concurrency() -> usize {
    32
}
fn default_cancel_checks() -> usize {
    200
}

/// The load shape of a run after command-line overrides.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadShape {
    /// Open model: arrivals at a constant rate, latency from each request's intended start.
    Open {
        /// Arrivals per second.
        rate_per_s: f64,
        /// Length of the phase, seconds.
        duration_s: f64,
    },
    /// Closed model: a fixed number of requests back to back (finds the saturation throughput).
    Closed {
        /// Requests kept in flight.
        concurrency: usize,
        /// Length of the phase, seconds.
        duration_s: f64,
    },
    /// Open-model steps of increasing rate until the SLO breaks.
    Ramp {
        /// The steps' rates.
        spec: RampSpec,
        /// Length of one step, seconds.
        step_s: f64,
    },
}

/// A ramp of open-model steps: the rates of its first and last step and the increase between steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampSpec {
    /// Offered rate of the first step, requests per second.
    pub start_per_s: f64,
    /// How much each step offers more than the one before, requests per second.
    pub step_per_s: f64,
    /// No step offers more than this, requests per second (the ramp may stop earlier, at the SLO).
    pub max_per_s: f64,
}

/// A ramp `start:step:max`, e.g. `500:500:5000`.
pub fn parse_ramp(spec: &str) -> Result<RampSpec, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() != 3 {
        return Err(format!("ramp {spec:?}: expected start:step:max"));
    }
    let mut v = [0.0f64; 3];
    for (slot, part) in v.iter_mut().zip(&parts) {
        *slot = part.trim().parse::<f64>().map_err(|_| format!("ramp {spec:?}: {part:?} is not a number"))?;
    }
    let (start, step, max) = (v[0], v[1], v[2]);
    if !(start > 0.0 && step > 0.0 && max >= start && max <= MAX_RATE_PER_S) {
        return Err(format!("ramp {spec:?}: need 0 < start <= max <= {MAX_RATE_PER_S} and step > 0"));
    }
    if (max - start) / step > 200.0 {
        return Err(format!("ramp {spec:?}: more than 200 steps"));
    }
    Ok(RampSpec { start_per_s: start, step_per_s: step, max_per_s: max })
}

/// The operations the tool can issue, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `POST /v1/eligibility`.
    Eligibility,
    /// `POST /v1/settlements/quote`.
    Quote,
    /// `POST /v1/settlements`, a new settlement.
    Settle,
    /// `POST /v1/settlements` again with an answered settlement's exact body: must replay the same answer.
    Retry,
    /// `POST /v1/reversals` of an answered settlement.
    Reversal,
    /// `POST /v1/reversals` of an id never settled: the id must stay unusable.
    Cancel,
}

impl Op {
    pub const ALL: [Op; 6] = [Op::Eligibility, Op::Quote, Op::Settle, Op::Retry, Op::Reversal, Op::Cancel];

    pub fn name(self) -> &'static str {
        match self {
            Op::Eligibility => "eligibility",
            Op::Quote => "quote",
            Op::Settle => "settle",
            Op::Retry => "retry",
            Op::Reversal => "reversal",
            Op::Cancel => "cancel",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl OperationMix {
    pub fn weight(&self, op: Op) -> u32 {
        match op {
            Op::Eligibility => self.eligibility,
            Op::Quote => self.quote,
            Op::Settle => self.settle,
            Op::Retry => self.retry,
            Op::Reversal => self.reversal,
            Op::Cancel => self.cancel,
        }
    }

    pub fn total(&self) -> u64 {
        Op::ALL.iter().map(|&op| self.weight(op) as u64).sum()
    }

    /// Maps `x` in `0..total()` to an operation by cumulative weight.
    pub fn pick(&self, mut x: u64) -> Op {
        for op in Op::ALL {
            let w = self.weight(op) as u64;
            if x < w {
                return op;
            }
            x -= w;
        }
        Op::Settle
    }
}

const VISIT_TYPES: [&str; 3] = ["outpatient", "chronic", "inpatient"];
const BUCKETS: [&str; 4] = ["in_scope", "pre_self_pay", "over_limit", "self_pay"];

fn valid_id(s: &str, extra: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

fn pct_pair(name: &str, p: [u32; 2], errors: &mut Vec<String>) {
    if p[0] > p[1] || p[1] > 100 {
        errors.push(format!("{name} = {p:?}: need [low, high] with low <= high <= 100"));
    }
}

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Scenario::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Every problem at once, so a scenario author fixes the file in one go.
    pub fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        if self.hospitals.is_empty() || self.hospitals.len() > MAX_HOSPITALS {
            errors.push(format!("hospitals: need 1..={MAX_HOSPITALS} names"));
        }
        for h in &self.hospitals {
            if !valid_id(h, "._-") {
                errors.push(format!("hospital {h:?}: 1-64 chars of A-Za-z0-9._-"));
            }
            if h == &self.admin {
                errors.push(format!("hospital {h:?} is also the admin identity"));
            }
        }
        let c = &self.cardholders;
        if c.count == 0 || c.count > MAX_CARDS {
            errors.push(format!("cardholders.count: need 1..={MAX_CARDS}"));
        }
        if c.categories.values().all(|&w| w == 0) {
            errors.push("cardholders.categories: need at least one positive weight".into());
        }
        for (tag, pct) in &c.tags_percent {
            if *pct > 100 {
                errors.push(format!("cardholders.tags_percent.{tag}: at most 100"));
            }
        }
        if self.ruleset.programs.is_empty() {
            errors.push("ruleset.programs: need at least one program".into());
        }
        if chrono::NaiveDate::parse_from_str(&self.ruleset.effective_from, "%Y-%m-%d").is_err() {
            errors.push(format!("ruleset.effective_from {:?}: not a YYYY-MM-DD date", self.ruleset.effective_from));
        }
        let mut ids = std::collections::BTreeSet::new();
        for p in &self.ruleset.programs {
            if !ids.insert(p.id.as_str()) {
                errors.push(format!("program {:?}: duplicate id", p.id));
            }
            if !valid_id(&p.id, "_") || p.id.chars().any(|ch| ch.is_ascii_uppercase()) {
                errors.push(format!("program {:?}: id is 1-64 chars of a-z0-9_", p.id));
            }
            if p.covers.is_empty() || p.covers.iter().any(|b| !BUCKETS.contains(&b.as_str())) {
                errors.push(format!("program {:?}: covers must be a non-empty list of {BUCKETS:?}", p.id));
            }
            if let Some(vt) = &p.visit_types {
                if vt.is_empty() || vt.iter().any(|v| !VISIT_TYPES.contains(&v.as_str())) {
                    errors
                        .push(format!("program {:?}: visit_types must be a non-empty subset of {VISIT_TYPES:?}", p.id));
                }
            }
            for (cat, rule) in &p.categories {
                if rule.ratio_bp > 10_000 {
                    errors.push(format!("program {:?} category {cat:?}: ratio_bp above 10000", p.id));
                }
            }
        }
        if self.operations.total() == 0 {
            errors.push("operations: need at least one positive weight".into());
        }
        if self.bills.is_empty() || self.bills.iter().all(|b| b.weight == 0) {
            errors.push("bills: need at least one profile with a positive weight".into());
        }
        for b in &self.bills {
            let name = format!("bills[{}]", b.visit_type);
            if !VISIT_TYPES.contains(&b.visit_type.as_str()) {
                errors.push(format!("{name}: visit_type must be one of {VISIT_TYPES:?}"));
            }
            if b.total_fen.min == 0 || b.total_fen.min > b.total_fen.max || b.total_fen.max > (1u64 << 53) - 1 {
                errors.push(format!("{name}.total_fen: need 1 <= min <= max <= 2^53-1"));
            }
            pct_pair(&format!("{name}.in_scope_pct"), b.in_scope_pct, &mut errors);
            pct_pair(&format!("{name}.pre_self_pay_pct"), b.pre_self_pay_pct, &mut errors);
            pct_pair(&format!("{name}.over_limit_pct"), b.over_limit_pct, &mut errors);
            pct_pair(&format!("{name}.insurance_pct"), b.insurance_pct, &mut errors);
            pct_pair(&format!("{name}.critical_illness_share_pct"), b.critical_illness_share_pct, &mut errors);
            if b.in_scope_pct[1] + b.pre_self_pay_pct[1] + b.over_limit_pct[1] > 100 {
                errors.push(format!("{name}: the upper shares of in_scope + pre_self_pay + over_limit exceed 100"));
            }
        }
        if self.slo.p99_ms.is_nan() || self.slo.p99_ms <= 0.0 || !(0.0..=1.0).contains(&self.slo.max_error_rate) {
            errors.push("slo: need p99_ms > 0 and 0 <= max_error_rate <= 1".into());
        }
        if let Some(r) = &self.load.ramp {
            if let Err(e) = parse_ramp(r) {
                errors.push(format!("load.ramp: {e}"));
            }
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            errors.push(format!("timezone {:?}: unknown IANA zone", self.timezone));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The category rule a program applies to a card category, if the program covers it.
    pub fn rule(&self, program: &str, category: &str) -> Option<&CategoryRule> {
        self.ruleset.programs.iter().find(|p| p.id == program)?.categories.get(category)
    }

    /// The ruleset as the JSON body of `POST /admin/v1/rulesets`.
    pub fn ruleset_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.ruleset).expect("ruleset serialises")
    }
}

/// The shipped smoke scenario (`scenarios/smoke.toml`): the fixture of the crate's unit tests.
#[cfg(test)]
pub(crate) fn smoke() -> Scenario {
    Scenario::from_toml(tests::SMOKE).expect("smoke.toml is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SMOKE: &str = include_str!("../scenarios/smoke.toml");
    pub const SETTLE_ONLY: &str = include_str!("../scenarios/settle_only.toml");

    #[test]
    fn shipped_scenarios_parse_and_validate() {
        for text in [SMOKE, SETTLE_ONLY] {
            let s = Scenario::from_toml(text).unwrap();
            assert!(!s.hospitals.is_empty());
            assert!(s.slo.p99_ms > 0.0);
        }
        let s = Scenario::from_toml(SETTLE_ONLY).unwrap();
        assert_eq!(s.operations.total(), s.operations.settle as u64, "settle_only is settle only");
    }

    #[test]
    fn ruleset_serialises_like_the_api_body() {
        let s = Scenario::from_toml(SMOKE).unwrap();
        let v = s.ruleset_json();
        let p0 = &v["programs"][0];
        assert_eq!(p0["id"], "medical_assistance");
        assert_eq!(p0["categories"]["dibao"]["ratio_bp"], 9000);
        assert_eq!(p0["categories"]["dibao"]["annual_cap_fen"], 300000);
        // absent limits are absent, not null
        assert!(p0["categories"]["dibao"].get("per_visit_cap_fen").is_none());
        assert!(p0.get("visit_types").is_none());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let bad = SMOKE.replace("[slo]", "[slo]\nfoo = 1");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("foo"));
        let bad = SMOKE.replace("ratio_bp = 9000", "ratio_bp = 19000");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("ratio_bp"));
        let bad = SMOKE.replace("visit_type = \"outpatient\"", "visit_type = \"dental\"");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("visit_type"));
    }

    #[test]
    fn operation_mix_picks_by_cumulative_weight() {
        let mix = OperationMix { eligibility: 1, quote: 0, settle: 2, retry: 0, reversal: 1, cancel: 0 };
        assert_eq!(mix.total(), 4);
        assert_eq!(mix.pick(0), Op::Eligibility);
        assert_eq!(mix.pick(1), Op::Settle);
        assert_eq!(mix.pick(2), Op::Settle);
        assert_eq!(mix.pick(3), Op::Reversal);
    }

    #[test]
    fn ramp_specs() {
        assert_eq!(
            parse_ramp("500:250:2000").unwrap(),
            RampSpec { start_per_s: 500.0, step_per_s: 250.0, max_per_s: 2000.0 }
        );
        assert!(parse_ramp("500:250").is_err());
        assert!(parse_ramp("0:1:2").is_err());
        assert!(parse_ramp("10:0:20").is_err());
        assert!(parse_ramp("1:1:1000").is_err(), "too many steps");
    }
}
