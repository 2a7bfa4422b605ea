//! Latency histograms (HdrHistogram, values in microseconds), error counts by code, the per-second timeline
//! and the progress line. Pure: the caller supplies the clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::scenario::Op;

/// Histogram range: 1 µs .. 120 s at 3 significant digits (0.1 % resolution).
pub const LOWEST_US: u64 = 1;
pub const HIGHEST_US: u64 = 120_000_000;
pub const SIGFIG: u8 = 3;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("valid histogram bounds")
}

/// Microseconds in `d`, saturating (at u64::MAX, half a million years): latencies and lags for the histograms.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Milliseconds since `t0`, saturating: how long a seed or audit step took.
pub fn elapsed_ms(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A measured, non-negative figure computed in floating point (a request count, a schedule offset in
/// nanoseconds, a chart's grid line count) as an integer, toward zero. Never for money.
// `as` saturates (negative and NaN give 0, too large gives u64::MAX): exactly what these figures want.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn saturating_u64(x: f64) -> u64 {
    x as u64
}

/// A small signed figure computed in floating point (a chart's power-of-ten exponent) as an i32, toward zero.
// `as` saturates at the i32 bounds and gives 0 for NaN; chart exponents are within ±20.
#[allow(clippy::cast_possible_truncation)]
pub fn saturating_i32(x: f64) -> i32 {
    x as i32
}

/// `x` rounded to `decimals` decimal places: how every figure in the reports is rounded.
pub fn round_to(x: f64, decimals: u8) -> f64 {
    let scale = 10f64.powi(i32::from(decimals));
    (x * scale).round() / scale
}

/// The text of error counts by code, `code=n` separated by spaces (progress lines and the summary).
pub fn codes_line(errors_by_code: &BTreeMap<String, u64>) -> String {
    errors_by_code.iter().map(|(code, n)| format!("{code}={n}")).collect::<Vec<_>>().join(" ")
}

fn us_to_ms(us: u64) -> f64 {
    round_to(us as f64 / 1000.0, 3)
}

/// The percentiles every report shows, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// The median: the typical request.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile: what the SLO limits.
    pub p99: f64,
    /// 99.9th percentile: the tail that one stall in a thousand requests shows in.
    pub p999: f64,
    /// The slowest request (within the histogram's 0.1 % resolution).
    pub max: f64,
    /// The mean, which a few slow requests move (compare it with p50).
    pub mean: f64,
}

pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        p50: us_to_ms(h.value_at_quantile(0.50)),
        p90: us_to_ms(h.value_at_quantile(0.90)),
        p99: us_to_ms(h.value_at_quantile(0.99)),
        p999: us_to_ms(h.value_at_quantile(0.999)),
        max: us_to_ms(h.max()),
        mean: round_to(h.mean() / 1000.0, 3),
    }
}

/// One point of the latency-by-percentile curve.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CurvePoint {
    /// The percentile, 0 to 100 (100 is the maximum); rounded to 3 decimals, as in report.json.
    pub percentile: f64,
    /// The latency at that percentile, in milliseconds.
    pub latency_ms: f64,
}

/// Points of the latency-by-percentile curve: 0, 90, 99, 99.9 … 99.999 % in tenths of a "nine", then the max.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<CurvePoint> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    for tenth_nines in 0..=50u32 {
        let quantile = 1.0 - 10f64.powf(-(tenth_nines as f64) / 10.0);
        let percentile = round_to(quantile * 100.0, 3);
        points.push(CurvePoint { percentile, latency_ms: us_to_ms(h.value_at_quantile(quantile)) });
    }
    points.push(CurvePoint { percentile: 100.0, latency_ms: us_to_ms(h.max()) });
    points
}

/// One second (or so) of the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelinePoint {
    /// End of the interval, seconds since the phase began.
    pub t_s: f64,
    /// Requests that completed in the interval.
    pub requests: u64,
    /// Those of them that failed.
    pub errors: u64,
    /// Completions per second over the interval (intervals are about, not exactly, one second).
    pub rate_per_s: f64,
    /// Median latency of the interval's completions, milliseconds.
    pub p50_ms: f64,
    /// Their 99th percentile: a stall shows here second by second.
    pub p99_ms: f64,
    /// Their slowest.
    pub max_ms: f64,
}

/// One operation's share of a phase.
#[derive(Debug)]
pub struct OpStats {
    /// Its latencies, microseconds.
    pub histogram: Histogram<u64>,
    /// Its completed (or timed out) requests.
    pub requests: u64,
    /// Those of them whose answer was not the expected one.
    pub errors: u64,
}

