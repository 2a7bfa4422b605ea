//! Check family 7: the event stream (`GET /admin/v1/events`, as the relief office). Before the load the audit finds
//! where the stream ends; afterwards it pages from there to the end and checks, against the ledger:
//!
//! - every settlement answered 201/200 (or found by lookup) has exactly one `settlement.settled` event with the
//!   answered settlement id, amounts, payments, `settled_at`, and the insurance ref / operator sent;
//! - every acknowledged reversal exactly one `settlement.reversed` (amounts, `reversed_at`, reason, `reversed_by`),
//!   and a settlement never reversed none;
//! - every acknowledged cancel-before-settle exactly one `settlement.cancelled_before_arrival`;
//! - a refused request (or a settle resolved as never applied) has no event, and no event of the run belongs to an
//!   id the run was not acknowledged for;
//! - no `event_id` appears twice, and `Next-Cursor` pages as API.md says;
//! - the relief office's events (`pool.rs`): one `pool.contribution` per accepted contribution of the run, sane
//!   `pool.threshold` events, and the `audit.appended` entries for the audit trail's check.
//!
//! Events of other clients (ids without the run's prefix) and of other types are counted, not checked. Memory: one
//! 12-byte slot per id the run handed out, 8 bytes per event id seen (a 64-bit hash), one page (≤ 10 000 lines)
//! at a time.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::Instant;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::check::Check;
use crate::client::Endpoint;
use crate::stats::elapsed_ms;
use crate::workload::{
    operator, parse_hsid, CancelRecord, CancelState, CardBook, Operator, Payment, RecordState, SettlementRecord,
    Workload, CANCEL_REASON, REVERSAL_REASON,
};

/// Events per page (the API's maximum).
/// Field-difference messages kept for the examples (the checks keep at most 10 each).
const MAX_MESSAGES: usize = 64;

mod page;
mod pool;
pub use page::stream_end;
use page::{lines, read_page, Page, MAX_PAGES};
pub(super) use pool::PoolEvents;
use pool::Seen;
pub use pool::{line_hash, Appended};
#[cfg(test)]
use {bytes::Bytes, page::cursor_of, page::query_value};

pub const SETTLED: &str = "settlement.settled";
pub const REVERSED: &str = "settlement.reversed";
pub const CANCELLED: &str = "settlement.cancelled_before_arrival";

/// Where the audit reads the stream from, as found before the load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventsStart {
    /// The events audit is off (`audit.events = false`), or no snapshot was taken.
    #[default]
    NotRead,
    /// `GET /admin/v1/events` answered 404: this gateway does not serve the stream.
    NotServed,
    /// After this cursor (the end of the stream before the load).
    After(String),
}

/// What the events audit read (`audit.events` in report.json).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventsSummary {
    /// `checked`, `not served` (the gateway answered 404) or `skipped` (`audit.events = false`).
    pub status: String,
    /// The cursor the read started after: the end of the stream before the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Pages read.
    pub pages: u64,
    /// Events read in all.
    pub events: u64,
    /// Of those, events of the run's ids, by type.
    pub of_the_run: BTreeMap<String, u64>,
    /// Events of other clients or of other types (not checked).
    pub others: u64,
    /// The relief office's events the audit read apart from the run's contributions (`pool.threshold`,
    /// `audit.appended`, other clients' `pool.contribution`), by type.
    pub office: BTreeMap<String, u64>,
    /// How long the read took, milliseconds.
    pub duration_ms: u64,
}

/// Absent → `None`; `null` → `Some(None)`: `reversed_by` must be present, null when the reversal had no operator.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One line of the stream.
#[derive(Deserialize)]
struct Line<'a> {
    cursor: String,
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    at: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The data of a settlement event (every field optional: a missing one is a difference, not a parse error).
#[derive(Debug, Default, Deserialize)]
struct Data {
    settlement_id: Option<String>,
    hospital_settlement_id: Option<String>,
    hospital_id: Option<String>,
    status: Option<String>,
    card_id: Option<String>,
    ruleset_version: Option<u64>,
    total_fen: Option<u64>,
    insurance_fen: Option<u64>,
    relief_fen: Option<u64>,
    patient_fen: Option<u64>,
    payments: Option<Vec<Payment>>,
    settled_at: Option<String>,
    reversed_at: Option<String>,
    insurance_settlement_ref: Option<String>,
    operator: Option<Operator>,
    reason: Option<String>,
    #[serde(default, deserialize_with = "present")]
    reversed_by: Option<Option<Operator>>,
}

