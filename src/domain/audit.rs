//! The audit trail's entries and their hash chain (API.md "Audit"), pure.
//!
//! Every write of the relief office and of a street office appends one [`Entry`]. Entry `seq` (1, 2, …) carries
//! `prev_sha256`, the `sha256` of entry `seq - 1` (64 zeros for the first), and its own `sha256`: SHA-256 over the
//! entry's **canonical encoding**, which is the entry as compact JSON without the `sha256` member, members in this
//! order: `seq`, `at`, `actor`, `role`, `action`, `target`, `request_id`, `detail`, `prev_sha256`; `detail` is a
//! JSON object whose members are sorted by name (serde_json's map), strings escaped as serde_json escapes them
//! (`"` `\` and control characters only; no `\u` for other characters). The stored entry is the canonical encoding
//! with `,"sha256":"<hex>"` before the closing brace. Changing any member of any entry, or deleting or reordering
//! entries, breaks the chain at the first entry touched ([`verify`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `prev_sha256` of the first entry.
pub const GENESIS_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who wrote: the API's `role` of an audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditRole {
    /// The relief office: an admin certificate, or the operator's CLI on the office's own config.
    Admin,
    /// A street office (a CN of `[streets] identities`).
    Street,
    /// A person signed in to the web console.
    Console,
}

/// One audit entry, as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When the change was made: RFC 3339, local time, milliseconds.
    pub at: String,
    /// Who made it: the certificate CN (or `cli:<user>` for the operator's command line).
    pub actor: String,
    pub role: AuditRole,
    /// What was done: `ruleset.publish`, `cardholder.put`, `cardholder.import`, `pool.contribution`,
    /// `clearing.create`, `clearing.confirm`, `clearing.paid`, `user.*`, `console.*`, `ledger.archive`.
    pub action: String,
    /// What it was done to: a card id, a program, a clearing id, a ruleset version, "import".
    pub target: String,
    /// The `x-request-id` of the request (a fresh id for the command line), to find its log lines.
    pub request_id: String,
    /// What changed (the body written, or counts), a JSON object.
    pub detail: Value,
    /// `sha256` of the entry before (64 zeros for the first).
    pub prev_sha256: String,
    /// SHA-256 (lower-case hex) of this entry's canonical encoding.
    pub sha256: String,
}

/// The members of an entry that its writer chooses; the chain supplies `seq` and `prev_sha256`.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub at: String,
    pub actor: String,
    pub role: AuditRole,
    pub action: String,
    pub target: String,
    pub request_id: String,
    pub detail: Value,
}

/// Who is writing, for the entries of their writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The certificate CN (a console user's name; `cli:<user>` on the command line).
    pub name: String,
    pub role: AuditRole,
    /// The request's `x-request-id` (a fresh one per command-line run).
    pub request_id: String,
}

impl Actor {
    /// An entry of this actor's, not yet chained.
    pub fn draft(&self, at: &str, action: &str, target: &str, detail: Value) -> Draft {
        debug_assert!(detail.is_object(), "an audit detail is a JSON object");
        Draft {
            at: at.to_string(),
            actor: self.name.clone(),
            role: self.role,
            action: action.to_string(),
            target: target.to_string(),
            request_id: self.request_id.clone(),
            detail,
        }
    }
}

/// The canonical encoding (see the module docs): what `sha256` covers.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    at: &'a str,
    actor: &'a str,
    role: AuditRole,
    action: &'a str,
    target: &'a str,
    request_id: &'a str,
    detail: &'a Value,
    prev_sha256: &'a str,
}

fn canonical(e: &Entry) -> String {
    let c = Canonical {
        seq: e.seq,
        at: &e.at,
        actor: &e.actor,
        role: e.role,
        action: &e.action,
        target: &e.target,
        request_id: &e.request_id,
        detail: &e.detail,
        prev_sha256: &e.prev_sha256,
    };
    serde_json::to_string(&c).expect("an audit entry serialises")
}

/// Lower-case hex SHA-256 of `bytes` (ring's digest, the one crypto provider of this build).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Draft {
    /// The entry `seq` chained after `prev_sha256`, sealed with its hash.
    pub fn seal(&self, seq: u64, prev_sha256: &str) -> Entry {
        assert!(seq >= 1, "audit seq starts at 1");
        let mut e = Entry {
            seq,
            at: self.at.clone(),
            actor: self.actor.clone(),
            role: self.role,
            action: self.action.clone(),
            target: self.target.clone(),
            request_id: self.request_id.clone(),
            detail: self.detail.clone(),
            prev_sha256: prev_sha256.to_string(),
            sha256: String::new(),
        };
        e.sha256 = sha256_hex(canonical(&e).as_bytes());
        e
    }
}

impl Entry {
    /// The stored form: the canonical encoding with `sha256` appended as the last member.
    pub fn stored(&self) -> String {
        let mut s = canonical(self);
        assert_eq!(s.pop(), Some('}'));
        s.push_str(",\"sha256\":\"");
        s.push_str(&self.sha256);
        s.push_str("\"}");
        s
    }
}

/// Why an entry breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first entry that does not verify.
    pub seq: u64,
    pub reason: String,
}

