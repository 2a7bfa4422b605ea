//! `settlegate-loadtest`: the CLI. The module map is in `lib.rs`; this file parses arguments and runs the steps
//! of a load test in order:
//!
//! ```text
//! run:   scenario → identities (one mTLS pool per hospital) → seed (import cards, publish ruleset)
//!        → snapshot (reconciliation, pools) → load (open | closed | ramp, with live progress)
//!        → audit → report.json / report.html / summary.txt → exit code (0 pass, 1 fail, 2 could not run)
//! seed:  the seed step alone
//! floor: a trivial hyper+rustls server (ok | evalsha) for the benchmark
//! bench-report: docs/BENCHMARKS.md from the reports of one scripts/bench.sh run
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use clap::Parser;

use settlegate_loadtest::audit::{self, AuditInput, AuditReport, Tamper, TamperTarget};
use settlegate_loadtest::client::{Endpoint, Target, MAX_POOL_SIZE};
use settlegate_loadtest::cpu::{CpuUse, CpuWatch, MachineWatch};
use settlegate_loadtest::driver::{best_rate, Driver, Phase, RampRun, STOP};
use settlegate_loadtest::floor::{self, FloorOptions};
use settlegate_loadtest::report::{self, RampReport, RunFacts, RunInfo};
use settlegate_loadtest::scenario::{self, LoadShape, Scenario};
use settlegate_loadtest::seed;
use settlegate_loadtest::workload::{insurance_ref, RecordState, Workload, MAX_REF_CHARS};
use settlegate_loadtest::BoxError;

mod cli;
use cli::{Cli, Command, Common, RunArgs, SeedArgs};

/// A run id unique per run and short: "LT" + milliseconds since the epoch in base 36.
fn new_run_id() -> String {
    let mut n = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    while n > 0 {
        s.push(digits[(n % 36) as usize]);
        n /= 36;
    }
    s.reverse();
    format!("LT{}", String::from_utf8(s).expect("ascii"))
}

/// Today and tomorrow in the scenario's timezone.
fn local_dates(tz: &str) -> Result<(String, String), BoxError> {
    let tz: chrono_tz::Tz = tz.parse().map_err(|e| format!("timezone {tz}: {e}"))?;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let tomorrow = today.succ_opt().ok_or("no tomorrow")?;
    Ok((today.format("%Y-%m-%d").to_string(), tomorrow.format("%Y-%m-%d").to_string()))
}

struct Setup {
    scenario: Arc<Scenario>,
    target: Arc<Target>,
    hospitals: Vec<Arc<Endpoint>>,
    admin: Option<Arc<Endpoint>>,
    http2: bool,
    request_timeout: Duration,
    connections: usize,
}

fn setup(
    common: &Common,
    need_admin: bool,
    overrides: impl FnOnce(&mut Scenario) -> Result<(), BoxError>,
) -> Result<Setup, BoxError> {
    let mut scenario = Scenario::read_file(&common.scenario)?;
    overrides(&mut scenario)?;
    scenario.validate().map_err(|e| format!("{} (with the command line's changes): {e}", common.scenario.display()))?;
    let scenario = Arc::new(scenario);
    let target = Arc::new(Target::parse(&common.target)?);
    let ca = common.ca.clone().unwrap_or_else(|| common.certs.join("ca.pem"));
    let http2 = common.http2 || scenario.load.http2.unwrap_or(false);
    let request_timeout = Duration::from_millis(
        common.request_timeout_ms.or(scenario.load.request_timeout_ms).unwrap_or(5000).clamp(10, 120_000),
    );
    let connections =
        common.connections.or(scenario.load.connections_per_hospital).unwrap_or(32).clamp(1, MAX_POOL_SIZE);
    let endpoint = |name: &str, pool_size: usize| -> Result<Arc<Endpoint>, BoxError> {
        Ok(Arc::new(Endpoint::new(&target, &ca, &common.certs, name, http2, request_timeout, pool_size)?))
    };
    let hospitals = scenario.hospitals.iter().map(|h| endpoint(h, connections)).collect::<Result<Vec<_>, _>>()?;
    let admin = if need_admin { Some(endpoint(&scenario.admin, scenario.audit.concurrency)?) } else { None };
    Ok(Setup { scenario, target, hospitals, admin, http2, request_timeout, connections })
}

