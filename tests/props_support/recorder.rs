//! A metrics recorder that counts every counter by name (installed once per test binary), so the tests can see
//! `settlegate_engine_mismatch_total`, the gateway's alarm for "settle script and engine disagree".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The gateway's alarm: the settle script and the engine computed different splits.
pub const MISMATCH: &str = "settlegate_engine_mismatch_total";

#[derive(Default)]
pub struct CountingRecorder {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

impl CountingRecorder {
    pub fn get(&self, name: &str) -> u64 {
        self.counters.lock().unwrap().get(name).map(|c| c.load(Ordering::SeqCst)).unwrap_or(0)
    }
}

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let c = self.counters.lock().unwrap().entry(key.name().to_string()).or_default().clone();
        metrics::Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// The recorder, installed as the global one on first use.
pub fn recorder() -> &'static CountingRecorder {
    static RECORDER: OnceLock<&'static CountingRecorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let r: &'static CountingRecorder = Box::leak(Box::default());
        metrics::set_global_recorder(r).unwrap_or_else(|_| panic!("another metrics recorder is installed"));
        r
    })
}
