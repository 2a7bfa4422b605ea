//! Per-hospital rate limits (governor, keyed by hospital id). Limits are per gateway instance: N instances admit
//! N × the quota. Money limits never live here; they live in Redis.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct HospitalLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl HospitalLimiter {
    pub fn new(per_second: u32, burst: u32) -> HospitalLimiter {
        let quota = Quota::per_second(NonZeroU32::new(per_second).expect("validated >= 1"))
            .allow_burst(NonZeroU32::new(burst).expect("validated >= 1"));
        HospitalLimiter { limiter: RateLimiter::keyed(quota) }
    }

    /// `Ok` to go ahead, or the whole seconds to wait (for `Retry-After`, at least 1).
    pub fn check(&self, hospital_id: &str) -> Result<(), u64> {
        match self.limiter.check_key(&hospital_id.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
            }
        }
    }

    /// Forgets hospitals idle long enough to be back at full burst; run periodically so the map cannot grow forever.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}
