//! The rollout gate: the scenario's SLO against the measured figures, then SLO and audit together. Pure.

use super::model::{RampReport, SloVerdict, Verdict};
use crate::audit::AuditReport;
use crate::scenario::Slo;
use crate::stats::round_to;

/// The scenario's SLO against measured figures; a run without requests fails.
pub fn slo_verdict(slo: &Slo, measured_p99_ms: f64, measured_error_rate: f64, requests: u64) -> SloVerdict {
    let p99_passed = requests > 0 && measured_p99_ms <= slo.p99_ms;
    let error_rate_passed = requests > 0 && measured_error_rate <= slo.max_error_rate;
    SloVerdict {
        p99_ms: slo.p99_ms,
        max_error_rate: slo.max_error_rate,
        measured_p99_ms,
        measured_error_rate: round_to(measured_error_rate, 6),
        p99_passed,
        error_rate_passed,
        passed: p99_passed && error_rate_passed,
    }
}

/// The SLO verdict of a run: a ramp is judged on its best passing step (or, when none passed, on its first step);
/// any other run on the whole run's p99 and error rate.
pub(super) fn measured_slo(
    slo: &Slo,
    ramp: Option<&RampReport>,
    p99_ms: f64,
    error_rate: f64,
    requests: u64,
) -> SloVerdict {
    match ramp {
        Some(r) => {
            let best = r.steps.iter().filter(|s| s.passed).max_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
            match best {
                Some(s) => slo_verdict(slo, s.p99_ms, s.error_rate, s.requests),
                None => {
                    let first = r.steps.first();
                    slo_verdict(
                        slo,
                        first.map_or(0.0, |s| s.p99_ms),
                        first.map_or(1.0, |s| s.error_rate),
                        first.map_or(0, |s| s.requests),
                    )
                }
            }
        }
        None => slo_verdict(slo, p99_ms, error_rate, requests),
    }
}

/// SLO and audit together: the rollout gate.
pub fn verdict(slo: &SloVerdict, audit: &AuditReport, ramp: Option<&RampReport>) -> Verdict {
    let mut reasons = Vec::new();
    match ramp {
        Some(r) if r.best_rate_per_s.is_none() => reasons.push("no ramp step met the SLO".to_string()),
        Some(_) => {}
        None => {
            if !slo.p99_passed {
                reasons.push(format!("p99 {:.3} ms above the SLO of {} ms", slo.measured_p99_ms, slo.p99_ms));
            }
            if !slo.error_rate_passed {
                reasons
                    .push(format!("error rate {:.4} above the SLO of {}", slo.measured_error_rate, slo.max_error_rate));
            }
        }
    }
    if let Some(e) = &audit.error {
        reasons.push(format!("audit could not run: {e}"));
    }
    if audit.passed == Some(false) {
        let failed: Vec<&str> = audit.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
        reasons.push(format!("audit failed: {}", failed.join(", ")));
    }
    Verdict { passed: reasons.is_empty(), reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_verdicts() {
        let slo = Slo { p99_ms: 2.0, max_error_rate: 0.001 };
        assert!(slo_verdict(&slo, 1.9, 0.0, 10).passed);
        assert!(slo_verdict(&slo, 2.0, 0.001, 10).passed, "limits are inclusive");
        let v = slo_verdict(&slo, 2.1, 0.0, 10);
        assert!(!v.passed && !v.p99_passed && v.error_rate_passed);
        let v = slo_verdict(&slo, 1.0, 0.002, 10);
        assert!(!v.passed && v.p99_passed && !v.error_rate_passed);
        assert!(!slo_verdict(&slo, 0.0, 0.0, 0).passed, "no requests, no pass");
    }
}
