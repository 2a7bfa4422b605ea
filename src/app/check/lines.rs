//! The lines check: the hospital's lines into a scratch hash in batches, the gateway's day paged against it (see
//! the parent module's docs).

use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use super::{result_label, signed_fen_error, ApiError, ApiResult, App, Caller, CHECK_BATCH};
use crate::domain::{is_valid_id, FieldError};
use crate::store::check::{parse_scratch_field, parse_scratch_value, scratch_field, scratch_value, SCRATCH_TTL_S};
use crate::store::{keys, Store, StoreError, EVENTS_PAGE};

/// Which kind of detail line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent {
    Settled,
    Reversed,
}

impl LineEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            LineEvent::Settled => "settled",
            LineEvent::Reversed => "reversed",
        }
    }

    fn of(reversal: bool) -> LineEvent {
        if reversal {
            LineEvent::Reversed
        } else {
            LineEvent::Settled
        }
    }
}

impl<'de> Deserialize<'de> for LineEvent {
    /// A JSON string only (serde's derive would also read `{"settled": null}`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LineEvent, D::Error> {
        let raw = String::deserialize(d)?;
        match raw.as_str() {
            "settled" => Ok(LineEvent::Settled),
            "reversed" => Ok(LineEvent::Reversed),
            other => Err(serde::de::Error::unknown_variant(other, &["settled", "reversed"])),
        }
    }
}

/// One NDJSON line of `POST /v1/reconciliation/check/details`: the hospital's view of one detail line, amounts
/// signed as `GET /v1/reconciliation/settlements` renders them (a reversal's negative).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckLine {
    pub event: LineEvent,
    pub hospital_settlement_id: String,
    pub total_fen: i64,
    pub relief_fen: i64,
    pub patient_fen: i64,
}

impl CheckLine {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_valid_id(&self.hospital_settlement_id) {
            errors.push(FieldError::new("hospital_settlement_id", "must be 1-64 chars of A-Za-z0-9._:-"));
        }
        for (field, v) in
            [("total_fen", self.total_fen), ("relief_fen", self.relief_fen), ("patient_fen", self.patient_fen)]
        {
            errors.extend(signed_fen_error(field.into(), v));
        }
        errors
    }

    fn amounts(&self) -> [i64; 3] {
        [self.total_fen, self.relief_fen, self.patient_fen]
    }
}

/// The compared amount fields, in the order of [`CheckLine::amounts`] and the scratch value.
const AMOUNT_FIELDS: [&str; 3] = ["total_fen", "relief_fen", "patient_fen"];

/// A list of at most `max` entries, with the count of all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capped<T> {
    /// The first `max` entries.
    pub listed: Vec<T>,
    /// Every entry, listed or not.
    pub total: u64,
    max: usize,
}

impl<T> Capped<T> {
    fn new(max: usize) -> Capped<T> {
        Capped { listed: Vec::new(), total: 0, max }
    }

    fn push(&mut self, item: T) {
        self.total += 1;
        if self.listed.len() < self.max {
            self.listed.push(item);
        }
    }
}

/// A line one side has and the other lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRef {
    pub event: LineEvent,
    pub hospital_settlement_id: String,
}

/// One amount of a line both sides have, different.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountMismatch {
    pub event: LineEvent,
    pub hospital_settlement_id: String,
    /// `total_fen`, `relief_fen` or `patient_fen`.
    pub field: &'static str,
    pub hospital: i64,
    pub gateway: i64,
}

/// A hospital line that repeats an earlier one (same `event` and `hospital_settlement_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub event: LineEvent,
    pub hospital_settlement_id: String,
    /// Its 1-based line number in the body (the first occurrence is the one compared).
    pub line: u64,
}

/// The answer of a line-by-line check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailsReport {
    pub date: NaiveDate,
    pub hospital_id: String,
    /// Non-blank lines the hospital sent.
    pub hospital_lines: u64,
    /// The gateway's lines of that day.
    pub gateway_lines: u64,
    /// Lines both sides have, with equal amounts.
    pub matched: u64,
    pub missing_in_gateway: Capped<LineRef>,
    pub missing_in_hospital: Capped<LineRef>,
    /// One entry per differing amount field.
    pub amount_mismatch: Capped<AmountMismatch>,
    pub duplicate_in_hospital: Capped<Duplicate>,
}

