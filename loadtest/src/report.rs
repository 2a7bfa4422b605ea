//! Reports: `report.json` (machine-readable), `report.html` (one self-contained page: inline CSS and SVG, no
//! network), `summary.txt` (a few lines for a terminal or a CI log), and the verdict that becomes the exit code.
//! Pure apart from [`write_all`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::audit::AuditReport;
use crate::cpu::{CpuUse, MachineCpu};
use crate::driver::{RampStep, Schedule};
use crate::scenario::{Op, Slo};
use crate::seed::Seeded;
use crate::stats::{percentile_curve, percentiles, Percentiles, Recorder, TimelinePoint};

#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub requests: u64,
    pub errors: u64,
    pub latency_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CurvePoint {
    pub percentile: f64,
    pub latency_ms: f64,
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

/// The scenario's SLO against measured figures; a run without requests fails.
pub fn slo_verdict(slo: &Slo, measured_p99_ms: f64, measured_error_rate: f64, requests: u64) -> SloVerdict {
    let p99_passed = requests > 0 && measured_p99_ms <= slo.p99_ms;
    let error_rate_passed = requests > 0 && measured_error_rate <= slo.max_error_rate;
    SloVerdict {
        p99_ms: slo.p99_ms,
        max_error_rate: slo.max_error_rate,
        measured_p99_ms,
        measured_error_rate: (measured_error_rate * 1e6).round() / 1e6,
        p99_passed,
        error_rate_passed,
        passed: p99_passed && error_rate_passed,
    }
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
    let slo = match &facts.ramp {
        Some(r) => {
            let best = r.steps.iter().filter(|s| s.passed).max_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s));
            match best {
                Some(s) => slo_verdict(&facts.slo, s.p99_ms, s.error_rate, s.requests),
                None => {
                    let first = r.steps.first();
                    slo_verdict(
                        &facts.slo,
                        first.map_or(0.0, |s| s.p99_ms),
                        first.map_or(1.0, |s| s.error_rate),
                        first.map_or(0, |s| s.requests),
                    )
                }
            }
        }
        None => slo_verdict(&facts.slo, latency_ms.p99, recorder.error_rate(), recorder.requests),
    };
    let verdict = verdict(&slo, &audit, facts.ramp.as_ref());
    Report {
        tool: format!("settlegate-loadtest {}", env!("CARGO_PKG_VERSION")),
        run: facts.run,
        requests: recorder.requests,
        completed: recorder.overall.len(),
        errors: recorder.errors,
        error_rate: (recorder.error_rate() * 1e6).round() / 1e6,
        achieved_rps: facts.achieved_rps,
        errors_by_code: recorder.errors_by_code.clone(),
        latency_ms,
        send_lag_ms: (!recorder.send_lag.is_empty()).then(|| percentiles(&recorder.send_lag)),
        operations,
        timeline: recorder.timeline.clone(),
        percentile_curve: percentile_curve(&recorder.overall)
            .into_iter()
            .map(|(percentile, latency_ms)| CurvePoint { percentile, latency_ms })
            .collect(),
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

/// The text summary (also printed on stdout at the end of a run).
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let shape = match (&r.ramp, r.run.rate_per_s, r.run.concurrency) {
        (Some(_), _, _) => "ramp".to_string(),
        (None, Some(rate), _) => format!("open model, {rate:.0}/s offered"),
        (None, None, Some(c)) => format!("closed model, concurrency {c}"),
        _ => r.run.mode.clone(),
    };
    let _ = writeln!(
        s,
        "settlegate load test: scenario {} against {} ({shape}, {:.1} s)",
        r.run.scenario, r.run.target, r.run.duration_s
    );
    let _ = writeln!(
        s,
        "requests {}  completed {}  achieved {:.1}/s  errors {} ({:.4}%)",
        r.requests,
        r.completed,
        r.achieved_rps,
        r.errors,
        r.error_rate * 100.0
    );
    let l = &r.latency_ms;
    let _ = writeln!(
        s,
        "latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        l.p50, l.p90, l.p99, l.p999, l.max
    );
    if let Some(lag) = &r.send_lag_ms {
        let _ = writeln!(
            s,
            "send lag ms (the tool's own lateness, included above)  p50 {:.3}  p99 {:.3}  max {:.3}",
            lag.p50, lag.p99, lag.max
        );
    }
    for (op, o) in &r.operations {
        let _ = writeln!(
            s,
            "  {op:<12} {:>8} req {:>6} err  p50 {:.3}  p99 {:.3}  max {:.3}",
            o.requests, o.errors, o.latency_ms.p50, o.latency_ms.p99, o.latency_ms.max
        );
    }
    if !r.errors_by_code.is_empty() {
        let codes: Vec<String> = r.errors_by_code.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "errors by code: {}", codes.join(" "));
    }
    if let Some(ramp) = &r.ramp {
        for step in &ramp.steps {
            let _ = writeln!(
                s,
                "  ramp {:>8.0}/s  achieved {:>8.1}/s  p99 {:.3} ms  errors {:.4}  {}",
                step.rate_per_s,
                step.achieved_rps,
                step.p99_ms,
                step.error_rate,
                if step.passed { "ok" } else { "MISSES SLO" }
            );
        }
        match ramp.best_rate_per_s {
            Some(b) => {
                let _ = writeln!(s, "highest rate meeting the SLO: {b:.0}/s");
            }
            None => {
                let _ = writeln!(s, "highest rate meeting the SLO: none");
            }
        }
    }
    for c in &r.cpu {
        let _ =
            writeln!(s, "cpu {}: {:.0} ms ({:.1} us per completed request)", c.name, c.cpu_ms, c.cpu_us_per_request);
    }
    if let Some(m) = &r.machine_cpu {
        let _ = writeln!(
            s,
            "machine: {:.2} cores busy, {:.2} of them by other processes, {:.2} stolen",
            m.cores_busy, m.others_cores_busy, m.steal_cores
        );
    }
    let _ = writeln!(
        s,
        "SLO p99 <= {} ms, error rate <= {}: {}",
        r.slo.p99_ms,
        r.slo.max_error_rate,
        if r.slo.passed { "PASS" } else { "FAIL" }
    );
    match r.audit.passed {
        None => {
            let _ = writeln!(s, "audit: {}", if r.audit.error.is_some() { "ERROR" } else { "skipped" });
        }
        Some(passed) => {
            let _ = writeln!(
                s,
                "audit ({} settlements, {} reversals, {} cancels, {} cards): {}",
                r.audit.settlements,
                r.audit.reversals,
                r.audit.cancels,
                r.audit.cards,
                if passed { "PASS" } else { "FAIL" }
            );
            for c in r.audit.checks.iter().filter(|c| !c.passed) {
                let _ = writeln!(s, "  FAILED {} ({} of {}): {}", c.name, c.failed, c.checked, c.examples.join(" | "));
            }
        }
    }
    let _ = writeln!(
        s,
        "verdict: {}{}",
        if r.verdict.passed { "PASS" } else { "FAIL" },
        if r.verdict.reasons.is_empty() { String::new() } else { format!(" ({})", r.verdict.reasons.join("; ")) }
    );
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude)
}

