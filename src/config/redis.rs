//! `[redis]`: where the store is (one node, or a Redis Cluster), how long a call may take, and how many replicas
//! must hold a write before it is acknowledged (docs/CLUSTER.md).

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// One node: `redis://[:password@]host:port[/db]`. Exactly one of `url` and `cluster` is set.
    #[serde(default)]
    pub url: String,
    /// A Redis Cluster: seed node URLs (`redis://[:password@]host:port`); the client learns the rest of the
    /// topology from them and follows failovers and resharding (`MOVED` / `ASK`) without a restart.
    #[serde(default)]
    pub cluster: Vec<String>,
    /// Bound on establishing a connection.
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Bound on every call; past it a write is an unknown outcome (504), a read is unavailable (503).
    #[serde(default = "defaults::response_timeout_ms")]
    pub response_timeout_ms: u64,
    /// How often the supervisor pings Redis; a failed ping opens the breaker (fast 503s) until it reconnects.
    #[serde(default = "defaults::health_check_interval_ms")]
    pub health_check_interval_ms: u64,
    /// Commands queued on the shared connection before callers wait (the pipeline's queue depth).
    #[serde(default = "defaults::max_queued_commands")]
    pub max_queued_commands: usize,
    /// How often the gateway checks for a newly published ruleset (API.md: used within 1 s).
    #[serde(default = "defaults::rules_refresh_ms")]
    pub rules_refresh_ms: u64,
    /// Cluster only: how many times the cluster client re-sends a request that met a redirection (`MOVED`,
    /// `ASK`), `TRYAGAIN` or a lost node, refreshing its slot map in between. Always within
    /// `response_timeout_ms`, which bounds the whole call.
    #[serde(default = "defaults::cluster_retries")]
    pub cluster_retries: u32,
    /// Cluster only: the shortest and longest wait between two of those tries (exponential in between).
    #[serde(default = "defaults::cluster_min_retry_wait_ms")]
    pub cluster_min_retry_wait_ms: u64,
    #[serde(default = "defaults::cluster_max_retry_wait_ms")]
    pub cluster_max_retry_wait_ms: u64,
    /// Replicas that must have received a write before it is acknowledged (`WAIT` after every write call; 0 =
    /// do not wait). With 1, a primary killed right after an answer loses nothing that was answered.
    #[serde(default)]
    pub min_replicas_ack: u32,
    /// How long a write waits for `min_replicas_ack` replicas; past it the answer is 504 `outcome_unknown` (the
    /// write is on the primary and may or may not survive a failover; a retry with the same id resolves it).
    #[serde(default = "defaults::replica_ack_timeout_ms")]
    pub replica_ack_timeout_ms: u64,
}

impl RedisConfig {
    /// Checks what types cannot: exactly one of `url` and `cluster`, the URL schemes, the ranges.
    pub fn validate(&self) -> Result<(), String> {
        let urls: Vec<&str> = if self.url.is_empty() {
            self.cluster.iter().map(String::as_str).collect()
        } else {
            if !self.cluster.is_empty() {
                return Err("redis: set exactly one of url and cluster, not both".into());
            }
            vec![self.url.as_str()]
        };
        if urls.is_empty() {
            return Err("redis: set url (one node) or cluster (seed URLs of a Redis Cluster)".into());
        }
        if urls.len() > MAX_CLUSTER_SEEDS {
            return Err(format!("redis.cluster: at most {MAX_CLUSTER_SEEDS} seed URLs"));
        }
        for url in urls {
            if url.starts_with("rediss://") {
                return Err("redis: TLS to Redis (rediss://) is not supported by this build; use redis:// on a \
                            private network or a local TLS tunnel"
                    .into());
            }
            if !url.starts_with("redis://") {
                return Err(format!("redis: {:?} must start with redis://", super::mask_url_password(url)));
            }
        }
        for (name, v, lo, hi) in [
            ("redis.connect_timeout_ms", self.connect_timeout_ms, 1, 60_000),
            ("redis.response_timeout_ms", self.response_timeout_ms, 1, 60_000),
            ("redis.health_check_interval_ms", self.health_check_interval_ms, 10, 600_000),
            ("redis.rules_refresh_ms", self.rules_refresh_ms, 10, 1000),
            ("redis.max_queued_commands", self.max_queued_commands as u64, 1, 1_000_000),
            ("redis.cluster_retries", self.cluster_retries as u64, 0, 16),
            ("redis.cluster_min_retry_wait_ms", self.cluster_min_retry_wait_ms, 1, 60_000),
            ("redis.cluster_max_retry_wait_ms", self.cluster_max_retry_wait_ms, 1, 60_000),
            ("redis.min_replicas_ack", self.min_replicas_ack as u64, 0, 16),
            ("redis.replica_ack_timeout_ms", self.replica_ack_timeout_ms, 1, 60_000),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(format!("{name} = {v} must be in {lo}..={hi}"));
            }
        }
        if self.cluster_min_retry_wait_ms > self.cluster_max_retry_wait_ms {
            return Err("redis.cluster_min_retry_wait_ms must not exceed cluster_max_retry_wait_ms".into());
        }
        Ok(())
    }

    /// The URLs, passwords masked, for logs.
    pub fn masked(&self) -> String {
        if self.cluster.is_empty() {
            super::mask_url_password(&self.url)
        } else {
            let seeds: Vec<String> = self.cluster.iter().map(|u| super::mask_url_password(u)).collect();
            format!("cluster [{}]", seeds.join(", "))
        }
    }
}

/// Bound on `redis.cluster` (a few seeds suffice: the client learns every node from any one of them).
pub const MAX_CLUSTER_SEEDS: usize = 64;

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &super::mask_url_password(&self.url))
            .field("cluster", &self.cluster.iter().map(|u| super::mask_url_password(u)).collect::<Vec<_>>())
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .field("health_check_interval_ms", &self.health_check_interval_ms)
            .field("max_queued_commands", &self.max_queued_commands)
            .field("rules_refresh_ms", &self.rules_refresh_ms)
            .field("cluster_retries", &self.cluster_retries)
            .field("cluster_min_retry_wait_ms", &self.cluster_min_retry_wait_ms)
            .field("cluster_max_retry_wait_ms", &self.cluster_max_retry_wait_ms)
            .field("min_replicas_ack", &self.min_replicas_ack)
            .field("replica_ack_timeout_ms", &self.replica_ack_timeout_ms)
            .finish()
    }
}

mod defaults {
    pub fn connect_timeout_ms() -> u64 {
        1000
    }
    pub fn response_timeout_ms() -> u64 {
        250
    }
    pub fn health_check_interval_ms() -> u64 {
        500
    }
    pub fn max_queued_commands() -> usize {
        4096
    }
    pub fn rules_refresh_ms() -> u64 {
        250
    }
    pub fn cluster_retries() -> u32 {
        3
    }
    pub fn cluster_min_retry_wait_ms() -> u64 {
        10
    }
    pub fn cluster_max_retry_wait_ms() -> u64 {
        100
    }
    pub fn replica_ack_timeout_ms() -> u64 {
        200
    }
}