fn load_shape(args: &RunArgs, s: &Scenario) -> Result<LoadShape, BoxError> {
    let duration_s = args.duration.or(s.load.duration_s).unwrap_or(10.0);
    if !(duration_s > 0.0 && duration_s <= scenario::MAX_DURATION_S) {
        return Err(format!("duration must be in (0, {}] s", scenario::MAX_DURATION_S).into());
    }
    let ramp = |spec: &str| -> Result<LoadShape, BoxError> {
        let spec = scenario::parse_ramp(spec)?;
        let step_s = args.ramp_step_s.or(s.load.ramp_step_s).unwrap_or(5.0);
        if !(step_s > 0.0 && step_s <= 600.0) {
            return Err("ramp step must be in (0, 600] s".into());
        }
        Ok(LoadShape::Ramp { spec, step_s })
    };
    let open = |rate_per_s: f64| -> Result<LoadShape, BoxError> {
        if !(rate_per_s > 0.0 && rate_per_s <= scenario::MAX_RATE_PER_S) {
            return Err(format!("rate must be in (0, {}]", scenario::MAX_RATE_PER_S).into());
        }
        Ok(LoadShape::Open { rate_per_s, duration_s })
    };
    let closed = |c: usize| -> Result<LoadShape, BoxError> {
        if c == 0 || c > scenario::MAX_IN_FLIGHT {
            return Err(format!("concurrency must be in 1..={}", scenario::MAX_IN_FLIGHT).into());
        }
        Ok(LoadShape::Closed { concurrency: c, duration_s })
    };
    if let Some(r) = &args.ramp {
        return ramp(r);
    }
    if let Some(c) = args.concurrency {
        return closed(c);
    }
    if let Some(rate) = args.rate {
        return open(rate);
    }
    if let Some(r) = &s.load.ramp {
        return ramp(r);
    }
    if let Some(c) = s.load.concurrency {
        return closed(c);
    }
    if let Some(rate) = s.load.rate_per_s {
        return open(rate);
    }
    Err("no load shape: give --rate, --concurrency or --ramp (or set one in the scenario's [load])".into())
}

fn parse_watch(specs: &[String]) -> Result<Vec<(String, u32)>, BoxError> {
    specs
        .iter()
        .map(|spec| {
            let (name, pid) = spec.split_once('=').ok_or_else(|| format!("--watch-pid {spec:?}: expected NAME=PID"))?;
            let pid: u32 = pid.parse().map_err(|_| format!("--watch-pid {spec:?}: bad pid"))?;
            Ok((name.to_string(), pid))
        })
        .collect()
}

/// Mid-run fault injection for `--tamper`: waits, then bumps one answered card's usage in Redis.
struct TamperArgs {
    redis_url: String,
    key_template: String,
    field_template: String,
}

async fn tamper_later(args: &TamperArgs, workload: Arc<Workload>, after: Duration) -> Tamper {
    tokio::time::sleep(after).await;
    let picked = {
        let ledger = workload.ledger.lock().expect("ledger");
        ledger.records.iter().find(|r| r.state == RecordState::Settled && r.answer.is_some()).map(|r| {
            let answer = r.answer.as_ref().expect("answered");
            let program = answer
                .payments
                .iter()
                .find(|p| p.paid_fen > 0)
                .or(answer.payments.first())
                .map(|p| p.program.clone())
                .unwrap_or_else(|| workload.scenario.ruleset.programs[0].id.clone());
            (workload.cards.card_id(r.card), program)
        })
    };
    let (card_id, program) = match picked {
        Some(p) => p,
        None => (workload.cards.card_id(0), workload.scenario.ruleset.programs[0].id.clone()),
    };
    let TamperTarget { key, field } =
        audit::tamper_names(&args.key_template, &args.field_template, &card_id, workload.year(), &program);
    let result = audit::tamper(&args.redis_url, &key, &field).await;
    match &result {
        Ok(v) => eprintln!("tamper: HINCRBY {key} {field} 1 -> {v}"),
        Err(e) => eprintln!("tamper: HINCRBY {key} {field} 1 failed: {e}"),
    }
    Tamper { card_id, key, field, applied: result.is_ok(), error: result.err() }
}