/// What an id of the run is, as far as the events are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No request of the run is known under it (not handed out, or still in flight when the audit began).
    Unknown,
    /// A settle or cancel that was refused.
    Refused,
    /// A settlement request: `index` into the records.
    Record,
    /// A cancel-before-settle: `index` into the cancels.
    Cancel,
}

/// One id of the run: what it is and the events seen for it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    kind: Kind,
    index: u32,
    settled: u8,
    reversed: u8,
    cancelled: u8,
    /// An event of this id differed from the ledger (the message is in `messages` while there is room).
    wrong: bool,
}

const EMPTY: Slot = Slot { kind: Kind::Unknown, index: 0, settled: 0, reversed: 0, cancelled: 0, wrong: false };

/// Differences between one event and what the ledger says, as `field: event … ≠ expected …`.
#[derive(Default)]
struct Diff(Vec<String>);

impl Diff {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, field: &str, got: &T, want: &T) {
        if got != want {
            self.0.push(format!("{field}: event {got:?} != expected {want:?}"));
        }
    }
}

/// The matcher: fed the stream's pages, then tallies the checks (pure: no I/O, so it is unit-tested).
pub(super) struct Matcher<'a> {
    run_id: &'a str,
    hospitals: Vec<String>,
    cards: &'a CardBook,
    records: &'a [SettlementRecord],
    cancels: &'a [CancelRecord],
    slots: Vec<Slot>,
    /// 64-bit hashes of the event ids seen (a collision would report a false duplicate: ~n²/2^65).
    ids: HashSet<u64>,
    messages: HashMap<u64, String>,
    stray: Check,
    unique: Check,
    paging: Check,
    summary: EventsSummary,
    /// The office's events (contributions, thresholds, audit entries), when the audit reads them.
    pool: Option<PoolEvents<'a>>,
}

