//! Start-up wiring for `settlegate serve`: logging, metrics, the Redis link and its supervisor, the rulebook
//! refresher, the rate-limiter pruner, the ops listener, and the API server until SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::App;
use crate::config::Config;
use crate::http::ratelimit::HospitalLimiter;
use crate::http::{server, tls, Ctx};
use crate::ops::{self, Ops};
use crate::rulebook::RulebookCache;
use crate::store::link::{ClusterSettings, Link};
use crate::store::stats::SettleStats;
use crate::store::Store;

/// How often histogram samples are folded into the exported buckets (bounds the recorder's memory).
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How often idle hospitals are pruned from the rate limiter.
const LIMITER_PRUNE_INTERVAL: Duration = Duration::from_secs(60);

pub fn init_logging(level: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if format == "json" { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}

/// Connects to Redis (once; the supervisor keeps trying if Redis is not up yet) and builds the store.
pub async fn open_store(config: &Config) -> Result<(Arc<Link>, Arc<Store>), String> {
    let response_timeout = Duration::from_millis(config.redis.response_timeout_ms);
    let r = &config.redis;
    let connect_timeout = Duration::from_millis(r.connect_timeout_ms);
    let link = if r.cluster.is_empty() {
        Link::new(&r.url, connect_timeout, response_timeout, r.max_queued_commands)
            .map_err(|e| format!("redis.url: {e}"))?
    } else {
        let settings = ClusterSettings {
            retries: r.cluster_retries,
            min_retry_wait: Duration::from_millis(r.cluster_min_retry_wait_ms),
            max_retry_wait: Duration::from_millis(r.cluster_max_retry_wait_ms),
        };
        Link::cluster(&r.cluster, connect_timeout, response_timeout, settings)
            .map_err(|e| format!("redis.cluster: {e}"))?
    };
    if let Err(e) = link.connect().await {
        tracing::warn!(error = %e, "redis not reachable yet; serving 503 until it is");
    }
    let store = Arc::new(
        Store::new(link.clone(), response_timeout)
            .with_replica_ack(r.min_replicas_ack, Duration::from_millis(r.replica_ack_timeout_ms)),
    );
    Ok((link, store))
}

/// Runs the gateway until SIGTERM or SIGINT; returns after requests in flight have finished.
pub async fn run(config: Config) -> Result<(), String> {
    let tls = tls::TlsReloader::new(config.tls.clone())?;
    let listener = TcpListener::bind(config.listen).await.map_err(|e| format!("listen {}: {e}", config.listen))?;
    let ops_listener =
        TcpListener::bind(config.ops_listen).await.map_err(|e| format!("ops_listen {}: {e}", config.ops_listen))?;
    // bound before /healthz answers, like the API's listener: a ready gateway accepts on every address it has
    let console_listener = match config.console.listen {
        Some(addr) => Some((
            TcpListener::bind(addr).await.map_err(|e| format!("console.listen {addr}: {e}"))?,
            tls::TlsReloader::console(config.tls.clone())?,
        )),
        None => None,
    };
    let metrics = ops::install_metrics();
    if let Some(handle) = metrics.clone() {
        // Histogram samples pile up until drained: drain them on a schedule, not only when someone scrapes.
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(METRICS_UPKEEP_INTERVAL).await;
                handle.run_upkeep();
            }
        });
    }
    let (link, store) = open_store(&config).await?;

    store.check_server_settings().await;
    let rules = Arc::new(RulebookCache::default());
    if let Err(e) = rules.refresh(&store).await {
        tracing::warn!(error = %e, "rulesets not loaded yet; the refresher keeps trying");
    }
    tokio::spawn(link.clone().supervise(Duration::from_millis(config.redis.health_check_interval_ms)));
    tokio::spawn(rules.clone().keep_fresh(store.clone(), Duration::from_millis(config.redis.rules_refresh_ms)));
    tokio::spawn(keep_events_trimmed(store.clone(), config.events.clone()));
    tokio::spawn(keep_reports_current(store.clone(), config.tz(), config.limits.clone()));
    if config.retention.settlement_days > 0 {
        tokio::spawn(keep_archiving(store.clone(), config.tz(), config.retention.clone()));
    }
    let stats = Arc::new(SettleStats::new(&config.listen.to_string()));
    tokio::spawn(stats.clone().keep_flushed(store.clone(), config.tz()));
    tokio::spawn(ops::serve(Arc::new(Ops { link: link.clone(), rules: rules.clone(), metrics }), ops_listener));

    let ctx = Arc::new(Ctx {
        app: App::new(store, rules, config.tz()).with_cross_check_every(config.cross_check_every),
        limits: config.limits.clone(),
        limiter: HospitalLimiter::new(config.rate_limit.per_second, config.rate_limit.burst),
        admins: config.admin.identities.clone(),
        streets: config.streets.clone(),
        in_flight: tokio::sync::Semaphore::new(config.limits.max_in_flight),
        stats,
    });
    let gauges = ctx.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = gauges.app.refresh_pool_gauges().await {
                tracing::debug!(error = %e, "pool gauges not refreshed");
            }
            tokio::time::sleep(Duration::from_millis(crate::app::POOL_GAUGE_INTERVAL_MS)).await;
        }
    });
    let pruner = ctx.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(LIMITER_PRUNE_INTERVAL).await;
            pruner.limiter.prune();
        }
    });
    tracing::info!(listen = %config.listen, ops_listen = %config.ops_listen, redis = %config.redis.masked(), "settlegate serving");
    tokio::spawn(tls.clone().keep_fresh());
    if let Some((console_listener, console_tls)) = console_listener {
        let addr = config.console.listen.unwrap_or(config.listen);
        tokio::spawn(console_tls.clone().keep_fresh());
        let console = Arc::new(crate::console::Console::new(ctx.clone(), config.console.clone()));
        let pruner = console.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LIMITER_PRUNE_INTERVAL).await;
                pruner.logins.prune();
            }
        });
        tracing::info!(console = %addr, "web console serving");
        tokio::spawn(server::serve(console, console_listener, console_tls, shutdown_signal()));
    }
    server::serve(ctx, listener, tls, shutdown_signal()).await;
    tracing::info!("settlegate stopped");
    Ok(())
}