impl DetailsReport {
    /// No difference of any kind.
    pub fn is_match(&self) -> bool {
        self.missing_in_gateway.total == 0
            && self.missing_in_hospital.total == 0
            && self.amount_mismatch.total == 0
            && self.duplicate_in_hospital.total == 0
    }
}

/// A line-by-line check in progress: the hospital's lines go in with [`DetailsCheck::add`] (and
/// [`DetailsCheck::flush`] when [`DetailsCheck::batch_full`]), then [`DetailsCheck::finish`] compares. On a
/// refusal, [`DetailsCheck::discard`] deletes the scratch hash; dropped mid-way (the client went away), it deletes
/// it in the background, and the hash's expiry is the backstop of both.
pub struct DetailsCheck {
    store: Arc<Store>,
    /// `{sg}:check:<nonce>`.
    key: String,
    /// A write to the scratch hash may have reached Redis: it must be deleted.
    written: bool,
    /// Parsed lines not yet written: (line number, line).
    batch: Vec<(u64, CheckLine)>,
    /// Distinct hospital lines in the scratch hash.
    stored: u64,
    report: DetailsReport,
}

impl DetailsCheck {
    /// Takes one valid hospital line (`line_no`: 1-based, for the duplicate report).
    pub fn add(&mut self, line_no: u64, line: CheckLine) {
        self.report.hospital_lines += 1;
        self.batch.push((line_no, line));
    }

    /// Enough lines for one write.
    pub fn batch_full(&self) -> bool {
        self.batch.len() >= CHECK_BATCH
    }

