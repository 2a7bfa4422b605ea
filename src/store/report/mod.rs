//! Relief-report aggregates: the day lists consumed incrementally into compact per-day entries, with a
//! watermark per list, and the reads a report makes (docs/DESIGN.md "Reports", docs/CLUSTER.md section 8).
//!
//! The day lists `{sg}:recon:<day>:<H>:events` are append-only and are exactly what the reconciliation detail reads.
//! The aggregator reads a batch of lines past a list's watermark (`LRANGE`, outside any script: lines never change
//! once written), interns the batch's labels (`scripts/report_labels.lua`), encodes the lines ([`entry`]) and
//! appends them with the new watermark in one step that first checks the watermark is unchanged
//! (`scripts/report_apply.lua`). So every line reaches the entries exactly once, whichever instance or request ran
//! the batch, and the entries of a day always describe a prefix of each of its lists. Nothing is added to the
//! settle script: the hot path pays nothing, the aggregator pays per batch.

pub mod entry;

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use redis::Script;

use super::dayline::{parse_line, DayLine};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;

/// `scripts/report_apply.lua`: a batch of entries and its watermark, compare-and-set.
static APPLY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../scripts/report_apply.lua")));
/// `scripts/report_labels.lua`: label → id, assigned once.
static LABELS: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../scripts/report_labels.lua")));

/// Most label ids a report accepts from `{sg}:report:labels` (hospitals, streets, communities, categories and
/// programs of a district: thousands); a larger id means the hash is not what this code wrote.
pub const MAX_LABEL_ID: u32 = 1 << 24;

/// The labels by id (`0` = ""), as a report reads them.
pub struct Labels(Vec<String>);

impl Labels {
    pub fn get(&self, id: u32) -> Option<&str> {
        self.0.get(id as usize).map(String::as_str)
    }
}

impl Store {
    /// Brings the report entries of `days` up to the end of every day list as it is now, `batch_lines` lines per
    /// step. Returns the number of lines this call consumed (others may have consumed some meanwhile: they are not
    /// counted twice). Safe to run from any number of instances at once.
    pub async fn report_catch_up(&self, days: &[String], batch_lines: usize) -> StoreResult<u64> {
        const OP: &str = "report_watermarks";
        if days.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for day in days {
            pipe.cmd("SMEMBERS").arg(keys::recon_hospitals(day));
        }
        let mut conn = self.conn(OP)?;
        let hospitals: Vec<Vec<String>> =
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        let mut pipe = redis::pipe();
        for day in days {
            pipe.cmd("HGETALL").arg(keys::report_consumed(day));
        }
        let mut conn = self.conn(OP)?;
        let consumed: Vec<HashMap<String, u64>> =
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        let lists: Vec<(&String, &String)> =
            days.iter().zip(&hospitals).flat_map(|(d, hs)| hs.iter().map(move |h| (d, h))).collect();
        if lists.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for (day, h) in &lists {
            pipe.cmd("LLEN").arg(keys::recon_events(day, h));
        }
        let mut conn = self.conn(OP)?;
        let lens: Vec<u64> = self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        let mut total = 0;
        for ((day, h), len) in lists.iter().zip(lens) {
            let i = days.iter().position(|d| d == *day).expect("listed from days");
            let done = consumed[i].get(*h).copied().unwrap_or(0);
            if done < len {
                total += self.consume_list(day, h, done, len, batch_lines.max(1)).await?;
            }
        }
        if total > 0 {
            metrics::counter!("settlegate_report_lines_consumed_total").increment(total);
        }
        Ok(total)
    }

