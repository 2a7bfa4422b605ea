//! The audit trail's hash chain, verified from the outside (API.md "Audit"; the gateway's `domain::audit`), pure.
//!
//! Entry `seq` (1, 2, … without gaps) carries `prev_sha256`, the `sha256` of entry `seq − 1` (64 zeros for the
//! first), and its own `sha256`: lower-case hex SHA-256 of its **canonical encoding**, the compact JSON of the
//! members `seq`, `at`, `actor`, `role`, `action`, `target`, `request_id`, `detail`, `prev_sha256` in that order,
//! object members sorted by name, strings escaped as serde_json escapes them. The stored (and served) line is the
//! canonical encoding with `,"sha256":"<hex>"` before the final `}`.
//!
//! [`ChainVerifier`] checks each line two ways: the hash of the line as served with its `sha256` member cut off
//! (what a reader without the gateway's code can do), and that re-encoding the parsed entry gives those very bytes
//! (so a line that hashes right but is not canonical, e.g. unsorted `detail`, is caught too). It keeps only the
//! last hash: a chain of any length is checked in constant memory.

use serde::Deserialize;
use serde_json::Value;

/// `prev_sha256` of entry 1.
pub const GENESIS_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry as `GET /admin/v1/audit` serves it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When the change was made (RFC 3339, local time).
    pub at: String,
    /// Who made it (a certificate CN, `cli:<user>`).
    pub actor: String,
    /// `admin` | `street` | `console`.
    pub role: String,
    /// What was done (`pool.contribution`, `ruleset.publish`, …).
    pub action: String,
    /// What it was done to (a program for a contribution).
    pub target: String,
    /// The request's `x-request-id`.
    pub request_id: String,
    /// What changed: a JSON object (a contribution's fields, for `pool.contribution`).
    pub detail: Value,
    /// `sha256` of the entry before.
    pub prev_sha256: String,
    /// SHA-256 of this entry's canonical encoding.
    pub sha256: String,
}

/// Lower-case hex SHA-256 (ring's digest, the crypto provider of the whole workspace).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON value compactly, object members sorted by name at every level (independent of serde_json's map order).
fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("a string serialises"));
                out.push(':');
                write_value(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(v, out);
            }
            out.push(']');
        }
        leaf => out.push_str(&serde_json::to_string(leaf).expect("a JSON leaf serialises")),
    }
}

/// The canonical encoding of an entry: what its `sha256` covers.
pub fn canonical(e: &Entry) -> String {
    let s = |v: &str| serde_json::to_string(v).expect("a string serialises");
    let mut out = format!(
        "{{\"seq\":{},\"at\":{},\"actor\":{},\"role\":{},\"action\":{},\"target\":{},\"request_id\":{},\"detail\":",
        e.seq,
        s(&e.at),
        s(&e.actor),
        s(&e.role),
        s(&e.action),
        s(&e.target),
        s(&e.request_id)
    );
    write_value(&e.detail, &mut out);
    out.push_str(",\"prev_sha256\":");
    out.push_str(&s(&e.prev_sha256));
    out.push('}');
    out
}

/// The stored line of an entry: its canonical encoding with `sha256` as the last member.
pub fn stored(e: &Entry) -> String {
    let mut c = canonical(e);
    c.pop();
    format!("{c},\"sha256\":\"{}\"}}", e.sha256)
}

/// An entry chained after `prev` and sealed with its hash (for tests and for reasoning about tampering).
pub fn seal(mut e: Entry, seq: u64, prev: &str) -> Entry {
    e.seq = seq;
    e.prev_sha256 = prev.to_string();
    e.sha256 = sha256_hex(canonical(&e).as_bytes());
    e
}

