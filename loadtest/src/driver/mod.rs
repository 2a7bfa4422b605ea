//! Load generators. Every phase is bounded in time and in requests in flight.
//!
//! - Open model ([`Driver::open`]): request `i` is due at `start + i / rate`; its latency is measured from that
//!   intended start, not from when it was actually sent, so a stall of the server (or of the tool) shows up in
//!   the percentiles instead of silently lowering the rate (coordinated omission). A request that goes out a
//!   little early (see [`Schedule`]) is timed from when it went out. How late requests really started is
//!   recorded too (`send_lag`: the tool's own lateness, included in the latencies). Intended requests that could
//!   not be sent before the phase ended are counted as `not_sent` errors.
//! - Closed model ([`Driver::closed`]): N workers each send the next request when the previous one is answered:
//!   finds the saturation throughput; its latencies are service times.
//! - Ramp ([`Driver::ramp`]): open-model steps of increasing rate until two steps in a row miss the p99 / error
//!   SLO; the report names the highest rate that met it.
//!
//! `dispatch.rs` holds the open model's schedule and its two dispatchers.

mod dispatch;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::scenario::{RampSpec, Slo};
use crate::stats::{micros, percentiles, saturating_u64, Recorder};
use crate::workload::{mix64, Outcome, Workload};
use dispatch::{dispatch_precise, dispatch_ticks, Plan, RequestFactory};

/// How the open model keeps its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// A task on the runtime wakes on tokio's 1 ms timer and sends every request due before the next tick
    /// (up to 1 ms early). Cheap; arrivals come in bursts of `rate / 1000`, whose queueing adds to the
    /// latencies (conservative).
    Tick,
    /// A dedicated thread sleeps with 1 µs timer slack and hands the runtime the requests due in each 250 µs
    /// window. Arrivals are closer to evenly spread, at about twice the tool's CPU per request (and more for the
    /// server too, which batches less): prefer it on machines with cores to spare.
    Precise,
}

/// Window of the precise schedule.
pub const PRECISE_WINDOW: Duration = Duration::from_micros(250);
/// Window of the tick schedule: one tick of tokio's timer.
pub const TICK_WINDOW: Duration = Duration::from_millis(1);

/// A ramp stops after this many failing steps in a row.
pub const RAMP_STOP_AFTER_FAILURES: usize = 2;

/// Set by Ctrl-C: phases stop sending and wrap up.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// The outcome of one load phase.
pub struct Phase {
    /// Everything the phase measured.
    pub recorder: Recorder,
    /// The planned length of the phase: the achieved rate is taken over at least this long.
    pub nominal: Duration,
    /// Open model: the offered rate per second.
    pub rate_per_s: Option<f64>,
    /// Closed model: the requests kept in flight.
    pub concurrency: Option<usize>,
}

impl Phase {
    /// Completions per second over the phase.
    pub fn achieved_rps(&self) -> f64 {
        self.recorder.achieved_rps(self.nominal)
    }

    /// p99 and error rate within the SLO.
    pub fn meets(&self, slo: &Slo) -> bool {
        let p = percentiles(&self.recorder.overall);
        self.recorder.requests > 0 && p.p99 <= slo.p99_ms && self.recorder.error_rate() <= slo.max_error_rate
    }
}

/// One step of a ramp.
#[derive(Debug, Clone, Serialize)]
pub struct RampStep {
    /// The rate the step offered, per second.
    pub rate_per_s: f64,
    /// The rate the target kept up with: below `rate_per_s` when it saturated.
    pub achieved_rps: f64,
    /// Requests the step intended.
    pub requests: u64,
    /// Their error rate (not sent included), 0 to 1.
    pub error_rate: f64,
    /// The step's median latency, milliseconds.
    pub p50_ms: f64,
    /// The step's p99, judged against the SLO.
    pub p99_ms: f64,
    /// The step's slowest request.
    pub max_ms: f64,
    /// p99 and error rate within the SLO.
    pub passed: bool,
}

/// What a ramp measured: one summary and one phase per step that ran, in order.
pub struct RampRun {
    /// The steps' figures and SLO verdicts, for the report's ramp table.
    pub steps: Vec<RampStep>,
    /// The steps' full measurements, merged by the caller into the run's overall figures.
    pub phases: Vec<Phase>,
}

