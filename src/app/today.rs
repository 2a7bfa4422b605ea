//! The data of the web console's "Today" page ([`App::today_page`]): today's and this month's settlements and
//! relief (the relief report by day), the last hour's settle rate and p99 latency per minute over every gateway
//! instance (`store::stats`), the pools, the newest reversals, the instances and Redis.
//!
//! The page answers while Redis is down: each part that cannot be read is empty (or zero) and `redis.up` is
//! `false`; only data the gateway does not understand (a corrupt record) is an error.

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use chrono_tz::Tz;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::{ApiError, ApiResult, App, ReportLimits, ReportRequest};
use crate::domain::report::{ReliefReport, ReportBy};
use crate::redact::mask_card;
use crate::store::stats::{merge_target, unix_minute, Heartbeat};

/// Minutes of the per-minute chart: the last hour, the current minute included.
pub const MINUTES_SHOWN: usize = 60;

/// Reversals listed, newest first.
pub const RECENT_REVERSALS: usize = 10;

/// Most events read back to find them (the stream's newest entries).
pub const REVERSALS_SCANNED: usize = 2000;

/// An instance whose heartbeat is at most this old is `up` (three flush intervals).
pub const UP_WITHIN_S: i64 = 15;

/// The bounds of the month's report: at most 31 days, the aggregator's default batch.
const MONTH_REPORT: ReportLimits = ReportLimits { max_days: 31, batch_lines: 2000 };

/// The whole page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Today {
    /// Today's local date, `YYYY-MM-DD`.
    pub date: String,
    /// This local month, `YYYY-MM`.
    pub month: String,
    /// Today's row of the relief report by day (zeros when nothing happened today).
    pub today: Counts,
    /// The rows of the report from the first of the month to today, summed.
    pub month_to_date: Counts,
    /// The last [`MINUTES_SHOWN`] wall-clock minutes, oldest first, every instance together.
    pub minutes: Vec<MinuteRow>,
    /// Those minutes merged.
    pub last_hour: LastHour,
    /// The rows of `GET /admin/v1/pools` for this year (`Pool::to_json`).
    pub pools: Vec<serde_json::Value>,
    /// The newest `settlement.reversed` events, newest first.
    pub reversals: Vec<RecentReversal>,
    /// Every instance with a heartbeat, by instance id.
    pub instances: Vec<InstanceRow>,
    /// Whether Redis answered, and how fast.
    pub redis: RedisStatus,
}

/// Settled and reversed lines and net relief of some days (the relief report's figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Settlements made (a reversed one included: its reversal is counted apart).
    pub settled_count: i64,
    /// Reversals made.
    pub reversed_count: i64,
    /// Net relief paid (reversals subtracted), fen.
    pub relief_fen: i64,
}

/// One minute of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinuteRow {
    /// The minute's start, RFC 3339 in the App's zone (`2026-12-02T10:05:00+08:00`).
    pub minute: String,
    /// Settle requests answered 2xx in it, every instance together.
    pub settled: u64,
    /// Their 99th-percentile latency, ms to 0.01; `null` without one.
    pub p99_ms: Option<f64>,
}

/// The chart's minutes merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastHour {
    /// Settle requests answered 2xx in the last hour.
    pub settled: u64,
    /// `settled / 3600`, two decimal places, rounded half up (`"0.07"`): text, so that it is exact.
    pub per_second: String,
    /// The hour's 99th-percentile latency, ms to 0.01; `null` without one.
    pub p99_ms: Option<f64>,
}

/// One reversal; a field the event lacks is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecentReversal {
    /// When it was reversed (RFC 3339, local time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The hospital whose settlement it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hospital_id: Option<String>,
    /// The settlement's opaque id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_id: Option<String>,
    /// The relief the settlement had paid, which the reversal took back, fen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relief_fen: Option<i64>,
    /// The card, masked as in logs (`redact::mask_card`): the page is no place for a full card id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_id_masked: Option<String>,
}

