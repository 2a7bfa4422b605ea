//! The audit chain in Redis (API.md "Audit"): one hash `{sg}:audit` holding each stored entry under its `seq` and
//! the chain's `head` (`"<seq>|<sha256>"`).
//!
//! An office write is one script call that makes the change, appends its event and appends its audit entry, all or
//! nothing. The entry is sealed here (SHA-256 needs no Lua: `domain::audit`) against the head read just before;
//! the script (`scripts/audit.lua`, prefixed to every office-write script) appends it only while the head is still
//! that one, and otherwise changes nothing and answers `audit_stale`: then the head is read again and the entry
//! resealed ([`AUDIT_ATTEMPTS`] times at most). Office writes are rare (a ruleset, a card, a 500-card import
//! batch), so a compare-and-set costs nothing that matters and keeps the chain strictly sequential across every
//! gateway instance and the command line.

use redis::{AsyncCommands, ScriptInvocation};

use super::error::{StoreError, StoreErrorKind, StoreResult};
use super::keys;
use super::Store;
use crate::domain::audit::{Broken, Draft, Entry, Verifier, GENESIS_SHA256};

/// How often an office write reseals its entry when other writes keep moving the head, before it gives up with
/// 503 (nothing was changed).
pub const AUDIT_ATTEMPTS: usize = 64;

/// Entries read from Redis per round trip.
pub const AUDIT_PAGE: u64 = 500;

/// The chain's head: the last entry's `seq` (0 = empty) and `sha256` (zeros when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub sha256: String,
    /// As stored ("" when the chain is empty): what the script compares with.
    raw: String,
}

impl Head {
    fn parse(raw: Option<String>) -> Result<Head, String> {
        let Some(raw) = raw else { return Ok(Head { seq: 0, sha256: GENESIS_SHA256.into(), raw: String::new() }) };
        let (seq, sha) = raw.split_once('|').ok_or_else(|| format!("audit head {raw:?}"))?;
        let seq = seq.parse().map_err(|e| format!("audit head {raw:?}: {e}"))?;
        Ok(Head { seq, sha256: sha.to_string(), raw })
    }
}

/// One sealed entry, ready for a script: the head it is chained to and what it appends.
pub struct Sealed {
    pub entry: Entry,
    expected_head: String,
}

impl Sealed {
    /// Adds the prelude's keys and arguments (KEYS[1..2], ARGV[1..5]) to an invocation: call first.
    pub fn push(&self, inv: &mut ScriptInvocation<'_>) {
        inv.key(keys::AUDIT)
            .key(keys::EVENTS)
            .arg(&self.expected_head)
            .arg(format!("{}|{}", self.entry.seq, self.entry.sha256))
            .arg(self.entry.seq)
            .arg(self.entry.stored())
            .arg(&self.entry.at);
    }
}

/// Whether a script's reply says the head moved.
pub fn is_stale(reply: &[String]) -> bool {
    reply.first().is_some_and(|s| s == "audit_stale")
}

/// The error after [`AUDIT_ATTEMPTS`] stale attempts: nothing was changed.
pub fn busy(op: &'static str) -> StoreError {
    StoreError::new(op, StoreErrorKind::Unavailable, "the audit chain kept moving; nothing was changed")
}

impl Store {
    /// The chain's head.
    pub async fn audit_head(&self) -> StoreResult<Head> {
        const OP: &str = "audit_head";
        let mut conn = self.conn(OP)?;
        let raw: Option<String> = self.call(OP, false, async move { conn.hget(keys::AUDIT, "head").await }).await?;
        Head::parse(raw).map_err(|e| StoreError::corrupt(OP, e))
    }

    /// `draft` sealed as the entry after the current head.
    pub async fn seal(&self, draft: &Draft) -> StoreResult<Sealed> {
        let head = self.audit_head().await?;
        Ok(Sealed { entry: draft.seal(head.seq + 1, &head.sha256), expected_head: head.raw })
    }

    /// Stored entries `from..from + count` (`None` where an entry is missing), in order.
    pub async fn audit_entries(&self, from: u64, count: u64) -> StoreResult<Vec<(u64, Option<String>)>> {
        const OP: &str = "audit_entries";
        if count == 0 {
            return Ok(Vec::new());
        }
        let seqs: Vec<u64> = (from..from + count).collect();
        let mut conn = self.conn(OP)?;
        let args = seqs.clone();
        let got: Vec<Option<String>> =
            self.call(OP, false, async move {
                redis::cmd("HMGET").arg(keys::AUDIT).arg(&args).query_async(&mut conn).await
            })
            .await?;
        Ok(seqs.into_iter().zip(got).collect())
    }

    /// Walks the whole chain a page at a time (`settlegate audit verify`): the number of entries verified, or the
    /// first broken one.
    pub async fn verify_audit(&self) -> StoreResult<Result<u64, Broken>> {
        let head = self.audit_head().await?;
        let mut v = Verifier::default();
        let mut seq = 1;
        while seq <= head.seq {
            let batch = self.audit_entries(seq, AUDIT_PAGE.min(head.seq + 1 - seq)).await?;
            seq += batch.len() as u64;
            for (n, stored) in &batch {
                if let Err(b) = v.push(*n, stored.as_deref()) {
                    return Ok(Err(b));
                }
            }
        }
        Ok(v.finish(&head.sha256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse() {
        assert_eq!(Head::parse(None).unwrap().seq, 0);
        let h = Head::parse(Some("12|ab".into())).unwrap();
        assert_eq!((h.seq, h.sha256.as_str()), (12, "ab"));
        assert!(Head::parse(Some("x".into())).is_err());
    }
}
