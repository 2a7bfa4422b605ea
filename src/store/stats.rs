//! The live figures of the web console's "Today" page: each instance's settle latencies per wall-clock minute,
//! merged across instances when read, and the instances' heartbeats. None of this is money: a lost or late flush
//! only leaves a gap in a chart, so every write here may be repeated or dropped.
//!
//! * [`SettleStats`] — one instance's recorder: an HDR histogram (µs) of the current minute, and the previous
//!   minute's final one until a flush has stored it. A record takes a short lock (never held across an await) and
//!   allocates nothing.
//! * [`SettleStats::keep_flushed`] — every [`FLUSH_INTERVAL`], one pipeline: each pending minute's histogram
//!   (base64 of its V2 serialization) into [`keys::settle_stats`] field `<instance>` with a
//!   [`STATS_TTL_S`] expiry, and the heartbeat into [`keys::INSTANCES`]; at most once a minute it also reads the
//!   heartbeats back, and the next flush removes those not seen for [`FORGET_INSTANCE_AFTER_S`].
//! * [`Store::settle_minutes`], [`Store::instances`] — the reads, bounded ([`MAX_FIELD_BYTES`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::error::StoreResult;
use super::keys;
use super::Store;

/// How often an instance stores its pending minutes and its heartbeat.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// How long a minute's histograms stay in Redis: the page shows the last hour, this keeps a second one.
pub const STATS_TTL_S: u64 = 7200;

/// A heartbeat older than this is removed from [`keys::INSTANCES`] (the instance stopped or was replaced).
pub const FORGET_INSTANCE_AFTER_S: i64 = 3600;

/// Largest stored histogram read back (its base64 text); a larger field is skipped, not decoded.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// The slowest latency told apart, µs (60 s); a slower settle is counted as this.
pub const HIGHEST_US: u64 = 60_000_000;

/// Significant decimal digits of the recorded latencies: 1 % resolution, about 20 KB per histogram.
pub const SIGNIFICANT_DIGITS: u8 = 2;

/// The first 4 bytes of an uncompressed V2 serialization (hdrhistogram's `V2_COOKIE`).
const V2_COOKIE: u32 = 0x1c84_9313;

/// Bytes of the V2 header: cookie, payload length, normalizing offset, digits (4 each), lowest, highest and the
/// integer-to-double ratio (8 each).
const V2_HEADER_BYTES: usize = 40;

/// The largest `highest trackable value` a stored histogram may declare (1 h in µs) and the most digits: together
/// they bound the memory one decode allocates (about 180 KB), whatever a stored field says.
const DECODE_HIGHEST_US: u64 = 3_600_000_000;
const DECODE_MAX_DIGITS: u32 = 3;

/// The Unix minute (seconds since the epoch / 60, rounded down) of a Unix time in seconds.
pub fn unix_minute(unix_s: i64) -> i64 {
    unix_s.div_euclid(60)
}

/// The current Unix minute by the system clock (0 before the epoch).
fn minute_now() -> i64 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs / 60).unwrap_or(i64::MAX)
}

/// An empty latency histogram of the recorder's bounds.
fn recorder_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_DIGITS).expect("constant bounds are valid")
}

/// An empty histogram that histograms of any bounds can be added to (it grows to take them).
pub fn merge_target() -> Histogram<u64> {
    let mut h = recorder_histogram();
    h.auto(true);
    h
}

/// The recorder's state: the minute being counted and the one before it.
struct Minutes {
    /// The Unix minute `current` counts.
    minute: i64,
    /// The latencies (µs) of `minute` so far.
    current: Histogram<u64>,
    /// The minute `previous` is the final histogram of, while no flush has stored it yet; `None` once stored (or
    /// when that minute had no sample).
    previous_minute: Option<i64>,
    /// The final histogram of `previous_minute`; kept (reset) when not pending, so that a roll-over swaps two
    /// histograms instead of allocating one.
    previous: Histogram<u64>,
}

impl Minutes {
    /// Makes `minute` the current one: the current histogram becomes the previous minute's final one. A previous
    /// minute still pending is dropped (no flush succeeded for a whole minute: Redis was away).
    fn roll_to(&mut self, minute: i64) {
        if minute == self.minute {
            return;
        }
        std::mem::swap(&mut self.current, &mut self.previous);
        self.previous_minute = (!self.previous.is_empty()).then_some(self.minute);
        self.current.reset();
        self.minute = minute;
    }
}

/// One instance's heartbeat in [`keys::INSTANCES`] (JSON), as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The instance's id: its field in [`keys::INSTANCES`] and in every [`keys::settle_stats`] hash.
    pub instance: String,
    /// The build (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The API listen address of its configuration.
    pub listen: String,
    /// When the process started (RFC 3339, local time).
    pub started_at: String,
    /// When it last stored this heartbeat (RFC 3339, local time).
    pub seen_at: String,
}