/// One instance's heartbeat and whether it is recent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceRow {
    /// The heartbeat as the instance stored it.
    #[serde(flatten)]
    pub heartbeat: Heartbeat,
    /// Seen within the last [`UP_WITHIN_S`].
    pub up: bool,
}

/// Redis as this instance sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedisStatus {
    /// A `PING` was answered.
    pub up: bool,
    /// Its round trip, ms to 0.01; `null` when unanswered.
    pub ping_ms: Option<f64>,
}

impl App {
    /// The console's Today page, as of now. Reads run together (one connection, pipelined by Redis); a part that
    /// Redis cannot answer is empty.
    pub async fn today_page(&self) -> ApiResult<Today> {
        let now = self.now();
        let date = now.date_naive();
        let first = date.with_day(1).unwrap_or(date);
        let minutes = window(unix_minute(now.timestamp()));
        let report = ReportRequest { from: first, to: date, by: ReportBy::Day };
        let ping_started = Instant::now();
        let ping = self.store.ping().await;
        let redis = RedisStatus { up: ping.is_ok(), ping_ms: ping.is_ok().then(|| ms_2dp(ping_started.elapsed())) };
        let (report, histograms, pools, reversals, beats) = tokio::join!(
            self.relief_report(&report, None, &MONTH_REPORT),
            self.store.settle_minutes(&minutes),
            self.pools(None),
            self.store.recent_events("settlement.reversed", RECENT_REVERSALS, REVERSALS_SCANNED),
            self.store.instances(),
        );
        let (today, month_to_date) = day_and_month(&degrade("report", report.map(Some))?, &date.to_string());
        let (minutes, last_hour) = chart(&minutes, &degrade("minutes", histograms.map_err(ApiError::from))?, self.tz);
        let pools = degrade("pools", pools.map(|p| p.pools.iter().map(super::Pool::to_json).collect()))?;
        let reversals = degrade("reversals", reversals.map_err(ApiError::from))?;
        let now_utc = now.with_timezone(&Utc);
        let instances = degrade("instances", beats.map_err(ApiError::from))?
            .into_iter()
            .map(|heartbeat| InstanceRow { up: seen_within(&heartbeat.seen_at, now_utc, UP_WITHIN_S), heartbeat })
            .collect();
        Ok(Today {
            date: date.to_string(),
            month: date.format("%Y-%m").to_string(),
            today,
            month_to_date,
            minutes,
            last_hour,
            pools,
            reversals: reversals.iter().map(reversal_row).collect(),
            instances,
            redis,
        })
    }
}

/// A part's result, or its empty value when Redis could not answer (503/504 errors); other errors stand.
fn degrade<T: Default>(part: &'static str, r: ApiResult<T>) -> ApiResult<T> {
    match r {
        Err(ApiError::Unavailable(_) | ApiError::OutcomeUnknown(_)) => {
            tracing::debug!(part, "today page: redis did not answer; this part is empty");
            Ok(T::default())
        }
        other => other,
    }
}

/// The [`MINUTES_SHOWN`] Unix minutes ending with `current`, oldest first.
pub fn window(current: i64) -> Vec<i64> {
    let n = i64::try_from(MINUTES_SHOWN).unwrap_or(60);
    (current - n + 1..=current).collect()
}

/// The start of Unix minute `minute` as RFC 3339 in `tz`, seconds precision (`2026-12-02T10:05:00+08:00`).
pub fn minute_label(minute: i64, tz: Tz) -> String {
    DateTime::from_timestamp(minute.saturating_mul(60), 0)
        .map(|t| t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, false))
        .unwrap_or_default()
}

/// Today's row (`day`) and the sum of every row of a relief report by day; zeros without a report.
fn day_and_month(report: &Option<ReliefReport>, day: &str) -> (Counts, Counts) {
    let Some(report) = report else { return (Counts::default(), Counts::default()) };
    let counts = |r: &crate::domain::report::ReportRow| Counts {
        settled_count: r.settled_count,
        reversed_count: r.reversed_count,
        relief_fen: r.relief_fen,
    };
    let today = report.rows.iter().find(|r| r.key == day).map(counts).unwrap_or_default();
    let month = report.rows.iter().map(counts).fold(Counts::default(), |a, b| Counts {
        settled_count: a.settled_count + b.settled_count,
        reversed_count: a.reversed_count + b.reversed_count,
        relief_fen: a.relief_fen + b.relief_fen,
    });
    (today, month)
}

