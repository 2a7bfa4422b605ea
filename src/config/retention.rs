//! `[retention]`: when settlement records leave the ledger (docs/REDIS_KEYS.md "Retention", docs/CAPACITY.md).
//! Off by default: nothing is archived until the office sets `settlement_days` and runs the exports and clearings
//! that archiving waits for.

use serde::Deserialize;

/// The shortest retention that may be set: a year and its clearing, with a margin (the events' default).
pub const MIN_SETTLEMENT_DAYS: u64 = 400;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// A day's settlement records, id claims, reconciliation lines and history members are archived (removed from
    /// Redis) once the day is this many days old — and only after `settlegate export` wrote the day and every
    /// hospital's clearing of its month is paid. 0 = never (the default). Archiving a day also refuses, from then
    /// on, new settlements with a visit date up to the day after it (422 `visit_archived`): a late retry of an
    /// archived settlement can never pay again (docs/API.md "Retention").
    #[serde(default)]
    pub settlement_days: u64,
    /// How often each instance tries to archive the next day (any instance may: each step is a compare-and-set).
    #[serde(default = "default_archive_interval_ms")]
    pub archive_interval_ms: u64,
    /// Reconciliation lines archived per script call (bounds the time Redis spends in one call).
    #[serde(default = "default_archive_batch_lines")]
    pub archive_batch_lines: u64,
}

fn default_archive_interval_ms() -> u64 {
    60_000
}

fn default_archive_batch_lines() -> u64 {
    200
}

impl Default for RetentionConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> Result<(), String> {
        let days = self.settlement_days;
        if days != 0 && !(MIN_SETTLEMENT_DAYS..=36_500).contains(&days) {
            return Err(format!(
                "retention.settlement_days = {days} must be 0 (never) or in {MIN_SETTLEMENT_DAYS}..=36500"
            ));
        }
        for (name, v, lo, hi) in [
            ("retention.archive_interval_ms", self.archive_interval_ms, 100, 86_400_000),
            ("retention.archive_batch_lines", self.archive_batch_lines, 1, 5_000),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(format!("{name} = {v} must be in {lo}..={hi}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_never_shorter_than_a_year_and_its_clearing() {
        let d = RetentionConfig::default();
        assert_eq!((d.settlement_days, d.archive_interval_ms, d.archive_batch_lines), (0, 60_000, 200));
        assert!(d.validate().is_ok());
        let with = |days| RetentionConfig { settlement_days: days, ..RetentionConfig::default() };
        assert!(with(MIN_SETTLEMENT_DAYS).validate().is_ok());
        assert!(with(MIN_SETTLEMENT_DAYS - 1).validate().unwrap_err().contains("retention.settlement_days"));
        assert!(with(36_501).validate().is_err());
        let batch = RetentionConfig { archive_batch_lines: 0, ..RetentionConfig::default() };
        assert!(batch.validate().unwrap_err().contains("archive_batch_lines"));
    }
}
