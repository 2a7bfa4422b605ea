//! settlegate-loadtest: the load tool hospitals and the relief office run before a rollout, the post-run
//! money audit, and the trivial "floor" servers the benchmark compares the gateway against.
//!
//! # Module map
//!
//! One run walks these modules top to bottom; none reaches back up.
//!
//! ```text
//! main.rs        clap CLI: `run` | `seed` | `floor` | `bench-report`; wires the modules below together, maps the verdict to the exit code
//! scenario/      TOML scenario: hospitals, cardholders, ruleset, operation mix, bills, SLOs, load defaults (pure)
//! tls.rs         PEM loading and ring-only rustls client/server configs (mTLS, one client cert per identity)
//! client.rs      hyper client connections over tokio-rustls, one bounded keep-alive pool per identity; typed answers
//! workload/      what one simulated request is: card population, bills, request bodies (with the version 2
//!                insurance refs and operators), the operations (history reads, ref reuses and the relief
//!                office's contributions included), and the ledger of answered settlements and the book of
//!                contributions the audit later checks against the gateway
//! stats.rs       HdrHistograms (µs) overall / per operation / per second, errors by code, progress lines (pure)
//! driver/        load generators: open model (constant arrival rate, latency from the intended start),
//!                closed model (fixed concurrency), ramp (rate steps until the p99 SLO breaks); bounded everywhere
//! seed.rs        creates the run's cardholders (bulk NDJSON import) and publishes the scenario's ruleset
//! audit/         post-run money audit, one file per check family: unknown outcomes resolved, settlements exist
//!                once with the answered amounts, reversals reversed, card usage = sum of answers and under the
//!                caps, contributions resolved and refused as documented, pools under budget (base + net
//!                contributions), reconciliation deltas (and the reconciliation check endpoint), cancelled ids
//!                stay cancelled, the event stream (one event per acknowledged change), card history, the audit
//!                trail's hash chain (`GET /admin/v1/audit`, SHA-256 by ring)
//! report/        report.json, report.html (inline SVG, no network), summary.txt, SLO verdict (pure):
//!                model (the JSON), verdict, text, html, charts
//! floor.rs       trivial hyper+rustls servers for the benchmark: `ok` (TLS ceiling), `evalsha` (one EVALSHA) and
//!                `ledger` (one EVALSHA making a settlement's reads and writes: ledger_floor.rs, the store's floor)
//!                and `ledger-batch` (the same, up to 32 settlements per EVALSHA: ledger_batch.rs)
//! bench.rs       `bench-report`: the report.json files of one scripts/bench.sh run → docs/BENCHMARKS.md (pure)
//! cpu.rs         CPU time of other processes from /proc/<pid>/stat, for "CPU per settle"
//! ```
//!
//! Units are in names (`latency_us`, `rate_per_s`, `duration_s`); money is integer fen as in the gateway's API.

pub mod audit;
pub mod bench;
pub mod client;
pub mod cpu;
pub mod driver;
pub mod floor;
pub mod ledger_batch;
pub mod ledger_floor;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod stats;
pub mod tls;
pub mod workload;

/// The error type of the tool's setup paths (not of individual requests, which are counted, not raised).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