/// The chart's rows for `minutes` and their merge, from each minute's merged histogram (`histograms[i]` of
/// `minutes[i]`; a missing one counts as empty, as when Redis did not answer).
pub fn chart(minutes: &[i64], histograms: &[Histogram<u64>], tz: Tz) -> (Vec<MinuteRow>, LastHour) {
    let mut hour = merge_target();
    let mut rows = Vec::with_capacity(minutes.len());
    for (i, minute) in minutes.iter().enumerate() {
        let h = histograms.get(i);
        if let Some(h) = h {
            if hour.add(h).is_err() {
                tracing::debug!("a minute's settle histogram could not be merged into the hour");
            }
        }
        rows.push(MinuteRow {
            minute: minute_label(*minute, tz),
            settled: h.map_or(0, Histogram::len),
            p99_ms: h.and_then(p99_ms),
        });
    }
    let last_hour = LastHour { settled: hour.len(), per_second: per_second(hour.len()), p99_ms: p99_ms(&hour) };
    (rows, last_hour)
}

/// The 99th percentile of a histogram of µs, in ms to 0.01 (half up); `None` when it is empty.
pub fn p99_ms(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| hundredths_to_f64(h.value_at_quantile(0.99).saturating_add(5) / 10))
}

/// A duration in ms to 0.01 (half up).
fn ms_2dp(d: Duration) -> f64 {
    hundredths_to_f64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).saturating_add(5) / 10)
}

fn hundredths_to_f64(hundredths: u64) -> f64 {
    hundredths as f64 / 100.0
}