/// Everything measured during one load phase. Callers share it behind a `Mutex` and never hold it across an
/// `.await`.
#[derive(Debug)]
pub struct Recorder {
    /// When the phase began: the origin of the timeline and of the achieved rate.
    pub started: Instant,
    /// Every completed request's latency, microseconds.
    pub overall: Histogram<u64>,
    /// Per operation, indexed by [`Op::index`].
    pub ops: Vec<OpStats>,
    /// Requests answered or given up on (with a latency) plus intended requests never sent.
    pub requests: u64,
    /// Of those, the ones that failed (wrong answer, timeout, not sent).
    pub errors: u64,
    /// `errors` by code: a count per `timeout`, `not_sent`, problem code, `http_NNN`, …
    pub errors_by_code: BTreeMap<String, u64>,
    /// Successes that are refusals the request was made to provoke, by problem code (`insurance_ref_reused`).
    pub expected_refusals: BTreeMap<String, u64>,
    /// One point per closed interval ([`Recorder::tick`]).
    pub timeline: Vec<TimelinePoint>,
    /// Open model: how late each request started compared to its intended start (the tool's own lateness).
    pub send_lag: Histogram<u64>,
    /// Time of the last completion, for the achieved rate.
    pub last_completion: Option<Instant>,
    interval: Histogram<u64>,
    interval_requests: u64,
    interval_errors: u64,
    interval_started: Instant,
}

impl Recorder {
    pub fn new(now: Instant) -> Recorder {
        Recorder {
            started: now,
            overall: new_histogram(),
            ops: Op::ALL.iter().map(|_| OpStats { histogram: new_histogram(), requests: 0, errors: 0 }).collect(),
            requests: 0,
            errors: 0,
            errors_by_code: BTreeMap::new(),
            expected_refusals: BTreeMap::new(),
            timeline: Vec::new(),
            send_lag: new_histogram(),
            last_completion: None,
            interval: new_histogram(),
            interval_requests: 0,
            interval_errors: 0,
            interval_started: now,
        }
    }

    /// One completed request (or one given up on after its timeout): its latency and, if it failed, why.
    pub fn record(&mut self, op: Op, latency_us: u64, error: Option<&str>, now: Instant) {
        let latency_us = latency_us.max(LOWEST_US);
        self.overall.saturating_record(latency_us);
        self.interval.saturating_record(latency_us);
        let stats = &mut self.ops[op.index()];
        stats.histogram.saturating_record(latency_us);
        stats.requests += 1;
        self.requests += 1;
        self.interval_requests += 1;
        if let Some(code) = error {
            stats.errors += 1;
            self.count_error(code, 1);
            self.interval_errors += 1;
        }
        self.last_completion = Some(now);
    }

    /// One success that was the refusal the request meant to provoke (already [`record`](Recorder::record)ed).
    pub fn record_expected_refusal(&mut self, code: &str) {
        *self.expected_refusals.entry(code.to_string()).or_insert(0) += 1;
    }

    /// Open model: how late one request started, in microseconds (0 = on time).
    pub fn record_send_lag(&mut self, lag_us: u64) {
        self.send_lag.saturating_record(lag_us.max(LOWEST_US));
    }

    /// Intended requests that never went out (the tool could not keep up, or the run was stopped):
    /// counted as requests and errors, without a latency.
    pub fn record_not_sent(&mut self, n: u64) {
        if n > 0 {
            self.requests += n;
            self.count_error("not_sent", n);
        }
    }

    fn count_error(&mut self, code: &str, n: u64) {
        self.errors += n;
        *self.errors_by_code.entry(code.to_string()).or_insert(0) += n;
    }

    /// Closes the current interval: appends a timeline point and returns it.
    pub fn tick(&mut self, now: Instant) -> TimelinePoint {
        let span_s = now.duration_since(self.interval_started).as_secs_f64().max(1e-3);
        let p = percentiles(&self.interval);
        let point = TimelinePoint {
            t_s: round_to(now.duration_since(self.started).as_secs_f64(), 3),
            requests: self.interval_requests,
            errors: self.interval_errors,
            rate_per_s: round_to(self.interval_requests as f64 / span_s, 1),
            p50_ms: p.p50,
            p99_ms: p.p99,
            max_ms: p.max,
        };
        self.timeline.push(point.clone());
        self.interval.reset();
        self.interval_requests = 0;
        self.interval_errors = 0;
        self.interval_started = now;
        point
    }

    /// Requests per second over the phase: completions / (time to the last completion, at least `nominal`).
    pub fn achieved_rps(&self, nominal: Duration) -> f64 {
        let completed = self.overall.len();
        let elapsed =
            self.last_completion.map(|t| t.duration_since(self.started)).unwrap_or_default().max(nominal).as_secs_f64();
        if elapsed <= 0.0 {
            0.0
        } else {
            round_to(completed as f64 / elapsed, 1)
        }
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }

