//! Check family 10: the audit trail (`GET /admin/v1/audit`, as the relief office). After the events audit, the
//! audit pages through the whole chain from `seq` 1 (10 000 entries a page, `after` = the previous page's
//! `Next-Cursor`) and checks:
//!
//! - `audit_chain_intact`: every entry follows the one before without a gap, links to its `sha256`, and hashes to
//!   its own `sha256` over its canonical encoding (`chain.rs`);
//! - `audit_chain_paging`: `Next-Cursor` is at least the last `seq` of its page (exactly it on a full page), and
//!   never goes back;
//! - `contributions_audited`: every accepted contribution of the run has exactly one entry, action
//!   `pool.contribution`, target its program, actor the run's admin identity (role `admin`), detail the
//!   contribution as answered; a refused one has none;
//! - `audit_appended_events_match_chain`: every `audit.appended` event the events audit read carries, byte for
//!   byte, an entry of the chain (same `seq`, same `sha256`, same line); on an exclusive store, every entry from
//!   the first such event on has one.
//!
//! Memory: the last hash, one byte per contribution of the run, the `audit.appended` events read; one page at a
//! time.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use http::Method;
use serde::Serialize;

use super::chain::{ChainVerifier, Entry};
use super::check::Check;
use super::events::{line_hash, Appended};
use crate::client::Endpoint;
use crate::stats::elapsed_ms;
use crate::workload::{contribution_id, parse_contribution_id, ContributionRecord, ContributionState};

/// Entries per page (the API's maximum).
const PAGE_LIMIT: usize = 10_000;
/// Pages at most in one walk (10^9 entries).
const MAX_PAGES: u64 = 100_000;
/// Bound on one page's read.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts per page before the read counts as failed.
const PAGE_ATTEMPTS: usize = 3;
/// Field-difference messages kept (the checks keep at most 10 examples each).
const MAX_MESSAGES: usize = 64;
/// The action of a contribution's entry.
pub const CONTRIBUTION_ACTION: &str = "pool.contribution";

/// What the audit trail check read (`audit.audit_trail` in report.json).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrailSummary {
    /// `checked`, `not served` (404) or `skipped` (`audit.audit_chain = false`).
    pub status: String,
    /// Pages read.
    pub pages: u64,
    /// Entries read, and of those the ones that verified.
    pub entries: u64,
    pub verified: u64,
    /// The last `seq` read.
    pub last_seq: u64,
    /// Entries by action.
    pub by_action: BTreeMap<String, u64>,
    /// Entries of the run's contributions.
    pub of_the_run: u64,
    /// How long the walk took, milliseconds.
    pub duration_ms: u64,
}

/// The walk's matcher: fed the pages, then tallies the checks (pure: no I/O, so it is unit-tested).
pub(super) struct Trail<'a> {
    run_id: &'a str,
    admin: &'a str,
    program: &'a str,
    records: &'a [ContributionRecord],
    exclusive: bool,
    verifier: ChainVerifier,
    seen: Vec<u8>,
    wrong: BTreeMap<usize, String>,
    /// (`sha256`, line hash) by `seq` of the `audit.appended` events not yet met in the chain.
    appended: HashMap<u64, (String, u64)>,
    first_appended: Option<u64>,
    intact: Check,
    paging: Check,
    appended_check: Check,
    contributions: Check,
    pub(super) summary: TrailSummary,
}