/// The bytes `sha256` covers, cut from a served line: the line without its final `,"sha256":"<64 hex>"}`, closed.
fn covered(line: &str) -> Option<String> {
    let cut = line.len().checked_sub(r#","sha256":""}"#.len() + 64)?;
    let (head, tail) = (line.get(..cut)?, line.get(cut..)?);
    let hex = tail.strip_prefix(r#","sha256":""#)?.strip_suffix("\"}")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| format!("{head}}}"))
}

/// Walks the chain one served line at a time, from entry 1, holding only the last hash.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    /// `sha256` of the last entry read (the genesis value before the first).
    prev: String,
    /// The `seq` the next entry must have.
    next_seq: u64,
    /// Entries read that verified.
    pub verified: u64,
    /// Entries read that did not.
    pub broken: u64,
}

impl Default for ChainVerifier {
    fn default() -> ChainVerifier {
        ChainVerifier { prev: GENESIS_SHA256.to_string(), next_seq: 1, verified: 0, broken: 0 }
    }
}

impl ChainVerifier {
    /// The `seq` of the last entry read (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Checks the next served line: `seq` follows the last one, `prev_sha256` is the last one's `sha256`, `sha256`
    /// is the hash of the line's covered bytes, and those bytes are the entry's canonical encoding. Returns the
    /// entry (when the line is one) and why it breaks the chain (when it does). After a break the walk goes on
    /// from this entry, so that each later break is reported at its own entry.
    pub fn push(&mut self, line: &[u8]) -> (Option<Entry>, Result<(), String>) {
        let Ok(text) = std::str::from_utf8(line) else {
            self.broken += 1;
            return (None, Err(format!("after seq {}: a line that is not UTF-8", self.last_seq())));
        };
        let e: Entry = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(err) => {
                self.broken += 1;
                return (None, Err(format!("after seq {}: not an audit entry ({err})", self.last_seq())));
            }
        };
        let mut why = Vec::new();
        if e.seq != self.next_seq {
            why.push(format!("seq {} where {} was due (a gap or a reordering)", e.seq, self.next_seq));
        }
        if e.prev_sha256 != self.prev {
            why.push("prev_sha256 is not the sha256 of the entry before".to_string());
        }
        match covered(text) {
            None => why.push("the line does not end with a lower-case hex sha256 member".into()),
            Some(bytes) => {
                if sha256_hex(bytes.as_bytes()) != e.sha256 {
                    why.push("sha256 is not the SHA-256 of the entry's bytes".into());
                }
                if canonical(&e) != bytes {
                    why.push("the line is not the entry's canonical encoding".into());
                }
            }
        }
        self.prev = e.sha256.clone();
        self.next_seq = e.seq.saturating_add(1);
        if why.is_empty() {
            self.verified += 1;
            (Some(e), Ok(()))
        } else {
            self.broken += 1;
            let reason = format!("seq {}: {}", e.seq, why.join("; "));
            (Some(e), Err(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A known vector: computed apart from this code (Python's json.dumps with `ensure_ascii=False`, compact
    /// separators, sorted `detail`, and hashlib.sha256).
    const VECTOR_CANONICAL: &str = r#"{"seq":1,"at":"2026-12-02T09:00:00.000+08:00","actor":"relief-office","role":"admin","action":"pool.contribution","target":"charity","request_id":"r-1","detail":{"amount_fen":5000,"at":"2026-12-02T09:00:00.000+08:00","contribution_id":"LT1-C-00000000","donor":"区红十字会","kind":"donation","note":"负载测试 \"q\" \\","program":"charity","year":2026},"prev_sha256":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
    const VECTOR_SHA256: &str = "e7633d0feadefc8bf298cd026c83123d92ef262355b8a7db92f826c1ac825561";

    fn entry(target: &str) -> Entry {
        Entry {
            seq: 0,
            at: "2026-12-02T09:00:00.000+08:00".into(),
            actor: "relief-office".into(),
            role: "admin".into(),
            action: "pool.contribution".into(),
            target: target.into(),
            request_id: "r-1".into(),
            // members out of order on purpose: the encoding sorts them
            detail: serde_json::json!({"year": 2026, "program": "charity", "note": "负载测试 \"q\" \\",
                "kind": "donation", "donor": "区红十字会", "contribution_id": "LT1-C-00000000",
                "at": "2026-12-02T09:00:00.000+08:00", "amount_fen": 5000}),
            prev_sha256: String::new(),
            sha256: String::new(),
        }
    }

    fn chain(n: u64) -> Vec<String> {
        let mut prev = GENESIS_SHA256.to_string();
        (1..=n)
            .map(|seq| {
                let e = seal(entry(if seq == 1 { "charity" } else { "medical_assistance" }), seq, &prev);
                prev = e.sha256.clone();
                stored(&e)
            })
            .collect()
    }

    /// The broken entries' reasons, in order.
    fn verify(lines: &[String]) -> Vec<String> {
        let mut v = ChainVerifier::default();
        lines.iter().filter_map(|l| v.push(l.as_bytes()).1.err()).collect()
    }

    #[test]
    fn the_known_vector_verifies() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sha256_hex(VECTOR_CANONICAL.as_bytes()), VECTOR_SHA256);
        let e = seal(entry("charity"), 1, GENESIS_SHA256);
        assert_eq!(canonical(&e), VECTOR_CANONICAL);
        assert_eq!(e.sha256, VECTOR_SHA256);
        let line = stored(&e);
        assert_eq!(
            line,
            format!("{},\"sha256\":\"{VECTOR_SHA256}\"}}", &VECTOR_CANONICAL[..VECTOR_CANONICAL.len() - 1])
        );
        let mut v = ChainVerifier::default();
        let (parsed, ok) = v.push(line.as_bytes());
        assert_eq!(ok, Ok(()));
        assert_eq!(parsed.unwrap().detail["donor"], "区红十字会");
        assert_eq!((v.verified, v.broken, v.last_seq()), (1, 0, 1));
    }

    #[test]
    fn a_sealed_chain_verifies() {
        let lines = chain(5);
        assert_eq!(verify(&lines), Vec::<String>::new());
        let mut v = ChainVerifier::default();
        lines.iter().for_each(|l| assert!(v.push(l.as_bytes()).1.is_ok()));
        assert_eq!(v.verified, 5);
    }

    #[test]
    fn tampering_breaks_the_chain_where_it_happened() {
        let lines = chain(5);
        // a changed amount, hash left as it was
        let mut edited = lines.clone();
        edited[2] = edited[2].replace("\"amount_fen\":5000", "\"amount_fen\":5001");
        let broken = verify(&edited);
        assert_eq!(broken.len(), 1);
        assert!(broken[0].starts_with("seq 3: sha256 is not"), "{broken:?}");
        // the entry rewritten and resealed: the next entry's link breaks
        let mut resealed = lines.clone();
        let e2: Entry = serde_json::from_str(&lines[1]).unwrap();
        let mut forged = entry("medical_assistance");
        forged.detail["amount_fen"] = 1.into();
        resealed[2] = stored(&seal(forged, 3, &e2.sha256));
        let broken = verify(&resealed);
        assert_eq!(broken.len(), 1);
        assert!(broken[0].starts_with("seq 4: prev_sha256"), "{broken:?}");
        // a deleted entry: a gap, and the link to the entry before it
        let mut deleted = lines.clone();
        deleted.remove(1);
        let broken = verify(&deleted);
        assert_eq!(broken.len(), 1);
        assert!(broken[0].contains("seq 3 where 2 was due") && broken[0].contains("prev_sha256"), "{broken:?}");
        // two entries swapped
        let mut swapped = lines.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(&swapped).len(), 3, "the swapped pair and the entry after them");
        // right hash over bytes that are not canonical (detail members unsorted)
        let mut unsorted = lines.clone();
        let e1: Entry = serde_json::from_str(&lines[0]).unwrap();
        let bytes = canonical(&e1).replacen("{\"amount_fen\":5000,", "{", 1).replacen(
            "\"year\":2026}",
            "\"year\":2026,\"amount_fen\":5000}",
            1,
        );
        let sha = sha256_hex(bytes.as_bytes());
        unsorted[0] = format!("{},\"sha256\":\"{sha}\"}}", &bytes[..bytes.len() - 1]);
        let broken = verify(&unsorted);
        assert!(broken[0].starts_with("seq 1: the line is not the entry's canonical encoding"), "{broken:?}");
        // an upper-case hash, a truncated line, a line that is not an entry
        let upper = lines[0].replace(&e1.sha256, &e1.sha256.to_uppercase());
        assert!(verify(&[upper])[0].contains("lower-case hex"));
        assert!(verify(&[lines[0][..lines[0].len() - 2].to_string()])[0].contains("not an audit entry"));
        assert!(verify(&["{\"seq\":1}".to_string()])[0].contains("not an audit entry"));
    }

    #[test]
    fn the_first_entry_links_to_the_genesis_value() {
        let e = seal(entry("charity"), 1, &"1".repeat(64));
        let broken = verify(&[stored(&e)]);
        assert!(broken[0].starts_with("seq 1: prev_sha256"), "{broken:?}");
        let e = seal(entry("charity"), 2, GENESIS_SHA256);
        assert!(verify(&[stored(&e)])[0].contains("seq 2 where 1 was due"));
    }
}
