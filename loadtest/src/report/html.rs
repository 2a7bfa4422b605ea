//! `report.html`: one self-contained page (inline CSS and SVG, no network).

use std::fmt::Write as _;

use super::model::Report;
use super::{charts, esc};

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
        good_bad(r.slo.p99_passed),
        r.slo.measured_p99_ms,
        r.slo.max_error_rate,
        good_bad(r.slo.error_rate_passed),
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
    if !r.expected_refusals.is_empty() {
        page.push_str(r#"<h2>Expected refusals</h2><p>Refusals the run provoked on purpose (successes, not errors).</p><table><tr><th class="l">code</th><th>count</th></tr>"#);
        for (code, n) in &r.expected_refusals {
            let _ = write!(page, r#"<tr><td class="l">{}</td><td>{n}</td></tr>"#, esc(code));
        }
        page.push_str("</table>");
    }

    page.push_str(&charts::latency_over_time(r));
    page.push_str(&charts::latency_by_percentile(r));

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
                good_bad(s.passed),
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
                "<p>{} settlements ({} reversed), {} cancellations, {} refused requests, {} cards; unknown outcomes resolved: {} settled, {} not applied, {} reversed, {} unresolved; {} ms.</p>",
                r.audit.settlements,
                r.audit.reversals,
                r.audit.cancels,
                r.audit.refused,
                r.audit.cards,
                r.audit.resolution.resolved_settled,
                r.audit.resolution.resolved_not_applied,
                r.audit.resolution.resolved_reversed,
                r.audit.resolution.unresolved,
                r.audit.duration_ms
            );
            if let Some(e) = &r.audit.events {
                let _ = write!(page, "<p>Event stream: {}.</p>", esc(&super::text::events_line(e, &r.audit.checks)));
            }
            if let Some(t) = &r.audit.audit_trail {
                let _ = write!(page, "<p>Audit trail: {}.</p>", esc(&super::text::trail_line(t, &r.audit.checks)));
            }
            if let Some(outcome) = &r.audit.reconciliation_check {
                let _ = write!(
                    page,
                    "<p>Reconciliation check (<code>POST /v1/reconciliation/check</code>): <b>{}</b>.</p>",
                    esc(outcome)
                );
            }
            if let Some(t) = &r.audit.tamper_events {
                let _ = write!(
                    page,
                    r#"<p class="bad">Tampered on purpose: XDEL <code>{}</code> <code>{}</code> (the settled event of {}), applied: {}.</p>"#,
                    esc(&t.key),
                    esc(t.entry_id.as_deref().unwrap_or("-")),
                    esc(t.hsid.as_deref().unwrap_or("-")),
                    t.applied
                );
            }
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
                    good_bad(c.passed),
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

/// The CSS class of a figure that met (`good`) or missed (`bad`) its target.
fn good_bad(ok: bool) -> &'static str {
    if ok {
        "good"
    } else {
        "bad"
    }
}