    /// Writes the pending lines into the scratch hash; a repeated line is reported, not stored again.
    pub async fn flush(&mut self) -> ApiResult<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(String, String)> = self
            .batch
            .iter()
            .map(|(_, l)| {
                (scratch_field(l.event == LineEvent::Reversed, &l.hospital_settlement_id), scratch_value(l.amounts()))
            })
            .collect();
        self.written = true;
        let added = self.store.scratch_put(&self.key, &pairs).await?;
        for ((line, l), new) in self.batch.drain(..).zip(added) {
            if new {
                self.stored += 1;
            } else {
                let dup = Duplicate { event: l.event, hospital_settlement_id: l.hospital_settlement_id, line };
                self.report.duplicate_in_hospital.push(dup);
            }
        }
        Ok(())
    }

    /// The hospital's lines are all in: compares them with the gateway's day and deletes the scratch hash. On an
    /// error the hash is deleted too (best effort).
    pub async fn finish(&mut self) -> ApiResult<DetailsReport> {
        if let Err(e) = self.compare().await {
            self.discard().await;
            return Err(e);
        }
        let r = &self.report;
        metrics::counter!("settlegate_reconciliation_checks_total", "check" => "details",
            "result" => result_label(r.is_match()))
        .increment(1);
        metrics::counter!("settlegate_reconciliation_check_lines_total", "side" => "hospital")
            .increment(r.hospital_lines);
        metrics::counter!("settlegate_reconciliation_check_lines_total", "side" => "gateway")
            .increment(r.gateway_lines);
        Ok(r.clone())
    }

    async fn compare(&mut self) -> ApiResult<()> {
        if let Some(through) = self.store.archive_horizon().await? {
            if self.report.date <= through {
                let date = self.report.date;
                return Err(ApiError::DayArchived(format!("{date} is archived (every day up to {through})")));
            }
        }
        self.flush().await?;
        // every line stored is still there: the hash cannot have expired between two writes (each sets the expiry
        // again), but a check that finds it short must not report the lost lines as missing
        if self.stored > 0 && self.store.scratch_len(&self.key).await? != self.stored {
            return Err(ApiError::Unavailable(
                "the check's scratch data in the store expired or was removed; nothing was changed, retry".into(),
            ));
        }
        let (day, hospital) = (self.report.date.to_string(), self.report.hospital_id.clone());
        // scratch fields not yet taken out: once 0, the rest of the gateway's day is missing in the hospital
        let mut left = self.stored;
        let mut start = 0;
        loop {
            let events = self.store.day_events(&day, &hospital, start).await?;
            self.report.gateway_lines += events.len() as u64;
            let fields: Vec<String> = if left == 0 {
                Vec::new()
            } else {
                events.iter().map(|e| scratch_field(e.reversal, &e.hospital_settlement_id)).collect()
            };
            let mut values = self.store.scratch_take(&self.key, &fields).await?.into_iter();
            for e in &events {
                let event = LineEvent::of(e.reversal);
                let Some(value) = values.next().flatten() else {
                    let missing = LineRef { event, hospital_settlement_id: e.hospital_settlement_id.clone() };
                    self.report.missing_in_hospital.push(missing);
                    continue;
                };
                left = left.saturating_sub(1);
                let hospital = parse_scratch_value(&value)
                    .ok_or_else(|| StoreError::corrupt("check_take", "a scratch value this code did not write"))?;
                let gateway = [e.total_fen, e.relief_fen, e.patient_fen];
                if hospital == gateway {
                    self.report.matched += 1;
                }
                for ((field, h), g) in AMOUNT_FIELDS.into_iter().zip(hospital).zip(gateway) {
                    if h != g {
                        let hsid = e.hospital_settlement_id.clone();
                        let mismatch =
                            AmountMismatch { event, hospital_settlement_id: hsid, field, hospital: h, gateway: g };
                        self.report.amount_mismatch.push(mismatch);
                    }
                }
            }
            if events.len() < EVENTS_PAGE {
                break;
            }
            start += EVENTS_PAGE;
        }
        let mut cursor = 0;
        while left > 0 {
            let (next, pairs) = self.store.scratch_drain(&self.key, cursor).await?;
            for (field, _) in pairs {
                let (reversal, hsid) = parse_scratch_field(&field)
                    .ok_or_else(|| StoreError::corrupt("check_scan", "a scratch field this code did not write"))?;
                let missing = LineRef { event: LineEvent::of(reversal), hospital_settlement_id: hsid.to_string() };
                self.report.missing_in_gateway.push(missing);
                left = left.saturating_sub(1);
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if self.written {
            self.store.scratch_drop(&self.key).await?;
            self.written = false;
        }
        Ok(())
    }

    /// Deletes the scratch hash (best effort: on failure it expires within [`SCRATCH_TTL_S`] seconds).
    pub async fn discard(&mut self) {
        self.batch.clear();
        if self.written {
            if let Err(e) = self.store.scratch_drop(&self.key).await {
                tracing::warn!(error = %e, ttl_s = SCRATCH_TTL_S, "reconciliation check: scratch hash not deleted; it expires");
            }
            self.written = false;
        }
    }
}

impl Drop for DetailsCheck {
    fn drop(&mut self) {
        if !self.written {
            return;
        }
        // dropped mid-check (the client went away): delete in the background; the expiry is the backstop
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (store, key) = (self.store.clone(), std::mem::take(&mut self.key));
            rt.spawn(async move {
                let _ = store.scratch_drop(&key).await;
            });
        }
    }
}

impl App {
    /// Starts a line-by-line check of `hospital`'s day `date` (no Redis call yet). `max_listed`: most entries listed
    /// per kind of difference (`limits.max_check_differences`).
    pub fn details_check(
        &self,
        caller: Caller<'_>,
        named: Option<&str>,
        date: NaiveDate,
        max_listed: usize,
    ) -> ApiResult<DetailsCheck> {
        let hospital_id = caller.checked_hospital(named)?;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        Ok(DetailsCheck {
            store: self.store.clone(),
            key: keys::check_scratch(&nonce),
            written: false,
            batch: Vec::with_capacity(CHECK_BATCH),
            stored: 0,
            report: DetailsReport {
                date,
                hospital_id,
                hospital_lines: 0,
                gateway_lines: 0,
                matched: 0,
                missing_in_gateway: Capped::new(max_listed),
                missing_in_hospital: Capped::new(max_listed),
                amount_mismatch: Capped::new(max_listed),
                duplicate_in_hospital: Capped::new(max_listed),
            },
        })
    }
}
