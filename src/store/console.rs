//! The web console's accounts, login attempts and sessions (docs/CONSOLE.md). Every change of an account, every
//! login (and failed login of an existing account) and every logout is one script call with its audit entry
//! (`scripts/console.lua` after `scripts/audit.lua`), all or nothing. Password hashes are made and checked by the
//! caller (`console::auth`, argon2id): Redis only keeps them.

use std::sync::LazyLock;

use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::audit;
use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;
use crate::domain::audit::Actor;

static CONSOLE: LazyLock<Script> =
    LazyLock::new(|| Script::new(concat!(include_str!("scripts/audit.lua"), include_str!("scripts/console.lua"))));
static LOGIN_BEGIN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/login_begin.lua")));
static SESSION_TOUCH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/session_touch.lua")));

/// What a console account may see: the relief office's view, or one street's (as a street certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    Admin,
    Street,
}

/// One console account, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub role: AccountRole,
    /// The street a street account serves; `None` for an admin account.
    pub street: Option<String>,
    /// argon2id PHC string (salt and parameters inside); never the password.
    pub password_hash: String,
    /// A disabled account cannot log in, and its sessions end at their next request.
    #[serde(default)]
    pub disabled: bool,
    /// RFC 3339, local time.
    pub created_at: String,
}

/// What a login attempt may go on to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginBegin {
    /// No such account (nothing counted: unknown names are not audited).
    Unknown,
    Disabled,
    /// Too many failures in a row; locked for this long yet.
    Locked {
        ms_left: u64,
    },
    /// Check the password against this account; `attempt` is the attempt's number in the current row of failures.
    Check {
        account: Account,
        attempt: u64,
    },
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: Account,
    /// The session's CSRF token: every form and every non-GET API call must carry it.
    pub csrf: String,
}

