//! The one shared Redis connection and its supervisor: a circuit breaker that makes "Redis down" a fast 503.
//!
//! Requests clone the current `MultiplexedConnection` (cheap) under a short, never-awaited lock. When there is no
//! healthy connection, a call fails at once with `Unavailable`, *before* anything is sent, which is what lets the
//! API promise "503: nothing was changed". The supervisor task pings every `health_check_interval_ms`; a failed
//! ping or an I/O error on a request drops the connection (breaker open) and the supervisor reconnects with the
//! configured connect timeout (breaker closed again). When Redis closes the socket (it stopped or restarted),
//! redis-rs reports the disconnection through a push sender and the breaker opens at once, so the next request
//! is a 503 rather than a write into a dead connection (which could only be reported as "outcome unknown"). redis-rs's `ConnectionManager` reconnects too, but a call
//! made while it reconnects waits for the reconnect and cannot tell "not sent" from "sent, no answer", which is
//! the distinction this gateway must report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use tokio::sync::Notify;

pub struct Link {
    client: Client,
    config: AsyncConnectionConfig,
    /// Bounds every health ping; also the per-request response timeout.
    response_timeout: Duration,
    /// The healthy connection and its generation (so a late disconnect notice of an old connection is ignored).
    connection: RwLock<Option<(u64, MultiplexedConnection)>>,
    generation: AtomicU64,
    myself: Weak<Link>,
    /// Wakes the supervisor early after a request saw the connection break.
    broken: Notify,
}

impl Link {
    pub fn new(
        url: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
        max_queued_commands: usize,
    ) -> redis::RedisResult<Arc<Link>> {
        // RESP3: redis-rs reports a closed socket through the push sender only on RESP3 connections (Redis >= 6).
        let info = redis::IntoConnectionInfo::into_connection_info(url)?;
        let settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_pipeline_buffer_size(max_queued_commands);
        Ok(Arc::new_cyclic(|myself| Link {
            client,
            config,
            response_timeout,
            connection: RwLock::new(None),
            generation: AtomicU64::new(0),
            myself: myself.clone(),
            broken: Notify::new(),
        }))
    }

    /// The healthy connection, or `None` while the breaker is open.
    pub fn current(&self) -> Option<MultiplexedConnection> {
        self.connection.read().expect("link lock").as_ref().map(|(_, c)| c.clone())
    }

    pub fn is_up(&self) -> bool {
        self.connection.read().expect("link lock").is_some()
    }

    /// Opens the breaker: later calls fail fast until the supervisor has reconnected.
    pub fn mark_broken(&self) {
        self.mark_broken_if(None);
    }

    /// Opens the breaker if the current connection is of `generation` (any, with `None`).
    fn mark_broken_if(&self, generation: Option<u64>) {
        let mut current = self.connection.write().expect("link lock");
        if current.as_ref().is_some_and(|(g, _)| generation.is_none_or(|want| *g == want)) {
            *current = None;
            drop(current);
            metrics::counter!("settlegate_redis_breaker_openings_total").increment(1);
            tracing::warn!("redis connection lost; failing fast until it is back");
        }
        self.broken.notify_one();
    }

    /// Connects once (used at start-up and by the supervisor).
    pub async fn connect(&self) -> redis::RedisResult<()> {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let link = self.myself.clone();
        let on_push = move |info: redis::PushInfo| -> Result<(), ()> {
            if info.kind == redis::PushKind::Disconnection {
                if let Some(link) = link.upgrade() {
                    link.mark_broken_if(Some(generation));
                }
            }
            Ok(())
        };
        let config = self.config.clone().set_push_sender(on_push);
        let conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        *self.connection.write().expect("link lock") = Some((generation, conn));
        Ok(())
    }

    async fn ping(&self, mut conn: MultiplexedConnection) -> bool {
        let ping = redis::cmd("PING");
        matches!(tokio::time::timeout(self.response_timeout, ping.query_async::<String>(&mut conn)).await, Ok(Ok(_)))
    }

    /// Runs forever: ping the healthy connection, reconnect a broken one.
    pub async fn supervise(self: Arc<Self>, interval: Duration) {
        loop {
            match self.current() {
                Some(conn) => {
                    if !self.ping(conn).await {
                        self.mark_broken();
                        continue;
                    }
                }
                None => match self.connect().await {
                    Ok(()) => tracing::info!("redis connection (re)established"),
                    Err(e) => tracing::debug!(error = %e, "redis reconnect failed"),
                },
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.broken.notified() => {}
            }
        }
    }
}
