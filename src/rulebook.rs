//! The published rulesets, cached in memory and refreshed from Redis.
//!
//! Every `rules_refresh_ms` (default 250 ms) each gateway instance reads one counter (`HGET {sg}:rulesets latest`)
//! and reloads the rulesets when it moved, so a ruleset published on any instance is in use everywhere within
//! 1 s. A poll rather than pub/sub: it needs no dedicated connection, cannot miss a message across a reconnect, and
//! costs one tiny read per instance per interval.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::NaiveDate;

use crate::domain::rules::{in_force, Ruleset, VisitType};
use crate::store::{settle_script, Store};

/// A ruleset with its settle scripts, one per visit type (`store::program_code`: the programs as Lua constants).
pub struct CompiledRuleset {
    pub ruleset: Ruleset,
    /// Indexed by `VisitType as usize`.
    scripts: [redis::Script; 3],
}

impl CompiledRuleset {
    pub fn new(ruleset: Ruleset) -> CompiledRuleset {
        let scripts = VisitType::ALL.map(|v| settle_script(Some((&ruleset, v))));
        CompiledRuleset { ruleset, scripts }
    }

    /// The settle script for a visit of `visit_type` under this ruleset.
    pub fn script(&self, visit_type: VisitType) -> &redis::Script {
        &self.scripts[visit_type as usize]
    }
}

/// An immutable snapshot of all published rulesets.
#[derive(Default)]
pub struct Rulebook {
    pub rulesets: Vec<Arc<CompiledRuleset>>,
    plain: Vec<Ruleset>,
}

impl Rulebook {
    pub fn new(rulesets: Vec<Ruleset>) -> Rulebook {
        Rulebook::reusing(rulesets, &Rulebook::default())
    }

    /// A snapshot that takes each ruleset `previous` already compiled (the same version, the same content) from it,
    /// and compiles only the others: a publish adds one ruleset, and compiling every earlier one again cost each
    /// instance three scripts per version on every publish (docs/BENCHMARKS.md, issue 13).
    pub fn reusing(mut rulesets: Vec<Ruleset>, previous: &Rulebook) -> Rulebook {
        rulesets.sort_by_key(|r| r.version);
        let compiled = rulesets
            .iter()
            .map(|r| match previous.rulesets.iter().find(|c| c.ruleset.version == r.version) {
                Some(c) if c.ruleset == *r => c.clone(),
                _ => Arc::new(CompiledRuleset::new(r.clone())),
            })
            .collect();
        Rulebook { rulesets: compiled, plain: rulesets }
    }

    pub fn latest_version(&self) -> u64 {
        self.plain.last().map(|r| r.version).unwrap_or(0)
    }

    /// RULES.md: the ruleset in force for a visit on `date`.
    pub fn in_force(&self, date: NaiveDate) -> Option<Arc<CompiledRuleset>> {
        let version = in_force(&self.plain, date)?.version;
        self.rulesets.iter().find(|r| r.ruleset.version == version).cloned()
    }
}

#[derive(Default)]
pub struct RulebookCache {
    current: RwLock<Arc<Rulebook>>,
}

impl RulebookCache {
    pub fn snapshot(&self) -> Arc<Rulebook> {
        self.current.read().expect("rulebook lock").clone()
    }

    /// Installs `rulesets` unless the snapshot is already newer (a slow refresh must not undo a faster one).
    pub fn replace(&self, rulesets: Vec<Ruleset>) {
        let book = Arc::new(Rulebook::reusing(rulesets, &self.snapshot()));
        let mut current = self.current.write().expect("rulebook lock");
        if book.latest_version() >= current.latest_version() {
            *current = book;
        }
    }

    /// Loads the rulesets when Redis has a newer version than the snapshot. Returns the version now in use.
    pub async fn refresh(&self, store: &Store) -> Result<u64, crate::store::StoreError> {
        let latest = store.latest_ruleset_version().await?;
        let have = self.snapshot().latest_version();
        if latest != have {
            let rulesets = store.load_rulesets().await?;
            let version = rulesets.last().map(|r| r.version).unwrap_or(0);
            self.replace(rulesets);
            tracing::info!(ruleset_version = version, "rulesets reloaded");
            return Ok(version);
        }
        Ok(have)
    }

    /// Runs forever, refreshing every `interval`.
    pub async fn keep_fresh(self: Arc<Self>, store: Arc<Store>, interval: Duration) {
        loop {
            if let Err(e) = self.refresh(&store).await {
                tracing::debug!(error = %e, "ruleset refresh failed");
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Rulebook;
    use crate::domain::rules::Ruleset;

    fn ruleset(version: u64, published_at: &str) -> Ruleset {
        Ruleset {
            version,
            effective_from: "2026-01-01".parse().unwrap(),
            published_at: published_at.into(),
            programs: vec![],
        }
    }

    #[test]
    fn a_refresh_compiles_only_what_is_new_or_changed() {
        let first = Rulebook::new(vec![ruleset(2, "b"), ruleset(1, "a")]);
        let next = Rulebook::reusing(vec![ruleset(1, "a"), ruleset(2, "b2"), ruleset(3, "c")], &first);
        let versions: Vec<u64> = next.rulesets.iter().map(|c| c.ruleset.version).collect();
        assert_eq!(versions, [1, 2, 3]);
        assert!(Arc::ptr_eq(&next.rulesets[0], &first.rulesets[0]), "version 1 unchanged: reused");
        assert!(!Arc::ptr_eq(&next.rulesets[1], &first.rulesets[1]), "version 2 changed: compiled again");
        assert_eq!(next.rulesets[1].ruleset.published_at, "b2");
        assert_eq!(next.latest_version(), 3);
    }
}
