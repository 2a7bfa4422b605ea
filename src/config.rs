//! Configuration: TOML (`config/gateway.toml` documents every key), overridden by environment variables
//! `SETTLEGATE_<SECTION>_<KEY>` (top-level keys: `SETTLEGATE_<KEY>`). Unknown keys are refused, every limit has an
//! explicit default, and [`Config::validate`] checks what types cannot. Secrets (a password in the Redis URL) are
//! masked in `Debug`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod console;
mod redis;
mod retention;
mod streets;
pub use console::ConsoleConfig;
pub use redis::{RedisConfig, MAX_CLUSTER_SEEDS};
pub use retention::{RetentionConfig, MIN_SETTLEMENT_DAYS};
pub use streets::{StreetsConfig, MAX_STREET_IDENTITIES};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The mTLS API address.
    pub listen: SocketAddr,
    /// Plain-HTTP address of /healthz, /readyz and /metrics.
    #[serde(default = "defaults::ops_listen")]
    pub ops_listen: SocketAddr,
    /// IANA zone of "local" dates: today's date, settlement days, the default year.
    #[serde(default = "defaults::timezone")]
    pub timezone: String,
    /// Threads of the async runtime; 0 = one per core. On a small machine shared with Redis, 1 is faster (no
    /// wake-ups across threads; see docs/BENCHMARKS.md); with cores to spare, more.
    #[serde(default)]
    pub worker_threads: usize,
    /// The engine re-runs one settlement (or quote) in this many on the counters the settle script read and alarms
    /// on a difference (docs/DESIGN.md); 1 = every one, 0 = off.
    #[serde(default = "defaults::cross_check_every")]
    pub cross_check_every: u64,
    pub tls: TlsConfig,
    pub redis: RedisConfig,
    pub admin: AdminConfig,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub events: EventsConfig,
    /// When settlement records are archived (`[retention]`); never by default.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Street offices: certificate CN → street label (`[streets] identities`); none by default.
    #[serde(default)]
    pub streets: StreetsConfig,
    /// The relief office's web console (`[console]`); off unless `listen` is set.
    #[serde(default)]
    pub console: ConsoleConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Events are kept at least this many days (API.md "Events"); older ones are trimmed.
    #[serde(default = "defaults::retention_days")]
    pub retention_days: u64,
    /// How often an instance trims events past retention (idempotent: any instance may do it).
    #[serde(default = "defaults::trim_interval_ms")]
    pub trim_interval_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain, PEM.
    pub cert: PathBuf,
    /// Server private key, PEM.
    pub key: PathBuf,
    /// The CA that signs hospital and relief-office client certificates, PEM.
    pub client_ca: PathBuf,
    /// Optional certificate revocation list(s), PEM. A rewritten file takes effect without a restart.
    #[serde(default)]
    pub crl: Option<PathBuf>,
    /// How often the TLS files (CRL, certificates) are checked for changes; SIGHUP checks at once.
    #[serde(default = "defaults::tls_reload_ms")]
    pub reload_ms: u64,
}

