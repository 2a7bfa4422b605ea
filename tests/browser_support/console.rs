//! The console under test: the real `settlegate serve` with `[console]` on a private Redis, and a chromedriver,
//! shared by the tests of one binary that run at the same time ([`super::shared`]); each test opens its own
//! [`Browser`] (no cookies) and uses accounts of its own.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};

use super::{shared, Browser, Chromedriver, WAIT};
use crate::common::{free_port, Stack};

/// `[console] session_idle_minutes` of the gateway under test.
pub const IDLE_MINUTES: u64 = 30;
/// `[console] max_failed_logins`.
pub const MAX_FAILED_LOGINS: u64 = 5;
/// `[console] lockout_minutes`.
pub const LOCKOUT_MINUTES: u64 = 15;

/// A gateway serving the console, and the driver of the tests' browsers.
pub struct Console {
    /// The gateway (with `[console]`) and its private Redis; stopped before the driver.
    pub stack: Stack,
    /// The console's HTTPS port on 127.0.0.1 (the gateway's own dev certificate, no client certificate).
    pub port: u16,
    /// Runs every test's Chromium.
    pub driver: Chromedriver,
}

/// The [`Console`] of the tests running now.
static SHARED: Mutex<Weak<Console>> = Mutex::new(Weak::new());

impl Console {
    /// The console the tests running now share, started if none runs.
    pub fn shared() -> Arc<Console> {
        shared(&SHARED, Console::start)
    }

    /// A console of its own (for a test that must own its Redis).
    pub fn start() -> Console {
        let port = free_port();
        let extra = format!(
            "[console]\nlisten = \"127.0.0.1:{port}\"\nsession_idle_minutes = {IDLE_MINUTES}\n\
             max_failed_logins = {MAX_FAILED_LOGINS}\nlockout_minutes = {LOCKOUT_MINUTES}\n\
             login_burst_per_ip = 10000\n"
        );
        let stack = Stack::start(&extra);
        Console { stack, port, driver: Chromedriver::start() }
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// A fresh Chromium session (empty profile).
    pub async fn browser(&self) -> Browser {
        Browser::start(&self.driver).await
    }

    /// `settlegate users <args> --config <the gateway's config>`, with `stdin` on standard input.
    pub fn users(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_settlegate"))
            .arg("users")
            .args(args)
            .arg("--config")
            .arg(self.stack.gw.config_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// `settlegate users add NAME --role ROLE --password-stdin`; panics unless it succeeds.
    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        let out = self.users(&["add", name, "--role", role, "--password-stdin"], &format!("{password}\n"));
        assert!(out.status.success(), "users add {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `settlegate users disable NAME`; panics unless it succeeds.
    pub fn disable_user(&self, name: &str) {
        let out = self.users(&["disable", name], "");
        assert!(out.status.success(), "users disable {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The Redis key of the session whose cookie holds `token` (the store keeps only its SHA-256).
    pub fn session_key(token: &str) -> String {
        format!("{{sg}}:console:session:{}", settlegate::console::auth::token_sha256(token))
    }

    /// Opens `/login`, types `name` and `password` and submits; returns when the answer's page has loaded.
    pub async fn log_in(&self, b: &Browser, name: &str, password: &str) {
        b.goto(&self.url("/login")).await;
        b.fill("#login-name", name).await;
        b.fill("#login-password", password).await;
        b.click_and_wait_page("#login-submit", WAIT).await;
    }
}

/// The `data-code` of the login page's `#login-error` (waiting for it to show).
pub async fn login_error(b: &Browser) -> String {
    b.wait_for("#login-error", WAIT).await;
    b.attr("#login-error", "data-code").await.unwrap_or_default()
}