/// Walks a chain one entry at a time, in `seq` order from 1, holding only the last hash.
pub struct Verifier {
    prev: String,
    verified: u64,
}

impl Default for Verifier {
    fn default() -> Verifier {
        Verifier { prev: GENESIS_SHA256.to_string(), verified: 0 }
    }
}

impl Verifier {
    /// Checks the next entry (`None` = missing).
    pub fn push(&mut self, seq: u64, stored: Option<&str>) -> Result<(), Broken> {
        let broken = |reason: String| Broken { seq, reason };
        if seq != self.verified + 1 {
            return Err(broken(format!("expected entry {}", self.verified + 1)));
        }
        let stored = stored.ok_or_else(|| broken("the entry is missing".into()))?;
        let e: Entry = serde_json::from_str(stored).map_err(|err| broken(format!("not an audit entry: {err}")))?;
        if e.seq != seq {
            return Err(broken(format!("it says seq {}", e.seq)));
        }
        if e.prev_sha256 != self.prev {
            return Err(broken("prev_sha256 is not the sha256 of the entry before".into()));
        }
        if sha256_hex(canonical(&e).as_bytes()) != e.sha256 {
            return Err(broken("sha256 does not match the entry's contents".into()));
        }
        if e.stored() != stored {
            return Err(broken("the stored bytes are not the entry's canonical form".into()));
        }
        self.prev = e.sha256;
        self.verified = seq;
        Ok(())
    }

    /// After the last entry: the head must name it. Returns the number of entries verified.
    pub fn finish(self, head_sha256: &str) -> Result<u64, Broken> {
        if self.prev != head_sha256 {
            return Err(Broken {
                seq: self.verified + 1,
                reason: "the chain's head does not name the last entry".into(),
            });
        }
        Ok(self.verified)
    }
}

/// Checks entries `1..=n` in order (`None` = the entry is missing) against the chain; then that the head names the
/// last one. Returns the number of entries verified, or the first broken one.
pub fn verify<'a>(entries: impl Iterator<Item = (u64, Option<&'a str>)>, head_sha256: &str) -> Result<u64, Broken> {
    let mut v = Verifier::default();
    for (seq, stored) in entries {
        v.push(seq, stored)?;
    }
    v.finish(head_sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(target: &str) -> Draft {
        Draft {
            at: "2026-12-02T09:00:00.000+08:00".into(),
            actor: "civil-affairs".into(),
            role: AuditRole::Admin,
            action: "cardholder.put".into(),
            target: target.into(),
            request_id: "r-1".into(),
            detail: serde_json::json!({"z": 1, "a": "王丽 \"q\""}),
        }
    }

    fn chain(n: u64) -> Vec<String> {
        let mut prev = GENESIS_SHA256.to_string();
        (1..=n)
            .map(|seq| {
                let e = draft(&format!("C{seq}")).seal(seq, &prev);
                prev = e.sha256.clone();
                e.stored()
            })
            .collect()
    }

    fn run(stored: &[String]) -> Result<u64, Broken> {
        let head = serde_json::from_str::<Entry>(stored.last().unwrap()).unwrap().sha256;
        verify(stored.iter().enumerate().map(|(i, s)| (i as u64 + 1, Some(s.as_str()))), &head)
    }

    #[test]
    fn a_sealed_chain_verifies_and_round_trips() {
        let stored = chain(5);
        assert_eq!(run(&stored), Ok(5));
        let e: Entry = serde_json::from_str(&stored[2]).unwrap();
        assert_eq!(e.stored(), stored[2]);
        assert!(stored[0].contains(r#""detail":{"a":"王丽 \"q\"","z":1}"#), "{}", stored[0]);
        assert!(stored[0].ends_with(&format!(",\"sha256\":\"{}\"}}", e_sha(&stored[0]))));
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    fn e_sha(s: &str) -> String {
        serde_json::from_str::<Entry>(s).unwrap().sha256
    }

    #[test]
    fn any_change_breaks_the_chain_at_that_entry() {
        let stored = chain(5);
        let mut edited = stored.clone();
        edited[2] = edited[2].replace("C3", "C9");
        assert_eq!(run(&edited).unwrap_err().seq, 3);
        // a rewritten entry with a recomputed hash breaks the next one
        let mut resealed = stored.clone();
        let e3: Entry = serde_json::from_str(&stored[1]).unwrap();
        resealed[2] = draft("C9").seal(3, &e3.sha256).stored();
        let head = e_sha(stored.last().unwrap());
        let got = verify(resealed.iter().enumerate().map(|(i, s)| (i as u64 + 1, Some(s.as_str()))), &head);
        assert_eq!(got.unwrap_err().seq, 4);
        // a deleted entry
        let got = verify(stored.iter().enumerate().map(|(i, s)| (i as u64 + 1, (i != 1).then_some(s.as_str()))), &head);
        assert_eq!(got.unwrap_err(), Broken { seq: 2, reason: "the entry is missing".into() });
        // the last entry dropped, the head left as it was
        let got = verify(stored[..4].iter().enumerate().map(|(i, s)| (i as u64 + 1, Some(s.as_str()))), &head);
        assert_eq!(got.unwrap_err().seq, 5);
    }
}
