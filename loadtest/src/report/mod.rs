//! Reports: `report.json` (machine-readable), `report.html` (one self-contained page: inline CSS and SVG, no
//! network), `summary.txt` (a few lines for a terminal or a CI log), and the verdict that becomes the exit code.
//! Pure apart from [`write_all`].

mod charts;
mod html;
mod model;
mod text;
mod verdict;

use std::collections::BTreeMap;
use std::path::Path;

use crate::audit::AuditReport;
use crate::scenario::Op;
use crate::stats::{percentile_curve, percentiles, round_to, Recorder};

pub use crate::stats::CurvePoint;
pub use html::html;
pub use model::{OpReport, RampReport, Report, RunFacts, RunInfo, SloVerdict, Verdict};
pub use text::summary;
use verdict::measured_slo;
pub use verdict::{slo_verdict, verdict};

pub fn build(recorder: &Recorder, facts: RunFacts, audit: AuditReport) -> Report {
    let latency_ms = percentiles(&recorder.overall);
    let mut operations = BTreeMap::new();
    for op in Op::ALL {
        let s = &recorder.ops[op.index()];
        if s.requests > 0 {
            operations.insert(
                op.name().to_string(),
                OpReport { requests: s.requests, errors: s.errors, latency_ms: percentiles(&s.histogram) },
            );
        }
    }
    let slo = measured_slo(&facts.slo, facts.ramp.as_ref(), latency_ms.p99, recorder.error_rate(), recorder.requests);
    let verdict = verdict(&slo, &audit, facts.ramp.as_ref());
    Report {
        tool: format!("settlegate-loadtest {}", env!("CARGO_PKG_VERSION")),
        run: facts.run,
        requests: recorder.requests,
        completed: recorder.overall.len(),
        errors: recorder.errors,
        error_rate: round_to(recorder.error_rate(), 6),
        achieved_rps: facts.achieved_rps,
        errors_by_code: recorder.errors_by_code.clone(),
        expected_refusals: recorder.expected_refusals.clone(),
        latency_ms,
        send_lag_ms: (!recorder.send_lag.is_empty()).then(|| percentiles(&recorder.send_lag)),
        operations,
        timeline: recorder.timeline.clone(),
        percentile_curve: percentile_curve(&recorder.overall),
        ramp: facts.ramp,
        slo,
        audit,
        seed: facts.seed,
        connections_opened: facts.connections_opened,
        cpu: facts.cpu,
        machine_cpu: facts.machine_cpu,
        verdict,
    }
}

/// Writes report.json, report.html and summary.txt into `dir` (created if needed).
pub fn write_all(dir: &Path, report: &Report) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(report).expect("json"))?;
    std::fs::write(dir.join("report.html"), html(report))?;
    std::fs::write(dir.join("summary.txt"), summary(report))?;
    Ok(())
}

/// Escapes text for HTML and SVG (element content and double-quoted attributes).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Check;
    use crate::driver::{RampStep, Schedule};
    use crate::scenario::Slo;
    use std::time::{Duration, Instant};

    fn facts() -> RunFacts {
        RunFacts {
            run: RunInfo {
                scenario: "smoke".into(),
                target: "https://127.0.0.1:8443".into(),
                run_id: "LTx".into(),
                started_at: "2026-11-30T00:00:00Z".into(),
                visit_date: "2026-11-30".into(),
                mode: "open".into(),
                rate_per_s: Some(100.0),
                concurrency: None,
                duration_s: 1.0,
                max_in_flight: 10,
                schedule: Some(Schedule::Tick),
                connections_per_hospital: 4,
                http2: false,
                floor_target: false,
            },
            slo: Slo { p99_ms: 5.0, max_error_rate: 0.01 },
            achieved_rps: 100.0,
            ramp: None,
            seed: None,
            connections_opened: BTreeMap::new(),
            cpu: Vec::new(),
            machine_cpu: None,
        }
    }

    fn recorder() -> Recorder {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0);
        for i in 0..100u64 {
            r.record(Op::Settle, 1000 + i * 10, None, t0);
        }
        r.record(Op::Eligibility, 300, Some("not_eligible"), t0);
        r.tick(t0 + Duration::from_secs(1));
        r
    }

    #[test]
    fn report_json_has_the_promised_shape() {
        let mut audit = AuditReport::disabled();
        audit.enabled = true;
        audit.passed = Some(true);
        audit.checks = vec![Check::new("card_usage_equals_answers")];
        let report = build(&recorder(), facts(), audit);
        let v = serde_json::to_value(&report).unwrap();
        for key in [
            "requests",
            "achieved_rps",
            "errors_by_code",
            "latency_ms",
            "operations",
            "audit",
            "slo",
            "verdict",
            "timeline",
            "percentile_curve",
        ] {
            assert!(v.get(key).is_some(), "report.json lacks {key}");
        }
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(v["latency_ms"][p].is_number(), "latency_ms.{p}");
            assert!(v["operations"]["settle"]["latency_ms"][p].is_number(), "operations.settle.latency_ms.{p}");
        }
        assert_eq!(v["requests"], 101);
        assert_eq!(v["errors_by_code"]["not_eligible"], 1);
        assert_eq!(v["audit"]["passed"], true);
        assert_eq!(v["verdict"]["passed"], true, "{}", v["verdict"]);
        assert!(v["operations"].get("quote").is_none(), "operations that did not run are left out");
        let html = html(&report);
        assert!(html.contains("<svg") && html.contains("PASS"));
        assert!(
            !html.contains("http://")
                || html.matches("http://").count() == html.matches("http://www.w3.org/2000/svg").count(),
            "no external references"
        );
        assert!(summary(&report).contains("verdict: PASS"));
    }

    #[test]
    fn audit_failure_fails_the_verdict() {
        let slo = slo_verdict(&Slo { p99_ms: 2.0, max_error_rate: 0.0 }, 1.0, 0.0, 10);
        let mut audit = AuditReport::disabled();
        assert!(verdict(&slo, &audit, None).passed, "a skipped audit does not fail the gate");
        audit.enabled = true;
        let mut c = Check::new("card_usage_equals_answers");
        c.fail("LT-0000001 medical_assistance: usage paid 1 != answers paid 0".into());
        audit.checks = vec![c];
        audit.passed = Some(false);
        let v = verdict(&slo, &audit, None);
        assert!(!v.passed);
        assert!(v.reasons[0].contains("card_usage_equals_answers"));
        let r = build(&recorder(), facts(), audit);
        assert!(summary(&r).contains("FAILED card_usage_equals_answers"));
        assert!(html(&r).contains("FAIL"));
    }

    #[test]
    fn ramp_verdict_uses_the_best_step() {
        let mut f = facts();
        let step = |rate: f64, p99: f64, passed: bool| RampStep {
            rate_per_s: rate,
            achieved_rps: rate,
            requests: 100,
            error_rate: 0.0,
            p50_ms: 0.5,
            p99_ms: p99,
            max_ms: p99,
            passed,
        };
        f.ramp = Some(RampReport {
            steps: vec![step(100.0, 1.0, true), step(200.0, 3.0, true), step(300.0, 9.0, false)],
            best_rate_per_s: Some(200.0),
        });
        let r = build(&recorder(), f, AuditReport::disabled());
        assert!((r.slo.measured_p99_ms - 3.0).abs() < 1e-9, "{}", r.slo.measured_p99_ms);
        assert!(r.verdict.passed, "{:?}", r.verdict);
        assert!(summary(&r).contains("highest rate meeting the SLO: 200/s"));
    }
}