/// One audited console write.
pub enum ConsoleWrite<'a> {
    Add { account: &'a Account, replace: bool },
    Disable { name: &'a str },
    Login { name: &'a str, token_sha256: &'a str, csrf: &'a str, idle_ms: u64 },
    LoginFailed { name: &'a str },
    Logout { name: &'a str, token_sha256: &'a str },
}

/// What an audited console write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleOutcome {
    Applied,
    /// `add` of an existing name without `replace`.
    Exists,
    /// `disable` or `logout` of something that is not there.
    NotFound,
    /// `disable` of an account already disabled (no entry appended).
    Unchanged,
}

impl Store {
    /// An audited console write; `at` is RFC 3339 local time, `detail` the audit entry's detail (a JSON object).
    pub async fn console_write(
        &self,
        w: &ConsoleWrite<'_>,
        at: &str,
        by: &Actor,
        detail: serde_json::Value,
    ) -> StoreResult<ConsoleOutcome> {
        const OP: &str = "console_write";
        let (action, name, session) = match w {
            ConsoleWrite::Add { account, .. } => ("user.add", account.name.as_str(), ""),
            ConsoleWrite::Disable { name } => ("user.disable", *name, ""),
            ConsoleWrite::Login { name, token_sha256, .. } => ("console.login", *name, *token_sha256),
            ConsoleWrite::LoginFailed { name } => ("console.login_failed", *name, ""),
            ConsoleWrite::Logout { name, token_sha256 } => ("console.logout", *name, *token_sha256),
        };
        let draft = by.draft(at, action, name, detail);
        for _ in 0..audit::AUDIT_ATTEMPTS {
            let sealed = self.seal(&draft).await?;
            let mut inv = CONSOLE.prepare_invoke();
            sealed.push(&mut inv);
            inv.key(keys::USERS).key(keys::login_failures(name)).key(keys::console_session(session));
            match w {
                ConsoleWrite::Add { account, replace } => {
                    let json = serde_json::to_string(account).map_err(|e| StoreError::corrupt(OP, e.to_string()))?;
                    inv.arg("add").arg(name).arg(json).arg(if *replace { "1" } else { "0" });
                }
                ConsoleWrite::Disable { .. } => {
                    inv.arg("disable").arg(name);
                }
                ConsoleWrite::Login { csrf, idle_ms, .. } => {
                    inv.arg("login").arg(name).arg(*csrf).arg(at).arg(*idle_ms);
                }
                ConsoleWrite::LoginFailed { .. } => {
                    inv.arg("login_failed");
                }
                ConsoleWrite::Logout { .. } => {
                    inv.arg("logout");
                }
            }
            let conn = self.conn(OP)?;
            let reply: Vec<String> = { self.run_write(OP, conn, inv) }.await?;
            return match reply.first().map(String::as_str) {
                Some("audit_stale") => continue,
                Some("ok") => Ok(ConsoleOutcome::Applied),
                Some("exists") => Ok(ConsoleOutcome::Exists),
                Some("not_found") => Ok(ConsoleOutcome::NotFound),
                Some("unchanged") => Ok(ConsoleOutcome::Unchanged),
                other => Err(StoreError::corrupt(OP, format!("unknown reply {other:?}"))),
            };
        }
        Err(audit::busy(OP))
    }

    /// Counts a login attempt of `name` (before its password is checked) unless the account is unknown, disabled
    /// or locked.
    pub async fn login_begin(&self, name: &str, max_failed: u64, lockout_ms: u64) -> StoreResult<LoginBegin> {
        const OP: &str = "login_begin";
        let mut inv = LOGIN_BEGIN.prepare_invoke();
        inv.key(keys::USERS).key(keys::login_failures(name)).arg(name).arg(max_failed).arg(lockout_ms);
        let conn = self.conn(OP)?;
        let reply: Vec<String> = { self.run_write(OP, conn, inv) }.await?;
        let num = |i: usize| reply.get(i).and_then(|s| s.parse::<u64>().ok());
        match reply.first().map(String::as_str) {
            Some("unknown") => Ok(LoginBegin::Unknown),
            Some("disabled") => Ok(LoginBegin::Disabled),
            Some("locked") => Ok(LoginBegin::Locked { ms_left: num(1).unwrap_or(0) }),
            Some("check") => {
                let account = parse_account(OP, reply.get(1))?;
                Ok(LoginBegin::Check { account, attempt: num(2).unwrap_or(1) })
            }
            other => Err(StoreError::corrupt(OP, format!("unknown reply {other:?}"))),
        }
    }

    /// The session of a token's SHA-256, its idle clock restarted; `None` when it expired, was logged out, or its
    /// account was disabled.
    pub async fn session_touch(&self, token_sha256: &str, idle_ms: u64) -> StoreResult<Option<Session>> {
        const OP: &str = "session_touch";
        let mut inv = SESSION_TOUCH.prepare_invoke();
        inv.key(keys::console_session(token_sha256)).key(keys::USERS).arg(idle_ms);
        let conn = self.conn(OP)?;
        let reply: Vec<String> = { self.run_write(OP, conn, inv) }.await?;
        if reply.len() < 3 {
            return Ok(None);
        }
        let account = parse_account(OP, reply.get(2))?;
        Ok(Some(Session { account, csrf: reply[1].clone() }))
    }

    /// Every console account (names sorted), for `settlegate users list`.
    pub async fn accounts(&self) -> StoreResult<Vec<Account>> {
        const OP: &str = "accounts";
        let mut conn = self.conn(OP)?;
        let all: std::collections::HashMap<String, String> =
            self.call(OP, false, async move { conn.hgetall(keys::USERS).await }).await?;
        let mut out = Vec::with_capacity(all.len());
        for (_, raw) in all {
            out.push(parse_account(OP, Some(&raw))?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

fn parse_account(op: &'static str, raw: Option<&String>) -> StoreResult<Account> {
    let raw = raw.ok_or_else(|| StoreError::corrupt(op, "no account in the reply"))?;
    serde_json::from_str(raw).map_err(|e| StoreError::corrupt(op, format!("account: {e}")))
}
