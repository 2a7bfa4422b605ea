//! The command line of `settlegate-loadtest` (clap): its subcommands, their options and the options' changes to a
//! scenario. `main.rs` runs the steps.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use settlegate_loadtest::driver::Schedule;
use settlegate_loadtest::floor::FloorMode;
use settlegate_loadtest::scenario::Scenario;
use settlegate_loadtest::BoxError;

#[derive(Parser)]
#[command(
    name = "settlegate-loadtest",
    version,
    about = "Load tester, money auditor and benchmark floor servers for settlegate"
)]
pub(crate) struct Cli {
    /// Worker threads of the tool's runtime (default: one per core).
    #[arg(long, global = true)]
    pub(crate) threads: Option<usize>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub(crate) enum Command {
    /// Seed, put load on the gateway, audit the money, write reports. Exit code: 0 when the SLOs and the
    /// audit pass, 1 when they do not, 2 when the run could not be made (bad arguments, seed failed, …).
    Run(RunArgs),
    /// Only the seed step: import the scenario's cardholders and publish its ruleset.
    Seed(SeedArgs),
    /// A trivial hyper+rustls server with the gateway's TLS settings, for the benchmark.
    Floor(FloorArgs),
    /// Render the reports of one scripts/bench.sh run (DIR/<run>/report.json) as docs/BENCHMARKS.md.
    BenchReport {
        #[arg(long, default_value = "target/bench")]
        dir: PathBuf,
        #[arg(long, default_value = "docs/BENCHMARKS.md")]
        out: PathBuf,
        /// Markdown appended as "Notes" (findings that need a person, e.g. a profile).
        #[arg(long)]
        notes: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
pub(crate) struct Common {
    /// Scenario file (loadtest/scenarios/*.toml).
    #[arg(long)]
    pub(crate) scenario: PathBuf,
    /// The gateway's mTLS API.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    pub(crate) target: String,
    /// Directory with ca.pem and <identity>.pem / <identity>.key for every hospital and the admin
    /// (as written by `settlegate certs`).
    #[arg(long)]
    pub(crate) certs: PathBuf,
    /// CA that signed the server certificate (default: <certs>/ca.pem).
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// HTTP/2 (one multiplexed connection per hospital) instead of HTTP/1.1 keep-alive pools.
    #[arg(long)]
    pub(crate) http2: bool,
    /// Bound on one request, from waiting for a pooled connection to the last body byte.
    #[arg(long)]
    pub(crate) request_timeout_ms: Option<u64>,
    /// Size of each hospital's keep-alive pool (default 32).
    #[arg(long)]
    pub(crate) connections: Option<usize>,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Open model: arrivals per second.
    #[arg(long, conflicts_with_all = ["concurrency", "ramp"])]
    pub(crate) rate: Option<f64>,
    /// Closed model: requests kept in flight back to back.
    #[arg(long, conflicts_with = "ramp")]
    pub(crate) concurrency: Option<usize>,
    /// Ramp start:step:max (per second): open-model steps until one misses the SLO.
    #[arg(long)]
    pub(crate) ramp: Option<String>,
    /// Length of one ramp step, seconds.
    #[arg(long)]
    pub(crate) ramp_step_s: Option<f64>,
    /// Length of the load phase, seconds.
    #[arg(long)]
    pub(crate) duration: Option<f64>,
    /// Open model: how the schedule is kept (tick: cheap, 1 ms bursts; precise: 250 µs, about twice the CPU).
    #[arg(long, value_enum, default_value = "tick")]
    pub(crate) schedule: Schedule,
    /// Open model: requests outstanding at most.
    #[arg(long)]
    pub(crate) max_in_flight: Option<usize>,
    /// Output directory (default target/loadtest/<scenario name>).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Override the scenario's p99 SLO (milliseconds).
    #[arg(long)]
    pub(crate) slo_p99_ms: Option<f64>,
    /// Override the scenario's maximum error rate (0..=1).
    #[arg(long)]
    pub(crate) slo_max_error_rate: Option<f64>,
    /// Do not open the hospitals' pools before the load starts (measure the cold start too).
    #[arg(long)]
    pub(crate) no_prewarm: bool,
    /// Skip the post-run money audit.
    #[arg(long)]
    pub(crate) no_audit: bool,
    /// The target is a floor server (`settlegate-loadtest floor`): no seed, no audit, any 2xx is success.
    #[arg(long)]
    pub(crate) floor: bool,
    /// Mid-run, add 1 fen to one card's usage directly in Redis (the audit must then fail).
    #[arg(long, requires = "redis_url")]
    pub(crate) tamper: bool,
    /// Mid-run, delete one settlement.settled event of the run from the event stream directly in Redis (the
    /// events audit must then fail).
    #[arg(long, requires = "redis_url")]
    pub(crate) tamper_events: bool,
    /// After the load, add 1 fen to the amount of one audit entry of the run's contributions directly in Redis,
    /// without resealing it (the audit trail check must then fail).
    #[arg(long, requires = "redis_url")]
    pub(crate) tamper_audit: bool,
    /// The audit trail's hash key for --tamper-audit.
    #[arg(long, default_value = "{sg}:audit")]
    pub(crate) tamper_audit_key: String,
    /// The event stream's key for --tamper-events.
    #[arg(long, default_value = "{sg}:events")]
    pub(crate) tamper_events_key: String,
    /// Redis of the gateway (for --tamper, --tamper-events and --tamper-audit).
    #[arg(long)]
    pub(crate) redis_url: Option<String>,
    /// Usage hash key template for --tamper ($CARD, $YEAR, $PROGRAM are replaced).
    #[arg(long, default_value = "{sg}:{$CARD}:usage")]
    pub(crate) tamper_key: String,
    /// Usage hash field template for --tamper.
    #[arg(long, default_value = "$YEAR:$PROGRAM:paid")]
    pub(crate) tamper_field: String,
    /// Measure the CPU time of another process during the load phase: NAME=PID (repeatable).
    #[arg(long = "watch-pid", value_name = "NAME=PID")]
    pub(crate) watch_pid: Vec<String>,
    /// Seed of the request generator.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Run id (prefix of card ids and hospital settlement ids); default: derived from the clock.
    #[arg(long)]
    pub(crate) run_id: Option<String>,
    /// Override one weight of the scenario's [operations] mix: OP=WEIGHT, repeatable. Operations: eligibility,
    /// quote, settle, retry, reversal, cancel, history (GET /v1/settlements?card_id= of a card the hospital
    /// settled; its own latency histogram), ref_reuse (a settlement with another standing settlement's
    /// insurance.settlement_ref: 409 insurance_ref_reused expected, counted as an expected refusal), contribution
    /// (the relief office's donations, withdrawals and replays to the charity pool, by [contributions]).
    #[arg(long = "mix", value_name = "OP=WEIGHT")]
    pub(crate) mix: Vec<String>,
    /// Percent of new settlements carrying a unique insurance.settlement_ref (scenario: fields.insurance_ref_pct).
    #[arg(long, value_name = "0..=100")]
    pub(crate) insurance_ref_pct: Option<u32>,
    /// Percent of settlements, reversals and cancels carrying an operator {"id", "name"} (fields.operator_pct).
    #[arg(long, value_name = "0..=100")]
    pub(crate) operator_pct: Option<u32>,
    /// Percent of identical retries sent with another operator, which must still replay the recorded one
    /// (fields.retry_other_operator_pct).
    #[arg(long, value_name = "0..=100")]
    pub(crate) retry_other_operator_pct: Option<u32>,
    /// Skip the audit of the event stream (GET /admin/v1/events; scenario: audit.events = false).
    #[arg(long)]
    pub(crate) no_events_audit: bool,
    /// Skip POST /v1/reconciliation/check at the end (audit.reconciliation_check = false). Without it, a gateway
    /// that answers 404 there is reported as "not served"; when it is served, a mismatch fails the audit.
    #[arg(long)]
    pub(crate) no_reconciliation_check: bool,
}

impl RunArgs {
    /// The command line's changes to the scenario (validated again afterwards).
    pub(crate) fn apply(&self, s: &mut Scenario) -> Result<(), BoxError> {
        for spec in &self.mix {
            let (op, weight) = spec.split_once('=').ok_or_else(|| format!("--mix {spec:?}: expected OP=WEIGHT"))?;
            let weight: u32 = weight.parse().map_err(|_| format!("--mix {spec:?}: bad weight"))?;
            s.operations.set(op, weight).map_err(|e| format!("--mix {spec:?}: {e}"))?;
        }
        if let Some(p) = self.insurance_ref_pct {
            s.fields.insurance_ref_pct = p;
        }
        if let Some(p) = self.operator_pct {
            s.fields.operator_pct = p;
        }
        if let Some(p) = self.retry_other_operator_pct {
            s.fields.retry_other_operator_pct = p;
        }
        if self.no_events_audit {
            s.audit.events = false;
        }
        if self.no_reconciliation_check {
            s.audit.reconciliation_check = false;
        }
        Ok(())
    }
}

#[derive(Args)]
pub(crate) struct SeedArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[arg(long)]
    pub(crate) run_id: Option<String>,
}

#[derive(Args)]
pub(crate) struct FloorArgs {
    /// ok: answer at once (the TLS ceiling); evalsha: one EVALSHA of a one-INCR script per request (the floor);
    /// ledger: one EVALSHA making the reads and writes one settlement must make, values precomputed (the ledger
    /// floor, docs/BENCHMARKS.md); ledger-batch: the ledger floor with the requests that wait meanwhile recorded
    /// together, up to 32 per EVALSHA (what batching settlements could give).
    #[arg(long, value_enum)]
    pub(crate) mode: FloorMode,
    /// Address to listen on (HTTPS, client certificate required).
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub(crate) listen: std::net::SocketAddr,
    /// Server certificate chain, PEM.
    #[arg(long)]
    pub(crate) cert: PathBuf,
    /// Its private key, PEM.
    #[arg(long)]
    pub(crate) key: PathBuf,
    /// CA that client certificates must chain to, PEM.
    #[arg(long)]
    pub(crate) client_ca: PathBuf,
    /// Redis for every mode but ok (the ledger modes seed 1 024 cards under the `{lf}` hash tag).
    #[arg(long)]
    pub(crate) redis_url: Option<String>,
}
