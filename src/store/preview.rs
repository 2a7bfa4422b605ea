//! What a ruleset preview reads (API.md "A rule change, tried before it is published"): the period's settlements
//! from the event stream, in bounded pages, each page's standing settlements, the cards' current tags, and the
//! pools' contributions. Reads only: a preview changes nothing in Redis.
//!
//! * **Which settlements.** Every `settlement.settled` entry of `keys::EVENTS` whose visit date is in the period,
//!   in stream order (= settlement order). A visit lies at most one day after the day it is settled, so no such
//!   entry is older than the day before the period's first day: the scan starts there (two days before, for clock
//!   skew between the gateway and Redis, whose clock names the entries) and ends at the last entry that existed
//!   when it began (a settlement made during the preview is not part of it).
//! * **Standing.** A settlement is replayed if its record's `status` is still `settled` when its page is read
//!   (one pipelined `HGET` per settlement of the page): a reversal made while the preview runs counts if its page
//!   was not read yet. Reading the records rather than collecting the stream's reversal events keeps the memory
//!   per page, not per period.
//! * **Tags.** The settle events do not record the card's tags; the draft's `require_tags` are checked against the
//!   card's current tags (`HGET {sg}:{card}:card tags`, pipelined, once per card). An event that carries a `tags`
//!   field (`",a,b,"`, as the card hash stores them) is used as recorded instead.
//! * **Contributions.** The net contributions of (year, program) are read with the pools' totals
//!   (`Store::pool_totals`, `store::contributions`).

use chrono::NaiveDate;

use super::codec::{parse_canonical, parse_payments, parse_tags};
use super::dayline::SETTLED_LINE_FIELDS;
use super::error::{StoreError, StoreResult};
use super::events::StreamPos;
use super::keys;
use super::Store;
use crate::domain::bill::{Bill, Visit};

/// Entries one page reads. A page is one `XRANGE` then one pipeline of `HGET`s; small enough to stay well within
/// `redis.response_timeout_ms` and to let settlements interleave on the shared connection.
pub const PREVIEW_PAGE: usize = 2000;

/// One standing settlement of the period, as the preview replays it.
#[derive(Debug, Clone)]
pub struct SettledEntry {
    pub card_id: String,
    /// The category recorded with the settlement.
    pub category: String,
    pub visit: Visit,
    pub total_fen: i64,
    /// The residual buckets after insurance, `[in_scope, pre_self_pay, over_limit, self_pay]`.
    pub residual_fen: [i64; 4],
    pub ruleset_version: u64,
    /// The programs of its payment lines, in ruleset order.
    pub covered: Vec<String>,
    /// The local day it was settled (the event's `at`).
    pub settled_day: NaiveDate,
    /// The card's tags, when the event recorded them.
    pub tags: Option<Vec<String>>,
}

/// A scan of the stream over one period, page by page ([`Store::next_settled_page`]).
#[derive(Debug, Clone)]
pub struct SettledScan {
    /// The period's first and last visit dates.
    from: NaiveDate,
    to: NaiveDate,
    /// `XRANGE`'s start for the next page: `<ms>-0` at first, then `(<last id read>`.
    start: String,
    /// The last entry when the scan began; `None`: the stream was empty.
    until: Option<StreamPos>,
    /// Entries read so far (all types): the scan's work, for the log.
    pub entries_read: u64,
}

/// A settled entry's location and content, before the standing check.
struct Candidate {
    record_key: String,
    entry: SettledEntry,
}

