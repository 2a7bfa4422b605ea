//! The event stream (API.md "Events"): reads and retention. Writers are the scripts that make each change — the
//! settle and reversal scripts, and the relief office's writes — which append the event in the same atomic step.
//!
//! One Redis Stream, `keys::EVENTS`. An entry's id (`<ms>-<seq>`, assigned by Redis, strictly increasing, copied
//! verbatim to replicas and the AOF) is the event's position: the `cursor` and the `event_id` are both made from
//! it, so reading a range twice gives the same events with the same ids. How this shards on Redis Cluster is in
//! docs/CLUSTER.md ("Events").

use std::collections::HashMap;

use super::codec::{pairs, parse_settlement, parse_tombstone};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;
use crate::domain::settlement::{Settlement, Tombstone};

/// Most events one read returns (API.md: `limit` is 1..=10000).
pub const MAX_EVENTS_PAGE: usize = 10_000;

/// The largest time a cursor may name, Unix ms (14 digits: the year 5138). Redis refuses a range that starts past
/// its largest id, and no entry id beyond this can have been handed out.
const MAX_CURSOR_MS: u64 = 99_999_999_999_999;

/// A position in the stream: the entry id `<ms>-<seq>`. `StreamPos::START` is before every entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamPos {
    /// Redis's clock when the entry was added, Unix ms (never decreasing: Redis reuses the last ms if its clock
    /// steps back).
    pub ms: u64,
    /// Order within one ms.
    pub seq: u64,
}

impl StreamPos {
    pub const START: StreamPos = StreamPos { ms: 0, seq: 0 };

    /// Parses Redis's `<ms>-<seq>`.
    pub fn parse(id: &str) -> Option<StreamPos> {
        let (ms, seq) = id.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(StreamPos { ms: ms.parse().ok()?, seq: seq.parse().ok()? })
    }

    /// The opaque cursor handed to consumers: `c1.<ms>.<seq>` (the `1` leaves room for a cluster's merged cursor).
    pub fn cursor(self) -> String {
        format!("c1.{}.{}", self.ms, self.seq)
    }

    /// A cursor read back; `None` for anything this build did not hand out (a time past [`MAX_CURSOR_MS`]
    /// included).
    pub fn from_cursor(cursor: &str) -> Option<StreamPos> {
        let rest = cursor.strip_prefix("c1.")?;
        let (ms, seq) = rest.split_once('.')?;
        StreamPos::parse(&format!("{ms}-{seq}")).filter(|p| p.ms <= MAX_CURSOR_MS && p.seq < u64::MAX)
    }

    /// The event's id: `ev1.<ms>.<seq>`; it never repeats because stream ids never do.
    pub fn event_id(self) -> String {
        format!("ev1.{}.{}", self.ms, self.seq)
    }
}

impl std::fmt::Display for StreamPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One event as stored.
#[derive(Debug, Clone)]
pub struct Event {
    pub pos: StreamPos,
    /// `settlement.settled`, `clearing.confirmed`, … (API.md "Events").
    pub event_type: String,
    /// When the change happened (RFC 3339, local time), as the change recorded it.
    pub at: String,
    pub body: EventBody,
}

/// What an event is about.
#[derive(Debug, Clone)]
pub enum EventBody {
    /// A settlement as it stood right after the change (settled, or reversed).
    Settlement(Box<Settlement>),
    /// A cancellation before the settlement arrived.
    Tombstone(Tombstone),
    /// The event's data as JSON text, made by the gateway when it made the change (office writes).
    Data(String),
}

