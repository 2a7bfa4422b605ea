//! The relief office's events in the stream, read by the same walk as the settlement events (pure):
//!
//! - `pool.contribution`: exactly one per accepted contribution of the run, its data the contribution as answered;
//!   none for a refused one; none for an id of the run that was never sent (`contribution_events_match`);
//! - `pool.threshold` (`{"program", "year", "percent"}`, a settlement took a pool across 80, 90 or 100 % of its
//!   budget): the percent is one of those, the program one of the scenario's pools (other programs are counted, not
//!   failed, on a shared store), the year the run's; on an exclusive store also at most one per program and percent
//!   plus one per accepted donation of the run plus one per reversal of the run that gave that pool money back
//!   (only these let a pool's paid share fall back below a threshold it had crossed) (`pool_threshold_events_valid`);
//! - `audit.appended` (data: the audit entry, byte for byte as stored): kept as (seq, sha256, a 64-bit hash of
//!   the line) for the audit trail's check, which compares them with the chain: the stream holds a second copy of
//!   every entry appended during the run.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::audit::check::Check;
use crate::workload::{parse_contribution_id, ContributionKind, ContributionRecord, ContributionState};

pub const CONTRIBUTION: &str = "pool.contribution";
pub const THRESHOLD: &str = "pool.threshold";
pub const APPENDED: &str = "audit.appended";
/// The percents a `pool.threshold` event may name.
const PERCENTS: [u64; 3] = [80, 90, 100];
/// Messages kept per check family (the checks keep at most 10 examples each).
const MAX_MESSAGES: usize = 64;

/// What one line was to this reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// A `pool.contribution` of the run.
    OfTheRun,
    /// One of the office's events this reader checked or kept, not the run's own contribution.
    Office,
    /// Not one of its types.
    NotMine,
}

/// The `audit.appended` events read: what the audit trail check compares with the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// (`seq`, `sha256`, [`line_hash`] of the entry's line) of each event's entry, in stream order.
    pub entries: Vec<(u64, String, u64)>,
    /// Events whose data is not an audit entry (their first few, for the examples).
    pub unreadable: Vec<String>,
}

/// A 64-bit hash of an audit entry's line (a collision would hide one rewritten entry: ~2^-64 per entry).
pub fn line_hash(line: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

/// The reader of the office's events.
pub(in crate::audit) struct PoolEvents<'a> {
    run_id: &'a str,
    records: &'a [ContributionRecord],
    /// The scenario's programs with a pool.
    pools: Vec<String>,
    /// Per pool program: the run's acknowledged reversals of settlements that paid from it (each gave money back,
    /// so the pool may cross a threshold once more).
    refunds: BTreeMap<String, u64>,
    year: i64,
    exclusive: bool,
    /// `pool.contribution` events seen per record.
    seen: Vec<u8>,
    /// Differences between an event and its record (by record), while there is room.
    wrong: BTreeMap<usize, String>,
    contributions: Check,
    thresholds: Check,
    threshold_counts: BTreeMap<(String, u64), u64>,
    appended: Appended,
}

#[derive(Deserialize)]
struct ThresholdData {
    program: Option<String>,
    year: Option<i64>,
    percent: Option<u64>,
}

#[derive(Deserialize)]
struct EntryHead {
    seq: u64,
    sha256: String,
}

