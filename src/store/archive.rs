//! Archiving ([retention], docs/REDIS_KEYS.md "Retention"): the settlement records, id claims, reconciliation
//! lines and card-history members of days older than `retention.settlement_days` leave Redis, one day at a time,
//! oldest first, and only behind three watermarks checked in the same script step as each removal: the day was
//! exported (`settlegate export` marked it in [`keys::EXPORTED`]), each hospital's clearing of its month is paid,
//! and the report entries hold every line (reports of archived days stay exact). Closing a day moves the archive's
//! watermark ([`keys::ARCHIVE`] `through`), raises the earliest visit date a new settlement may have to two days
//! after it (a late retry of an archived settlement, whose claim is gone, is refused instead of paid again: its
//! visit date is at most a day after the day it settled), and appends an audit entry, in one step.
//!
//! Every step is a compare-and-set on the watermark and on the list's progress, so any number of instances may
//! archive at once, and one killed between two steps leaves a state the next round continues from: a batch is
//! removed whole or not at all, a day closes once. What is kept: tombstones (cancellations before arrival),
//! insurance-ref keys (a ref stays used), the usage and pool counters, report entries, clearing statements, the
//! audit chain. Events have their own retention (`events.retention_days`).

use std::sync::LazyLock;

use chrono::{Datelike, Days, NaiveDate};
use redis::Script;
use serde_json::json;

use super::audit::AUDIT_ATTEMPTS;
use super::codec::parse_canonical;
use super::dayline::parse_event;
use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;
use crate::domain::audit::Actor;

static LINES: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/archive_lines.lua")));
static DAY: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!(include_str!("scripts/audit.lua"), include_str!("scripts/archive_day.lua"))));

/// Steps one day's archiving may take (a bound, not a limit met in practice: up to 5 000 lines a batch × this).
const MAX_STEPS: usize = 1_000_000;
/// Report lines consumed per step when a day is brought up to date before archiving.
const REPORT_BATCH_LINES: usize = 2000;
/// Keys a `SCAN` page asks for when the first archiving looks for the oldest day.
const SCAN_PAGE_KEYS: usize = 1000;

/// What one [`Store::archive_step`] (or [`Store::archive_next_day`]) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveStep {
    /// Nothing to do: the next day is not past the retention yet.
    UpToDate,
    /// One batch of a hospital's lines of `day` is archived; `left` lines of that list remain.
    Batch { day: NaiveDate, hospital: String, lines: u64, left: u64 },
    /// The day is archived and closed.
    Closed { day: NaiveDate, records: u64, lines: u64 },
    /// Another instance moved first (a batch or the day's close): nothing was written by this step.
    Raced,
    /// A watermark holds the day back: `why` is `export`, `clearing` or `report`.
    Blocked { day: NaiveDate, hospital: String, why: String },
}

impl Store {
    /// The last archived day (every day up to it is archived), if any.
    pub async fn archived_through(&self) -> StoreResult<Option<NaiveDate>> {
        Ok(self.archive_state().await?.0)
    }

    /// The last day archived or being archived (whose lines may be partly gone): reconciliation and export refuse
    /// every day up to it.
    pub async fn archive_horizon(&self) -> StoreResult<Option<NaiveDate>> {
        let (through, day) = self.archive_state().await?;
        Ok(day.max(through))
    }

    /// `through` and `day` (the day being archived) of [`keys::ARCHIVE`].
    async fn archive_state(&self) -> StoreResult<(Option<NaiveDate>, Option<NaiveDate>)> {
        const OP: &str = "archive_state";
        let mut conn = self.conn(OP)?;
        let (through, day): (Option<String>, Option<String>) = self
            .call(OP, false, async move {
                redis::cmd("HMGET").arg(keys::ARCHIVE).arg("through").arg("day").query_async(&mut conn).await
            })
            .await?;
        let parse = |d: Option<String>| {
            d.map(|d| d.parse().map_err(|_| StoreError::corrupt(OP, format!("archive day {d:?}")))).transpose()
        };
        Ok((parse(through)?, parse(day)?))
    }

    /// Records that `settlegate export` wrote `day`: when, and how many lines of each hospital (archiving removes
    /// a hospital's lines only while the list still holds exactly what was exported).
    pub async fn mark_exported(&self, day: &str, at: &str, lines: &[(String, u64)]) -> StoreResult<()> {
        const OP: &str = "mark_exported";
        let mut cmd = redis::cmd("HSET");
        cmd.arg(keys::EXPORTED).arg(day).arg(at);
        for (hospital, n) in lines {
            cmd.arg(format!("{day}:{hospital}")).arg(n);
        }
        let mut conn = self.conn(OP)?;
        self.call(OP, true, async move { cmd.query_async::<()>(&mut conn).await }).await
    }

