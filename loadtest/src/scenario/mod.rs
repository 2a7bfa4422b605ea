//! Scenario files (`loadtest/scenarios/*.toml`): who calls, on which cards, with which rules, doing what, and
//! what "good enough" means. Pure: parsing and validation only. This file holds the file's structure;
//! `load.rs` the operations, their mix and the load shape; `validate.rs` the checks a scenario must pass.

mod load;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use load::{parse_ramp, LoadShape, Op, RampSpec};

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
    /// The optional request fields of the gateway's API version 2 (insurance refs, operators).
    #[serde(default)]
    pub fields: Fields,
    /// What the `contribution` operation sends (used only when its weight is positive).
    #[serde(default)]
    pub contributions: Contributions,
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
    /// `GET /v1/settlements?card_id=`: the hospital's own settlements of a card it settled, newest first.
    #[serde(default)]
    pub history: u32,
    /// A new settlement carrying the `insurance.settlement_ref` of another hospital's or its own standing
    /// settlement: must be refused 409 `insurance_ref_reused` (an expected refusal). Needs
    /// `fields.insurance_ref_pct > 0`.
    #[serde(default)]
    pub ref_reuse: u32,
    /// `POST /admin/v1/pools/{program}/contributions` from the relief office's identity, during the load:
    /// donations, withdrawals and replays by the `[contributions]` table.
    #[serde(default)]
    pub contribution: u32,
}

/// The `[contributions]` table: what the `contribution` operation sends to the charity fund (API.md "The charity
/// fund"). Amounts are drawn uniformly; the shares are percent of the operation's requests.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contributions {
    /// The program whose pool receives them; absent = the first program of the ruleset with an `annual_pool_fen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// A donation's amount.
    #[serde(default = "default_donation")]
    pub donation_fen: Range,
    /// A withdrawal's amount (one larger than what the pool has left is refused 409 `pool_would_overdraw`, an
    /// expected refusal).
    #[serde(default = "default_withdrawal")]
    pub withdrawal_fen: Range,
    /// Percent (0..=100) of new contributions that are withdrawals.
    #[serde(default = "default_withdrawal_pct")]
    pub withdrawal_pct: u32,
    /// Percent of the operation's requests that resend an earlier accepted contribution exactly: 200 and the
    /// identical contribution expected.
    #[serde(default = "default_replay_pct")]
    pub replay_pct: u32,
    /// Percent that reuse an earlier accepted contribution's id with another amount: 409 `idempotency_conflict`
    /// expected (an expected refusal).
    #[serde(default = "default_conflict_pct")]
    pub conflict_pct: u32,
    /// Percent of new contributions that carry a `note` (with quotes, a backslash and Chinese text, so the audit
    /// trail's canonical encoding is exercised).
    #[serde(default = "default_note_pct")]
    pub note_pct: u32,
    /// New contributions a run sends at most (the book the audit checks keeps each, about 400 bytes); past it the
    /// operation only replays earlier ones.
    #[serde(default = "default_max_contributions")]
    pub max_contributions: usize,
}

impl Default for Contributions {
    fn default() -> Self {
        Contributions {
            program: None,
            donation_fen: default_donation(),
            withdrawal_fen: default_withdrawal(),
            withdrawal_pct: default_withdrawal_pct(),
            replay_pct: default_replay_pct(),
            conflict_pct: default_conflict_pct(),
            note_pct: default_note_pct(),
            max_contributions: default_max_contributions(),
        }
    }
}

fn default_donation() -> Range {
    Range { min: 10_000, max: 200_000 }
}
fn default_withdrawal() -> Range {
    Range { min: 10_000, max: 100_000 }
}
fn default_withdrawal_pct() -> u32 {
    25
}
fn default_replay_pct() -> u32 {
    15
}
fn default_conflict_pct() -> u32 {
    5
}
fn default_note_pct() -> u32 {
    50
}
fn default_max_contributions() -> usize {
    100_000
}