    /// Adds a later phase (a ramp step) to this one; its timeline continues after this one's.
    pub fn absorb(&mut self, other: &Recorder) {
        let offset_s = self.timeline.last().map(|p| p.t_s).unwrap_or(0.0);
        self.overall.add(&other.overall).expect("same histogram bounds");
        self.send_lag.add(&other.send_lag).expect("same histogram bounds");
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            mine.histogram.add(&theirs.histogram).expect("same histogram bounds");
            mine.requests += theirs.requests;
            mine.errors += theirs.errors;
        }
        self.requests += other.requests;
        self.errors += other.errors;
        for (code, n) in &other.errors_by_code {
            *self.errors_by_code.entry(code.clone()).or_insert(0) += n;
        }
        for (code, n) in &other.expected_refusals {
            *self.expected_refusals.entry(code.clone()).or_insert(0) += n;
        }
        for point in &other.timeline {
            let mut p = point.clone();
            p.t_s = round_to(p.t_s + offset_s, 3);
            self.timeline.push(p);
        }
        if other.last_completion.is_some() {
            self.last_completion = other.last_completion;
        }
    }

    /// The live progress line: last interval's rate, cumulative p50/p99, errors by code so far.
    pub fn progress_line(&self, point: &TimelinePoint, in_flight: u64, label: &str) -> String {
        let cumulative = percentiles(&self.overall);
        let mut line = format!(
            "[{label}{:>5.0}s] rate={:.0}/s done={} in_flight={} p50={:.2}ms p99={:.2}ms max={:.1}ms errors={}",
            point.t_s,
            point.rate_per_s,
            self.requests,
            in_flight,
            cumulative.p50,
            cumulative.p99,
            cumulative.max,
            self.errors
        );
        if !self.errors_by_code.is_empty() {
            line.push_str(&format!(" ({})", codes_line(&self.errors_by_code)));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_extracted_in_ms() {
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 10).unwrap(); // 10 µs .. 10 ms, uniform
        }
        let p = percentiles(&h);
        assert!((p.p50 - 5.0).abs() < 0.01, "{p:?}");
        assert!((p.p90 - 9.0).abs() < 0.01, "{p:?}");
        assert!((p.p99 - 9.9).abs() < 0.01, "{p:?}");
        assert!((p.p999 - 9.99).abs() < 0.01, "{p:?}");
        assert!((p.max - 10.0).abs() < 0.01, "{p:?}");
        assert_eq!(percentiles(&new_histogram()), Percentiles::default());
    }

    #[test]
    fn curve_is_monotone_and_ends_at_max() {
        let mut h = new_histogram();
        for us in [100u64, 200, 300, 5000, 90_000] {
            h.record(us).unwrap();
        }
        let curve = percentile_curve(&h);
        assert_eq!(curve.first().map(|p| p.percentile.to_bits()), Some(0.0f64.to_bits()));
        // max within 0.1 % (3 significant digits)
        assert_eq!(curve.last().unwrap(), &CurvePoint { percentile: 100.0, latency_ms: 90.047 });
        assert!(curve.windows(2).all(|w| w[0].percentile <= w[1].percentile && w[0].latency_ms <= w[1].latency_ms));
    }

    #[test]
    fn recorder_counts_errors_by_code_and_ticks() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0);
        r.record(Op::Settle, 1500, None, t0);
        r.record(Op::Settle, 2500, Some("timeout"), t0);
        r.record(Op::Quote, 500, Some("timeout"), t0);
        r.record_not_sent(2);
        assert_eq!(r.requests, 5);
        assert_eq!(r.errors, 4);
        assert_eq!(r.errors_by_code["timeout"], 2);
        assert_eq!(r.errors_by_code["not_sent"], 2);
        assert_eq!(r.ops[Op::Settle.index()].requests, 2);
        assert_eq!(r.ops[Op::Settle.index()].errors, 1);
        let point = r.tick(t0 + Duration::from_secs(1));
        assert_eq!(point.requests, 3);
        assert_eq!(point.errors, 2);
        assert!((point.rate_per_s - 3.0).abs() < 1e-9, "{}", point.rate_per_s);
        let next = r.tick(t0 + Duration::from_secs(2));
        assert_eq!(next.requests, 0);
        assert_eq!(r.timeline.len(), 2);
        assert!((r.error_rate() - 0.8).abs() < 1e-9);
        assert!(r.progress_line(&point, 0, "").contains("timeout=2"));
    }
}
