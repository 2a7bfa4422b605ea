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

#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub requests: u64,
    pub errors: u64,
    pub latency_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SloVerdict {
    pub p99_ms: f64,
    pub max_error_rate: f64,
    pub measured_p99_ms: f64,
    pub measured_error_rate: f64,
    pub p99_passed: bool,
    pub error_rate_passed: bool,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RampReport {
    pub steps: Vec<RampStep>,
    /// The highest offered rate whose step met the p99 and error-rate SLO.
    pub best_rate_per_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: String,
    /// What was run, how and against what (flattened: the same keys at the top of report.json).
    #[serde(flatten)]
    pub run: RunInfo,
    /// Requests the run intended (completed + never sent).
    pub requests: u64,
    pub completed: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub achieved_rps: f64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub latency_ms: Percentiles,
    /// Open model: how late requests started compared to their intended start, i.e. the load tool's own
    /// lateness (included in `latency_ms`). Absent for the closed model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_lag_ms: Option<Percentiles>,
    pub operations: BTreeMap<String, OpReport>,
    pub timeline: Vec<TimelinePoint>,
    pub percentile_curve: Vec<CurvePoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampReport>,
    pub slo: SloVerdict,
    pub audit: AuditReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Seeded>,
    pub connections_opened: BTreeMap<String, u64>,
    pub cpu: Vec<CpuUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_cpu: Option<MachineCpu>,
    pub verdict: Verdict,
}

/// What was run, how and against what: kept in the report as it was given.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub scenario: String,
    pub target: String,
    pub run_id: String,
    pub started_at: String,
    pub visit_date: String,
    /// `open` | `closed` | `ramp`
    pub mode: String,
    pub rate_per_s: Option<f64>,
    pub concurrency: Option<usize>,
    pub duration_s: f64,
    pub max_in_flight: usize,
    /// Open model: how the schedule was kept (`tick` | `precise`, see the README).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    pub connections_per_hospital: usize,
    pub http2: bool,
    pub floor_target: bool,
}

/// Everything about the run that is not in the recorder.
pub struct RunFacts {
    pub run: RunInfo,
    pub slo: Slo,
    pub achieved_rps: f64,
    pub ramp: Option<RampReport>,
    pub seed: Option<Seeded>,
    pub connections_opened: BTreeMap<String, u64>,
    pub cpu: Vec<CpuUse>,
    pub machine_cpu: Option<MachineCpu>,
}
