//! Check family 4: no pool is above its budget, the budget is the base plus the year's net contributions, and,
//! when the run owns the store, pool totals moved by exactly the run's payments and contributions.

use std::collections::BTreeMap;

use serde::Serialize;

use super::check::Check;
use super::contributions::ContributionsSummary;
use super::read::read_json;
use super::signed_fen;
use super::AuditInput;
use crate::client::{Endpoint, JsonAnswer};
use crate::workload::{RecordState, SettlementRecord};

/// One relief program's pool for the year, as the admin API lists it (−1 for a field that was missing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// The ruleset's `annual_pool_fen`.
    pub base_fen: i64,
    /// The year's net contributions (donations − withdrawals).
    pub contributions_fen: i64,
    /// What the program may pay this year: must be `base_fen + contributions_fen`.
    pub budget_fen: i64,
    /// What the program has paid from it this year: must stay within the budget.
    pub paid_fen: i64,
    /// What is left, as the gateway reports it: `max(budget − paid, 0)`.
    pub left_fen: i64,
    /// Net fen by donor: must add up to `contributions_fen`.
    pub donors: BTreeMap<String, i64>,
}

pub(super) async fn read_pools(admin: &Endpoint, year: &str) -> Result<BTreeMap<String, Pool>, String> {
    let JsonAnswer { status, body: v } = read_json(admin, &format!("/admin/v1/pools?year={year}")).await?;
    if status != 200 {
        return Err(format!("GET /admin/v1/pools: HTTP {status} {v}"));
    }
    let mut pools = BTreeMap::new();
    for p in v["pools"].as_array().ok_or_else(|| format!("pools body without pools: {v}"))? {
        let program = p["program"].as_str().unwrap_or_default().to_string();
        let fen = |f: &str| p[f].as_i64().unwrap_or(-1);
        let mut donors = BTreeMap::new();
        for d in p["donors"].as_array().into_iter().flatten() {
            let name = d["donor"].as_str().unwrap_or_default().to_string();
            *donors.entry(name).or_insert(0) += d["amount_fen"].as_i64().unwrap_or(0);
        }
        pools.insert(
            program,
            Pool {
                base_fen: fen("base_fen"),
                contributions_fen: fen("contributions_fen"),
                budget_fen: fen("budget_fen"),
                paid_fen: fen("paid_fen"),
                left_fen: fen("left_fen"),
                donors,
            },
        );
    }
    Ok(pools)
}

/// What is wrong with one pool row on its own (budget = base + contributions, paid within it, left, donors).
fn row_problems(pool: &Pool) -> Vec<String> {
    let mut why = Vec::new();
    if !(0..=pool.budget_fen).contains(&pool.paid_fen) {
        why.push(format!("paid {} above budget {}", pool.paid_fen, pool.budget_fen));
    }
    if pool.budget_fen != pool.base_fen.saturating_add(pool.contributions_fen) {
        why.push(format!(
            "budget {} != base {} + contributions {}",
            pool.budget_fen, pool.base_fen, pool.contributions_fen
        ));
    }
    if pool.left_fen != (pool.budget_fen - pool.paid_fen).max(0) {
        why.push(format!("left {} != budget {} - paid {}", pool.left_fen, pool.budget_fen, pool.paid_fen));
    }
    let donors: i64 = pool.donors.values().sum();
    if donors != pool.contributions_fen {
        why.push(format!("donors add up to {donors}, contributions are {}", pool.contributions_fen));
    }
    why
}

