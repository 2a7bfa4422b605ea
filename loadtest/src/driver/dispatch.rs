//! The open model's dispatchers: when each request of a phase is due, and the two ways of sending them on time
//! (see [`Schedule`](super::Schedule)).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{PRECISE_WINDOW, STOP, TICK_WINDOW};
use crate::stats::{micros, saturating_u64, Recorder};
use crate::workload::{mix64, Outcome, Workload};

/// When the requests of one open-model phase are due.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    /// When request 0 is due.
    pub(super) start: Instant,
    /// Time between two arrivals, nanoseconds (fractional: no drift at rates that do not divide a second).
    pub(super) interval_ns: f64,
    /// Requests the phase intends: rate × duration.
    pub(super) total: u64,
    /// The end of the phase: no request is sent after it.
    pub(super) end: Instant,
}

impl Plan {
    fn due(&self, i: u64) -> Instant {
        self.start + Duration::from_nanos(saturating_u64(i as f64 * self.interval_ns))
    }

    /// Past this, a dispatcher that is behind schedule stops rather than runs on.
    fn hard_end(&self) -> Instant {
        self.end + Duration::from_secs(1)
    }
}

/// Makes the task of one open-model request.
#[derive(Clone)]
pub(super) struct RequestFactory {
    /// What a request is.
    pub(super) workload: Arc<Workload>,
    /// The driver's in-flight counter.
    pub(super) in_flight: Arc<AtomicU64>,
    /// Base seed: request `i` draws from `seed ^ mix64(i)`, whichever task runs it.
    pub(super) seed: u64,
    /// The phase's shared recorder.
    pub(super) recorder: Arc<Mutex<Recorder>>,
}

impl RequestFactory {
    /// Request `i`, due at `intended`, holding one in-flight slot until it is answered.
    fn task(
        &self,
        i: u64,
        intended: Instant,
        permit: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send + 'static {
        let workload = self.workload.clone();
        let in_flight = self.in_flight.clone();
        let recorder = self.recorder.clone();
        let seed = self.seed ^ mix64(i);
        async move {
            let started = Instant::now();
            let mut rng = SmallRng::seed_from_u64(seed);
            in_flight.fetch_add(1, Ordering::Relaxed);
            let Outcome { op, error, expected_refusal } = workload.execute(&mut rng).await;
            let now = Instant::now();
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let latency_us = micros(now.saturating_duration_since(intended.min(started)));
            let lag_us = micros(started.saturating_duration_since(intended));
            let mut r = recorder.lock().expect("recorder");
            r.record(op, latency_us, error.as_deref(), now);
            if let Some(code) = expected_refusal {
                r.record_expected_refusal(code);
            }
            r.record_send_lag(lag_us);
            drop(r);
            drop(permit);
        }
    }
}

/// The tick schedule (see [`Schedule::Tick`]); returns how many requests it sent.
pub(super) async fn dispatch_ticks(plan: &Plan, permits: &Arc<Semaphore>, factory: &RequestFactory) -> u64 {
    let end = tokio::time::Instant::from_std(plan.end);
    let mut sent = 0;
    for i in 0..plan.total {
        if STOP.load(Ordering::Relaxed) {
            break;
        }
        let intended = plan.due(i);
        let now = Instant::now();
        if intended > now + TICK_WINDOW {
            tokio::time::sleep_until(tokio::time::Instant::from_std(intended - TICK_WINDOW)).await;
        } else if now > plan.hard_end() {
            break;
        }
        let permit = tokio::select! {
            biased;
            permit = permits.clone().acquire_owned() => permit.expect("semaphore open"),
            _ = tokio::time::sleep_until(end) => break,
        };
        tokio::spawn(factory.task(i, intended, permit));
        sent += 1;
    }
    sent
}

/// The precise schedule (see [`Schedule::Precise`]); runs on its own thread; returns how many it sent.
pub(super) fn dispatch_precise(
    plan: &Plan,
    runtime: &tokio::runtime::Handle,
    permits: &Arc<Semaphore>,
    factory: &RequestFactory,
) -> u64 {
    // 1 µs timer slack for this thread (default 50 µs) so the schedule keeps time; harmless if it fails.
    let _ = nix::sys::prctl::set_timerslack(1000);
    let end = tokio::time::Instant::from_std(plan.end);
    // A free in-flight slot, waiting for one if all are taken; None once the phase is over.
    let acquire = || match permits.clone().try_acquire_owned() {
        Ok(p) => Some(p),
        Err(_) => runtime.block_on(async {
            tokio::select! {
                biased;
                p = permits.clone().acquire_owned() => p.ok(),
                _ = tokio::time::sleep_until(end) => None,
            }
        }),
    };
    let mut i = 0;
    let mut over = false;
    while i < plan.total && !over && !STOP.load(Ordering::Relaxed) {
        let now = Instant::now();
        let first = plan.due(i);
        if first > now + PRECISE_WINDOW {
            std::thread::sleep(first - now - PRECISE_WINDOW);
        } else if now > plan.hard_end() {
            break;
        }
        let horizon = Instant::now() + PRECISE_WINDOW;
        let mut batch = Vec::new();
        while i < plan.total && plan.due(i) <= horizon {
            match acquire() {
                Some(permit) => batch.push(factory.task(i, plan.due(i), permit)),
                None => {
                    over = true;
                    break;
                }
            }
            i += 1;
        }
        // One wake-up of the runtime per window; the tasks are then spawned from inside it.
        runtime.spawn(async move {
            for task in batch {
                tokio::spawn(task);
            }
        });
    }
    i
}
