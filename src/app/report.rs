//! `GET /admin/v1/reports/relief`: a range of days grouped by street, community, category, program, hospital or
//! day. The report first catches up the aggregates of its own days (so a settlement acknowledged before the
//! request is in it), then reads each day's compact entries and tallies them ([`crate::domain::report`]).

use chrono::NaiveDate;

use super::{ApiError, ApiResult, App};
use crate::config::LimitsConfig;
use crate::domain::report::{ReliefReport, ReportBy, ReportLine, Tally};
use crate::store::report::entry::Entries;
use crate::store::report::Labels;

/// Days whose entries are read at once (one `GET` each on the shared connection).
const DAYS_IN_FLIGHT: usize = 8;

/// What a report asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRequest {
    /// First and last local day, both included.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: ReportBy,
}

/// The configured bounds of reports (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportLimits {
    /// Most days in one report (`limits.max_report_days`).
    pub max_days: u64,
    /// Day-list lines the aggregator applies per step (`limits.report_batch_lines`).
    pub batch_lines: usize,
}

impl From<&LimitsConfig> for ReportLimits {
    fn from(l: &LimitsConfig) -> ReportLimits {
        ReportLimits { max_days: l.max_report_days, batch_lines: l.report_batch_lines }
    }
}

impl App {
    /// The relief report of `req`; `street`: only lines of cards of this street count (a street office's view).
    pub async fn relief_report(
        &self,
        req: &ReportRequest,
        street: Option<&str>,
        limits: &ReportLimits,
    ) -> ApiResult<ReliefReport> {
        if req.to < req.from {
            return Err(ApiError::invalid("to", "must not be before from"));
        }
        let span = u64::try_from((req.to - req.from).num_days()).unwrap_or(u64::MAX).saturating_add(1);
        if span > limits.max_days {
            return Err(ApiError::invalid(
                "to",
                format!("a report covers at most {} days (limits.max_report_days)", limits.max_days),
            ));
        }
        let days: Vec<String> = req.from.iter_days().take_while(|d| *d <= req.to).map(|d| d.to_string()).collect();
        self.store.report_catch_up(&days, limits.batch_lines).await?;
        let mut entries: Vec<Vec<u8>> = Vec::with_capacity(days.len());
        for chunk in days.chunks(DAYS_IN_FLIGHT) {
            let reads = chunk.iter().map(|day| self.store.report_entries(day));
            entries.extend(futures_util::future::try_join_all(reads).await?);
        }
        // read after the entries: every id they hold was interned before they were written
        let labels = self.store.report_labels().await?;
        tally(req.by, street, &days, &entries, &labels)
    }
}

/// Tallies the days' entries (`entries[i]` of `days[i]`).
fn tally(
    by: ReportBy,
    street: Option<&str>,
    days: &[String],
    entries: &[Vec<u8>],
    labels: &Labels,
) -> ApiResult<ReliefReport> {
    let unknown = |day: &str| ApiError::Internal(format!("report entries of {day} name an unknown label"));
    let mut tally = Tally::new(by, street);
    let mut payments: Vec<(&str, i64)> = Vec::new();
    for (day, buf) in days.iter().zip(entries) {
        for entry in Entries::new(buf) {
            let e = entry.map_err(|at| ApiError::Internal(format!("report entries of {day} unreadable at {at}")))?;
            let label = |id: u32| labels.get(id).ok_or_else(|| unknown(day));
            payments.clear();
            for &(program, fen) in &e.payments {
                payments.push((label(program)?, fen));
            }
            let line = ReportLine {
                reversal: e.reversal,
                card_id: e.card_id,
                day,
                hospital_id: label(e.hospital)?,
                street: label(e.street)?,
                community: label(e.community)?,
                category: label(e.category)?,
                relief_fen: e.relief_fen,
                payments: &payments,
            };
            tally.add(&line).map_err(|o| ApiError::Internal(format!("{o} on {day}")))?;
        }
    }
    Ok(tally.finish())
}