async fn run(args: RunArgs) -> Result<i32, BoxError> {
    let audit_enabled = !args.no_audit && !args.floor;
    let Setup { scenario, target, hospitals, admin, http2, request_timeout, connections } =
        setup(&args.common, !args.floor, |s| args.apply(s))?;
    let audit_enabled = audit_enabled && scenario.audit.enabled;
    let mut slo = scenario.slo;
    if let Some(p99_ms) = args.slo_p99_ms {
        slo.p99_ms = p99_ms;
    }
    if let Some(rate) = args.slo_max_error_rate {
        slo.max_error_rate = rate;
    }
    if slo.p99_ms.is_nan() || slo.p99_ms <= 0.0 || !(0.0..=1.0).contains(&slo.max_error_rate) {
        return Err("SLO: need p99 > 0 ms and 0 <= max error rate <= 1".into());
    }
    let shape = load_shape(&args, &scenario)?;
    let max_in_flight =
        args.max_in_flight.or(scenario.load.max_in_flight).unwrap_or(1024).clamp(1, scenario::MAX_IN_FLIGHT);
    let (today, tomorrow) = local_dates(&scenario.timezone)?;
    let year: i32 = today[..4].parse()?;
    let run_id = args.run_id.clone().unwrap_or_else(new_run_id);
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("target/loadtest").join(&scenario.name));
    let started_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mix = scenario.operations;
    let keep_ledger =
        !args.floor && (audit_enabled || mix.retry > 0 || mix.reversal > 0 || mix.history > 0 || mix.ref_reuse > 0);
    let mut workload =
        Workload::new(scenario.clone(), run_id.clone(), today.clone(), hospitals.clone(), args.floor, keep_ledger);
    if mix.contribution > 0 {
        // the relief office's contributions go out on the audit's admin pool, during the load
        workload.admin = admin.clone();
    }
    let workload = Arc::new(workload);
    if scenario.fields.insurance_ref_pct > 0
        && insurance_ref(&"x".repeat(workload.longest_hsid())).len() > MAX_REF_CHARS
    {
        return Err(format!("run id {run_id:?} is too long for insurance refs of at most {MAX_REF_CHARS} chars").into());
    }
    eprintln!(
        "settlegate-loadtest: scenario {} → {} as {} hospital(s), run {run_id}, visit date {today}",
        scenario.name,
        target.base,
        hospitals.len()
    );

    // Seed and snapshot.
    let mut seeded = None;
    let mut before = audit::Snapshot::default();
    if let Some(admin) = &admin {
        let s = seed::seed(admin, &hospitals[0], &workload.cards, &scenario.ruleset_json(), &today, year).await?;
        eprintln!(
            "seed: {} cards imported in {} ms; ruleset version {} in use after {} ms",
            s.cards, s.import_ms, s.ruleset_version, s.ruleset_visible_ms
        );
        seeded = Some(s);
        if audit_enabled {
            let dates = [today.clone(), tomorrow.clone()];
            before = audit::snapshot(&hospitals, admin, &dates, &today[..4], scenario.audit.events).await?;
        }
    }

    // Load.
    if !args.no_prewarm {
        for h in &hospitals {
            h.prewarm(connections).await?;
        }
    }
    let watches: Vec<CpuWatch> = std::iter::once(("loadtest".to_string(), 0u32))
        .chain(parse_watch(&args.watch_pid)?)
        .map(|(name, pid)| CpuWatch::start(&name, pid))
        .collect::<Result<_, _>>()?;
    let machine = MachineWatch::start();
    let seed = args.seed.or(scenario.load.seed).unwrap_or(0x5e7_71e);
    let driver = Driver::new(workload.clone(), seed, max_in_flight, request_timeout, args.schedule);
    let first_phase_s = match &shape {
        LoadShape::Open { duration_s, .. } | LoadShape::Closed { duration_s, .. } => *duration_s,
        LoadShape::Ramp { step_s, .. } => *step_s,
    };
    let tamper_task = if args.tamper && !args.floor {
        let w = workload.clone();
        let t = TamperArgs {
            redis_url: args.redis_url.clone().unwrap_or_default(),
            key_template: args.tamper_key.clone(),
            field_template: args.tamper_field.clone(),
        };
        Some(tokio::spawn(async move { tamper_later(&t, w, Duration::from_secs_f64(first_phase_s / 2.0)).await }))
    } else {
        None
    };
    let events_tamper_task = if args.tamper_events && !args.floor {
        let (url, key) = (args.redis_url.clone().unwrap_or_default(), args.tamper_events_key.clone());
        let prefix = format!("{run_id}-");
        Some(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(first_phase_s / 2.0)).await;
            let t = audit::tamper_events(&url, &key, &prefix).await;
            match (&t.entry_id, &t.error) {
                (Some(id), _) => eprintln!("tamper-events: XDEL {key} {id} ({:?}) -> {}", t.hsid, t.applied),
                (None, e) => eprintln!("tamper-events: failed: {e:?}"),
            }
            t
        }))
    } else {
        None
    };
    let (mode, rate_per_s, concurrency, duration_s, phase, ramp) = match shape {
        LoadShape::Open { rate_per_s, duration_s } => {
            let phase = driver.open(rate_per_s, Duration::from_secs_f64(duration_s), "").await;
            ("open", Some(rate_per_s), None, duration_s, phase, None)
        }
        LoadShape::Closed { concurrency, duration_s } => {
            let phase = driver.closed(concurrency, Duration::from_secs_f64(duration_s), "").await;
            ("closed", None, Some(concurrency), duration_s, phase, None)
        }
        LoadShape::Ramp { spec, step_s } => {
            let RampRun { steps, phases } = driver.ramp(spec, Duration::from_secs_f64(step_s), &slo).await;
            let mut phases = phases.into_iter();
            let mut merged = phases.next().ok_or("the ramp was stopped before its first step")?;
            for p in phases {
                merged.recorder.absorb(&p.recorder);
            }
            merged.nominal = Duration::from_secs_f64(step_s * steps.len() as f64);
            let best_rate_per_s = best_rate(&steps);
            let duration_s = merged.nominal.as_secs_f64();
            ("ramp", None, None, duration_s, merged, Some(RampReport { steps, best_rate_per_s }))
        }
    };
    let Phase { recorder, nominal, .. } = phase;
    let achieved_rps = recorder.achieved_rps(nominal);
    let completed = recorder.overall.len();
    let cpu: Vec<CpuUse> =
        watches.iter().filter_map(|w| w.finish(completed).map_err(|e| eprintln!("cpu: {e}")).ok()).collect();
    let machine_cpu = machine.and_then(|m| m.finish(&cpu)).map_err(|e| eprintln!("cpu: {e}")).ok();
    let tamper = match tamper_task {
        Some(t) => Some(t.await?),
        None => None,
    };
    let tamper_events = match events_tamper_task {
        Some(t) => Some(t.await?),
        None => None,
    };
    let tamper_audit = if args.tamper_audit && !args.floor {
        let key = &args.tamper_audit_key;
        let t = audit::tamper_audit(args.redis_url.as_deref().unwrap_or_default(), key, &format!("{run_id}-C-")).await;
        match (t.seq, &t.error) {
            (Some(seq), None) => eprintln!("tamper-audit: HSET {key} {seq} (amount_fen + 1, not resealed)"),
            (_, e) => eprintln!("tamper-audit: failed: {e:?}"),
        }
        Some(t)
    } else {
        None
    };
    let connections_opened: BTreeMap<String, u64> =
        hospitals.iter().map(|h| (h.name.clone(), h.connections_opened())).collect();

    // Audit.
    let audit_report = match (&admin, &seeded, audit_enabled) {
        (Some(admin), Some(s), true) => {
            eprintln!("audit: checking the money …");
            let r = audit::run(AuditInput {
                workload: workload.clone(),
                admin: admin.clone(),
                ruleset_version: s.ruleset_version,
                year: today[..4].to_string(),
                before,
                options: scenario.audit.clone(),
                tamper,
            })
            .await;
            eprintln!("audit: {} in {} ms", if r.passed == Some(true) { "pass" } else { "FAIL" }, r.duration_ms);
            r
        }
        _ => {
            let mut r = AuditReport::disabled();
            r.tamper = tamper;
            r
        }
    };
    let mut audit_report = audit_report;
    audit_report.tamper_events = tamper_events;
    audit_report.tamper_audit = tamper_audit;

    let facts = RunFacts {
        run: RunInfo {
            scenario: scenario.name.clone(),
            target: target.base.clone(),
            run_id,
            started_at,
            visit_date: today,
            mode: mode.to_string(),
            rate_per_s,
            concurrency,
            duration_s,
            max_in_flight,
            schedule: (mode != "closed").then_some(args.schedule),
            connections_per_hospital: connections,
            http2,
            floor_target: args.floor,
        },
        slo,
        achieved_rps,
        ramp,
        seed: seeded,
        connections_opened,
        cpu,
        machine_cpu,
    };
    let report = report::build(&recorder, facts, audit_report);
    report::write_all(&out, &report)?;
    print!("{}", report::summary(&report));
    println!("reports: {}", out.join("report.html").display());
    Ok(if report.verdict.passed { 0 } else { 1 })
}