/// `pools_within_budget` and `pool_totals_moved_by_the_answers` (informational on a shared store). With the run's
/// contributions, `pools_within_budget` also compares their pool's `contributions_fen` (and each donor's total)
/// with what they moved it by: exactly on an exclusive store, informational on a shared one.
pub(super) async fn check(
    input: &AuditInput,
    settled: &[&SettlementRecord],
    contributions: Option<&ContributionsSummary>,
) -> [Check; 2] {
    let scenario = &input.workload.scenario;
    let mut pools_check = Check::new("pools_within_budget");
    let mut pool_delta = Check::new("pool_totals_moved_by_the_answers");
    if !input.options.exclusive_store {
        pool_delta.note =
            Some("informational: the store is shared with other traffic (audit.exclusive_store = false)".into());
    }
    let mut paid_by_program: BTreeMap<String, i64> = BTreeMap::new();
    for r in settled.iter().filter(|r| r.state == RecordState::Settled) {
        for p in &r.answer.as_ref().expect("answered").payments {
            let paid = paid_by_program.entry(p.program.clone()).or_insert(0);
            *paid = paid.saturating_add(signed_fen(p.paid_fen));
        }
    }
    match read_pools(&input.admin, &input.year).await {
        Ok(pools) => {
            for (program, pool) in &pools {
                let why = row_problems(pool);
                pools_check.expect(why.is_empty(), || format!("{program}: {}", why.join("; ")));
                let before = input.before.pools.get(program).cloned().unwrap_or_default();
                let want = paid_by_program.get(program).copied().unwrap_or(0);
                let delta = pool.paid_fen - before.paid_fen;
                if delta == want {
                    pool_delta.ok();
                } else if input.options.exclusive_store {
                    pool_delta.fail(format!("{program}: paid moved by {delta}, answers sum to {want}"));
                } else {
                    pool_delta
                        .differ(format!("{program}: paid moved by {delta}, answers sum to {want} (shared store)"));
                }
                if let Some(c) = contributions.filter(|c| &c.program == program) {
                    contributions_moved(&mut pools_check, input.options.exclusive_store, c, &before, pool);
                }
            }
            for p in scenario.ruleset.programs.iter().filter(|p| p.annual_pool_fen.is_some()) {
                pools_check.expect(pools.contains_key(&p.id), || {
                    format!("{}: has annual_pool_fen but no pool is listed", p.id)
                });
            }
        }
        Err(e) => pools_check.fail(e),
    }
    [pools_check, pool_delta]
}

/// The run's pool: `contributions_fen` and each donor's total moved by the run's accepted contributions.
fn contributions_moved(check: &mut Check, exclusive: bool, c: &ContributionsSummary, before: &Pool, after: &Pool) {
    let delta = after.contributions_fen - before.contributions_fen.max(0);
    let mut why = Vec::new();
    if delta != c.net_fen {
        why.push(format!("contributions_fen moved by {delta}, the run's accepted contributions net {}", c.net_fen));
    }
    for (donor, net) in &c.by_donor {
        let moved = after.donors.get(donor).copied().unwrap_or(0) - before.donors.get(donor).copied().unwrap_or(0);
        if moved != *net {
            why.push(format!("donor {donor}: moved by {moved}, the run's net {net}"));
        }
    }
    let example = || format!("{}: {}", c.program, why.join("; "));
    if why.is_empty() {
        check.ok();
    } else if exclusive && !c.uncertain {
        check.fail(example());
    } else {
        check.differ(format!("{} (shared store or unresolved outcomes: informational)", example()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_rows_add_up() {
        let mut p = Pool {
            base_fen: 100,
            contributions_fen: 50,
            budget_fen: 150,
            paid_fen: 150,
            left_fen: 0,
            donors: [("a".to_string(), 70), ("b".to_string(), -20)].into_iter().collect(),
        };
        assert!(row_problems(&p).is_empty());
        p.budget_fen = 100;
        p.left_fen = 0;
        let why = row_problems(&p);
        assert_eq!(why.len(), 2, "{why:?}"); // paid above budget, budget != base + contributions
        p.budget_fen = 150;
        p.donors.insert("c".into(), 1);
        assert_eq!(row_problems(&p), vec!["donors add up to 51, contributions are 50".to_string()]);
        let mut c = ContributionsSummary { program: "charity".into(), net_fen: 50, ..Default::default() };
        c.by_donor.insert("a".into(), 70);
        c.by_donor.insert("b".into(), -20);
        let mut check = Check::new("x");
        let before = Pool::default();
        contributions_moved(&mut check, true, &c, &before, &p);
        assert!(check.passed);
        c.net_fen = 49;
        contributions_moved(&mut check, true, &c, &before, &p);
        assert!(!check.passed);
    }
}