fn hash_id(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

impl<'a> Matcher<'a> {
    /// `records` is the whole resolved ledger (indices as in [`Ledger::records`](crate::workload::Ledger));
    /// `refused` the sequence numbers of refused requests; `issued` how many sequence numbers were handed out.
    pub(super) fn new(
        run_id: &'a str,
        hospitals: Vec<String>,
        cards: &'a CardBook,
        records: &'a [SettlementRecord],
        cancels: &'a [CancelRecord],
        refused: &[u64],
        issued: u64,
    ) -> Matcher<'a> {
        let index = |seq: u64| usize::try_from(seq).expect("a sequence number of this run fits in memory");
        let mut slots = vec![EMPTY; index(issued)];
        let mut put = |seq: u64, kind: Kind, i: usize| {
            let seq = index(seq);
            if seq >= slots.len() {
                slots.resize(seq + 1, EMPTY);
            }
            slots[seq] = Slot { kind, index: u32::try_from(i).expect("below 2^32 requests"), ..EMPTY };
        };
        for (i, r) in records.iter().enumerate() {
            if let Some((_, seq)) = parse_hsid(run_id, &r.hsid) {
                put(seq, Kind::Record, i);
            }
        }
        for (i, c) in cancels.iter().enumerate() {
            if let Some((_, seq)) = parse_hsid(run_id, &c.hsid) {
                put(seq, Kind::Cancel, i);
            }
        }
        for &seq in refused {
            put(seq, Kind::Refused, 0);
        }
        Matcher {
            run_id,
            hospitals,
            cards,
            records,
            cancels,
            slots,
            ids: HashSet::new(),
            messages: HashMap::new(),
            stray: Check::new("no_event_without_an_acknowledged_change"),
            unique: Check::new("event_ids_unique"),
            paging: Check::new("event_stream_paging"),
            summary: EventsSummary { status: "checked".into(), ..Default::default() },
            pool: None,
        }
    }

    /// Also reads the relief office's events (contributions, thresholds, audit entries) with `pool`.
    pub(super) fn with_pool_events(mut self, pool: PoolEvents<'a>) -> Matcher<'a> {
        self.pool = Some(pool);
        self
    }

    /// One page read after `after`: `Next-Cursor` must be its last line's cursor, or `after` when it is empty.
    /// Returns the cursor to read after next, `None` when the page was empty (the end) or unusable.
    pub(super) fn page(&mut self, after: &str, next_cursor: Option<&str>, body: &[u8]) -> Option<String> {
        self.summary.pages += 1;
        let mut last_cursor = None;
        let mut any = false;
        for line in lines(body) {
            any = true;
            last_cursor = self.line(line).or(last_cursor);
        }
        let want = if any { last_cursor.clone() } else { Some(after.to_string()) };
        match (next_cursor, &want) {
            (Some(n), Some(w)) if n == w => self.paging.ok(),
            (n, w) => self.paging.fail(format!("page after {after}: Next-Cursor {n:?}, expected {w:?}")),
        }
        if !any {
            return None;
        }
        next_cursor.map(str::to_string).or(last_cursor)
    }

    /// One event line; returns its cursor.
    fn line(&mut self, text: &[u8]) -> Option<String> {
        self.summary.events += 1;
        let line: Line<'_> = match serde_json::from_slice(text) {
            Ok(l) => l,
            Err(e) => {
                self.paging.fail(format!("unreadable event line ({e}): {}", String::from_utf8_lossy(text)));
                return None;
            }
        };
        self.unique.expect(self.ids.insert(hash_id(&line.event_id)), || format!("event_id {} twice", line.event_id));
        if let Some(pool) = self.pool.as_mut() {
            match pool.line(&line.kind, &line.event_id, line.data) {
                Seen::OfTheRun => {
                    *self.summary.of_the_run.entry(line.kind.clone()).or_insert(0) += 1;
                    return Some(line.cursor);
                }
                Seen::Office => {
                    *self.summary.office.entry(line.kind.clone()).or_insert(0) += 1;
                    return Some(line.cursor);
                }
                Seen::NotMine => {}
            }
        }
        if ![SETTLED, REVERSED, CANCELLED].contains(&line.kind.as_str()) {
            self.summary.others += 1;
            return Some(line.cursor);
        }
        let data: Data = match serde_json::from_str(line.data.get()) {
            Ok(d) => d,
            Err(e) => {
                self.stray.fail(format!("{} {}: unreadable data ({e}): {}", line.kind, line.event_id, line.data.get()));
                return Some(line.cursor);
            }
        };
        let hsid = data.hospital_settlement_id.as_deref().unwrap_or_default();
        let Some((hospital, seq)) = parse_hsid(self.run_id, hsid) else {
            self.summary.others += 1; // another client's
            return Some(line.cursor);
        };
        *self.summary.of_the_run.entry(line.kind.clone()).or_insert(0) += 1;
        let slot = usize::try_from(seq).ok().and_then(|s| self.slots.get(s).copied()).unwrap_or(EMPTY);
        let diff = match (slot.kind, line.kind.as_str()) {
            (Kind::Record, SETTLED | REVERSED) => self.record_diff(&line, &data, hospital, slot.index as usize),
            (Kind::Cancel, CANCELLED) => self.cancel_diff(&line, &data, hospital, slot.index as usize),
            (Kind::Record | Kind::Cancel, _) => Some(format!("{hsid}: a {} event ({})", line.kind, line.event_id)),
            (Kind::Refused, _) => {
                self.stray.fail(format!("{hsid}: refused, yet a {} event ({})", line.kind, line.event_id));
                None
            }
            (Kind::Unknown, _) => {
                self.stray
                    .fail(format!("{hsid}: no request acknowledged, yet a {} event ({})", line.kind, line.event_id));
                None
            }
        };
        if let Some(s) = usize::try_from(seq).ok().and_then(|s| self.slots.get_mut(s)) {
            match line.kind.as_str() {
                SETTLED => s.settled = s.settled.saturating_add(1),
                REVERSED => s.reversed = s.reversed.saturating_add(1),
                _ => s.cancelled = s.cancelled.saturating_add(1),
            }
            if let Some(message) = diff {
                s.wrong = true;
                if self.messages.len() < MAX_MESSAGES {
                    self.messages.entry(seq).or_insert(message);
                }
            }
        }
        Some(line.cursor)
    }

    /// A settled or reversed event against its record; `None` when it matches.
    fn record_diff(&self, line: &Line<'_>, d: &Data, hospital: usize, i: usize) -> Option<String> {
        let r = &self.records[i];
        let a = r.answer.as_ref()?; // unresolved without an answer: nothing to compare with
        let mut diff = Diff::default();
        let settled = line.kind == SETTLED;
        diff.eq("status", &d.status.as_deref(), &Some(if settled { "settled" } else { "reversed" }));
        diff.eq("hospital_id", &d.hospital_id.as_deref(), &self.hospitals.get(r.hospital).map(String::as_str));
        diff.eq("hospital (by id)", &hospital, &r.hospital);
        diff.eq("settlement_id", &d.settlement_id.as_deref(), &Some(a.settlement_id.as_str()));
        diff.eq("card_id", &d.card_id.as_deref(), &Some(a.card_id.as_str()));
        diff.eq("ruleset_version", &d.ruleset_version, &Some(a.ruleset_version));
        diff.eq("total_fen", &d.total_fen, &Some(a.total_fen));
        diff.eq("insurance_fen", &d.insurance_fen, &Some(a.insurance_fen));
        diff.eq("relief_fen", &d.relief_fen, &Some(a.relief_fen));
        diff.eq("patient_fen", &d.patient_fen, &Some(a.patient_fen));
        diff.eq("payments", &d.payments.as_ref(), &Some(&a.payments));
        diff.eq("settled_at", &d.settled_at.as_ref(), &a.settled_at.as_ref());
        let sent_ref = Workload::ref_sent(r, |h| self.records.get(h as usize).map(|h| h.hsid.as_str()));
        diff.eq("insurance_settlement_ref", &d.insurance_settlement_ref, &sent_ref);
        diff.eq("operator", &d.operator, &r.operator.map(|n| operator(r.hospital, n)));
        if settled {
            diff.eq("at", &Some(&line.at), &a.settled_at.as_ref());
        } else {
            if r.reversed_at.is_some() {
                diff.eq("reversed_at", &d.reversed_at, &r.reversed_at);
            }
            diff.eq("at", &Some(&line.at), &d.reversed_at.as_ref());
            diff.eq("reason", &d.reason.as_deref(), &Some(REVERSAL_REASON));
            diff.eq("reversed_by", &d.reversed_by, &Some(r.reversal_operator.map(|n| operator(r.hospital, n))));
        }
        (!diff.0.is_empty()).then(|| format!("{} {} ({}): {}", r.hsid, line.kind, line.event_id, diff.0.join("; ")))
    }

    /// A cancelled-before-arrival event against its cancel; `None` when it matches.
    fn cancel_diff(&self, line: &Line<'_>, d: &Data, hospital: usize, i: usize) -> Option<String> {
        let c = &self.cancels[i];
        let mut diff = Diff::default();
        diff.eq("status", &d.status.as_deref(), &Some("reversed_before_settled"));
        diff.eq("hospital_id", &d.hospital_id.as_deref(), &self.hospitals.get(c.hospital).map(String::as_str));
        diff.eq("hospital (by id)", &hospital, &c.hospital);
        diff.eq("card_id", &d.card_id, &Some(self.cards.card_id(c.card)));
        diff.eq("reason", &d.reason.as_deref(), &Some(CANCEL_REASON));
        diff.eq("reversed_by", &d.reversed_by, &Some(c.operator.map(|n| operator(c.hospital, n))));
        diff.eq("at", &Some(&line.at), &d.reversed_at.as_ref());
        (!diff.0.is_empty()).then(|| format!("{} {} ({}): {}", c.hsid, line.kind, line.event_id, diff.0.join("; ")))
    }

    /// A read that failed: the audit cannot say the stream is right.
    pub(super) fn read_failed(&mut self, error: String) {
        self.paging.fail(error);
    }

    /// The checks, one result per settlement, reversal, cancel and refused request of the run.
    #[cfg(test)]
    pub(super) fn finish(self) -> (Vec<Check>, EventsSummary) {
        let (checks, summary, _) = self.finish_all();
        (checks, summary)
    }

    /// [`finish`](Matcher::finish), with the office's checks and the `audit.appended` entries read.
    pub(super) fn finish_all(mut self) -> (Vec<Check>, EventsSummary, Appended) {
        let (pool_checks, appended) = match self.pool.take() {
            Some(p) => p.finish(),
            None => (Vec::new(), Appended::default()),
        };
        let mut settled = Check::new("settled_events_match_answers");
        let mut reversed = Check::new("reversed_events_match_reversals");
        let mut cancelled = Check::new("cancel_events_match_cancels");
        let mut stray = self.stray;
        let message = |seq: usize, what: String| self.messages.get(&(seq as u64)).cloned().unwrap_or(what);
        for (seq, s) in self.slots.iter().enumerate() {
            match s.kind {
                Kind::Unknown => {}
                Kind::Refused => {
                    let n = u32::from(s.settled) + u32::from(s.reversed) + u32::from(s.cancelled);
                    if n == 0 {
                        stray.ok();
                    } // an event for it already failed the check when it was read
                }
                Kind::Record => {
                    let r = &self.records[s.index as usize];
                    // (settled events allowed, reversed events allowed) by what the ledger knows
                    let (want_settled, want_reversed): (&[u8], &[u8]) = match r.state {
                        RecordState::Settled => (&[1], &[0]),
                        RecordState::Reversed => (&[1], &[1]),
                        RecordState::NotApplied => (&[0], &[0]),
                        RecordState::SettleUnknown => (&[0, 1], &[0]),
                        RecordState::ReverseUnknown | RecordState::Reversing => (&[1], &[0, 1]),
                    };
                    let cancels_ok = s.cancelled == 0;
                    if r.state == RecordState::NotApplied {
                        if s.settled + s.reversed == 0 && cancels_ok {
                            stray.ok();
                        } else {
                            stray.fail(format!("{}: resolved as never applied, yet it has events", r.hsid));
                        }
                        continue;
                    }
                    let settled_ok = want_settled.contains(&s.settled) && cancels_ok && !s.wrong;
                    settled.expect(settled_ok, || {
                        message(
                            seq,
                            format!("{}: {} settled event(s), {} cancel event(s)", r.hsid, s.settled, s.cancelled),
                        )
                    });
                    let reversed_ok = want_reversed.contains(&s.reversed) && !s.wrong;
                    reversed.expect(reversed_ok, || {
                        message(seq, format!("{} ({:?}): {} reversed event(s)", r.hsid, r.state, s.reversed))
                    });
                }
                Kind::Cancel => {
                    let c = &self.cancels[s.index as usize];
                    let want: &[u8] = if c.state == CancelState::Cancelled { &[1] } else { &[0, 1] };
                    let ok = want.contains(&s.cancelled) && s.settled == 0 && s.reversed == 0 && !s.wrong;
                    cancelled.expect(ok, || {
                        message(
                            seq,
                            format!(
                                "{}: {} cancel, {} settled, {} reversed event(s)",
                                c.hsid, s.cancelled, s.settled, s.reversed
                            ),
                        )
                    });
                }
            }
        }
        let mut checks = vec![settled, reversed, cancelled, stray, self.unique, self.paging];
        checks.extend(pool_checks);
        (checks, self.summary, appended)
    }
}

