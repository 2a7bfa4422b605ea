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
//!
//! **On a Redis Cluster** ([`Conn::Cluster`]) the connection is redis-rs's cluster client: it keeps a connection
//! per node, follows `MOVED` / `ASK` and failovers by refreshing its slot map (`redis.cluster_retries` tries,
//! within the response timeout), so topology changes need no restart. The breaker works the same way: the health
//! ping goes to the primary of the ledger slot (`keys::LEDGER_TAG`, where every money key lives), so "Redis
//! down" means "the ledger's primary is unreachable" on both topologies, and a failover shows as 503s until the
//! promoted replica answers the supervisor's ping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::Notify;

use super::keys::LEDGER_TAG;

/// One shared connection to the store: a single node's multiplexed connection, or the cluster client's. Both
/// are cheap to clone (a handle on one background task) and speak the same commands and scripts.
#[derive(Clone)]
pub enum Conn {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Sends a command that names no key to the primary of the ledger slot (on one node: to the node). `PING`,
    /// `WAIT`, `SCAN`, `INFO` and `CONFIG` must reach that primary, not a node chosen at random.
    pub async fn to_ledger_primary<T: redis::FromRedisValue>(&mut self, cmd: Cmd) -> redis::RedisResult<T> {
        match self {
            Conn::Node(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = Route::with_key(LEDGER_TAG, SlotAddr::Master);
                let value =
                    c.route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route))).await?;
                Ok(redis::from_redis_value(value)?)
            }
        }
    }
}

impl Conn {
    /// Sends `pipeline` (its first `count` commands) in one write to the primary of the ledger slot, on one
    /// connection: a `WAIT` after a script then counts the replicas that hold that script's write (`WAIT` counts
    /// its own connection's writes). On a cluster the client may send the whole pipeline again to a new primary
    /// after a failover: then both commands run there, and the `WAIT` still speaks of the script before it.
    pub async fn pipeline_to_ledger_primary(
        &mut self,
        pipeline: &Pipeline,
        count: usize,
    ) -> redis::RedisResult<Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, 0, count).await,
            Conn::Cluster(c) => {
                let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(LEDGER_TAG, SlotAddr::Master));
                c.route_pipeline(pipeline.clone(), 0, count, route).await
            }
        }
    }
}

/// Where the connections come from.
enum Backend {
    Node { client: Client, config: AsyncConnectionConfig },
    Cluster(ClusterClient),
}

/// The cluster client's settings (`[redis]`): explicit, so no default of the client decides a timeout.
#[derive(Debug, Clone, Copy)]
pub struct ClusterSettings {
    pub retries: u32,
    pub min_retry_wait: Duration,
    pub max_retry_wait: Duration,
}

pub struct Link {
    /// A single node's client, or the cluster's.
    backend: Backend,
    /// Bounds every health ping; also the per-request response timeout.
    response_timeout: Duration,
    /// The healthy connection and its generation (so a late disconnect notice of an old connection is ignored).
    connection: RwLock<Option<(u64, Conn)>>,
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
        Ok(Link::with_backend(Backend::Node { client, config }, response_timeout))
    }

    /// A link to a Redis Cluster through `seeds`; the client finds the other nodes and follows the topology.
    pub fn cluster(
        seeds: &[String],
        connect_timeout: Duration,
        response_timeout: Duration,
        settings: ClusterSettings,
    ) -> redis::RedisResult<Arc<Link>> {
        // The wait before try n is min(max_wait, min_wait + factor * 2^n) ms with factor = min_wait.
        let min_ms = u64::try_from(settings.min_retry_wait.as_millis()).unwrap_or(u64::MAX);
        let client = ClusterClient::builder(seeds.iter().map(String::as_str))
            .connection_timeout(connect_timeout)
            .response_timeout(response_timeout)
            .retries(settings.retries)
            .min_retry_wait(min_ms)
            .max_retry_wait(u64::try_from(settings.max_retry_wait.as_millis()).unwrap_or(u64::MAX))
            .retry_wait_formula(min_ms.max(1), 2)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .build()?;
        Ok(Link::with_backend(Backend::Cluster(client), response_timeout))
    }

    fn with_backend(backend: Backend, response_timeout: Duration) -> Arc<Link> {
        Arc::new_cyclic(|myself| Link {
            backend,
            response_timeout,
            connection: RwLock::new(None),
            generation: AtomicU64::new(0),
            myself: myself.clone(),
            broken: Notify::new(),
        })
    }

    /// The healthy connection, or `None` while the breaker is open.
    pub fn current(&self) -> Option<Conn> {
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
        let conn = match &self.backend {
            Backend::Node { client, config } => {
                let config = config.clone().set_push_sender(on_push);
                Conn::Node(client.get_multiplexed_async_connection_with_config(&config).await?)
            }
            // The cluster client reconnects to a node by itself; the supervisor's ping of the ledger's primary
            // decides when requests may flow again.
            Backend::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
        };
        let mut probe = conn.clone();
        if !self.ping(&mut probe).await {
            return Err(redis::RedisError::from((redis::ErrorKind::Io, "the ledger's primary did not answer PING")));
        }
        *self.connection.write().expect("link lock") = Some((generation, conn));
        Ok(())
    }

    async fn ping(&self, conn: &mut Conn) -> bool {
        let ping = conn.to_ledger_primary::<String>(redis::cmd("PING"));
        matches!(tokio::time::timeout(self.response_timeout, ping).await, Ok(Ok(_)))
    }

    /// Runs forever: ping the healthy connection, reconnect a broken one.
    pub async fn supervise(self: Arc<Self>, interval: Duration) {
        loop {
            match self.current() {
                Some(mut conn) => {
                    if !self.ping(&mut conn).await {
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