struct Series<'a> {
    name: &'a str,
    color: &'a str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// A line chart as inline SVG; `y_log` plots milliseconds on a log scale (0.01 ms floor).
fn svg_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
    x_ticks: &[(f64, String)],
    y_log: bool,
    hline: Option<(f64, &str)>,
) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 300.0, 64.0, 150.0, 28.0, 44.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"><title>{}</title>"#,
        esc(title)
    );
    let _ = write!(svg, r#"<text x="{left}" y="18" class="t">{}</text>"#, esc(title));
    if all.is_empty() {
        let _ = write!(svg, r#"<text x="{}" y="{}">no data</text></svg>"#, left + 10.0, top + 40.0);
        return svg;
    }
    let x_min = x_ticks.iter().map(|t| t.0).chain(all.iter().map(|p| p.0)).fold(f64::INFINITY, f64::min);
    let x_max = x_ticks.iter().map(|t| t.0).chain(all.iter().map(|p| p.0)).fold(f64::NEG_INFINITY, f64::max);
    let x_span = if x_max > x_min { x_max - x_min } else { 1.0 };
    let floor = 0.01;
    let mut y_max = all.iter().map(|p| p.1).fold(0.0, f64::max);
    if let Some((y, _)) = hline {
        y_max = y_max.max(y);
    }
    let y_max = if y_max <= 0.0 { 1.0 } else { y_max * 1.1 };
    let y_step = nice_step(y_max / 5.0);
    let (y_lo, y_hi) = if y_log {
        let lo = all.iter().map(|p| p.1).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min).max(floor);
        (lo.log10().floor(), y_max.log10().ceil().max(lo.log10().floor() + 1.0))
    } else {
        (0.0, (y_max / y_step).ceil() * y_step)
    };
    let ty = |v: f64| -> f64 {
        let v = if y_log { v.max(floor).log10() } else { v };
        top + ph - (v - y_lo) / (y_hi - y_lo) * ph
    };
    let tx = |v: f64| -> f64 { left + (v - x_min) / x_span * pw };
    // grid + y labels
    let y_grid: Vec<f64> = if y_log {
        (y_lo as i32..=y_hi as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=((y_hi / y_step).round() as usize)).map(|i| i as f64 * y_step).collect()
    };
    for g in y_grid {
        let y = ty(g);
        let label = if g >= 10.0 || g == 0.0 {
            format!("{g:.0}")
        } else if g >= 1.0 {
            format!("{g:.1}")
        } else {
            format!("{g}")
        };
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" class="a">{label}</text>"##,
            left + pw,
            left - 6.0,
            y + 4.0
        );
    }
    for (x, label) in x_ticks {
        let px = tx(*x);
        let _ = write!(
            svg,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{top}" y2="{}" stroke="#eee"/><text x="{px:.1}" y="{}" text-anchor="middle" class="a">{}</text>"##,
            top + ph,
            top + ph + 16.0,
            esc(label)
        );
    }
    let _ = write!(svg, r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##);
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" class="a">{}</text>"#,
        left + pw / 2.0,
        h - 6.0,
        esc(x_label)
    );
    let _ = write!(
        svg,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle" class="a">{}</text>"#,
        top + ph / 2.0,
        top + ph / 2.0,
        esc(y_label)
    );
    if let Some((y, label)) = hline {
        let py = ty(y);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#c00" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" class="a" fill="#c00">{}</text>"##,
            left + pw,
            left + 4.0,
            py - 4.0,
            esc(label)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s.points.iter().map(|(x, y)| format!("{:.1},{:.1}", tx(*x), ty(*y))).collect();
        let dash = if s.dashed { r#" stroke-dasharray="3 3""# } else { "" };
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.8"{dash} points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
        let ly = top + 14.0 + i as f64 * 18.0;
        let _ = write!(
            svg,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="3"{dash}/><text x="{}" y="{}" class="a">{}</text>"#,
            left + pw + 8.0,
            left + pw + 28.0,
            s.color,
            left + pw + 32.0,
            ly + 4.0,
            esc(s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The self-contained HTML page.
pub fn html(r: &Report) -> String {
    let mut page = String::new();
    let ok = r.verdict.passed;
    let _ = write!(
        page,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>settlegate load test: {scenario}</title>
<style>
body{{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#222}}
h1{{font-size:22px}} h2{{font-size:17px;margin-top:28px}}
.verdict{{padding:12px 16px;border-radius:6px;font-weight:600;color:#fff;background:{bg}}}
table{{border-collapse:collapse;margin:8px 0}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
th{{background:#f4f4f4}} td.l,th.l{{text-align:left}} .bad{{color:#b00;font-weight:600}} .good{{color:#070}}
svg{{display:block;margin:10px 0}} svg .t{{font-weight:600;font-size:13px}} svg .a{{font-size:11px;fill:#444}}
code{{background:#f4f4f4;padding:1px 4px}}
</style></head><body>
<h1>settlegate load test: {scenario}</h1>
<p>Target <code>{target}</code>, run <code>{run_id}</code>, started {started} (visit date {visit}); {shape}; {http}.</p>
<div class="verdict">{verdict}</div>
"#,
        scenario = esc(&r.run.scenario),
        bg = if ok { "#2e7d32" } else { "#c62828" },
        target = esc(&r.run.target),
        run_id = esc(&r.run.run_id),
        started = esc(&r.run.started_at),
        visit = esc(&r.run.visit_date),
        shape = esc(&match (&r.ramp, r.run.rate_per_s, r.run.concurrency) {
            (Some(_), _, _) => format!("ramp, {:.1} s", r.run.duration_s),
            (None, Some(rate), _) => format!(
                "open model at {rate:.0}/s for {:.1} s, at most {} in flight",
                r.run.duration_s, r.run.max_in_flight
            ),
            (None, None, Some(c)) => format!("closed model, concurrency {c}, {:.1} s", r.run.duration_s),
            _ => r.run.mode.clone(),
        }),
        http = if r.run.http2 {
            format!("HTTP/2, {} streams per hospital", r.run.connections_per_hospital)
        } else {
            format!("HTTP/1.1 keep-alive, {} connections per hospital", r.run.connections_per_hospital)
        },
        verdict = if ok {
            "PASS: SLO met and money audit clean".to_string()
        } else {
            format!("FAIL: {}", esc(&r.verdict.reasons.join("; ")))
        },
    );
    let l = &r.latency_ms;
    let _ = write!(
        page,
        r#"<h2>Summary</h2><table><tr><th class="l">requests</th><th>completed</th><th>achieved /s</th><th>errors</th><th>error rate</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>
<tr><td class="l">{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{:.4}%</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr></table>
<p>SLO: p99 &le; {} ms <span class="{}">(measured {:.3})</span>, error rate &le; {} <span class="{}">(measured {:.4})</span>.
Latencies are measured from each request's intended start{}.</p>"#,
        r.requests,
        r.completed,
        r.achieved_rps,
        r.errors,
        r.error_rate * 100.0,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        r.slo.p99_ms,
        if r.slo.p99_passed { "good" } else { "bad" },
        r.slo.measured_p99_ms,
        r.slo.max_error_rate,
        if r.slo.error_rate_passed { "good" } else { "bad" },
        r.slo.measured_error_rate,
        if r.run.concurrency.is_some() {
            " (closed model: the start of each request, so these are service times)"
        } else {
            " (open model: stalls are not hidden)"
        }
    );
    if let Some(lag) = &r.send_lag_ms {
        let _ = write!(
            page,
            "<p>Send lag (how late the tool itself started requests; included in the latencies): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms.</p>",
            lag.p50, lag.p99, lag.max
        );
    }
    page.push_str(r#"<table><tr><th class="l">operation</th><th>requests</th><th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>"#);
    for (op, o) in &r.operations {
        let p = &o.latency_ms;
        let _ = write!(
            page,
            r#"<tr><td class="l">{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>"#,
            esc(op),
            o.requests,
            o.errors,
            p.p50,
            p.p90,
            p.p99,
            p.p999,
            p.max
        );
    }
    page.push_str("</table>");
    if !r.errors_by_code.is_empty() {
        page.push_str(r#"<h2>Errors by code</h2><table><tr><th class="l">code</th><th>count</th></tr>"#);
        for (code, n) in &r.errors_by_code {
            let _ = write!(page, r#"<tr><td class="l">{}</td><td>{n}</td></tr>"#, esc(code));
        }
        page.push_str("</table>");
    }

    // Latency over time.
    let t_max = r.timeline.last().map(|p| p.t_s).unwrap_or(1.0).max(1.0);
    let step = (t_max / 8.0).ceil().max(1.0);
    let x_ticks: Vec<(f64, String)> =
        (0..=((t_max / step) as usize)).map(|i| (i as f64 * step, format!("{:.0}", i as f64 * step))).collect();
    let with_data: Vec<&TimelinePoint> = r.timeline.iter().filter(|p| p.requests > 0).collect();
    page.push_str("<h2>Latency over time</h2>");
    page.push_str(&svg_chart(
        "latency per second (ms, log scale)",
        "seconds since start",
        "ms",
        &[
            Series {
                name: "p50",
                color: "#1565c0",
                dashed: false,
                points: with_data.iter().map(|p| (p.t_s, p.p50_ms)).collect(),
            },
            Series {
                name: "p99",
                color: "#ef6c00",
                dashed: false,
                points: with_data.iter().map(|p| (p.t_s, p.p99_ms)).collect(),
            },
            Series {
                name: "max",
                color: "#757575",
                dashed: true,
                points: with_data.iter().map(|p| (p.t_s, p.max_ms)).collect(),
            },
        ],
        &x_ticks,
        true,
        Some((r.slo.p99_ms, "p99 SLO")),
    ));
    page.push_str(&svg_chart(
        "throughput per second",
        "seconds since start",
        "requests/s",
        &[
            Series {
                name: "completed/s",
                color: "#2e7d32",
                dashed: false,
                points: r.timeline.iter().map(|p| (p.t_s, p.rate_per_s)).collect(),
            },
            Series {
                name: "errors",
                color: "#c62828",
                dashed: false,
                points: r.timeline.iter().map(|p| (p.t_s, p.errors as f64)).collect(),
            },
        ],
        &x_ticks,
        false,
        r.run.rate_per_s.map(|rate| (rate, "offered")),
    ));

    // Latency by percentile, x in "nines".
    let nines = |p: f64| if p >= 100.0 { 5.6 } else { -(1.0 - p / 100.0).log10() };
    let curve: Vec<(f64, f64)> = r.percentile_curve.iter().map(|c| (nines(c.percentile), c.latency_ms)).collect();
    let ticks = vec![
        (0.0, "0%".to_string()),
        (1.0, "90%".to_string()),
        (2.0, "99%".to_string()),
        (3.0, "99.9%".to_string()),
        (4.0, "99.99%".to_string()),
        (5.0, "99.999%".to_string()),
        (5.6, "max".to_string()),
    ];
    page.push_str("<h2>Latency by percentile</h2>");
    page.push_str(&svg_chart(
        "latency by percentile (ms, log scale)",
        "percentile",
        "ms",
        &[Series { name: "all requests", color: "#6a1b9a", dashed: false, points: curve }],
        &ticks,
        true,
        Some((r.slo.p99_ms, "p99 SLO")),
    ));

    if let Some(ramp) = &r.ramp {
        page.push_str(r#"<h2>Ramp</h2><table><tr><th>offered /s</th><th>achieved /s</th><th>requests</th><th>error rate</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th class="l">SLO</th></tr>"#);
        for s in &ramp.steps {
            let _ = write!(
                page,
                r#"<tr><td>{:.0}</td><td>{:.1}</td><td>{}</td><td>{:.4}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td class="l {}">{}</td></tr>"#,
                s.rate_per_s,
                s.achieved_rps,
                s.requests,
                s.error_rate,
                s.p50_ms,
                s.p99_ms,
                s.max_ms,
                if s.passed { "good" } else { "bad" },
                if s.passed { "met" } else { "missed" }
            );
        }
        let _ = write!(
            page,
            "</table><p>Highest rate meeting the SLO: <b>{}</b></p>",
            ramp.best_rate_per_s.map_or("none".to_string(), |b| format!("{b:.0}/s"))
        );
    }

    page.push_str("<h2>Money audit</h2>");
    match r.audit.passed {
        None => {
            let _ = write!(
                page,
                "<p>{}</p>",
                esc(r.audit.error.as_deref().unwrap_or("skipped (--no-audit or floor target)"))
            );
        }
        Some(_) => {
            let _ = write!(
                page,
                "<p>{} settlements ({} reversed), {} cancellations, {} cards; unknown outcomes resolved: {} settled, {} not applied, {} reversed, {} unresolved; {} ms.</p>",
                r.audit.settlements,
                r.audit.reversals,
                r.audit.cancels,
                r.audit.cards,
                r.audit.resolution.resolved_settled,
                r.audit.resolution.resolved_not_applied,
                r.audit.resolution.resolved_reversed,
                r.audit.resolution.unresolved,
                r.audit.duration_ms
            );
            if let Some(t) = &r.audit.tamper {
                let _ = write!(
                    page,
                    r#"<p class="bad">Tampered on purpose: HINCRBY <code>{}</code> <code>{}</code> 1 (card {}), applied: {}.</p>"#,
                    esc(&t.key),
                    esc(&t.field),
                    esc(&t.card_id),
                    t.applied
                );
            }
            page.push_str(r#"<table><tr><th class="l">check</th><th>checked</th><th>failed</th><th class="l">result</th><th class="l">examples</th></tr>"#);
            for c in &r.audit.checks {
                let _ = write!(
                    page,
                    r#"<tr><td class="l">{}</td><td>{}</td><td>{}</td><td class="l {}">{}</td><td class="l">{}{}</td></tr>"#,
                    esc(&c.name),
                    c.checked,
                    c.failed,
                    if c.passed { "good" } else { "bad" },
                    if c.passed { "pass" } else { "FAIL" },
                    c.note.as_deref().map(|n| format!("<i>{}</i><br>", esc(n))).unwrap_or_default(),
                    esc(&c.examples.join(" | "))
                );
            }
            page.push_str("</table>");
        }
    }
    if !r.cpu.is_empty() {
        page.push_str(r#"<h2>CPU</h2><table><tr><th class="l">process</th><th>pid</th><th>CPU ms</th><th>µs per request</th><th>cores busy</th></tr>"#);
        for c in &r.cpu {
            let _ = write!(
                page,
                r#"<tr><td class="l">{}</td><td>{}</td><td>{:.0}</td><td>{:.1}</td><td>{:.2}</td></tr>"#,
                esc(&c.name),
                c.pid,
                c.cpu_ms,
                c.cpu_us_per_request,
                c.cores_busy
            );
        }
        page.push_str("</table>");
    }
    if let Some(m) = &r.machine_cpu {
        let _ = write!(
            page,
            "<p>Whole machine during the load: {:.2} cores busy, <b>{:.2}</b> of them by processes other than the watched ones (competing with the measurement), {:.2} stolen by the hypervisor.</p>",
            m.cores_busy, m.others_cores_busy, m.steal_cores
        );
    }
    let _ = writeln!(
        page,
        "<p><small>{} · report.json has every figure on this page.</small></p></body></html>",
        esc(&r.tool)
    );
    page
}

/// Writes report.json, report.html and summary.txt into `dir` (created if needed).
pub fn write_all(dir: &Path, report: &Report) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(report).expect("json"))?;
    std::fs::write(dir.join("report.html"), html(report))?;
    std::fs::write(dir.join("summary.txt"), summary(report))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Check;
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
    fn nice_steps() {
        assert_eq!(nice_step(54.5), 100.0);
        assert_eq!(nice_step(41.0), 50.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(2000.0), 2000.0);
    }

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
        assert_eq!(r.slo.measured_p99_ms, 3.0);
        assert!(r.verdict.passed, "{:?}", r.verdict);
        assert!(summary(&r).contains("highest rate meeting the SLO: 200/s"));
    }
}