    /// The oldest day with reconciliation lines (a `SCAN` of `{sg}:recon:*:hospitals`), for the first archiving.
    async fn oldest_line_day(&self) -> StoreResult<Option<NaiveDate>> {
        const OP: &str = "archive_scan";
        let mut cursor = 0u64;
        let mut oldest: Option<NaiveDate> = None;
        loop {
            let mut conn = self.conn(OP)?;
            let scan = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("{sg}:recon:*:hospitals")
                .arg("COUNT")
                .arg(SCAN_PAGE_KEYS)
                .to_owned();
            let (next, found): (u64, Vec<String>) =
                self.call(OP, false, async move { conn.to_ledger_primary(scan).await }).await?;
            let days = found.iter().filter_map(|k| k.strip_prefix("{sg}:recon:")?.strip_suffix(":hospitals"));
            for day in days.filter_map(|d| d.parse::<NaiveDate>().ok()) {
                oldest = Some(oldest.map_or(day, |o| o.min(day)));
            }
            if next == 0 {
                return Ok(oldest);
            }
            cursor = next;
        }
    }

    /// Archives the day after the last archived one, if it is not after `cutoff` (today − retention), to its end:
    /// [`Store::archive_step`] until the day is closed (or held back, or there is nothing to do).
    pub async fn archive_next_day(
        &self,
        cutoff: NaiveDate,
        batch_lines: usize,
        at: &str,
        by: &Actor,
    ) -> StoreResult<ArchiveStep> {
        for _ in 0..MAX_STEPS {
            match self.archive_step(cutoff, batch_lines, at, by).await? {
                ArchiveStep::Batch { .. } | ArchiveStep::Raced => {}
                done => return Ok(done),
            }
        }
        Err(StoreError::corrupt("archive_lines", format!("a day of more than {MAX_STEPS} steps")))
    }

    /// One write step of archiving: the next batch of the first hospital (in order) with lines on the day after
    /// the last archived one, or, when no hospital has lines left, the day's close. All its state is in Redis,
    /// so a gateway killed before, during or after a step leaves a state the next step continues from.
    pub async fn archive_step(
        &self,
        cutoff: NaiveDate,
        batch_lines: usize,
        at: &str,
        by: &Actor,
    ) -> StoreResult<ArchiveStep> {
        assert!(batch_lines > 0);
        let (through, in_progress) = self.archive_state().await?;
        let day = match (in_progress, through) {
            (Some(d), _) => d,
            (None, Some(t)) => t.succ_opt().expect("a date before the end of time"),
            // nothing archived yet: start at the oldest day with lines (none older than the cutoff: at the cutoff);
            // its first batch marks it as the day being archived, so this look is made once
            (None, None) => self.oldest_line_day().await?.map_or(cutoff, |d| d.min(cutoff)),
        };
        if day > cutoff {
            return Ok(ArchiveStep::UpToDate);
        }
        let (day_s, through_s) = (day.to_string(), through.map(|t| t.to_string()).unwrap_or_default());
        // the report entries must hold every line before the lines go
        self.report_catch_up(std::slice::from_ref(&day_s), REPORT_BATCH_LINES).await?;
        let key = keys::recon_hospitals(&day_s);
        let mut conn = self.conn("archive_hospitals")?;
        let hospitals: Vec<String> = self
            .call("archive_hospitals", false, async move { redis::AsyncCommands::smembers(&mut conn, key).await })
            .await?;
        match hospitals.into_iter().min() {
            Some(hospital) => self.archive_batch(day, &through_s, hospital, batch_lines).await,
            None => self.close_day(day, &through_s, at, by).await,
        }
    }