impl<'a> PoolEvents<'a> {
    pub(in crate::audit) fn new(
        run_id: &'a str,
        records: &'a [ContributionRecord],
        pools: Vec<String>,
        refunds: BTreeMap<String, u64>,
        year: i64,
        exclusive: bool,
    ) -> PoolEvents<'a> {
        PoolEvents {
            run_id,
            records,
            pools,
            refunds,
            year,
            exclusive,
            seen: vec![0; records.len()],
            wrong: BTreeMap::new(),
            contributions: Check::new("contribution_events_match"),
            thresholds: Check::new("pool_threshold_events_valid"),
            threshold_counts: BTreeMap::new(),
            appended: Appended::default(),
        }
    }

    /// One event line of type `kind`.
    pub(super) fn line(&mut self, kind: &str, event_id: &str, data: &RawValue) -> Seen {
        match kind {
            CONTRIBUTION => self.contribution(event_id, data),
            THRESHOLD => {
                self.threshold(event_id, data);
                Seen::Office
            }
            APPENDED => {
                match serde_json::from_str::<EntryHead>(data.get()) {
                    Ok(h) => self.appended.entries.push((h.seq, h.sha256, line_hash(data.get().as_bytes()))),
                    Err(e) if self.appended.unreadable.len() < MAX_MESSAGES => {
                        self.appended.unreadable.push(format!("{event_id}: not an audit entry ({e})"));
                    }
                    Err(_) => {}
                }
                Seen::Office
            }
            _ => Seen::NotMine,
        }
    }

    fn contribution(&mut self, event_id: &str, data: &RawValue) -> Seen {
        let Ok(v) = serde_json::from_str::<Value>(data.get()) else {
            self.contributions.fail(format!("{event_id}: unreadable pool.contribution data: {}", data.get()));
            return Seen::Office;
        };
        let id = v["contribution_id"].as_str().unwrap_or_default();
        let Some(seq) = parse_contribution_id(self.run_id, id) else {
            return Seen::Office; // another client's
        };
        let Some(r) = usize::try_from(seq).ok().filter(|&i| i < self.records.len()) else {
            self.contributions.fail(format!("{id}: never sent by the run, yet a pool.contribution event ({event_id})"));
            return Seen::OfTheRun;
        };
        let i = r;
        self.seen[i] = self.seen[i].saturating_add(1);
        if let Some(answer) = &self.records[i].answer {
            if &v != answer && self.wrong.len() < MAX_MESSAGES {
                self.wrong
                    .entry(i)
                    .or_insert_with(|| format!("{id} ({event_id}): event data {v} != answered {answer}"));
            }
        }
        Seen::OfTheRun
    }

    fn threshold(&mut self, event_id: &str, data: &RawValue) {
        let Ok(d) = serde_json::from_str::<ThresholdData>(data.get()) else {
            self.thresholds.fail(format!("{event_id}: unreadable pool.threshold data: {}", data.get()));
            return;
        };
        let program = d.program.unwrap_or_default();
        let ours = self.pools.contains(&program);
        if !ours && !self.exclusive {
            return; // a program of another ruleset on a shared store
        }
        let percent_ok = d.percent.is_some_and(|p| PERCENTS.contains(&p));
        let year_ok = !ours || d.year == Some(self.year);
        self.thresholds.expect(ours && percent_ok && year_ok, || {
            format!("{event_id}: pool.threshold {} (pools: {:?}, year {})", data.get(), self.pools, self.year)
        });
        if let Some(p) = d.percent {
            *self.threshold_counts.entry((program, p)).or_insert(0) += 1;
        }
    }

    /// The checks, one result per contribution record (and per threshold event), and the `audit.appended` entries.
    pub(super) fn finish(mut self) -> (Vec<Check>, Appended) {
        for (i, r) in self.records.iter().enumerate() {
            let n = self.seen[i];
            let ok = match r.state {
                ContributionState::Accepted => n == 1,
                ContributionState::Refused => n == 0,
                ContributionState::Unknown => n <= 1,
            } && !self.wrong.contains_key(&i);
            let message = || {
                self.wrong.get(&i).cloned().unwrap_or_else(|| {
                    format!("{}-C-{:08} ({:?}): {n} pool.contribution event(s)", self.run_id, r.seq, r.state)
                })
            };
            self.contributions.expect(ok, message);
        }
        if self.exclusive {
            let donations = self
                .records
                .iter()
                .filter(|r| r.state == ContributionState::Accepted && r.kind == ContributionKind::Donation)
                .count() as u64;
            for ((program, percent), n) in &self.threshold_counts {
                let refunds = self.refunds.get(program).copied().unwrap_or(0);
                self.thresholds.expect(*n <= 1 + donations + refunds, || {
                    format!(
                        "{program} {percent} %: {n} threshold events, with {donations} donation(s) and {refunds} \
                         refunding reversal(s) of the run"
                    )
                });
            }
        }
        (vec![self.contributions, self.thresholds], self.appended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{contribution_id, ContributionBook};

    fn raw(v: &Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    #[test]
    fn contribution_and_threshold_events_are_matched() {
        let mut book = ContributionBook::default();
        for (i, state) in [ContributionState::Accepted, ContributionState::Refused, ContributionState::Accepted]
            .into_iter()
            .enumerate()
        {
            let kind = if i == 1 { ContributionKind::Withdrawal } else { ContributionKind::Donation };
            let r = book.open(kind, 0, 100, false);
            let answer = serde_json::json!({"contribution_id": contribution_id("LT1", r as u64), "amount_fen": 100});
            book.settle(r, state, (state == ContributionState::Accepted).then_some(answer));
        }
        let records = book.records;
        let run = |events: &[(&str, Value)]| {
            let mut p = PoolEvents::new("LT1", &records, vec!["charity".into()], BTreeMap::new(), 2026, true);
            for (kind, data) in events {
                p.line(kind, "e", &raw(data));
            }
            p.finish()
        };
        let a0 = records[0].answer.clone().unwrap();
        let a2 = records[2].answer.clone().unwrap();
        let th = |p: u64| serde_json::json!({"program": "charity", "year": 2026, "percent": p});
        let entry = serde_json::json!({"seq": 7, "sha256": "ab"});
        let (checks, appended) = run(&[
            (CONTRIBUTION, a0),
            (CONTRIBUTION, a2.clone()),
            (THRESHOLD, th(80)),
            (THRESHOLD, th(90)),
            (APPENDED, entry),
            (CONTRIBUTION, serde_json::json!({"contribution_id": "other-1"})),
        ]);
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        assert_eq!((checks[0].checked, checks[1].checked), (3, 4));
        let line = serde_json::json!({"seq": 7, "sha256": "ab"}).to_string();
        assert_eq!(appended.entries, vec![(7, "ab".to_string(), line_hash(line.as_bytes()))]);
        // a missing event, a wrong one, an event for the refused withdrawal, a bad percent, one threshold too many
        let mut wrong = a2;
        wrong["amount_fen"] = 101.into();
        let refused = serde_json::json!({"contribution_id": contribution_id("LT1", 1)});
        let (checks, _) = run(&[
            (CONTRIBUTION, wrong),
            (CONTRIBUTION, refused),
            (THRESHOLD, th(85)),
            (THRESHOLD, th(80)),
            (THRESHOLD, th(80)),
            (THRESHOLD, th(80)),
            (THRESHOLD, th(80)),
        ]);
        assert_eq!(checks[0].failed, 3, "{:?}", checks[0]);
        assert_eq!(checks[1].failed, 2, "{:?}", checks[1]);
        assert!(checks[1].examples.iter().any(|e| e.contains("4 threshold events")), "{:?}", checks[1]);
        // a reversal that gave the pool money back lets it cross once more: 4 events at 80 % with 2 donations and
        // 1 refund pass, a fifth does not
        let with_refund = |n: usize| {
            let mut p =
                PoolEvents::new("LT1", &records, vec!["charity".into()], [("charity".into(), 1)].into(), 2026, true);
            for _ in 0..n {
                p.line(THRESHOLD, "e", &raw(&th(80)));
            }
            p.finish().0
        };
        assert!(with_refund(4)[1].passed, "{:?}", with_refund(4)[1]);
        assert!(!with_refund(5)[1].passed);
        assert!(with_refund(5)[1].examples.iter().any(|e| e.contains("1 refunding reversal")));
    }
}