impl<'a> Trail<'a> {
    pub(super) fn new(
        run_id: &'a str,
        admin: &'a str,
        program: &'a str,
        records: &'a [ContributionRecord],
        appended: Appended,
        exclusive: bool,
    ) -> Trail<'a> {
        let mut appended_check = Check::new("audit_appended_events_match_chain");
        for u in appended.unreadable {
            appended_check.fail(u);
        }
        let first_appended = appended.entries.iter().map(|e| e.0).min();
        let mut map = HashMap::new();
        for (seq, sha, line) in appended.entries {
            if map.insert(seq, (sha, line)).is_some() {
                appended_check.fail(format!("two audit.appended events for seq {seq}"));
            }
        }
        Trail {
            run_id,
            admin,
            program,
            records,
            exclusive,
            verifier: ChainVerifier::default(),
            seen: vec![0; records.len()],
            wrong: BTreeMap::new(),
            appended: map,
            first_appended,
            intact: Check::new("audit_chain_intact"),
            paging: Check::new("audit_chain_paging"),
            appended_check,
            contributions: Check::new("contributions_audited"),
            summary: TrailSummary { status: "checked".into(), ..Default::default() },
        }
    }

    /// One page read after `after`; returns where to read next, `None` at the end.
    pub(super) fn page(&mut self, after: u64, next_cursor: Option<&str>, body: &[u8]) -> Option<u64> {
        self.summary.pages += 1;
        let mut lines = 0;
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            lines += 1;
            self.line(line);
        }
        let last = self.verifier.last_seq();
        let next = next_cursor.and_then(|c| c.parse::<u64>().ok());
        let ok = match next {
            None => false,
            Some(n) if lines == 0 => n >= after,
            Some(n) if lines >= PAGE_LIMIT => n == last,
            Some(n) => n >= last && n >= after,
        };
        self.paging
            .expect(ok, || format!("page after {after} ({lines} entries to seq {last}): Next-Cursor {next_cursor:?}"));
        match next {
            Some(n) if lines > 0 || n > after => Some(n.max(after)),
            _ => None,
        }
    }

    fn line(&mut self, line: &[u8]) {
        let (entry, verdict) = self.verifier.push(line);
        let hash = line_hash(line);
        match verdict {
            Ok(()) => self.intact.ok(),
            Err(why) => self.intact.fail(why),
        }
        let Some(e) = entry else { return };
        self.summary.entries += 1;
        self.summary.last_seq = e.seq;
        *self.summary.by_action.entry(e.action.clone()).or_insert(0) += 1;
        match self.appended.remove(&e.seq) {
            Some((sha, event_line)) => self.appended_check.expect(sha == e.sha256 && event_line == hash, || {
                format!(
                    "seq {}: the chain's line differs from the copy its audit.appended event carried (sha256 {} in \
                     the chain, {sha} in the event)",
                    e.seq, e.sha256
                )
            }),
            None if self.exclusive && self.first_appended.is_some_and(|f| e.seq > f) => self
                .appended_check
                .fail(format!("seq {} ({}): in the chain, but no audit.appended event", e.seq, e.action)),
            None => {}
        }
        self.contribution(&e);
    }

    fn contribution(&mut self, e: &Entry) {
        let id = e.detail["contribution_id"].as_str().unwrap_or_default();
        let Some(seq) = parse_contribution_id(self.run_id, id) else { return };
        self.summary.of_the_run += 1;
        let Some(i) = usize::try_from(seq).ok().filter(|&i| i < self.records.len()) else {
            self.contributions.fail(format!("seq {}: an entry for {id}, which the run never sent", e.seq));
            return;
        };
        self.seen[i] = self.seen[i].saturating_add(1);
        let r = &self.records[i];
        let mut diff = Vec::new();
        if e.action != CONTRIBUTION_ACTION {
            diff.push(format!("action {:?}", e.action));
        }
        if e.target != self.program {
            diff.push(format!("target {:?} (program {:?})", e.target, self.program));
        }
        if e.actor != self.admin || e.role != "admin" {
            diff.push(format!("actor {:?} role {:?} (sent as {:?})", e.actor, e.role, self.admin));
        }
        if r.answer.as_ref().is_some_and(|a| a != &e.detail) {
            diff.push(format!("detail {} != answered {}", e.detail, r.answer.as_ref().expect("answered")));
        }
        if !diff.is_empty() && self.wrong.len() < MAX_MESSAGES {
            self.wrong.entry(i).or_insert_with(|| format!("{id} (seq {}): {}", e.seq, diff.join("; ")));
        } else if !diff.is_empty() {
            self.wrong.entry(i).or_default();
        }
    }

    /// A read that failed: the chain cannot be said to be intact.
    pub(super) fn read_failed(&mut self, error: String) {
        self.paging.fail(error);
    }

    /// The checks: one result per entry, page, `audit.appended` event and contribution of the run.
    pub(super) fn finish(mut self) -> (Vec<Check>, TrailSummary) {
        let mut rest: Vec<u64> = self.appended.keys().copied().collect();
        rest.sort_unstable();
        for seq in rest {
            self.appended_check.fail(format!("an audit.appended event for seq {seq}, which the chain does not hold"));
        }
        for (i, r) in self.records.iter().enumerate() {
            let n = self.seen[i];
            let ok = match r.state {
                ContributionState::Accepted => n == 1,
                ContributionState::Refused => n == 0,
                ContributionState::Unknown => n <= 1,
            } && !self.wrong.contains_key(&i);
            let id = contribution_id(self.run_id, r.seq);
            let message = || {
                self.wrong
                    .get(&i)
                    .filter(|m| !m.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("{id} ({:?}): {n} audit entr(ies)", r.state))
            };
            self.contributions.expect(ok, message);
        }
        self.summary.verified = self.verifier.verified;
        (vec![self.intact, self.paging, self.contributions, self.appended_check], self.summary)
    }
}

