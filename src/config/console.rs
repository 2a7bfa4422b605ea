//! `[console]`: the relief office's web console (docs/CONSOLE.md). Off unless `listen` is set; served over HTTPS
//! with the gateway's own server certificate (no client certificate: officials sign in with a name and password).

use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// HTTPS address of the console; absent = no console.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// A session unused this long is gone (its Redis key expires); every request restarts the clock.
    #[serde(default = "defaults::session_idle_minutes")]
    pub session_idle_minutes: u64,
    /// Failed logins in a row (within `lockout_minutes` of each other) after which an account is locked.
    #[serde(default = "defaults::max_failed_logins")]
    pub max_failed_logins: u64,
    /// How long a locked account stays locked after its last failed attempt, even for the right password.
    #[serde(default = "defaults::lockout_minutes")]
    pub lockout_minutes: u64,
    /// Login attempts one client address may make at once, before `logins_per_second_per_ip` paces it (a bound
    /// on trying one password against many accounts; the lockout bounds guesses per account).
    #[serde(default = "defaults::login_burst_per_ip")]
    pub login_burst_per_ip: u32,
    /// The pace of login attempts from one address once its burst is spent.
    #[serde(default = "defaults::logins_per_second_per_ip")]
    pub logins_per_second_per_ip: u32,
    /// Most bytes of a login or logout form (the API's bodies are bounded by `[limits]` as on the API).
    #[serde(default = "defaults::max_form_bytes")]
    pub max_form_bytes: usize,
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig {
            listen: None,
            session_idle_minutes: defaults::session_idle_minutes(),
            max_failed_logins: defaults::max_failed_logins(),
            lockout_minutes: defaults::lockout_minutes(),
            max_form_bytes: defaults::max_form_bytes(),
            login_burst_per_ip: defaults::login_burst_per_ip(),
            logins_per_second_per_ip: defaults::logins_per_second_per_ip(),
        }
    }
}

impl ConsoleConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (name, v, lo, hi) in [
            ("console.session_idle_minutes", self.session_idle_minutes, 1, 24 * 60),
            ("console.max_failed_logins", self.max_failed_logins, 1, 100),
            ("console.lockout_minutes", self.lockout_minutes, 1, 24 * 60),
            ("console.max_form_bytes", self.max_form_bytes as u64, 256, 65_536),
            ("console.login_burst_per_ip", u64::from(self.login_burst_per_ip), 1, 100_000),
            ("console.logins_per_second_per_ip", u64::from(self.logins_per_second_per_ip), 1, 10_000),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(format!("{name} = {v} is outside {lo}..={hi}"));
            }
        }
        Ok(())
    }

    /// `session_idle_minutes` in ms (the session key's TTL).
    pub fn session_idle_ms(&self) -> u64 {
        self.session_idle_minutes * 60_000
    }

    /// `lockout_minutes` in ms (the failure counter's TTL).
    pub fn lockout_ms(&self) -> u64 {
        self.lockout_minutes * 60_000
    }
}

mod defaults {
    pub fn session_idle_minutes() -> u64 {
        30
    }
    pub fn max_failed_logins() -> u64 {
        5
    }
    pub fn lockout_minutes() -> u64 {
        15
    }
    pub fn max_form_bytes() -> usize {
        4096
    }
    pub fn login_burst_per_ip() -> u32 {
        30
    }
    pub fn logins_per_second_per_ip() -> u32 {
        1
    }
}