async fn seed_only(args: SeedArgs) -> Result<i32, BoxError> {
    let Setup { scenario, hospitals, admin, .. } = setup(&args.common, true, |_| Ok(()))?;
    let admin = admin.expect("admin endpoint");
    let (today, _) = local_dates(&scenario.timezone)?;
    let run_id = args.run_id.unwrap_or_else(new_run_id);
    let cards = settlegate_loadtest::workload::CardBook::new(&scenario, &run_id);
    let s = seed::seed(&admin, &hospitals[0], &cards, &scenario.ruleset_json(), &today, today[..4].parse()?).await?;
    println!("{}", serde_json::json!({"run_id": run_id, "seed": s}));
    Ok(0)
}

fn main() {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads {
        builder.worker_threads(n.clamp(1, 256));
    }
    let runtime = builder.enable_all().build().expect("tokio runtime");
    let code = runtime.block_on(async move {
        tokio::spawn(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: stopping the load and writing the reports");
                STOP.store(true, Ordering::Relaxed);
            }
        });
        let result = match cli.command {
            Command::Run(args) => run(args).await,
            Command::Seed(args) => seed_only(args).await,
            Command::Floor(args) => floor::serve(FloorOptions {
                mode: args.mode,
                listen: args.listen,
                cert: args.cert,
                key: args.key,
                client_ca: args.client_ca,
                redis_url: args.redis_url,
            })
            .await
            .map(|_| 0),
            Command::BenchReport { dir, out, notes } => {
                settlegate_loadtest::bench::load(&dir).map_err(BoxError::from).and_then(|mut run| {
                    if let Some(path) = notes {
                        run.notes =
                            Some(std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?);
                    }
                    std::fs::write(&out, settlegate_loadtest::bench::render(&run))?;
                    eprintln!("wrote {}", out.display());
                    Ok(0)
                })
            }
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("settlegate-loadtest: {e}");
                2
            }
        }
    });
    // Stray connections and timers must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    std::process::exit(code);
}
