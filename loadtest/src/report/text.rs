//! `summary.txt`: a few lines for a terminal or a CI log (also printed on stdout at the end of a run).

use std::fmt::Write as _;

use super::model::Report;
use crate::stats::codes_line;

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
        let _ = writeln!(s, "errors by code: {}", codes_line(&r.errors_by_code));
    }
    if !r.expected_refusals.is_empty() {
        let _ = writeln!(s, "expected refusals (successes): {}", codes_line(&r.expected_refusals));
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
        pass_fail(r.slo.passed)
    );
    match r.audit.passed {
        None => {
            let _ = writeln!(s, "audit: {}", if r.audit.error.is_some() { "ERROR" } else { "skipped" });
        }
        Some(passed) => {
            let _ = writeln!(
                s,
                "audit ({} settlements, {} reversals, {} cancels, {} refused, {} cards): {}",
                r.audit.settlements,
                r.audit.reversals,
                r.audit.cancels,
                r.audit.refused,
                r.audit.cards,
                pass_fail(passed)
            );
            if let Some(e) = &r.audit.events {
                let _ = writeln!(s, "  events: {}", events_line(e, &r.audit.checks));
            }
            if let Some(c) = &r.audit.contributions {
                let _ = writeln!(
                    s,
                    "  contributions to {}: {} sent, {} donation(s) and {} withdrawal(s) accepted (net {} fen), {} \
                     refused, {} without an answer ({} resolved by resending); {} replay(s), {} conflicting reuse(s)",
                    c.program,
                    c.sent,
                    c.donations,
                    c.withdrawals,
                    c.net_fen,
                    c.refused,
                    c.unknown,
                    c.resolved,
                    c.replays,
                    c.conflicts
                );
            }
            if let Some(t) = &r.audit.audit_trail {
                let _ = writeln!(s, "  audit trail: {}", trail_line(t, &r.audit.checks));
            }
            if let Some(t) = &r.audit.tamper_events {
                let _ = writeln!(
                    s,
                    "  tampered on purpose: XDEL {} {} (settled event of {}), applied: {}",
                    t.key,
                    t.entry_id.as_deref().unwrap_or("-"),
                    t.hsid.as_deref().unwrap_or("-"),
                    t.applied
                );
            }
            if let Some(t) = &r.audit.tamper_audit {
                let _ = writeln!(
                    s,
                    "  tampered on purpose: audit entry {} in {} (amount_fen + 1, not resealed), applied: {}",
                    t.seq.map_or("-".to_string(), |n| n.to_string()),
                    t.key,
                    t.applied
                );
            }
            if let Some(outcome) = &r.audit.reconciliation_check {
                let _ = writeln!(s, "  reconciliation check (POST /v1/reconciliation/check): {outcome}");
            }
            for c in r.audit.checks.iter().filter(|c| !c.passed) {
                let _ = writeln!(s, "  FAILED {} ({} of {}): {}", c.name, c.failed, c.checked, c.examples.join(" | "));
            }
        }
    }
    let _ = writeln!(
        s,
        "verdict: {}{}",
        pass_fail(r.verdict.passed),
        if r.verdict.reasons.is_empty() { String::new() } else { format!(" ({})", r.verdict.reasons.join("; ")) }
    );
    s
}

/// The events audit in one line: what was read, and the verdict of its checks.
pub(super) fn events_line(e: &crate::audit::EventsSummary, checks: &[crate::audit::Check]) -> String {
    if e.status != "checked" {
        return e.status.clone();
    }
    let names = [
        "settled_events_match_answers",
        "reversed_events_match_reversals",
        "cancel_events_match_cancels",
        "no_event_without_an_acknowledged_change",
        "event_ids_unique",
        "event_stream_paging",
    ];
    let passed = checks.iter().filter(|c| names.contains(&c.name.as_str())).all(|c| c.passed);
    let of_run: Vec<String> = e.of_the_run.iter().map(|(t, n)| format!("{t} {n}")).collect();
    format!(
        "{} read in {} page(s) ({} ms), of this run: {}; {} of others: {}",
        e.events,
        e.pages,
        e.duration_ms,
        if of_run.is_empty() { "none".to_string() } else { of_run.join(", ") },
        e.others,
        pass_fail(passed)
    )
}

/// The audit trail check in one line.
pub(super) fn trail_line(t: &crate::audit::TrailSummary, checks: &[crate::audit::Check]) -> String {
    if t.status != "checked" {
        return t.status.clone();
    }
    let names =
        ["audit_chain_intact", "audit_chain_paging", "contributions_audited", "audit_appended_events_match_chain"];
    let passed = checks.iter().filter(|c| names.contains(&c.name.as_str())).all(|c| c.passed);
    format!(
        "{} entries to seq {} in {} page(s) ({} ms), {} verified, {} of this run's contributions: {}",
        t.entries,
        t.last_seq,
        t.pages,
        t.duration_ms,
        t.verified,
        t.of_the_run,
        pass_fail(passed)
    )
}

/// A verdict as the summary shows it.
fn pass_fail(passed: bool) -> &'static str {
    if passed {
        "PASS"
    } else {
        "FAIL"
    }
}
