//! Line charts as inline SVG (no script, no network), and the report's three charts built from its timeline
//! and percentile curve.

use std::fmt::Write as _;

use super::esc;
use super::model::Report;
use crate::stats::{saturating_i32, saturating_u64, TimelinePoint};

/// How many grid steps fit in a span of `steps` (a small, non-negative float).
fn grid_lines(steps: f64) -> usize {
    usize::try_from(saturating_u64(steps)).unwrap_or(usize::MAX)
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
        (saturating_i32(y_lo)..=saturating_i32(y_hi)).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=grid_lines((y_hi / y_step).round())).map(|i| i as f64 * y_step).collect()
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

/// "Latency over time": p50 / p99 / max per second against the p99 SLO, then throughput and errors per second.
pub(super) fn latency_over_time(r: &Report) -> String {
    let mut page = String::new();
    let t_max = r.timeline.last().map(|p| p.t_s).unwrap_or(1.0).max(1.0);
    let step = (t_max / 8.0).ceil().max(1.0);
    let x_ticks: Vec<(f64, String)> =
        (0..=grid_lines(t_max / step)).map(|i| (i as f64 * step, format!("{:.0}", i as f64 * step))).collect();
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
    page
}

/// "Latency by percentile": the whole run's latency curve, x in "nines" (90 %, 99 %, 99.9 % …).
pub(super) fn latency_by_percentile(r: &Report) -> String {
    let mut page = String::new();
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
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        for (raw, step) in [(54.5, 100.0), (41.0, 50.0), (0.3, 0.5), (2000.0, 2000.0)] {
            assert!((nice_step(raw) - step).abs() < 1e-9, "nice_step({raw}) = {}", nice_step(raw));
        }
    }
}