/// Runs load phases against the workload's hospitals.
pub struct Driver {
    /// What each request is and who sends it.
    pub workload: Arc<Workload>,
    /// Base seed of the per-request random generators.
    pub seed: u64,
    /// Open model: requests outstanding at most, so a stalled target cannot make the tool grow without bound.
    pub max_in_flight: usize,
    /// Bound on one request: how long the end of a phase waits for stragglers.
    pub request_timeout: Duration,
    /// Open model: how the schedule is kept.
    pub schedule: Schedule,
    /// Requests in flight right now, for the progress line.
    pub in_flight: Arc<AtomicU64>,
    /// stderr is a terminal: the progress line rewrites itself instead of scrolling.
    tty: bool,
}

fn print_progress(tty: bool, line: &str, last: bool) {
    let mut err = std::io::stderr().lock();
    if tty {
        let _ = write!(err, "\r\x1b[2K{line}");
        if last {
            let _ = writeln!(err);
        }
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

impl Driver {
    pub fn new(
        workload: Arc<Workload>,
        seed: u64,
        max_in_flight: usize,
        request_timeout: Duration,
        schedule: Schedule,
    ) -> Driver {
        Driver {
            workload,
            seed,
            max_in_flight: max_in_flight.max(1),
            request_timeout,
            schedule,
            in_flight: Arc::new(AtomicU64::new(0)),
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Starts measuring a phase that begins at `start`: a fresh recorder, and a progress line every second until
    /// [`Recording::finish`].
    fn record(&self, start: Instant, label: &str) -> Recording {
        let recorder = Arc::new(Mutex::new(Recorder::new(start)));
        let shared = recorder.clone();
        let label = label.to_string();
        let (done, mut done_rx) = tokio::sync::oneshot::channel::<()>();
        let in_flight = self.in_flight.clone();
        let tty = self.tty;
        let printer = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await; // the first tick is immediate
            loop {
                let last = tokio::select! {
                    _ = ticker.tick() => false,
                    _ = &mut done_rx => true,
                };
                let line = {
                    let mut r = shared.lock().expect("recorder");
                    let point = r.tick(Instant::now());
                    r.progress_line(&point, in_flight.load(Ordering::Relaxed), &label)
                };
                print_progress(tty, &line, last);
                if last {
                    break;
                }
            }
        });
        Recording { recorder, done, printer }
    }

    /// Open model: `rate_per_s` arrivals per second for `duration`, at most `max_in_flight` outstanding.
    pub async fn open(&self, rate_per_s: f64, duration: Duration, label: &str) -> Phase {
        let start = Instant::now();
        let recording = self.record(start, label);
        let permits = Arc::new(Semaphore::new(self.max_in_flight));
        let plan = Plan {
            start,
            interval_ns: 1e9 / rate_per_s,
            total: saturating_u64((rate_per_s * duration.as_secs_f64()).floor()),
            end: start + duration,
        };
        let factory = RequestFactory {
            workload: self.workload.clone(),
            in_flight: self.in_flight.clone(),
            seed: self.seed,
            recorder: recording.recorder.clone(),
        };
        let sent = match self.schedule {
            Schedule::Tick => dispatch_ticks(&plan, &permits, &factory).await,
            Schedule::Precise => {
                let runtime = tokio::runtime::Handle::current();
                let permits = permits.clone();
                tokio::task::spawn_blocking(move || dispatch_precise(&plan, &runtime, &permits, &factory))
                    .await
                    .expect("dispatcher thread")
            }
        };
        recording.recorder.lock().expect("recorder").record_not_sent(plan.total - sent);
        // Drain: every request is bounded by its own timeout.
        let drain = self.request_timeout + Duration::from_secs(2);
        // Every slot back means every request is done (main bounds max_in_flight far below u32::MAX).
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(drain, permits.acquire_many(all)).await;
        let recorder = recording.finish().await;
        Phase { recorder, nominal: duration, rate_per_s: Some(rate_per_s), concurrency: None }
    }

    /// Closed model: `concurrency` workers back to back for `duration`.
    pub async fn closed(&self, concurrency: usize, duration: Duration, label: &str) -> Phase {
        let start = Instant::now();
        let recording = self.record(start, label);
        let end = start + duration;
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..concurrency.max(1) {
            let workload = self.workload.clone();
            let recorder = recording.recorder.clone();
            let in_flight = self.in_flight.clone();
            let seed = self.seed ^ mix64(w as u64 + (1 << 40));
            workers.spawn(async move {
                let mut rng = SmallRng::seed_from_u64(seed);
                while Instant::now() < end && !STOP.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    let Outcome { op, error, expected_refusal } = workload.execute(&mut rng).await;
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    let now = Instant::now();
                    let latency_us = micros(now.duration_since(t0));
                    let mut r = recorder.lock().expect("recorder");
                    r.record(op, latency_us, error.as_deref(), now);
                    if let Some(code) = expected_refusal {
                        r.record_expected_refusal(code);
                    }
                }
            });
        }
        while workers.join_next().await.is_some() {}
        let recorder = recording.finish().await;
        Phase { recorder, nominal: duration, rate_per_s: None, concurrency: Some(concurrency) }
    }

    /// Ramp: open-model steps `start, start+step, … max`, each `step_duration` long, until two steps in a row
    /// miss the SLO (one noisy step does not end the ramp; two mean the rate is past what the target sustains).
    pub async fn ramp(&self, spec: RampSpec, step_duration: Duration, slo: &Slo) -> RampRun {
        let mut steps = Vec::new();
        let mut phases = Vec::new();
        let mut rate = spec.start_per_s;
        let mut failures_in_a_row = 0;
        while rate <= spec.max_per_s + 1e-9 && !STOP.load(Ordering::Relaxed) {
            let phase = self.open(rate, step_duration, &format!("ramp {rate:.0}/s ")).await;
            let p = percentiles(&phase.recorder.overall);
            let passed = phase.meets(slo);
            steps.push(RampStep {
                rate_per_s: rate,
                achieved_rps: phase.achieved_rps(),
                requests: phase.recorder.requests,
                error_rate: phase.recorder.error_rate(),
                p50_ms: p.p50,
                p99_ms: p.p99,
                max_ms: p.max,
                passed,
            });
            phases.push(phase);
            failures_in_a_row = if passed { 0 } else { failures_in_a_row + 1 };
            let stop = failures_in_a_row >= RAMP_STOP_AFTER_FAILURES;
            eprintln!(
                "ramp step {rate:.0}/s: achieved {:.0}/s p99 {:.2} ms error rate {:.4} -> {}",
                steps.last().expect("a step").achieved_rps,
                p.p99,
                steps.last().expect("a step").error_rate,
                match (passed, stop) {
                    (true, _) => "meets the SLO",
                    (false, false) => "misses the SLO",
                    (false, true) => "misses the SLO again: stopping",
                }
            );
            if stop {
                break;
            }
            rate += spec.step_per_s;
        }
        RampRun { steps, phases }
    }
}

/// A phase being measured: the recorder its requests share, and the task printing its progress line.
struct Recording {
    /// Shared by the phase's requests (and the printer), each locking it briefly per completion.
    recorder: Arc<Mutex<Recorder>>,
    /// Dropped to stop the progress line (which then prints a last one).
    done: tokio::sync::oneshot::Sender<()>,
    /// The task printing the progress line, awaited so its last line is out before the phase returns.
    printer: tokio::task::JoinHandle<()>,
}

impl Recording {
    /// Stops the progress line and takes the phase's measurements out of the shared recorder.
    async fn finish(self) -> Recorder {
        let Recording { recorder, done, printer } = self;
        drop(done);
        let _ = printer.await;
        take(recorder)
    }
}

fn take(recorder: Arc<Mutex<Recorder>>) -> Recorder {
    // Stray request tasks (past the drain timeout) may still hold a clone: take the data out under the lock.
    match Arc::try_unwrap(recorder) {
        Ok(m) => m.into_inner().expect("recorder"),
        Err(shared) => {
            let mut guard = shared.lock().expect("recorder");
            let started = guard.started;
            std::mem::replace(&mut *guard, Recorder::new(started))
        }
    }
}

/// The highest ramp rate that met the SLO, if any.
pub fn best_rate(steps: &[RampStep]) -> Option<f64> {
    steps
        .iter()
        .filter(|s| s.passed)
        .map(|s| s.rate_per_s)
        .fold(None, |best, r| Some(best.map_or(r, |b: f64| b.max(r))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: f64, passed: bool) -> RampStep {
        RampStep {
            rate_per_s: rate,
            achieved_rps: rate,
            requests: 1,
            error_rate: 0.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            passed,
        }
    }

    #[test]
    fn best_rate_is_the_highest_passing_step() {
        assert_eq!(best_rate(&[]), None);
        assert_eq!(best_rate(&[step(100.0, false)]), None);
        assert_eq!(best_rate(&[step(100.0, true), step(200.0, true), step(300.0, false)]), Some(200.0));
    }
}
