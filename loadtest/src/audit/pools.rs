//! Check family 4: no pool is above its budget, and, when the run owns the store, pool totals moved by exactly
//! the run's payments.

use std::collections::BTreeMap;

use serde::Serialize;

use super::check::Check;
use super::read::read_json;
use super::signed_fen;
use super::AuditInput;
use crate::client::{Endpoint, JsonAnswer};
use crate::workload::{RecordState, SettlementRecord};

/// One relief program's pool for the year, as the admin API lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// The program's annual pool, as `GET /admin/v1/pools` lists it (−1 if the field was missing).
    pub budget_fen: i64,
    /// What the program has paid from it this year: must stay within the budget.
    pub paid_fen: i64,
    /// What is left, as the gateway reports it.
    pub left_fen: i64,
}

pub(super) async fn read_pools(admin: &Endpoint, year: &str) -> Result<BTreeMap<String, Pool>, String> {
    let JsonAnswer { status, body: v } = read_json(admin, &format!("/admin/v1/pools?year={year}")).await?;
    if status != 200 {
        return Err(format!("GET /admin/v1/pools: HTTP {status} {v}"));
    }
    let mut pools = BTreeMap::new();
    for p in v["pools"].as_array().ok_or_else(|| format!("pools body without pools: {v}"))? {
        let program = p["program"].as_str().unwrap_or_default().to_string();
        pools.insert(
            program,
            Pool {
                budget_fen: p["budget_fen"].as_i64().unwrap_or(-1),
                paid_fen: p["paid_fen"].as_i64().unwrap_or(-1),
                left_fen: p["left_fen"].as_i64().unwrap_or(-1),
            },
        );
    }
    Ok(pools)
}

/// `pools_within_budget` and `pool_totals_moved_by_the_answers` (informational on a shared store).
pub(super) async fn check(input: &AuditInput, settled: &[&SettlementRecord]) -> [Check; 2] {
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
                pools_check.expect(pool.paid_fen <= pool.budget_fen && pool.paid_fen >= 0, || {
                    format!("{program}: paid {} above budget {}", pool.paid_fen, pool.budget_fen)
                });
                let before = input.before.pools.get(program).map(|p| p.paid_fen).unwrap_or(0);
                let want = paid_by_program.get(program).copied().unwrap_or(0);
                let delta = pool.paid_fen - before;
                if delta == want {
                    pool_delta.ok();
                } else if input.options.exclusive_store {
                    pool_delta.fail(format!("{program}: paid moved by {delta}, answers sum to {want}"));
                } else {
                    pool_delta
                        .differ(format!("{program}: paid moved by {delta}, answers sum to {want} (shared store)"));
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