/// One instance's settle latencies per minute, and who it is; shared by every connection (`http::Ctx`).
pub struct SettleStats {
    /// This instance's id: `<hostname>-<12 hex digits>` (random at start), or the digits alone without a hostname.
    instance: String,
    /// The API listen address, for the heartbeat.
    listen: String,
    /// When this process made its recorder (start-up), for the heartbeat.
    started_at: DateTime<Utc>,
    /// The histograms; locked briefly by each record and each flush, never across an await.
    minutes: Mutex<Minutes>,
}

impl SettleStats {
    /// A recorder for an instance serving the API on `listen`, with a fresh instance id.
    pub fn new(listen: &str) -> SettleStats {
        let random = uuid::Uuid::new_v4().simple().to_string();
        let suffix = &random[..12];
        let instance = match hostname() {
            Some(host) => format!("{host}-{suffix}"),
            None => suffix.to_string(),
        };
        SettleStats {
            instance,
            listen: listen.to_string(),
            started_at: Utc::now(),
            minutes: Mutex::new(Minutes {
                minute: minute_now(),
                current: recorder_histogram(),
                previous_minute: None,
                previous: recorder_histogram(),
            }),
        }
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Counts one settle request that took `elapsed`, in the current wall-clock minute.
    pub fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let minute = minute_now();
        let mut m = self.minutes.lock().unwrap_or_else(PoisonError::into_inner);
        m.roll_to(minute);
        m.current.saturating_record(us);
    }

    /// What a flush at Unix minute `minute` stores: the previous minute's final histogram if pending, and the
    /// current one if it has samples, each as (minute, base64 of the V2 serialization).
    fn pending(&self, minute: i64) -> Vec<(i64, String)> {
        let mut m = self.minutes.lock().unwrap_or_else(PoisonError::into_inner);
        m.roll_to(minute);
        let mut out = Vec::with_capacity(2);
        if let Some(previous) = m.previous_minute {
            out.extend(encode(&m.previous).map(|text| (previous, text)));
        }
        if !m.current.is_empty() {
            out.extend(encode(&m.current).map(|text| (m.minute, text)));
        }
        out
    }

    /// After a flush stored `stored`: the previous minute is no longer pending if it was among them.
    fn stored(&self, stored: &[(i64, String)]) {
        let mut m = self.minutes.lock().unwrap_or_else(PoisonError::into_inner);
        if m.previous_minute.is_some_and(|p| stored.iter().any(|(minute, _)| *minute == p)) {
            m.previous_minute = None;
        }
    }

    /// This instance's heartbeat as of `now`.
    fn heartbeat(&self, now: DateTime<Utc>, tz: Tz) -> Heartbeat {
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Millis, false);
        Heartbeat {
            instance: self.instance.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            listen: self.listen.clone(),
            started_at: local(self.started_at),
            seen_at: local(now),
        }
    }

    /// Runs forever: stores the pending minutes and the heartbeat now, then every [`FLUSH_INTERVAL`]. A failure is
    /// logged and retried next round (the current minute's histogram is cumulative, so nothing of it is lost).
    pub async fn keep_flushed(self: Arc<Self>, store: Arc<Store>, tz: Tz) {
        // heartbeats to remove, found by the last read of them; the minute of that read
        let mut forget: Vec<String> = Vec::new();
        let mut read_in: Option<i64> = None;
        loop {
            let now = Utc::now();
            let minute = unix_minute(now.timestamp());
            let pending = self.pending(minute);
            let beat = serde_json::to_string(&self.heartbeat(now, tz)).expect("a heartbeat serialises");
            let read = read_in != Some(minute);
            match store.flush_stats(&self.instance, &pending, &beat, &forget, read).await {
                Ok(beats) => {
                    self.stored(&pending);
                    if let Some(beats) = beats {
                        forget = stale_instances(&beats, now, &self.instance);
                        read_in = Some(minute);
                    } else {
                        forget.clear();
                    }
                }
                Err(e) => tracing::debug!(error = %e, "settle stats not flushed; retrying next round"),
            }
            tokio::time::sleep(FLUSH_INTERVAL).await;
        }
    }
}

/// The machine's host name, if the kernel tells it, kept to `A-Za-z0-9.-` and 64 characters (it becomes part of a
/// hash field and of log lines).
fn hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().or_else(|| std::env::var("HOSTNAME").ok())?;
    let host: String =
        raw.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')).take(64).collect();
    (!host.is_empty()).then_some(host)
}

