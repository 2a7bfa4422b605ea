//! Reconciliation and pools: reads of what was recorded. A day's totals are computed by summing its detail lines,
//! so they equal the sum of the detail by construction.

use std::collections::BTreeMap;

use redis::AsyncCommands;

use super::dayline::{parse_event, DayEvent, ProgramFen};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;

/// Detail lines read per LRANGE while streaming or summing a day.
pub const EVENTS_PAGE: usize = 1000;

/// One day of one hospital: counts and net amounts (reversals negative).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayTotals {
    /// Settlements made that day (whether or not reversed since).
    pub settled_count: i64,
    /// Reversals made that day.
    pub reversed_count: i64,
    pub total_fen: i64,
    pub insurance_fen: i64,
    pub relief_fen: i64,
    pub patient_fen: i64,
    /// Net paid per program, every program with a payment line that day (0 included), by program id.
    pub by_program: Vec<ProgramFen>,
}

impl DayTotals {
    /// Adds one detail line; `None` on overflow (a corrupt store: real amounts stay far below 2^63).
    fn add(&mut self, e: &DayEvent, by_program: &mut BTreeMap<String, i64>) -> Option<()> {
        if e.reversal {
            self.reversed_count += 1;
        } else {
            self.settled_count += 1;
        }
        self.total_fen = self.total_fen.checked_add(e.total_fen)?;
        self.insurance_fen = self.insurance_fen.checked_add(e.insurance_fen)?;
        self.relief_fen = self.relief_fen.checked_add(e.relief_fen)?;
        self.patient_fen = self.patient_fen.checked_add(e.patient_fen)?;
        for p in &e.by_program {
            let entry = by_program.entry(p.program.clone()).or_default();
            *entry = entry.checked_add(p.fen)?;
        }
        Some(())
    }
}

impl Store {
    /// What each named program paid all cards in `year`.
    pub async fn program_paid(&self, year: i32, programs: &[String]) -> StoreResult<Vec<i64>> {
        if programs.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<String> = programs.iter().map(|p| keys::program_paid_field(year, p)).collect();
        let mut conn = self.conn("program_paid")?;
        let values: Vec<Option<i64>> = self
            .call("program_paid", false, async move {
                redis::cmd("HMGET").arg(keys::PROGRAM_PAID).arg(&fields).query_async(&mut conn).await
            })
            .await?;
        Ok(values.into_iter().map(|v| v.unwrap_or(0)).collect())
    }

    /// The hospitals with detail lines on `day`, sorted.
    pub async fn day_hospitals(&self, day: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.conn("recon_hospitals")?;
        let key = keys::recon_hospitals(day);
        let mut hospitals: Vec<String> =
            self.call("recon_hospitals", false, async move { conn.smembers(key).await }).await?;
        hospitals.sort();
        Ok(hospitals)
    }

    /// A hospital's day: the sum of its detail lines (so the totals always equal the sum over the detail).
    pub async fn day_totals(&self, day: &str, hospital_id: &str) -> StoreResult<DayTotals> {
        let mut totals = DayTotals::default();
        let mut by_program = BTreeMap::new();
        let mut start = 0;
        loop {
            let events = self.day_events(day, hospital_id, start).await?;
            for e in &events {
                totals
                    .add(e, &mut by_program)
                    .ok_or_else(|| StoreError::corrupt("recon_totals", format!("overflow on {day}")))?;
            }
            if events.len() < EVENTS_PAGE {
                break;
            }
            start += EVENTS_PAGE;
        }
        totals.by_program = by_program.into_iter().map(|(program, fen)| ProgramFen { program, fen }).collect();
        Ok(totals)
    }

    /// One page of a day's detail lines, from index `start`; fewer than [`EVENTS_PAGE`] lines means the end.
    pub async fn day_events(&self, day: &str, hospital_id: &str, start: usize) -> StoreResult<Vec<DayEvent>> {
        let mut conn = self.conn("recon_events")?;
        let key = keys::recon_events(day, hospital_id);
        let listed = key.clone();
        let (first, last) = (list_index(start), list_index(start + EVENTS_PAGE - 1));
        let lines: Vec<String> =
            self.call("recon_events", false, async move { conn.lrange(key, first, last).await }).await?;
        // the line itself is not quoted: it holds a card id, and the error is logged
        let unreadable =
            |i: usize| StoreError::corrupt("recon_events", format!("unreadable line {} of {listed}", start + i));
        lines.iter().enumerate().map(|(i, l)| parse_event(l).ok_or_else(|| unreadable(i))).collect()
    }
}

/// A list index for LRANGE (Redis takes signed indexes; a list never holds 2^63 lines).
fn list_index(i: usize) -> isize {
    isize::try_from(i).unwrap_or(isize::MAX)
}
