//! Bills drawn from the scenario's distributions.

use rand::rngs::SmallRng;
use rand::Rng;

use crate::scenario::{BillProfile, Scenario};

/// A bill as the hospital sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bill {
    pub visit_type: &'static str,
    pub total_fen: u64,
    pub in_scope_fen: u64,
    pub pre_self_pay_fen: u64,
    pub over_limit_fen: u64,
    pub self_pay_fen: u64,
    pub basic_fen: u64,
    pub critical_illness_fen: u64,
}

fn visit_type_static(s: &str) -> &'static str {
    match s {
        "outpatient" => "outpatient",
        "chronic" => "chronic",
        _ => "inpatient",
    }
}

#[derive(Debug, Clone)]
pub struct BillMaker {
    profiles: Vec<BillProfile>,
    total_weight: u64,
}

fn share(rng: &mut SmallRng, amount: u64, pct: [u32; 2]) -> u64 {
    let fraction =
        if pct[0] == pct[1] { pct[0] as f64 } else { rng.random_range(pct[0] as f64..pct[1] as f64) } / 100.0;
    ((amount as f64) * fraction).floor() as u64
}

impl BillMaker {
    pub fn new(scenario: &Scenario) -> BillMaker {
        let profiles: Vec<BillProfile> = scenario.bills.iter().filter(|b| b.weight > 0).cloned().collect();
        let total_weight = profiles.iter().map(|b| b.weight as u64).sum();
        BillMaker { profiles, total_weight }
    }

    pub fn make(&self, rng: &mut SmallRng) -> Bill {
        let mut x = rng.random_range(0..self.total_weight);
        let mut profile = &self.profiles[0];
        for p in &self.profiles {
            if x < p.weight as u64 {
                profile = p;
                break;
            }
            x -= p.weight as u64;
        }
        let (min, max) = (profile.total_fen.min, profile.total_fen.max);
        let total_fen = if min == max {
            min
        } else {
            let ln = rng.random_range((min as f64).ln()..(max as f64).ln());
            (ln.exp().round() as u64).clamp(min, max)
        };
        let in_scope_fen = share(rng, total_fen, profile.in_scope_pct);
        let pre_self_pay_fen = share(rng, total_fen, profile.pre_self_pay_pct).min(total_fen - in_scope_fen);
        let over_limit_fen =
            share(rng, total_fen, profile.over_limit_pct).min(total_fen - in_scope_fen - pre_self_pay_fen);
        let self_pay_fen = total_fen - in_scope_fen - pre_self_pay_fen - over_limit_fen;
        let insurance = share(rng, in_scope_fen, profile.insurance_pct);
        let critical_illness_fen = share(rng, insurance, profile.critical_illness_share_pct);
        Bill {
            visit_type: visit_type_static(&profile.visit_type),
            total_fen,
            in_scope_fen,
            pre_self_pay_fen,
            over_limit_fen,
            self_pay_fen,
            basic_fen: insurance - critical_illness_fen,
            critical_illness_fen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn scenario() -> Scenario {
        Scenario::from_toml(include_str!("../../scenarios/smoke.toml")).unwrap()
    }

    #[test]
    fn bills_add_up_and_respect_insurance() {
        let s = scenario();
        let maker = BillMaker::new(&s);
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let b = maker.make(&mut rng);
            assert_eq!(b.total_fen, b.in_scope_fen + b.pre_self_pay_fen + b.over_limit_fen + b.self_pay_fen, "{b:?}");
            assert!(b.basic_fen + b.critical_illness_fen <= b.in_scope_fen, "{b:?}");
            assert!(b.total_fen >= 2000 && b.total_fen <= 5_000_000, "{b:?}");
        }
    }
}