/// `settled / 3600` with two decimal places, rounded half up, in integer arithmetic (`"0.01"` for 18 to 53).
pub fn per_second(settled_per_hour: u64) -> String {
    let hundredths = settled_per_hour.saturating_mul(100).saturating_add(1800) / 3600;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Whether an RFC 3339 time is at most `within_s` before `now` (a time after `now`, another clock's, counts).
fn seen_within(at: &str, now: DateTime<Utc>, within_s: i64) -> bool {
    DateTime::parse_from_rfc3339(at).is_ok_and(|t| (now - t.with_timezone(&Utc)).num_seconds() <= within_s)
}

/// A `settlement.reversed` event's fields (as `scripts/reverse.lua` writes them) as a row: an absent or empty
/// field is left out; the card is read from the canonical request and masked.
fn reversal_row(fields: &std::collections::HashMap<String, String>) -> RecentReversal {
    let text = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    RecentReversal {
        at: text("at"),
        hospital_id: text("hospital"),
        settlement_id: text("settlement_id"),
        relief_fen: fields.get("relief_fen").and_then(|v| v.parse().ok()),
        card_id_masked: fields
            .get("req")
            .and_then(|r| crate::store::codec::parse_canonical(r).ok())
            .map(|req| mask_card(&req.card_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn histogram(values_us: &[u64]) -> Histogram<u64> {
        let mut h = merge_target();
        for v in values_us {
            h.saturating_record(*v);
        }
        h
    }

    #[test]
    fn the_window_is_the_last_hour_ending_now() {
        let w = window(1000);
        assert_eq!(w.len(), MINUTES_SHOWN);
        assert_eq!((w[0], w[59]), (941, 1000));
        assert!(w.windows(2).all(|p| p[1] == p[0] + 1));
        // 2026-12-02T02:05:00Z is 10:05 in Shanghai
        let minute = unix_minute(1_796_177_100);
        assert_eq!(minute_label(minute, SHANGHAI), "2026-12-02T10:05:00+08:00");
        assert_eq!(minute_label(minute, chrono_tz::UTC), "2026-12-02T02:05:00+00:00");
        assert_eq!(unix_minute(1_796_177_159), minute, "the last second of that minute");
    }

    #[test]
    fn rates_are_exact_text() {
        let cases = [(0, "0.00"), (17, "0.00"), (18, "0.01"), (3600, "1.00"), (5400, "1.50"), (12_345, "3.43")];
        for (settled, text) in cases {
            assert_eq!(per_second(settled), text, "{settled}");
        }
        assert_eq!(per_second(u64::MAX), per_second(u64::MAX), "no overflow panic");
    }

    #[test]
    fn p99_of_merged_minutes() {
        assert_eq!(p99_ms(&histogram(&[])), None);
        // 99 fast settles and one slow one: the p99 is still a fast one; 2 slow of 100: a slow one. A value reads
        // as the top of its bucket (1 % wide: 2 000 µs is 2 000..=2 007)
        let fast = vec![2_000u64; 99];
        assert_eq!(p99_ms(&histogram(&[fast.as_slice(), &[900_000]].concat())), Some(2.01));
        let mut two_slow = vec![2_000u64; 98];
        two_slow.extend([900_000, 900_000]);
        let p = p99_ms(&histogram(&two_slow)).unwrap();
        assert!((895.0..=905.0).contains(&p), "{p}");
        // rounded to 0.01 ms: 1 234 µs is in 1 232..=1 239
        assert_eq!(p99_ms(&histogram(&[1_234])), Some(1.24));
        let minutes = window(29_436_286);
        let mut hs: Vec<Histogram<u64>> = (0..60).map(|_| histogram(&[])).collect();
        hs[0] = histogram(&[1_000; 30]);
        hs[59] = histogram(&[3_000; 30]);
        let (rows, hour) = chart(&minutes, &hs, SHANGHAI);
        assert_eq!(rows.len(), 60);
        assert_eq!((rows[0].settled, rows[1].settled, rows[59].settled), (30, 0, 30));
        assert_eq!((rows[0].p99_ms, rows[1].p99_ms, rows[59].p99_ms), (Some(1.0), None, Some(3.01)));
        assert_eq!(hour, LastHour { settled: 60, per_second: "0.02".into(), p99_ms: Some(3.01) });
        // without Redis: sixty empty minutes
        let (rows, hour) = chart(&minutes, &[], SHANGHAI);
        assert!(rows.iter().all(|r| r.settled == 0 && r.p99_ms.is_none()) && rows.len() == 60);
        assert_eq!((hour.settled, hour.per_second.as_str(), hour.p99_ms), (0, "0.00", None));
    }

    #[test]
    fn reversal_rows_leave_out_what_is_missing() {
        let fields = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let full = reversal_row(&fields(&[
            ("type", "settlement.reversed"),
            ("at", "2026-12-02T10:05:00.000+08:00"),
            ("hospital", "H0001"),
            ("settlement_id", "s2_x"),
            ("relief_fen", "123"),
            ("req", "v1|C1000001|outpatient|2026-12-02|100|100|0|0|0|0|0|0"),
        ]));
        assert_eq!(full.card_id_masked.as_deref(), Some("******01"));
        assert_eq!((full.hospital_id.as_deref(), full.relief_fen), (Some("H0001"), Some(123)));
        let bare = reversal_row(&fields(&[("type", "settlement.reversed"), ("settlement_id", "")]));
        assert_eq!(bare, RecentReversal::default());
        assert_eq!(serde_json::to_value(&bare).unwrap(), serde_json::json!({}));
    }

    #[test]
    fn instances_are_up_when_seen_lately() {
        let now = Utc::now();
        let at = |s: i64| (now - chrono::Duration::seconds(s)).to_rfc3339();
        assert!(seen_within(&at(3), now, UP_WITHIN_S));
        assert!(seen_within(&at(-2), now, UP_WITHIN_S), "another clock a little ahead");
        assert!(!seen_within(&at(16), now, UP_WITHIN_S));
        assert!(!seen_within("yesterday", now, UP_WITHIN_S));
    }
}