/// Trims events older than `events.retention_days`, every `events.trim_interval_ms` (any instance may: trimming
/// twice removes nothing more). A failure is logged and retried next round; settlements never wait for it.
async fn keep_events_trimmed(store: Arc<Store>, config: crate::config::EventsConfig) {
    let retention_ms = config.retention_days.saturating_mul(86_400_000);
    loop {
        tokio::time::sleep(Duration::from_millis(config.trim_interval_ms)).await;
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        match store.trim_events(now_ms.saturating_sub(retention_ms)).await {
            Ok(0) => {}
            Ok(n) => {
                metrics::counter!("settlegate_events_trimmed_total").increment(n);
                tracing::info!(removed = n, retention_days = config.retention_days, "events past retention trimmed");
            }
            Err(e) => tracing::warn!(error = %e, "trimming events failed; retrying next round"),
        }
    }
}

/// Consumes the new lines of today's and yesterday's day lists into the report entries, every
/// `limits.report_refresh_ms` (any number of instances may: each line is applied once). A report catches up its
/// own days too, so this only keeps that catch-up short. A failure is logged and retried next round.
async fn keep_reports_current(store: Arc<Store>, tz: chrono_tz::Tz, limits: crate::config::LimitsConfig) {
    loop {
        tokio::time::sleep(Duration::from_millis(limits.report_refresh_ms)).await;
        let today = chrono::Utc::now().with_timezone(&tz).date_naive();
        let days: Vec<String> = [today.pred_opt(), Some(today)].into_iter().flatten().map(|d| d.to_string()).collect();
        if let Err(e) = store.report_catch_up(&days, limits.report_batch_lines).await {
            tracing::warn!(error = %e, "aggregating report lines failed; retrying next round");
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

/// Archives the days past `retention.settlement_days`, oldest first, every `retention.archive_interval_ms` (any
/// number of instances may: every step is a compare-and-set; `store::archive`). A day held back by a watermark
/// (not exported, a clearing not paid) is logged once a round and tried again next round.
async fn keep_archiving(store: Arc<Store>, tz: chrono_tz::Tz, retention: crate::config::RetentionConfig) {
    /// Days one round archives at most (a round stays short; the next continues).
    const DAYS_PER_ROUND: usize = 31;
    let by = crate::app::system_actor("settlegate:archive");
    let batch = usize::try_from(retention.archive_batch_lines).unwrap_or(usize::MAX);
    loop {
        tokio::time::sleep(Duration::from_millis(retention.archive_interval_ms)).await;
        let now = chrono::Utc::now().with_timezone(&tz);
        let Some(cutoff) = now.date_naive().checked_sub_days(chrono::Days::new(retention.settlement_days)) else {
            continue;
        };
        let at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        for _ in 0..DAYS_PER_ROUND {
            match store.archive_next_day(cutoff, batch, &at, &by).await {
                Ok(crate::store::archive::ArchiveStep::Closed { day, records, lines }) => {
                    tracing::info!(%day, records, lines, "day archived");
                }
                Ok(crate::store::archive::ArchiveStep::Raced | crate::store::archive::ArchiveStep::Batch { .. }) => {}
                Ok(crate::store::archive::ArchiveStep::UpToDate) => break,
                Ok(crate::store::archive::ArchiveStep::Blocked { day, hospital, why }) => {
                    tracing::warn!(%day, hospital, why, "archiving waits (export the day / pay the month's clearing)");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "archiving failed; retrying next round");
                    break;
                }
            }
        }
    }
}