impl Store {
    /// Starts a scan of the settlements with a visit in `from..=to`, reading the stream from Unix ms
    /// `first_ms` (the caller's "two days before `from`, local midnight") to its current last entry.
    pub async fn settled_scan(&self, from: NaiveDate, to: NaiveDate, first_ms: u64) -> StoreResult<SettledScan> {
        const OP: &str = "preview_scan";
        let mut conn = self.conn(OP)?;
        let last: Vec<(String, Vec<String>)> = self
            .call(OP, false, async move {
                redis::cmd("XREVRANGE")
                    .arg(keys::EVENTS)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let until = match last.first() {
            None => None,
            Some((id, _)) => {
                Some(StreamPos::parse(id).ok_or_else(|| StoreError::corrupt(OP, format!("entry id {id:?}")))?)
            }
        };
        Ok(SettledScan { from, to, start: format!("{first_ms}-0"), until, entries_read: 0 })
    }

    /// The next page's standing settlements of the period (possibly none), or `None` when the scan is over.
    pub async fn next_settled_page(&self, scan: &mut SettledScan) -> StoreResult<Option<Vec<SettledEntry>>> {
        const OP: &str = "preview_page";
        let Some(until) = scan.until else { return Ok(None) };
        let mut conn = self.conn(OP)?;
        let start = scan.start.clone();
        let reply: redis::Value = self
            .call(OP, false, async move {
                redis::cmd("XRANGE")
                    .arg(keys::EVENTS)
                    .arg(start)
                    .arg(until.to_string())
                    .arg("COUNT")
                    .arg(PREVIEW_PAGE)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        // read off the reply as it came: only the fields a replay needs become text
        let redis::Value::Array(entries) = reply else {
            return Err(StoreError::corrupt(OP, "XRANGE did not answer an array"));
        };
        let mut last = None;
        let mut candidates = Vec::new();
        for entry in &entries {
            let (id, fields) = match entry {
                redis::Value::Array(parts) => match &parts[..] {
                    [redis::Value::BulkString(id), redis::Value::Array(fields)] => (id.as_slice(), fields.as_slice()),
                    _ => return Err(StoreError::corrupt(OP, "an XRANGE entry of another shape")),
                },
                _ => return Err(StoreError::corrupt(OP, "an XRANGE entry of another shape")),
            };
            let id = std::str::from_utf8(id).ok().and_then(StreamPos::parse);
            let id = id.ok_or_else(|| StoreError::corrupt(OP, "an unreadable entry id"))?;
            last = Some(id);
            let pairs = fields.chunks_exact(2).map(|kv| match kv {
                [redis::Value::BulkString(k), redis::Value::BulkString(v)] => (k.as_slice(), v.as_slice()),
                _ => (&b""[..], &b""[..]),
            });
            let corrupt = |e: String| StoreError::corrupt(OP, format!("event {id}: {e}"));
            if let Some(c) = parse_settled(pairs).map_err(corrupt)? {
                if (scan.from..=scan.to).contains(&c.entry.visit.date) {
                    candidates.push(c);
                }
            }
        }
        let Some(last) = last else {
            scan.until = None;
            return Ok(None);
        };
        scan.entries_read += entries.len() as u64;
        if last >= until || entries.len() < PREVIEW_PAGE {
            scan.until = None; // this page reached the end: the next call ends the scan
        } else {
            scan.start = format!("({last}");
        }
        if candidates.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let mut pipe = redis::pipe();
        for c in &candidates {
            pipe.cmd("HGET").arg(&c.record_key).arg("status");
        }
        let mut conn = self.conn(OP)?;
        let status: Vec<Option<String>> =
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        let standing = candidates
            .into_iter()
            .zip(status)
            .filter(|(_, s)| s.as_deref() == Some("settled"))
            .map(|(c, _)| c.entry)
            .collect();
        Ok(Some(standing))
    }

    /// The current tags of each card (`[]` for a card that no longer exists), one pipeline.
    pub async fn cards_tags(&self, card_ids: &[&str]) -> StoreResult<Vec<Vec<String>>> {
        const OP: &str = "preview_tags";
        if card_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in card_ids {
            pipe.cmd("HGET").arg(keys::card(id)).arg("tags");
        }
        let mut conn = self.conn(OP)?;
        let tags: Vec<Option<String>> = self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        Ok(tags.into_iter().map(|t| t.map(|t| parse_tags(&t)).unwrap_or_default()).collect())
    }
}

/// A `settlement.settled` entry's fields (the settle script's fixed set), or `None` for any other type.
fn parse_settled<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Result<Option<Candidate>, String> {
    const NAMES: [&[u8]; 8] =
        [b"type", b"at", b"req", b"category", b"ruleset_version", b"payments", b"hospital", b"hsid"];
    let mut get: [Option<&[u8]>; 8] = [None; 8];
    let mut tags = None;
    let mut line = None;
    for (k, v) in fields {
        // a `match` on the bytes compares lengths first: most of an entry's 14 names are skipped without a memcmp
        let i = match k {
            b"type" => 0,
            b"at" => 1,
            b"req" => 2,
            b"category" => 3,
            b"ruleset_version" => 4,
            b"payments" => 5,
            b"hospital" => 6,
            b"hsid" => 7,
            b"line" => {
                line = Some(v);
                continue;
            }
            b"tags" => {
                tags = Some(parse_tags(std::str::from_utf8(v).map_err(|_| "tags: not UTF-8".to_string())?));
                continue;
            }
            _ => continue,
        };
        debug_assert_eq!(NAMES[i], k);
        get[i] = Some(v);
    }
    if get[0] != Some(&b"settlement.settled"[..]) {
        return Ok(None);
    }
    // this build's entries hold category, payments and hsid in the settled line (SETTLED_LINE_FIELDS)
    if let Some(line) = line {
        let parts: Vec<&[u8]> = line.split(|b| *b == b'|').collect();
        if parts.len() != SETTLED_LINE_FIELDS.len() || parts[0] != b"S" {
            return Err(format!("line of {} fields", parts.len()));
        }
        for (i, name) in NAMES.iter().enumerate() {
            if let Some(at) = SETTLED_LINE_FIELDS.iter().position(|f| f.as_bytes() == *name) {
                get[i] = get[i].or(Some(parts[at]));
            }
        }
    }
    let field = |i: usize| -> Result<&str, String> {
        let name = String::from_utf8_lossy(NAMES[i]);
        let v = get[i].ok_or_else(|| format!("no {name}"))?;
        std::str::from_utf8(v).map_err(|_| format!("{name}: not UTF-8"))
    };
    let req = parse_canonical(field(2)?)?;
    let at = field(1)?;
    let settled_day = at.get(..10).and_then(local_day).ok_or_else(|| format!("time {at:?} has no local day"))?;
    let ruleset_version = field(4)?.parse::<u64>().map_err(|e| format!("ruleset_version: {e}"))?;
    let covered = parse_payments(field(5)?)?.into_iter().map(|p| p.program).collect();
    let residual_fen =
        Bill { card_id: &req.card_id, visit: req.visit, amounts: req.amounts, insurance: &req.insurance }.residual();
    let record_key = keys::settlement(&req.card_id, field(6)?, field(7)?);
    Ok(Some(Candidate {
        record_key,
        entry: SettledEntry {
            card_id: req.card_id,
            category: field(3)?.to_string(),
            visit: req.visit,
            total_fen: req.amounts.total_fen,
            residual_fen,
            ruleset_version,
            covered,
            settled_day,
            tags,
        },
    }))
}

/// `YYYY-MM-DD` (the first ten characters of an RFC 3339 local time) as a date, without chrono's format parser:
/// it runs once per event.
fn local_day(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        s.get(r).filter(|d| d.bytes().all(|c| c.is_ascii_digit()))?.parse().ok()
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[(&str, &str)]) -> Vec<String> {
        pairs.iter().flat_map(|(k, v)| [k.to_string(), v.to_string()]).collect()
    }

    fn pairs(f: &[String]) -> Vec<(&[u8], &[u8])> {
        f.chunks_exact(2).map(|kv| (kv[0].as_bytes(), kv[1].as_bytes())).collect()
    }

    #[test]
    fn settled_entries_parse_and_others_are_skipped() {
        let fields = entry(&[
            ("type", "settlement.settled"),
            ("at", "2026-11-29T10:15:02.123+08:00"),
            ("req", "v1|C1|inpatient|2026-11-28|2000000|1799999|30001|20000|150000|1203999|94900|0"),
            ("category", "dibao"),
            ("ruleset_version", "3"),
            ("insurance_fen", "1298899"),
            ("payments", "medical_assistance,300000,0,annual_cap;charity,50000,0,per_visit_cap"),
            ("hospital", "H1"),
            ("hsid", "H1-42"),
        ]);
        let c = parse_settled(pairs(&fields).into_iter()).unwrap().unwrap();
        assert_eq!(c.record_key, keys::settlement("C1", "H1", "H1-42"));
        let e = c.entry;
        assert_eq!((e.card_id.as_str(), e.category.as_str(), e.ruleset_version), ("C1", "dibao", 3));
        assert_eq!(e.residual_fen, [501_100, 30_001, 20_000, 150_000]);
        assert_eq!(e.covered, ["medical_assistance", "charity"]);
        assert_eq!((e.settled_day.to_string(), e.visit.date.to_string()), ("2026-11-29".into(), "2026-11-28".into()));
        assert_eq!(e.tags, None);
        // this build's layout: the same settlement, its values in the settled line
        let with_line = entry(&[
            ("type", "settlement.settled"),
            ("at", "2026-11-29T10:15:02.123+08:00"),
            (
                "line",
                "S|2026-11-29T10:15:02.123+08:00|s1_x|H1-42|C1|2000000|1298899|350000|351101|\
                 medical_assistance,300000,0,annual_cap;charity,50000,0,per_visit_cap|dibao|||SETL-1|",
            ),
            ("req", "v1|C1|inpatient|2026-11-28|2000000|1799999|30001|20000|150000|1203999|94900|0"),
            ("ruleset_version", "3"),
            ("hospital", "H1"),
            ("operator_name", ""),
        ]);
        let c2 = parse_settled(pairs(&with_line).into_iter()).unwrap().unwrap();
        assert_eq!(c2.record_key, keys::settlement("C1", "H1", "H1-42"));
        assert_eq!((c2.entry.category.as_str(), &c2.entry.covered), ("dibao", &e.covered));
        let short = entry(&[("type", "settlement.settled"), ("line", "S|x|y")]);
        assert!(parse_settled(pairs(&short).into_iter()).is_err());
        let reversed = entry(&[("type", "settlement.reversed"), ("at", "x")]);
        assert!(parse_settled(pairs(&reversed).into_iter()).unwrap().is_none());
        let broken = entry(&[("type", "settlement.settled"), ("at", "2026-11-29T10:15:02.123+08:00")]);
        assert!(parse_settled(pairs(&broken).into_iter()).is_err());
        assert_eq!(local_day("2026-02-28"), NaiveDate::from_ymd_opt(2026, 2, 28));
        for bad in ["2026-02-30", "2026-2-28", "+026-02-28", "2026-02-2x", ""] {
            assert_eq!(local_day(bad), None, "{bad}");
        }
    }
}