    /// Consumes lines `[from, to)` of one day list, a batch at a time; a batch that lost the race to another
    /// consumer is dropped and reading resumes at the watermark the winner left.
    async fn consume_list(&self, day: &str, hospital: &str, from: u64, to: u64, batch: usize) -> StoreResult<u64> {
        const OP: &str = "report_consume";
        let key = keys::recon_events(day, hospital);
        let mut at = from;
        let mut consumed = 0;
        while at < to {
            let n = (to - at).min(batch as u64);
            let (first, last) = (index(at), index(at + n - 1));
            let mut conn = self.conn(OP)?;
            let k = key.clone();
            let lines: Vec<String> = self
                .call(OP, false, async move {
                    redis::cmd("LRANGE").arg(k).arg(first).arg(last).query_async(&mut conn).await
                })
                .await?;
            if lines.is_empty() {
                break;
            }
            let events = lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    parse_line(l)
                        .ok_or_else(|| StoreError::corrupt(OP, format!("unreadable line {} of {key}", at + i as u64)))
                })
                .collect::<StoreResult<Vec<DayLine<'_>>>>()?;
            let ids = self.intern_labels(hospital, &events).await?;
            let mut bytes = Vec::with_capacity(events.len() * 40);
            for e in &events {
                entry::encode(&mut bytes, hospital, e, |l| ids.get(l).copied().unwrap_or(0));
            }
            let next = at + events.len() as u64;
            let mut inv = APPLY.prepare_invoke();
            inv.key(keys::report_consumed(day))
                .key(keys::report_entries(day))
                .arg(hospital)
                .arg(at)
                .arg(next)
                .arg(bytes);
            let mut conn = self.conn(OP)?;
            // `writes: false`: a batch whose answer timed out is either applied or not, and the watermark says
            // which; a retry cannot count a line twice, so a timeout is "unavailable", never "outcome unknown"
            let (applied, watermark): (u8, u64) =
                self.call(OP, false, async move { inv.invoke_async(&mut conn).await }).await?;
            if applied == 1 {
                consumed += next - at;
            }
            at = watermark;
        }
        Ok(consumed)
    }

    /// The ids of the batch's labels (hospital, streets, communities, categories, programs), interned.
    async fn intern_labels(&self, hospital: &str, events: &[DayLine<'_>]) -> StoreResult<HashMap<String, u32>> {
        const OP: &str = "report_labels";
        let mut wanted: BTreeSet<&str> = BTreeSet::from([hospital]);
        for e in events {
            wanted.extend([e.street(), e.community(), e.category()]);
            wanted.extend(e.by_program.iter().map(|&(program, _)| program));
        }
        wanted.remove("");
        let wanted: Vec<&str> = wanted.into_iter().collect();
        let mut inv = LABELS.prepare_invoke();
        inv.key(keys::REPORT_LABELS);
        for l in &wanted {
            inv.arg(*l);
        }
        let mut conn = self.conn(OP)?;
        let ids: Vec<u32> = self.call(OP, false, async move { inv.invoke_async(&mut conn).await }).await?;
        if ids.len() != wanted.len() {
            return Err(StoreError::corrupt(OP, "label ids do not match the labels asked"));
        }
        Ok(wanted.into_iter().map(String::from).zip(ids).collect())
    }

    /// Every label by id.
    pub async fn report_labels(&self) -> StoreResult<Labels> {
        const OP: &str = "report_labels_read";
        let mut conn = self.conn(OP)?;
        let raw: HashMap<String, String> = self
            .call(OP, false, async move { redis::cmd("HGETALL").arg(keys::REPORT_LABELS).query_async(&mut conn).await })
            .await?;
        let mut by_id = vec![String::new()];
        for (field, label) in raw {
            let Some(id) = field.strip_prefix("i:") else { continue };
            let id: u32 = id
                .parse()
                .ok()
                .filter(|id| (1..=MAX_LABEL_ID).contains(id))
                .ok_or_else(|| StoreError::corrupt(OP, format!("label id {id:?}")))?;
            if by_id.len() <= id as usize {
                by_id.resize(id as usize + 1, String::new());
            }
            by_id[id as usize] = label;
        }
        Ok(Labels(by_id))
    }

    /// The report entries of one day (empty when nothing was consumed).
    pub async fn report_entries(&self, day: &str) -> StoreResult<Vec<u8>> {
        const OP: &str = "report_entries";
        let mut conn = self.conn(OP)?;
        let key = keys::report_entries(day);
        let bytes: Option<Vec<u8>> =
            self.call(OP, false, async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }).await?;
        Ok(bytes.unwrap_or_default())
    }
}

/// A list index for LRANGE (Redis takes signed indexes; a list never holds 2^63 lines).
fn index(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}