    /// Archives the next batch of one hospital's list of `day`.
    async fn archive_batch(
        &self,
        day: NaiveDate,
        through: &str,
        hospital: String,
        batch_lines: usize,
    ) -> StoreResult<ArchiveStep> {
        const OP: &str = "archive_lines";
        let day_s = day.to_string();
        let list = keys::recon_events(&day_s, &hospital);
        let period = format!("{:04}-{:02}", day.year(), day.month());
        let progress_field = format!("progress:{day_s}:{hospital}");
        let mut conn = self.conn(OP)?;
        let mut pipe = redis::pipe();
        let last = isize::try_from(batch_lines).unwrap_or(isize::MAX) - 1;
        pipe.hget(keys::ARCHIVE, &progress_field).lrange(&list, 0, last);
        let (progress, lines): (Option<u64>, Vec<String>) =
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        let settled: Vec<(String, String)> = lines
            .iter()
            .map(|l| parse_event(l).ok_or_else(|| StoreError::corrupt(OP, format!("day line {l:?}"))))
            .collect::<StoreResult<Vec<_>>>()?
            .into_iter()
            .filter(|e| !e.reversal)
            .map(|e| (e.card_id, e.hospital_settlement_id))
            .collect();
        // the history list is the visit year's: the record's request says which (every build's record holds `req`;
        // a record already gone: the day's year)
        let mut pipe = redis::pipe();
        for (card, hsid) in &settled {
            pipe.hget(keys::settlement(card, &hospital, hsid), "req");
        }
        let mut conn = self.conn(OP)?;
        let requests: Vec<Option<String>> = if settled.is_empty() {
            Vec::new()
        } else {
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?
        };
        let years = requests
            .iter()
            .map(|r| r.as_deref().map(|r| parse_canonical(r).map(|c| c.visit.date.year())).transpose())
            .collect::<Result<Vec<Option<i32>>, String>>()
            .map_err(|e| StoreError::corrupt(OP, e))?;
        let mut inv = LINES.prepare_invoke();
        inv.key(&list)
            .key(keys::recon_hospitals(&day_s))
            .key(keys::clearing(&hospital, &period))
            .key(keys::EXPORTED)
            .key(keys::report_consumed(&day_s))
            .key(keys::ARCHIVE)
            .key(keys::PROGRAM_PAID);
        inv.arg(&day_s).arg(&hospital).arg(through).arg(progress.unwrap_or(0)).arg(lines.len()).arg(visit_floor(day));
        for ((card, hsid), year) in settled.iter().zip(&years) {
            inv.key(keys::settlement(card, &hospital, hsid))
                .key(keys::claim(&hospital, hsid))
                .key(keys::history(card, year.unwrap_or(day.year())));
            inv.arg(format!("{hospital}/{hsid}")).arg(card);
        }
        let conn = self.conn(OP)?;
        let reply: Vec<String> = self.run_write(OP, conn, inv).await?;
        let n = |i: usize| reply.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        match reply.first().map(String::as_str) {
            Some("archived") => {
                metrics::counter!("settlegate_archived_records_total").increment(n(2));
                Ok(ArchiveStep::Batch { day, hospital, lines: n(1), left: n(3) })
            }
            Some("stale") => Ok(ArchiveStep::Raced),
            Some("blocked") => {
                Ok(ArchiveStep::Blocked { day, hospital, why: reply.get(1).cloned().unwrap_or_default() })
            }
            other => Err(StoreError::corrupt(OP, format!("unknown reply {other:?}"))),
        }
    }

    /// Closes `day` (every list of it archived): watermark, visit floor and audit entry in one step.
    async fn close_day(&self, day: NaiveDate, through: &str, at: &str, by: &Actor) -> StoreResult<ArchiveStep> {
        const OP: &str = "archive_day";
        let day_s = day.to_string();
        let floor = visit_floor(day);
        for _ in 0..AUDIT_ATTEMPTS {
            let fields = [format!("records:{day_s}"), format!("lines:{day_s}")];
            let mut conn = self.conn(OP)?;
            let counted: (Option<u64>, Option<u64>) = self
                .call(OP, false, async move {
                    redis::cmd("HMGET").arg(keys::ARCHIVE).arg(&fields).query_async(&mut conn).await
                })
                .await?;
            let (records, lines) = (counted.0.unwrap_or(0), counted.1.unwrap_or(0));
            let detail = json!({"records": records, "lines": lines, "visit_floor": floor});
            let sealed = self.seal(&by.draft(at, "ledger.archive", &day_s, detail)).await?;
            let mut inv = DAY.prepare_invoke();
            sealed.push(&mut inv);
            inv.key(keys::recon_hospitals(&day_s)).key(keys::ARCHIVE).key(keys::PROGRAM_PAID);
            inv.arg(&day_s).arg(through).arg(&floor).arg(records).arg(lines);
            let conn = self.conn(OP)?;
            let reply: Vec<String> = self.run_write(OP, conn, inv).await?;
            match reply.first().map(String::as_str) {
                Some("closed") => return Ok(ArchiveStep::Closed { day, records, lines }),
                Some("stale") => return Ok(ArchiveStep::Raced),
                Some("audit_stale") => {}
                other => return Err(StoreError::corrupt(OP, format!("unknown reply {other:?}"))),
            }
        }
        Err(super::audit::busy(OP))
    }
}

/// The earliest visit date a new settlement may have once `day` is (being) archived: two days after it (a visit
/// lies at most one day after the day it settles, so a retry of any settlement of `day` visits before this).
fn visit_floor(day: NaiveDate) -> String {
    day.checked_add_days(Days::new(2)).expect("a date before the end of time").to_string()
}