/// `redis://user:secret@host` → `redis://user:***@host`.
pub fn mask_url_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &creds[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Certificate CNs with the relief-office (admin) role.
    pub identities: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained requests per second per hospital (per gateway instance).
    #[serde(default = "defaults::per_second")]
    pub per_second: u32,
    /// Requests a hospital may send at once above the sustained rate.
    #[serde(default = "defaults::burst")]
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { per_second: defaults::per_second(), burst: defaults::burst() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest JSON body (413 above).
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest cardholder import body (413 above).
    #[serde(default = "defaults::max_import_bytes")]
    pub max_import_bytes: usize,
    /// Longest single line of an import.
    #[serde(default = "defaults::max_import_line_bytes")]
    pub max_import_line_bytes: usize,
    /// Most entries a reconciliation check lists per kind of difference; the rest are only counted.
    #[serde(default = "defaults::max_check_differences")]
    pub max_check_differences: usize,
    /// Established client connections (after the TLS handshake); a further one waits up to the handshake timeout
    /// for a slot, then is closed.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Requests being served by this instance at once; past it a request is answered 503 at once (load shedding).
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: usize,
    /// A connection with no request in progress (also right after the handshake) is closed after this long.
    #[serde(default = "defaults::idle_connection_timeout_ms")]
    pub idle_connection_timeout_ms: u64,
    /// TLS handshakes in progress at once, from everyone; a connection past it is closed at once.
    #[serde(default = "defaults::max_handshakes")]
    pub max_handshakes: usize,
    /// TLS handshakes in progress at once from one IP address (unauthenticated sockets cannot crowd out others).
    #[serde(default = "defaults::max_handshakes_per_ip")]
    pub max_handshakes_per_ip: usize,
    /// Largest request head (HTTP/1.1 read buffer, HTTP/2 header list); bounds memory per connection.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Bound on reading a request's headers (HTTP/1.1).
    #[serde(default = "defaults::header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Bound on the TLS handshake.
    #[serde(default = "defaults::tls_handshake_timeout_ms")]
    pub tls_handshake_timeout_ms: u64,
    /// Bound on handling one request (body read included), import excepted.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Bound on a cardholder import.
    #[serde(default = "defaults::import_timeout_ms")]
    pub import_timeout_ms: u64,
    /// Concurrent HTTP/2 streams per connection.
    #[serde(default = "defaults::max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// How long SIGTERM waits for requests in flight before exiting anyway.
    #[serde(default = "defaults::shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// Most settlements one card-history answer lists (newest first).
    #[serde(default = "defaults::max_history_items")]
    pub max_history_items: usize,
    /// Most days one `settlegate export` run covers.
    #[serde(default = "defaults::max_export_days")]
    pub max_export_days: u64,
    /// Most days of visits one ruleset preview covers (`POST /admin/v1/rulesets/preview`, `rules preview`).
    #[serde(default = "defaults::max_preview_days")]
    pub max_preview_days: u64,
    /// Most standing settlements one preview replays; a longer period is refused (400 naming `to`).
    #[serde(default = "defaults::max_preview_settlements")]
    pub max_preview_settlements: u64,
    /// Bound on one preview (it reads the whole period, so it gets its own bound, not `request_timeout_ms`).
    #[serde(default = "defaults::preview_timeout_ms")]
    pub preview_timeout_ms: u64,
    /// Most days one relief report (`GET /admin/v1/reports/relief`) covers.
    #[serde(default = "defaults::max_report_days")]
    pub max_report_days: u64,
    /// Day-list lines the report aggregator reads and applies per atomic step. Each step holds the gateway's
    /// runtime thread for about 4.5 µs a line and Redis for about 1 µs a line, so a large step is a stall that
    /// every settlement arriving meanwhile waits out (docs/BENCHMARKS.md, issue 13).
    #[serde(default = "defaults::report_batch_lines")]
    pub report_batch_lines: usize,
    /// How often each instance's report aggregator consumes new lines of today and yesterday (a report also
    /// catches up its own days before it answers).
    #[serde(default = "defaults::report_refresh_ms")]
    pub report_refresh_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `settlegate=debug,info`; `RUST_LOG` wins when set.
    #[serde(default = "defaults::log_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default = "defaults::log_format")]
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: defaults::log_level(), format: defaults::log_format() }
    }
}

mod defaults {
    use std::net::SocketAddr;
    pub fn ops_listen() -> SocketAddr {
        "127.0.0.1:9090".parse().expect("literal")
    }
    pub fn timezone() -> String {
        "Asia/Shanghai".into()
    }
    pub fn per_second() -> u32 {
        500
    }
    pub fn burst() -> u32 {
        1000
    }
    pub fn max_body_bytes() -> usize {
        64 * 1024
    }
    pub fn max_import_bytes() -> usize {
        64 * 1024 * 1024
    }
    pub fn max_import_line_bytes() -> usize {
        4096
    }
    pub fn max_connections() -> usize {
        10_000
    }
    pub fn max_check_differences() -> usize {
        1000
    }
    pub fn cross_check_every() -> u64 {
        1
    }
    pub fn tls_reload_ms() -> u64 {
        2000
    }
    pub fn max_in_flight() -> usize {
        2048
    }
    pub fn idle_connection_timeout_ms() -> u64 {
        5000
    }
    pub fn max_handshakes() -> usize {
        1024
    }
    pub fn max_handshakes_per_ip() -> usize {
        256
    }
    pub fn max_header_bytes() -> usize {
        16 * 1024
    }
    pub fn header_read_timeout_ms() -> u64 {
        5000
    }
    pub fn tls_handshake_timeout_ms() -> u64 {
        5000
    }
    pub fn request_timeout_ms() -> u64 {
        10_000
    }
    pub fn import_timeout_ms() -> u64 {
        600_000
    }
    pub fn max_concurrent_streams() -> u32 {
        256
    }
    pub fn shutdown_grace_ms() -> u64 {
        10_000
    }
    pub fn retention_days() -> u64 {
        400
    }
    pub fn trim_interval_ms() -> u64 {
        60_000
    }
    pub fn max_history_items() -> usize {
        1000
    }
    pub fn max_report_days() -> u64 {
        366
    }
    pub fn report_batch_lines() -> usize {
        250
    }
    pub fn report_refresh_ms() -> u64 {
        1000
    }
    pub fn max_export_days() -> u64 {
        366
    }
    pub fn max_preview_days() -> u64 {
        366
    }
    pub fn max_preview_settlements() -> u64 {
        2_000_000
    }
    pub fn preview_timeout_ms() -> u64 {
        60_000
    }
    pub fn log_level() -> String {
        "info".into()
    }
    pub fn log_format() -> String {
        "text".into()
    }
}