/// The events audit: pages from `start` to the end of the stream through the matcher (and, with `pool`, the
/// office's events); also returns the `audit.appended` entries read.
pub(super) async fn check(
    admin: &Endpoint,
    w: &Workload,
    start: &EventsStart,
    records: &[SettlementRecord],
    cancels: &[CancelRecord],
    refused: &[u64],
    pool: Option<PoolEvents<'_>>,
) -> (Vec<Check>, EventsSummary, Appended) {
    let t0 = Instant::now();
    let after = match start {
        EventsStart::NotRead => {
            return (Vec::new(), EventsSummary { status: "skipped".into(), ..Default::default() }, Appended::default());
        }
        EventsStart::NotServed => {
            let mut c = Check::new("event_stream_served");
            c.fail("GET /admin/v1/events answered 404: this gateway does not serve the event stream (set audit.events = false to skip this audit)".into());
            return (vec![c], EventsSummary { status: "not served".into(), ..Default::default() }, Appended::default());
        }
        EventsStart::After(c) => c.clone(),
    };
    let hospitals = w.hospitals.iter().map(|h| h.name.clone()).collect();
    let mut m = Matcher::new(&w.run_id, hospitals, &w.cards, records, cancels, refused, w.hsids_issued());
    if let Some(p) = pool {
        m = m.with_pool_events(p);
    }
    m.summary.after = Some(after.clone());
    let mut cursor = after;
    for _ in 0..MAX_PAGES {
        match read_page(admin, Some(&cursor)).await {
            Ok(Page { status: 200, next_cursor, body }) => match m.page(&cursor, next_cursor.as_deref(), &body) {
                Some(next) => cursor = next,
                None => break,
            },
            Ok(Page { status, body, .. }) => {
                m.read_failed(format!(
                    "GET /admin/v1/events after {cursor}: HTTP {status} {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
                break;
            }
            Err(e) => {
                m.read_failed(e);
                break;
            }
        }
    }
    let (checks, mut summary, appended) = m.finish_all();
    summary.duration_ms = elapsed_ms(t0);
    (checks, summary, appended)
}

#[cfg(test)]
mod tests;