/// The fields of [`keys::INSTANCES`] to remove: heartbeats not seen for [`FORGET_INSTANCE_AFTER_S`], and fields that
/// are not heartbeats at all; never `own`.
fn stale_instances(beats: &HashMap<String, String>, now: DateTime<Utc>, own: &str) -> Vec<String> {
    beats
        .iter()
        .filter(|(field, _)| field.as_str() != own)
        .filter(|(_, json)| {
            let seen = serde_json::from_str::<Heartbeat>(json)
                .ok()
                .and_then(|b| DateTime::parse_from_rfc3339(&b.seen_at).ok());
            seen.is_none_or(|t| (now - t.with_timezone(&Utc)).num_seconds() > FORGET_INSTANCE_AFTER_S)
        })
        .map(|(field, _)| field.clone())
        .collect()
}

/// Base64 of the V2 serialization of `h` (`None` only if the serializer fails, which writing to memory does not).
pub fn encode(h: &Histogram<u64>) -> Option<String> {
    let mut bytes = Vec::new();
    V2Serializer::new().serialize(h, &mut bytes).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A stored histogram read back: `None` for anything not the base64 of an uncompressed V2 serialization within
/// [`MAX_FIELD_BYTES`], [`DECODE_HIGHEST_US`] and [`DECODE_MAX_DIGITS`] (checked in the header before decoding).
pub fn decode(text: &[u8]) -> Option<Histogram<u64>> {
    if text.len() > MAX_FIELD_BYTES {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    let word = |at: usize| bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
    let long = |at: usize| bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    let payload = usize::try_from(word(4)?).ok()?;
    let header_ok = word(0)? == V2_COOKIE
        && payload <= bytes.len().saturating_sub(V2_HEADER_BYTES)
        && (1..=DECODE_MAX_DIGITS).contains(&word(12)?)
        && long(24)? <= DECODE_HIGHEST_US;
    if !header_ok {
        return None;
    }
    Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
}

/// The histograms of one minute's hash (field: instance, value: [`encode`]d), merged; a field that does not
/// [`decode`] is skipped.
pub fn merge_fields<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Histogram<u64> {
    let mut merged = merge_target();
    for text in fields {
        match decode(text) {
            Some(h) => {
                if merged.add(&h).is_err() {
                    tracing::debug!("a stored settle histogram could not be merged; skipped");
                }
            }
            None => tracing::debug!(bytes = text.len(), "a stored settle histogram is unreadable; skipped"),
        }
    }
    merged
}

impl Store {
    /// One flush of an instance, one pipeline: `minutes` (Unix minute, encoded histogram) into
    /// [`keys::settle_stats`] with their expiry, the heartbeat (JSON) into [`keys::INSTANCES`], the `forget` fields
    /// removed from it, and with `read_heartbeats` every heartbeat read back (`Some`, after this one's write).
    pub async fn flush_stats(
        &self,
        instance: &str,
        minutes: &[(i64, String)],
        heartbeat: &str,
        forget: &[String],
        read_heartbeats: bool,
    ) -> StoreResult<Option<HashMap<String, String>>> {
        const OP: &str = "stats_flush";
        let mut pipe = redis::pipe();
        for (minute, text) in minutes {
            let key = keys::settle_stats(*minute);
            pipe.cmd("HSET").arg(&key).arg(instance).arg(text).ignore();
            pipe.cmd("EXPIRE").arg(&key).arg(STATS_TTL_S).ignore();
        }
        pipe.cmd("HSET").arg(keys::INSTANCES).arg(instance).arg(heartbeat).ignore();
        if !forget.is_empty() {
            pipe.cmd("HDEL").arg(keys::INSTANCES).arg(forget).ignore();
        }
        if read_heartbeats {
            pipe.cmd("HGETALL").arg(keys::INSTANCES);
        }
        let mut conn = self.conn(OP)?;
        // `writes: false`: a repeated flush writes the same figures, and none of them is money
        let answers: Vec<HashMap<String, String>> =
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        Ok(answers.into_iter().next())
    }

    /// The settle latencies of each of `minutes` (Unix minutes), every instance's merged, in their order (an empty
    /// histogram for a minute nobody stored). One pipeline of `HGETALL`s.
    pub async fn settle_minutes(&self, minutes: &[i64]) -> StoreResult<Vec<Histogram<u64>>> {
        const OP: &str = "stats_minutes";
        let mut pipe = redis::pipe();
        for minute in minutes {
            pipe.cmd("HGETALL").arg(keys::settle_stats(*minute));
        }
        let mut conn = self.conn(OP)?;
        let hashes: Vec<HashMap<String, Vec<u8>>> =
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        Ok(hashes.iter().map(|h| merge_fields(h.values().map(Vec::as_slice))).collect())
    }

    /// Every heartbeat in [`keys::INSTANCES`], by instance id; a field that is not one is skipped.
    pub async fn instances(&self) -> StoreResult<Vec<Heartbeat>> {
        const OP: &str = "stats_instances";
        let mut conn = self.conn(OP)?;
        let beats: HashMap<String, String> = self
            .call(OP, false, async move { redis::cmd("HGETALL").arg(keys::INSTANCES).query_async(&mut conn).await })
            .await?;
        let mut out: Vec<Heartbeat> = beats
            .values()
            .filter(|json| json.len() <= MAX_FIELD_BYTES)
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        out.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(values_us: &[u64]) -> Histogram<u64> {
        let mut h = recorder_histogram();
        for v in values_us {
            h.saturating_record(*v);
        }
        h
    }

    #[test]
    fn minutes_of_unix_time() {
        assert_eq!(unix_minute(0), 0);
        assert_eq!(unix_minute(59), 0);
        assert_eq!(unix_minute(60), 1);
        assert_eq!(unix_minute(1_764_554_399), 29_409_239);
        assert_eq!(unix_minute(-1), -1, "before the epoch, still rounded down");
    }

    #[test]
    fn histograms_round_trip_and_merge() {
        let a = recorded(&[1_000, 2_000, 3_000]);
        let b = recorded(&[10_000; 7]);
        let (ea, eb) = (encode(&a).unwrap(), encode(&b).unwrap());
        assert!(ea.len() < 1_000, "a small histogram encodes small: {} bytes", ea.len());
        let back = decode(ea.as_bytes()).unwrap();
        assert_eq!((back.len(), back.max()), (a.len(), a.max()));
        let merged = merge_fields([ea.as_bytes(), eb.as_bytes(), b"not base64!", b"AAAA"]);
        assert_eq!(merged.len(), 10, "the unreadable fields are skipped");
        assert_eq!(merged.highest_equivalent(merged.value_at_quantile(0.99)), merged.highest_equivalent(10_000));
        assert!(merge_fields(std::iter::empty()).is_empty());
    }

    #[test]
    fn decoding_is_bounded() {
        let big = "A".repeat(MAX_FIELD_BYTES + 4);
        assert!(decode(big.as_bytes()).is_none(), "over 64 KiB: not decoded");
        // a header declaring wider bounds or more digits is refused before its counts are allocated
        for (high, digits) in [(DECODE_HIGHEST_US * 2, 2), (10_000, 4)] {
            let mut wide = Histogram::<u64>::new_with_bounds(1, high, digits).unwrap();
            wide.saturating_record(5);
            assert!(decode(encode(&wide).unwrap().as_bytes()).is_none(), "{high} {digits}");
        }
        // a compressed serialization is not what the gateway writes
        let mut text = base64::engine::general_purpose::STANDARD.decode(encode(&recorded(&[5])).unwrap()).unwrap();
        text[3] = 0x14;
        assert!(decode(base64::engine::general_purpose::STANDARD.encode(&text).as_bytes()).is_none());
    }

    #[test]
    fn a_minute_rolls_over_into_the_pending_previous_one() {
        let stats = SettleStats::new("127.0.0.1:8443");
        let start = {
            let mut m = stats.minutes.lock().unwrap();
            m.minute = 100;
            m.current.saturating_record(1_500);
            m.minute
        };
        assert_eq!(stats.pending(start).len(), 1, "only the current minute");
        let next = stats.pending(start + 1);
        assert_eq!(next.iter().map(|(m, _)| *m).collect::<Vec<_>>(), vec![start], "the final previous minute");
        assert_eq!(decode(next[0].1.as_bytes()).unwrap().len(), 1);
        stats.stored(&next);
        assert!(stats.pending(start + 1).is_empty(), "stored, and the new minute has no sample");
        // a quiet minute between two busy ones leaves nothing pending for it
        stats.record(Duration::from_millis(3));
        assert_eq!(stats.minutes.lock().unwrap().current.len(), 1);
        assert!(stats.instance().len() >= 12);
    }

    #[test]
    fn old_and_foreign_heartbeats_are_forgotten() {
        let now = Utc::now();
        let beat = |id: &str, seen: DateTime<Utc>| {
            let b = Heartbeat {
                instance: id.into(),
                version: "0.1.0".into(),
                listen: "127.0.0.1:1".into(),
                started_at: seen.to_rfc3339(),
                seen_at: seen.to_rfc3339(),
            };
            (id.to_string(), serde_json::to_string(&b).unwrap())
        };
        let beats: HashMap<String, String> = [
            beat("fresh", now - chrono::Duration::seconds(30)),
            beat("old", now - chrono::Duration::seconds(FORGET_INSTANCE_AFTER_S + 1)),
            beat("me", now - chrono::Duration::days(3)),
            ("junk".to_string(), "{".to_string()),
        ]
        .into_iter()
        .collect();
        let mut gone = stale_instances(&beats, now, "me");
        gone.sort();
        assert_eq!(gone, ["junk", "old"]);
    }
}