/// One page after `after`, with a few attempts: (status, Next-Cursor, body).
async fn read_page(admin: &Endpoint, after: u64) -> Result<(u16, Option<String>, bytes::Bytes), String> {
    let path = format!("/admin/v1/audit?limit={PAGE_LIMIT}&after={after}");
    let mut last = String::new();
    for _ in 0..PAGE_ATTEMPTS {
        match admin.call_with_timeout(Method::GET, &path, None, PAGE_TIMEOUT).await {
            Ok(a) if a.status < 500 => return Ok((a.status, a.next_cursor, a.body)),
            Ok(a) => last = format!("HTTP {} {}", a.status, String::from_utf8_lossy(&a.body[..a.body.len().min(200)])),
            Err(f) => last = format!("{} {f:?}", f.code()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("GET {path} as {}: {last}", admin.name))
}

/// The audit trail check: walks the whole chain through a [`Trail`].
pub(super) async fn check(admin: &Endpoint, mut trail: Trail<'_>) -> (Vec<Check>, TrailSummary) {
    let t0 = Instant::now();
    let mut after = 0;
    for _ in 0..MAX_PAGES {
        match read_page(admin, after).await {
            Ok((200, next, body)) => match trail.page(after, next.as_deref(), &body) {
                Some(n) => after = n,
                None => break,
            },
            Ok((404, _, _)) if trail.summary.pages == 0 => {
                let mut c = Check::new("audit_chain_served");
                c.fail("GET /admin/v1/audit answered 404: this gateway has no audit trail (set audit.audit_chain = false to skip this check)".into());
                return (vec![c], TrailSummary { status: "not served".into(), ..Default::default() });
            }
            Ok((status, _, body)) => {
                trail.read_failed(format!(
                    "GET /admin/v1/audit after {after}: HTTP {status} {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
                break;
            }
            Err(e) => {
                trail.read_failed(e);
                break;
            }
        }
    }
    let (checks, mut summary) = trail.finish();
    summary.duration_ms = elapsed_ms(t0);
    (checks, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::{seal, stored, GENESIS_SHA256};
    use crate::workload::{ContributionBook, ContributionKind};

    fn entry(action: &str, detail: serde_json::Value) -> Entry {
        Entry {
            seq: 0,
            at: "2026-12-02T09:00:00.000+08:00".into(),
            actor: "relief-office".into(),
            role: "admin".into(),
            action: action.into(),
            target: if action == CONTRIBUTION_ACTION { "charity" } else { "3" }.into(),
            request_id: "r".into(),
            detail,
            prev_sha256: String::new(),
            sha256: String::new(),
        }
    }

    fn page_of(entries: Vec<Entry>) -> (Vec<String>, Vec<(u64, String, u64)>) {
        let mut prev = GENESIS_SHA256.to_string();
        let mut heads = Vec::new();
        let lines = entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let e = seal(e, i as u64 + 1, &prev);
                prev = e.sha256.clone();
                let line = stored(&e);
                heads.push((e.seq, e.sha256, line_hash(line.as_bytes())));
                line
            })
            .collect();
        (lines, heads)
    }

    #[test]
    fn the_walk_checks_the_chain_the_contributions_and_the_appended_events() {
        let mut book = ContributionBook::default();
        let a = book.open(ContributionKind::Donation, 0, 100, false);
        let b = book.open(ContributionKind::Withdrawal, 0, 100, false);
        let answer = serde_json::json!({"contribution_id": contribution_id("LT1", a as u64), "amount_fen": 100});
        book.settle(a, ContributionState::Accepted, Some(answer.clone()));
        book.settle(b, ContributionState::Refused, None);
        let records = book.records;
        let (lines, heads) = page_of(vec![
            entry("ruleset.publish", serde_json::json!({"version": 3})),
            entry(CONTRIBUTION_ACTION, answer),
        ]);
        let body = lines.join("\n") + "\n";
        let run = |body: &str, appended: Vec<(u64, String, u64)>| {
            let mut t = Trail::new(
                "LT1",
                "relief-office",
                "charity",
                &records,
                Appended { entries: appended, unreadable: Vec::new() },
                true,
            );
            assert_eq!(t.page(0, Some("2"), body.as_bytes()), Some(2));
            assert_eq!(t.page(2, Some("2"), b""), None);
            t.finish()
        };
        let (checks, summary) = run(&body, heads[1..].to_vec());
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        assert_eq!((summary.entries, summary.verified, summary.of_the_run, summary.pages), (2, 2, 1, 2));
        // a tampered detail: the chain breaks and the contribution's entry differs from its answer
        let tampered = body.replace("\"amount_fen\":100", "\"amount_fen\":99");
        let (checks, _) = run(&tampered, heads[1..].to_vec());
        let failed: Vec<&str> = checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
        assert_eq!(failed, ["audit_chain_intact", "contributions_audited", "audit_appended_events_match_chain"]);
        // an appended event for an entry the chain lacks, and an entry without its event
        let (checks, _) = run(&body, vec![heads[0].clone(), (9, "x".into(), 0)]);
        let appended = checks.iter().find(|c| c.name == "audit_appended_events_match_chain").unwrap();
        assert_eq!(appended.failed, 2, "{appended:?}");
        // the chain without the contribution's entry
        let (checks, _) = run(&(lines[0].clone() + "\n"), Vec::new());
        let c = checks.iter().find(|c| c.name == "contributions_audited").unwrap();
        assert_eq!((c.checked, c.failed), (2, 1), "{c:?}");
        let paging = checks.iter().find(|c| c.name == "audit_chain_paging").unwrap();
        assert!(paging.passed, "{paging:?}");
    }
}
