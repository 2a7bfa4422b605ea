//! The report's data: what `report.json` holds (every figure the text summary and the HTML page show) and the
//! facts about a run that the recorder does not know.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::AuditReport;
use crate::cpu::{CpuUse, MachineCpu};
use crate::driver::{RampStep, Schedule};
use crate::scenario::Slo;
use crate::seed::Seeded;
use crate::stats::{CurvePoint, Percentiles, TimelinePoint};

/// One operation's figures (`operations.<name>` in report.json), so a slow or failing operation is not hidden in
/// the overall mix.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// Requests of this operation that completed or timed out.
    pub requests: u64,
    /// Those of them whose answer was not the expected one.
    pub errors: u64,
    /// This operation's latency percentiles.
    pub latency_ms: Percentiles,
}

/// The scenario's SLO next to what was measured, limit by limit, so a reader sees which one failed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SloVerdict {
    /// The p99 limit (scenario or `--slo-p99-ms`), milliseconds.
    pub p99_ms: f64,
    /// The error-rate limit (scenario or `--slo-max-error-rate`), 0 to 1.
    pub max_error_rate: f64,
    /// The p99 judged: the whole run's, or for a ramp its best passing step's (its first step's if none passed).
    pub measured_p99_ms: f64,
    /// The error rate judged (same choice), rounded to 6 decimals.
    pub measured_error_rate: f64,
    /// `measured_p99_ms` within the limit (limits are inclusive) and at least one request.
    pub p99_passed: bool,
    /// `measured_error_rate` within the limit and at least one request.
    pub error_rate_passed: bool,
    /// Both limits met.
    pub passed: bool,
}

/// A ramp's outcome (`ramp` in report.json).
#[derive(Debug, Clone, Serialize)]
pub struct RampReport {
    /// Every step that ran, in order of rate.
    pub steps: Vec<RampStep>,
    /// The highest offered rate whose step met the p99 and error-rate SLO.
    pub best_rate_per_s: Option<f64>,
}

/// The rollout gate: the exit code is 0 only when `passed`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    /// SLO met and money audit clean (a skipped audit does not fail the gate).
    pub passed: bool,
    /// Why not, one sentence per failed condition; empty when `passed`.
    pub reasons: Vec<String>,
}

/// Everything one run measured and concluded: `report.json`, and the source of report.html and summary.txt.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `settlegate-loadtest <version>`: which tool wrote the file, for comparing reports across versions.
    pub tool: String,
    /// What was run, how and against what (flattened: the same keys at the top of report.json).
    #[serde(flatten)]
    pub run: RunInfo,
    /// Requests the run intended (completed + never sent).
    pub requests: u64,
    /// Requests that completed or timed out, i.e. have a latency.
    pub completed: u64,
    /// Requests whose answer was not the expected one, plus those never sent.
    pub errors: u64,
    /// `errors / requests`, rounded to 6 decimals.
    pub error_rate: f64,
    /// Completions per second over the phase (see `Recorder::achieved_rps`).
    pub achieved_rps: f64,
    /// Errors by code (`timeout`, `not_sent`, problem codes, `http_NNN`), to tell a slow gateway from a wrong one.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Refusals the run provoked on purpose (`insurance_ref_reused` of `ref_reuse` requests), by code: successes,
    /// not errors.
    pub expected_refusals: BTreeMap<String, u64>,
    /// Latency percentiles of every completed request, from its intended start (open model).
    pub latency_ms: Percentiles,
    /// Open model: how late requests started compared to their intended start, i.e. the load tool's own
    /// lateness (included in `latency_ms`). Absent for the closed model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag_ms: Option<Percentiles>,
    /// Per operation that ran (operations without requests are left out).
    pub operations: BTreeMap<String, OpReport>,
    /// One point per second: shows stalls and warm-up that percentiles over the whole run average away.
    pub timeline: Vec<TimelinePoint>,
    /// Latency by percentile up to the maximum, for the HTML chart and for comparing tails across runs.
    pub percentile_curve: Vec<CurvePoint>,
    /// The ramp's steps, when the run was a ramp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampReport>,
    /// The SLO against what was measured.
    pub slo: SloVerdict,
    /// The money audit (or why it did not run).
    pub audit: AuditReport,
    /// What the seed step created; absent when nothing was seeded (floor target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Seeded>,
    /// Connections each identity opened: keep-alive reuse shows as a small number, reconnect storms as a large one.
    pub connections_opened: BTreeMap<String, u64>,
    /// CPU of the watched processes (the tool itself and `--watch-pid` ones) during the load phase.
    pub cpu: Vec<CpuUse>,
    /// CPU of the whole machine during the load phase, when `/proc/stat` was readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_cpu: Option<MachineCpu>,
    /// SLO and audit together: the exit code.
    pub verdict: Verdict,
}

/// What was run, how and against what: kept in the report as it was given.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// The scenario's `name`.
    pub scenario: String,
    /// The base URL the tool called (`https://host:port`).
    pub target: String,
    /// The prefix of the run's card ids and hospital settlement ids: finds the run's data in the gateway.
    pub run_id: String,
    /// When the run started, RFC 3339 UTC.
    pub started_at: String,
    /// The visits' local date in the gateway's timezone (the reconciliation day of the settlements).
    pub visit_date: String,
    /// `open` | `closed` | `ramp`
    pub mode: String,
    /// Open model: the offered arrival rate per second.
    pub rate_per_s: Option<f64>,
    /// Closed model: requests kept in flight back to back.
    pub concurrency: Option<usize>,
    /// Length of the load phase (for a ramp, of all its steps), seconds.
    pub duration_s: f64,
    /// Open model: requests outstanding at most (arrivals beyond it wait, and their latency counts the wait).
    pub max_in_flight: usize,
    /// Open model: how the schedule was kept (`tick` | `precise`, see the README).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Size of each hospital's pool (HTTP/1.1 connections, or HTTP/2 streams).
    pub connections_per_hospital: usize,
    /// HTTP/2 instead of HTTP/1.1 keep-alive.
    pub http2: bool,
    /// The target was a floor server: no seed, no audit, any 2xx counted as success.
    pub floor_target: bool,
}

/// Everything about the run that is not in the recorder: what `main` knows and [`build`](super::build) puts in
/// the report.
pub struct RunFacts {
    /// What was run, how and against what.
    pub run: RunInfo,
    /// The SLO after command-line overrides.
    pub slo: Slo,
    /// Completions per second of the load phase.
    pub achieved_rps: f64,
    /// The ramp's steps, when the run was a ramp (the SLO is then judged on its best step).
    pub ramp: Option<RampReport>,
    /// What the seed step created, if it ran.
    pub seed: Option<Seeded>,
    /// Connections each identity opened.
    pub connections_opened: BTreeMap<String, u64>,
    /// CPU of the watched processes.
    pub cpu: Vec<CpuUse>,
    /// CPU of the whole machine, if it could be read.
    pub machine_cpu: Option<MachineCpu>,
}