/// The `[fields]` table: which requests carry the optional fields of API version 2.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    /// Percent (0..=100) of new settlements that carry a unique `insurance.settlement_ref` (`IR.<their
    /// hospital_settlement_id>`); retries resend it, the audit expects it echoed and in the settled event.
    #[serde(default)]
    pub insurance_ref_pct: u32,
    /// Percent (0..=100) of settlements, reversals and cancels that carry an `operator` (`{"id", "name"}`, one of
    /// `operators_per_hospital` per hospital, some without a name).
    #[serde(default)]
    pub operator_pct: u32,
    /// Distinct operators per hospital (1..=10000).
    #[serde(default = "default_operators")]
    pub operators_per_hospital: u32,
    /// Percent (0..=100) of identical retries sent "from another terminal": with another operator (or one added or
    /// removed). The operator is not part of the same request, so the answer must still replay the recorded one.
    #[serde(default)]
    pub retry_other_operator_pct: u32,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            insurance_ref_pct: 0,
            operator_pct: 0,
            operators_per_hospital: default_operators(),
            retry_other_operator_pct: 0,
        }
    }
}

fn default_operators() -> u32 {
    8
}

impl Fields {
    /// Some request carries a version 2 field: answers are then also checked for their echo.
    pub fn any(&self) -> bool {
        self.insurance_ref_pct > 0 || self.operator_pct > 0
    }
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
    /// Audit the event stream (`GET /admin/v1/events`, from where it ended before the load): every answered
    /// settlement, acknowledged reversal and cancel has exactly one event with the answered amounts, refused
    /// requests have none, no `event_id` repeats. Needs a gateway that serves the stream.
    #[serde(default = "yes")]
    pub events: bool,
    /// At the end, `POST /v1/reconciliation/check` each hospital's day with the totals the run expects; a gateway
    /// that answers 404 is reported as "not served", a mismatch fails the audit.
    #[serde(default = "yes")]
    pub reconciliation_check: bool,
    /// How many touched cards to compare with the office's card history
    /// (`GET /admin/v1/cardholders/{card_id}/settlements`; 0 = none).
    #[serde(default = "default_history_checks")]
    pub max_history_checks: usize,
    /// Verify the whole audit trail (`GET /admin/v1/audit`): the hash chain, one entry per accepted contribution of
    /// the run, the `audit.appended` events in the chain. A gateway that answers 404 fails `audit_chain_served`.
    #[serde(default = "yes")]
    pub audit_chain: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            enabled: true,
            exclusive_store: false,
            concurrency: default_audit_concurrency(),
            max_cancel_checks: default_cancel_checks(),
            events: true,
            reconciliation_check: true,
            max_history_checks: default_history_checks(),
            audit_chain: true,
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
fn default_history_checks() -> usize {
    200
}

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Scenario, String> {
        let scenario = Scenario::read_file(path)?;
        scenario.validate().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(scenario)
    }

    /// The file parsed but not yet validated (for command-line changes that are validated with it).
    pub fn read_file(path: &std::path::Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The category rule a program applies to a card category, if the program covers it.
    pub fn rule(&self, program: &str, category: &str) -> Option<&CategoryRule> {
        self.ruleset.programs.iter().find(|p| p.id == program)?.categories.get(category)
    }

    /// The program the `contribution` operation pays into: `[contributions] program`, else the first program with
    /// an `annual_pool_fen`; `None` when the ruleset has no pool.
    pub fn pool_program(&self) -> Option<&str> {
        match &self.contributions.program {
            Some(p) => Some(p.as_str()),
            None => self.ruleset.programs.iter().find(|p| p.annual_pool_fen.is_some()).map(|p| p.id.as_str()),
        }
    }

    /// The ruleset as the JSON body of `POST /admin/v1/rulesets`.
    pub fn ruleset_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.ruleset).expect("ruleset serialises")
    }
}

/// The shipped smoke scenario (`scenarios/smoke.toml`): the fixture of the crate's unit tests.
#[cfg(test)]
pub(crate) const SMOKE: &str = include_str!("../../scenarios/smoke.toml");

/// [`SMOKE`], parsed.
#[cfg(test)]
pub(crate) fn smoke() -> Scenario {
    Scenario::from_toml(SMOKE).expect("smoke.toml is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE_ONLY: &str = include_str!("../../scenarios/settle_only.toml");

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
}
