//! The audit trail's reads (API.md "Audit"): `GET /admin/v1/audit` and `settlegate audit verify`. Entries are
//! written by the office writes themselves (`store::audit`); nothing here writes.

use chrono::{DateTime, NaiveDate};

use super::{ApiError, ApiResult, App};
use crate::domain::audit::{Actor, AuditRole, Entry};

use crate::store::audit::AUDIT_PAGE;
/// Most entries one `GET /admin/v1/audit` returns.
pub const MAX_AUDIT_LIMIT: usize = 10_000;
/// Every audit entry's `action`.
pub const ACTIONS: [&str; 13] = [
    "ruleset.publish",
    "cardholder.put",
    "cardholder.import",
    "pool.contribution",
    "clearing.create",
    "clearing.confirm",
    "clearing.paid",
    "user.add",
    "user.disable",
    "console.login",
    "console.login_failed",
    "console.logout",
    "ledger.archive",
];
/// The largest `after` (the API's integers stay within 2^53 - 1).
const MAX_SEQ: u64 = 9_007_199_254_740_991;
/// Entries one `GET /admin/v1/audit` examines at most; the `Next-Cursor` header says where to go on.
const MAX_AUDIT_SCAN: u64 = 100_000;

/// The operator at the command line (`settlegate rules publish`, `cardholders import`, `demo`): role admin, named
/// after the OS user, with a fresh request id per run.
/// The gateway itself, for the changes it makes on its own (archiving): `name` says which task.
pub fn system_actor(name: &str) -> Actor {
    Actor { name: name.to_string(), role: AuditRole::Admin, request_id: uuid::Uuid::new_v4().to_string() }
}

pub fn cli_actor() -> Actor {
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "unknown".into());
    Actor { name: format!("cli:{user}"), role: AuditRole::Admin, request_id: uuid::Uuid::new_v4().to_string() }
}

/// `GET /admin/v1/audit?from=&to=&actor=&action=&after=&limit=`, parsed.
#[derive(Debug, Default)]
pub struct AuditQuery<'q> {
    /// A local date (`YYYY-MM-DD`, from its start) or an RFC 3339 instant.
    pub from: Option<&'q str>,
    /// A local date (to its end) or an RFC 3339 instant.
    pub to: Option<&'q str>,
    pub actor: Option<&'q str>,
    pub action: Option<&'q str>,
    /// Only entries after this `seq` (the previous page's `Next-Cursor`).
    pub after: Option<&'q str>,
    pub limit: Option<&'q str>,
}

/// One bound of the time filter.
enum Bound {
    Day(NaiveDate),
    Instant(DateTime<chrono::FixedOffset>),
}

impl Bound {
    fn parse(field: &str, raw: &str) -> ApiResult<Bound> {
        if let Ok(d) = raw.parse::<NaiveDate>() {
            return Ok(Bound::Day(d));
        }
        DateTime::parse_from_rfc3339(raw)
            .map(Bound::Instant)
            .map_err(|_| ApiError::invalid(field, "must be a date YYYY-MM-DD or an RFC 3339 time"))
    }

    /// Whether `at` is at or after this bound (`after = true`) or at or before it.
    fn admits(&self, at: &str, after: bool) -> bool {
        match self {
            Bound::Day(d) => {
                let day = at.get(..10).and_then(|s| s.parse::<NaiveDate>().ok());
                day.is_some_and(|day| if after { day >= *d } else { day <= *d })
            }
            Bound::Instant(t) => DateTime::parse_from_rfc3339(at).is_ok_and(|a| if after { a >= *t } else { a <= *t }),
        }
    }
}

/// One page of the audit trail.
pub struct AuditPage {
    /// The matching entries as stored, oldest first.
    pub entries: Vec<String>,
    /// The last `seq` examined: pass it as `after` to go on.
    pub next_after: u64,
}

impl App {
    pub async fn audit(&self, q: &AuditQuery<'_>) -> ApiResult<AuditPage> {
        let from = q.from.map(|r| Bound::parse("from", r)).transpose()?;
        let to = q.to.map(|r| Bound::parse("to", r)).transpose()?;
        let after = match q.after {
            None => 0,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= MAX_SEQ)
                .ok_or_else(|| ApiError::invalid("after", "must be an audit seq, 0..=9007199254740991"))?,
        };
        let limit = match q.limit {
            None => 1000,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_AUDIT_LIMIT).contains(n))
                .ok_or_else(|| ApiError::invalid("limit", format!("must be an integer in 1..={MAX_AUDIT_LIMIT}")))?,
        };
        if q.actor.is_some_and(|a| !(1..=128).contains(&a.chars().count())) {
            return Err(ApiError::invalid("actor", "must be 1-128 characters"));
        }
        if q.action.is_some_and(|a| !ACTIONS.contains(&a)) {
            return Err(ApiError::invalid("action", format!("must be one of {}", ACTIONS.join(", "))));
        }
        let head = self.store.audit_head().await?.seq;
        let end = head.min(after.saturating_add(MAX_AUDIT_SCAN));
        let mut page = AuditPage { entries: Vec::new(), next_after: after };
        let mut seq = after + 1;
        while seq <= end && page.entries.len() < limit {
            let batch = self.store.audit_entries(seq, AUDIT_PAGE.min(end + 1 - seq)).await?;
            for (n, stored) in batch {
                seq = n + 1;
                let Some(stored) = stored else { continue };
                page.next_after = n;
                let e: Entry = serde_json::from_str(&stored)
                    .map_err(|err| ApiError::Internal(format!("audit entry {n} is not an entry: {err}")))?;
                let wanted = from.as_ref().is_none_or(|b| b.admits(&e.at, true))
                    && to.as_ref().is_none_or(|b| b.admits(&e.at, false))
                    && q.actor.is_none_or(|a| a == e.actor)
                    && q.action.is_none_or(|a| a == e.action);
                if wanted {
                    page.entries.push(stored);
                    if page.entries.len() == limit {
                        break;
                    }
                }
            }
        }
        if page.entries.len() < limit {
            page.next_after = page.next_after.max(end);
        }
        Ok(page)
    }
}