const SECTIONS: [&str; 10] =
    ["rate_limit", "limits", "redis", "admin", "tls", "log", "events", "retention", "streets", "console"];
pub const ENV_PREFIX: &str = "SETTLEGATE_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Parse(String),
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads `path`, applies `SETTLEGATE_*` overrides from `env`, deserializes and validates.
    pub fn load(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Config::from_toml(&text, env)
    }

    pub fn from_toml(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let rest = rest.to_ascii_lowercase();
            let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(raw.clone()));
            match SECTIONS.iter().find(|s| rest.starts_with(&format!("{s}_"))) {
                Some(section) => {
                    let key = rest[section.len() + 1..].to_string();
                    let entry =
                        table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
                    let toml::Value::Table(t) = entry else {
                        return Err(ConfigError::Invalid(format!("{name}: [{section}] is not a table")));
                    };
                    t.insert(key, value);
                }
                None => {
                    table.insert(rest, value);
                }
            }
        }
        let config: Config =
            toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return bad(format!("timezone {:?} is not an IANA zone", self.timezone));
        }
        self.redis.validate().map_err(ConfigError::Invalid)?;
        self.retention.validate().map_err(ConfigError::Invalid)?;
        if self.admin.identities.is_empty() {
            return bad("admin.identities must name at least one certificate CN".into());
        }
        self.streets.validate(&self.admin.identities).map_err(ConfigError::Invalid)?;
        self.console.validate().map_err(ConfigError::Invalid)?;
        if self.console.listen.is_some_and(|c| c == self.listen || c == self.ops_listen) {
            return bad("console.listen must differ from listen and ops_listen".into());
        }
        for (name, v, lo, hi) in [
            ("limits.header_read_timeout_ms", self.limits.header_read_timeout_ms, 1, 600_000),
            ("limits.tls_handshake_timeout_ms", self.limits.tls_handshake_timeout_ms, 1, 600_000),
            ("limits.request_timeout_ms", self.limits.request_timeout_ms, 1, 600_000),
            ("limits.import_timeout_ms", self.limits.import_timeout_ms, 1, 86_400_000),
            ("limits.shutdown_grace_ms", self.limits.shutdown_grace_ms, 0, 600_000),
            ("tls.reload_ms", self.tls.reload_ms, 100, 10_000),
            ("limits.idle_connection_timeout_ms", self.limits.idle_connection_timeout_ms, 1, 3_600_000),
            ("rate_limit.per_second", self.rate_limit.per_second as u64, 1, 10_000_000),
            ("rate_limit.burst", self.rate_limit.burst as u64, 1, 10_000_000),
            ("limits.max_body_bytes", self.limits.max_body_bytes as u64, 1024, 64 << 20),
            ("limits.max_import_bytes", self.limits.max_import_bytes as u64, 1024, 16 << 30),
            ("limits.max_import_line_bytes", self.limits.max_import_line_bytes as u64, 256, 1 << 20),
            ("limits.max_check_differences", self.limits.max_check_differences as u64, 1, 1_000_000),
            ("limits.max_connections", self.limits.max_connections as u64, 1, 1_000_000),
            ("limits.max_in_flight", self.limits.max_in_flight as u64, 1, 1_000_000),
            ("limits.max_handshakes", self.limits.max_handshakes as u64, 1, 1_000_000),
            ("limits.max_handshakes_per_ip", self.limits.max_handshakes_per_ip as u64, 1, 1_000_000),
            // hyper's HTTP/1 read buffer is at least 8 KiB
            ("limits.max_header_bytes", self.limits.max_header_bytes as u64, 8192, 1 << 20),
            ("limits.max_concurrent_streams", self.limits.max_concurrent_streams as u64, 1, 10_000),
            ("worker_threads", self.worker_threads as u64, 0, 1024),
            ("cross_check_every", self.cross_check_every, 0, 1_000_000),
            ("events.retention_days", self.events.retention_days, 1, 36_500),
            ("events.trim_interval_ms", self.events.trim_interval_ms, 1000, 86_400_000),
            ("limits.max_history_items", self.limits.max_history_items as u64, 1, 100_000),
            ("limits.max_export_days", self.limits.max_export_days, 1, 3660),
            ("limits.max_preview_days", self.limits.max_preview_days, 1, 3660),
            ("limits.max_preview_settlements", self.limits.max_preview_settlements, 1, 100_000_000),
            ("limits.preview_timeout_ms", self.limits.preview_timeout_ms, 1, 3_600_000),
            ("limits.max_report_days", self.limits.max_report_days, 1, 3660),
            ("limits.report_batch_lines", self.limits.report_batch_lines as u64, 1, 100_000),
            ("limits.report_refresh_ms", self.limits.report_refresh_ms, 10, 3_600_000),
        ] {
            if !(lo..=hi).contains(&v) {
                return bad(format!("{name} = {v} must be in {lo}..={hi}"));
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad(format!("log.format {:?} must be \"text\" or \"json\"", self.log.format));
        }
        Ok(())
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().expect("validated")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
listen = "127.0.0.1:8443"
[tls]
cert = "s.pem"
key = "s.key"
client_ca = "ca.pem"
[redis]
url = "redis://:hunter2@127.0.0.1:6380"
[admin]
identities = ["relief-office"]
"#;

    #[test]
    fn defaults_env_overrides_and_masking() {
        let env = vec![
            ("SETTLEGATE_REDIS_RESPONSE_TIMEOUT_MS".to_string(), "99".to_string()),
            ("SETTLEGATE_RATE_LIMIT_BURST".to_string(), "7".to_string()),
            ("SETTLEGATE_OPS_LISTEN".to_string(), "127.0.0.1:9999".to_string()),
            ("SETTLEGATE_ADMIN_IDENTITIES".to_string(), r#"["a","b"]"#.to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let c = Config::from_toml(MINIMAL, env).unwrap();
        assert_eq!(c.redis.response_timeout_ms, 99);
        assert_eq!(c.redis.connect_timeout_ms, 1000);
        assert_eq!(c.rate_limit.burst, 7);
        assert_eq!(c.ops_listen.port(), 9999);
        assert_eq!(c.admin.identities, vec!["a", "b"]);
        assert_eq!(c.limits.max_body_bytes, 65536);
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2") && debug.contains(":***@"), "{debug}");
    }

    #[test]
    fn the_documented_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.toml");
        let c = Config::load(&path, vec![]).unwrap();
        assert_eq!((c.redis.response_timeout_ms, c.limits.max_body_bytes, c.rate_limit.burst), (250, 65536, 1000));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml(&format!("{MINIMAL}\n[limits]\nmax_bodee = 1\n"), vec![]).unwrap_err();
        assert!(err.to_string().contains("max_bodee"), "{err}");
        let env = vec![("SETTLEGATE_REDIS_URLL".to_string(), "x".to_string())];
        assert!(Config::from_toml(MINIMAL, env).unwrap_err().to_string().contains("urll"));
        let bad =
            Config::from_toml(&MINIMAL.replace("Asia", "x"), vec![("SETTLEGATE_TIMEZONE".into(), "Mars/Base".into())]);
        assert!(bad.unwrap_err().to_string().contains("Mars/Base"));
        let tls = vec![("SETTLEGATE_REDIS_URL".to_string(), "rediss://h:6380".to_string())];
        assert!(Config::from_toml(MINIMAL, tls).unwrap_err().to_string().contains("rediss"));
    }
}