impl Store {
    /// Up to `limit` events after `after`, oldest first (`XRANGE (after + COUNT limit`).
    pub async fn events_after(&self, after: StreamPos, limit: usize) -> StoreResult<Vec<Event>> {
        assert!((1..=MAX_EVENTS_PAGE).contains(&limit), "events page of {limit}");
        const OP: &str = "events";
        let mut conn = self.conn(OP)?;
        let start = if after == StreamPos::START { "-".to_string() } else { format!("({after}") };
        let entries: Vec<(String, Vec<String>)> = self
            .call(OP, false, async move {
                redis::cmd("XRANGE")
                    .arg(keys::EVENTS)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        entries.into_iter().map(|(id, fields)| parse_entry(&id, &fields)).collect()
    }

    /// The fields of the newest events of type `event_type`, newest first: at most `want` of them, found among at
    /// most `max_scan` of the newest entries (`XREVRANGE`, a page at a time, so a recent match costs one page).
    /// Lenient: an entry is its fields as stored (`type`, `at`, then the rest), nothing parsed.
    pub async fn recent_events(
        &self,
        event_type: &str,
        want: usize,
        max_scan: usize,
    ) -> StoreResult<Vec<HashMap<String, String>>> {
        const OP: &str = "events_recent";
        const PAGE: usize = 250;
        let mut found = Vec::new();
        let mut end = "+".to_string();
        let mut scanned = 0;
        while found.len() < want && scanned < max_scan {
            let count = PAGE.min(max_scan - scanned);
            let mut conn = self.conn(OP)?;
            let from = end.clone();
            let page: Vec<(String, Vec<String>)> = self
                .call(OP, false, async move {
                    redis::cmd("XREVRANGE")
                        .arg(keys::EVENTS)
                        .arg(from)
                        .arg("-")
                        .arg("COUNT")
                        .arg(count)
                        .query_async(&mut conn)
                        .await
                })
                .await?;
            scanned += page.len();
            let full = page.len() == count;
            match page.last() {
                Some((id, _)) if full => end = format!("({id}"),
                _ => scanned = max_scan, // the stream's start: nothing older
            }
            for (_, fields) in page {
                let map = pairs(&fields);
                if map.get("type").map(String::as_str) == Some(event_type) && found.len() < want {
                    found.push(map);
                }
            }
        }
        Ok(found)
    }

    /// Drops the events older than `keep_from_ms` (Unix ms), exactly (`XTRIM MINID`, not `~`, whose node-sized
    /// steps could keep a stale event for ever on a quiet stream). Returns how many were removed.
    pub async fn trim_events(&self, keep_from_ms: u64) -> StoreResult<u64> {
        const OP: &str = "events_trim";
        let mut conn = self.conn(OP)?;
        self.call(OP, true, async move {
            redis::cmd("XTRIM").arg(keys::EVENTS).arg("MINID").arg(keep_from_ms).query_async(&mut conn).await
        })
        .await
    }
}

fn parse_entry(id: &str, fields: &[String]) -> StoreResult<Event> {
    let corrupt = |e: String| StoreError::corrupt("events", format!("event {id}: {e}"));
    let pos = StreamPos::parse(id).ok_or_else(|| corrupt("unreadable id".into()))?;
    let mut map: HashMap<String, String> = pairs(fields);
    let event_type = map.remove("type").ok_or_else(|| corrupt("no type".into()))?;
    let at = map.remove("at").ok_or_else(|| corrupt("no time".into()))?;
    let body = if let Some(data) = map.remove("data") {
        EventBody::Data(data)
    } else if !map.contains_key("kind") {
        // a settlement event of the scripts' fixed field set: a record, less what the type and time say
        let (status, time_field) = match event_type.as_str() {
            "settlement.settled" => ("settled", "settled_at"),
            "settlement.reversed" => ("reversed", "reversed_at"),
            other => return Err(corrupt(format!("entry of type {other:?} without data"))),
        };
        map.retain(|_, v| !v.is_empty());
        map.insert("kind".into(), "settlement".into());
        map.insert("status".into(), status.into());
        map.insert(time_field.into(), at.clone());
        if status == "reversed" {
            map.entry("reason".into()).or_default();
        }
        EventBody::Settlement(Box::new(parse_settlement(&map).map_err(corrupt)?))
    } else {
        match map.get("kind").map(String::as_str) {
            Some("settlement") => EventBody::Settlement(Box::new(parse_settlement(&map).map_err(corrupt)?)),
            Some("tombstone") => EventBody::Tombstone(parse_tombstone(&map).map_err(corrupt)?),
            other => return Err(corrupt(format!("entry of kind {other:?}"))),
        }
    };
    Ok(Event { pos, event_type, at, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_order() {
        let p = StreamPos::parse("1764554102123-7").unwrap();
        assert_eq!(StreamPos::from_cursor(&p.cursor()), Some(p));
        assert_eq!(p.to_string(), "1764554102123-7");
        assert!(StreamPos::parse("1-2").unwrap() < StreamPos::parse("1-10").unwrap());
        for bad in ["", "c1.", "c1.1", "c1.1.x", "c2.1.2", "c1.-1.2", "c1.1.2.3", "1-2", "c1.99999999999999999999999.1"]
        {
            assert_eq!(StreamPos::from_cursor(bad), None, "{bad}");
        }
        assert_eq!(StreamPos::from_cursor(&StreamPos::START.cursor()), Some(StreamPos::START));
    }
}
