//! What a run does: the operations and how the mix picks them, and the load shape (open, closed, ramp).

use super::{OperationMix, MAX_RATE_PER_S};

/// The load shape of a run after command-line overrides.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadShape {
    /// Open model: arrivals at a constant rate, latency from each request's intended start.
    Open {
        /// Arrivals per second.
        rate_per_s: f64,
        /// Length of the phase, seconds.
        duration_s: f64,
    },
    /// Closed model: a fixed number of requests back to back (finds the saturation throughput).
    Closed {
        /// Requests kept in flight.
        concurrency: usize,
        /// Length of the phase, seconds.
        duration_s: f64,
    },
    /// Open-model steps of increasing rate until the SLO breaks.
    Ramp {
        /// The steps' rates.
        spec: RampSpec,
        /// Length of one step, seconds.
        step_s: f64,
    },
}

/// A ramp of open-model steps: the rates of its first and last step and the increase between steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampSpec {
    /// Offered rate of the first step, requests per second.
    pub start_per_s: f64,
    /// How much each step offers more than the one before, requests per second.
    pub step_per_s: f64,
    /// No step offers more than this, requests per second (the ramp may stop earlier, at the SLO).
    pub max_per_s: f64,
}

/// A ramp `start:step:max`, e.g. `500:500:5000`.
pub fn parse_ramp(spec: &str) -> Result<RampSpec, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() != 3 {
        return Err(format!("ramp {spec:?}: expected start:step:max"));
    }
    let mut v = [0.0f64; 3];
    for (slot, part) in v.iter_mut().zip(&parts) {
        *slot = part.trim().parse::<f64>().map_err(|_| format!("ramp {spec:?}: {part:?} is not a number"))?;
    }
    let (start, step, max) = (v[0], v[1], v[2]);
    if !(start > 0.0 && step > 0.0 && max >= start && max <= MAX_RATE_PER_S) {
        return Err(format!("ramp {spec:?}: need 0 < start <= max <= {MAX_RATE_PER_S} and step > 0"));
    }
    if (max - start) / step > 200.0 {
        return Err(format!("ramp {spec:?}: more than 200 steps"));
    }
    Ok(RampSpec { start_per_s: start, step_per_s: step, max_per_s: max })
}

/// The operations the tool can issue, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `POST /v1/eligibility`.
    Eligibility,
    /// `POST /v1/settlements/quote`.
    Quote,
    /// `POST /v1/settlements`, a new settlement.
    Settle,
    /// `POST /v1/settlements` again with an answered settlement's exact body: must replay the same answer.
    Retry,
    /// `POST /v1/reversals` of an answered settlement.
    Reversal,
    /// `POST /v1/reversals` of an id never settled: the id must stay unusable.
    Cancel,
    /// `GET /v1/settlements?card_id=`: the hospital's history of a card.
    History,
    /// `POST /v1/settlements` with another standing settlement's `insurance.settlement_ref`: must be refused.
    RefReuse,
    /// `POST /admin/v1/pools/{program}/contributions` as the relief office: a donation, a withdrawal, or a replay
    /// (or a conflicting reuse) of an earlier contribution's id.
    Contribution,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::Eligibility,
        Op::Quote,
        Op::Settle,
        Op::Retry,
        Op::Reversal,
        Op::Cancel,
        Op::History,
        Op::RefReuse,
        Op::Contribution,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Eligibility => "eligibility",
            Op::Quote => "quote",
            Op::Settle => "settle",
            Op::Retry => "retry",
            Op::Reversal => "reversal",
            Op::Cancel => "cancel",
            Op::History => "history",
            Op::RefReuse => "ref_reuse",
            Op::Contribution => "contribution",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl OperationMix {
    pub fn weight(&self, op: Op) -> u32 {
        match op {
            Op::Eligibility => self.eligibility,
            Op::Quote => self.quote,
            Op::Settle => self.settle,
            Op::Retry => self.retry,
            Op::Reversal => self.reversal,
            Op::Cancel => self.cancel,
            Op::History => self.history,
            Op::RefReuse => self.ref_reuse,
            Op::Contribution => self.contribution,
        }
    }

    /// Sets one operation's weight by its report name (`--mix history=5`).
    pub fn set(&mut self, name: &str, weight: u32) -> Result<(), String> {
        let op = Op::ALL.into_iter().find(|op| op.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
            format!("unknown operation {name:?} (one of {})", names.join(", "))
        })?;
        let slot = match op {
            Op::Eligibility => &mut self.eligibility,
            Op::Quote => &mut self.quote,
            Op::Settle => &mut self.settle,
            Op::Retry => &mut self.retry,
            Op::Reversal => &mut self.reversal,
            Op::Cancel => &mut self.cancel,
            Op::History => &mut self.history,
            Op::RefReuse => &mut self.ref_reuse,
            Op::Contribution => &mut self.contribution,
        };
        *slot = weight;
        Ok(())
    }

    pub fn total(&self) -> u64 {
        Op::ALL.iter().map(|&op| self.weight(op) as u64).sum()
    }

    /// Maps `x` in `0..total()` to an operation by cumulative weight.
    pub fn pick(&self, mut x: u64) -> Op {
        for op in Op::ALL {
            let w = self.weight(op) as u64;
            if x < w {
                return op;
            }
            x -= w;
        }
        Op::Settle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_mix_picks_by_cumulative_weight() {
        let mut mix = OperationMix { eligibility: 1, settle: 2, reversal: 1, ..Default::default() };
        assert_eq!(mix.total(), 4);
        assert_eq!(mix.pick(0), Op::Eligibility);
        assert_eq!(mix.pick(1), Op::Settle);
        assert_eq!(mix.pick(2), Op::Settle);
        assert_eq!(mix.pick(3), Op::Reversal);
        mix.set("history", 2).unwrap();
        mix.set("ref_reuse", 1).unwrap();
        assert_eq!(mix.total(), 7);
        assert_eq!(mix.pick(4), Op::History);
        assert_eq!(mix.pick(5), Op::History);
        assert_eq!(mix.pick(6), Op::RefReuse);
        mix.set("contribution", 1).unwrap();
        assert_eq!(mix.pick(7), Op::Contribution);
        assert!(mix.set("nap", 1).unwrap_err().contains("ref_reuse"));
    }

    #[test]
    fn ramp_specs() {
        assert_eq!(
            parse_ramp("500:250:2000").unwrap(),
            RampSpec { start_per_s: 500.0, step_per_s: 250.0, max_per_s: 2000.0 }
        );
        assert!(parse_ramp("500:250").is_err());
        assert!(parse_ramp("0:1:2").is_err());
        assert!(parse_ramp("10:0:20").is_err());
        assert!(parse_ramp("1:1:1000").is_err(), "too many steps");
    }
}
