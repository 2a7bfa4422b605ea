//! Bills drawn from the scenario's distributions.

use rand::rngs::SmallRng;
use rand::Rng;

use crate::scenario::{BillProfile, Scenario};

/// A bill as the hospital sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bill {
    /// `outpatient` | `chronic` | `inpatient` (static: no allocation per request).
    pub visit_type: &'static str,
    /// The bill total; the four buckets below add up to it.
    pub total_fen: u64,
    /// Within the insurance scope.
    pub in_scope_fen: u64,
    /// Partly self-paid items before insurance.
    pub pre_self_pay_fen: u64,
    /// Above the insurance limits.
    pub over_limit_fen: u64,
    /// Fully self-paid: the rest of the total.
    pub self_pay_fen: u64,
    /// What basic insurance already paid (of `in_scope_fen`).
    pub basic_fen: u64,
    /// What critical-illness insurance already paid.
    pub critical_illness_fen: u64,
}

fn visit_type_static(s: &str) -> &'static str {
    match s {
        "outpatient" => "outpatient",
        "chronic" => "chronic",
        _ => "inpatient",
    }
}

/// Draws bills from the scenario's bill profiles, each profile as often as its weight says.
#[derive(Debug, Clone)]
pub struct BillMaker {
    /// The profiles with a positive weight.
    profiles: Vec<BillProfile>,
    /// Sum of their weights.
    total_weight: u64,
}

/// 2^53: below it every integer is exactly an f64 (the scenario bounds bill totals by 2^53 − 1).
const EXACT_F64_LIMIT: f64 = 9_007_199_254_740_992.0;

/// An amount of fen computed in floating point (a share of a bill, a log-uniform draw) as an integer, exactly:
/// `x` must be integral (already floored or rounded) and in 0..2^53, else `None`. The integer is read from the
/// float's bits instead of with `as`, which would silently saturate a negative or too large amount.
fn exact_fen(x: f64) -> Option<u64> {
    if !(0.0..EXACT_F64_LIMIT).contains(&x) || x.fract() != 0.0 {
        return None;
    }
    if x == 0.0 {
        return Some(0);
    }
    // x = 1.mantissa × 2^(exponent − 1023) with 1 <= x < 2^53, so the biased exponent is within 1023..=1075 and
    // the integer is the 53-bit significand shifted right by (1075 − exponent); the bits shifted out are 0.
    let bits = x.to_bits();
    let exponent = (bits >> 52) & 0x7ff;
    let significand = (bits & ((1 << 52) - 1)) | (1 << 52);
    Some(significand >> (1075 - exponent))
}

fn share(rng: &mut SmallRng, amount: u64, pct: [u32; 2]) -> u64 {
    let (low, high) = (f64::from(pct[0]), f64::from(pct[1]));
    let fraction = if pct[0] == pct[1] { low } else { rng.random_range(low..high) } / 100.0;
    // amount < 2^53 and 0 <= fraction <= 1 (the scenario validates both): the floor is a whole amount within it.
    exact_fen(((amount as f64) * fraction).floor()).expect("a share of a bill lies within the bill")
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
            // exp(ln max) may round to just above max (and past 2^53 when max is 2^53 − 1): clamp either way.
            exact_fen(ln.exp().round()).map_or(max, |fen| fen.clamp(min, max))
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
    use crate::scenario::smoke;
    use rand::SeedableRng;

    #[test]
    fn exact_fen_reads_whole_amounts_and_refuses_the_rest() {
        for fen in [0u64, 1, 2, 3, 7, 1000, 123_456_789, (1 << 52) - 1, 1 << 52, (1 << 52) + 1, (1 << 53) - 1] {
            let x = fen as f64;
            assert_eq!(exact_fen(x), Some(fen), "{fen}");
        }
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..100_000 {
            let x: f64 = rng.random_range(0.0..EXACT_F64_LIMIT).floor();
            assert_eq!(exact_fen(x).map(|fen| fen.to_string()), Some(format!("{x:.0}")));
        }
        for x in [-1.0, 0.5, EXACT_F64_LIMIT, f64::NAN, f64::INFINITY] {
            assert_eq!(exact_fen(x), None, "{x}");
        }
        assert_eq!(exact_fen(-0.0), Some(0));
    }

    #[test]
    fn bills_add_up_and_respect_insurance() {
        let s = smoke();
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
