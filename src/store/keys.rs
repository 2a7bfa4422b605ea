//! The Redis key layout (documented for operators in docs/REDIS_KEYS.md; keep the two in step).
//!
//! Every key of one card carries the card's hash tag `{<card_id>}`, so a settle or reversal touches one Redis
//! Cluster slot for its card. Card ids and hospital settlement ids cannot contain braces (`domain::is_valid_id`).
//! The few keys that span cards (program totals, id claims, reconciliation) are named here too; docs/CLUSTER.md
//! says how they stay exact on a cluster.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::is_valid_id;

pub fn card(card_id: &str) -> String {
    format!("sg:{{{card_id}}}:card")
}

pub fn usage(card_id: &str) -> String {
    format!("sg:{{{card_id}}}:usage")
}

/// Field of [`usage`]: what `program` paid this card in `year`.
pub fn usage_paid_field(year: i32, program: &str) -> String {
    format!("{year}:{program}:paid")
}

/// Field of [`usage`]: how much of `program`'s deductible the card met in `year`.
pub fn usage_ded_field(year: i32, program: &str) -> String {
    format!("{year}:{program}:ded")
}

/// Hash of what every program paid all cards per year; field `"<year>:<program>"`.
pub const PROGRAM_PAID: &str = "sg:program_paid";

pub fn program_paid_field(year: i32, program: &str) -> String {
    format!("{year}:{program}")
}

/// `/` separates the hospital from its id: neither may contain it (`is_valid_id`), so two (hospital, id) pairs can
/// never share a key (with `:`, hospital `H1:x` + id `y` would collide with hospital `H1` + id `x:y`).
pub fn settlement(card_id: &str, hospital_id: &str, hsid: &str) -> String {
    format!("sg:{{{card_id}}}:stl:{hospital_id}/{hsid}")
}

/// Which card holds a hospital's settlement id (`S:<card>` settled, `T:<card>` cancelled first).
pub fn claim(hospital_id: &str, hsid: &str) -> String {
    format!("sg:claim:{{{hospital_id}/{hsid}}}")
}

pub fn recon_events(day: &str, hospital_id: &str) -> String {
    format!("sg:recon:{day}:{hospital_id}:events")
}

pub fn recon_hospitals(day: &str) -> String {
    format!("sg:recon:{day}:hospitals")
}

/// Hash of published rulesets: field `latest` = highest version, field `<version>` = the ruleset's JSON.
pub const RULESETS: &str = "sg:rulesets";

/// Where a settlement lives, and its opaque `settlement_id`: the card, hospital and hospital's id, base64url
/// encoded. Opaque to clients; it lets `GET /v1/settlements/{id}` find the record without an index. A hospital
/// that decodes it learns nothing it did not send; one that forges another hospital's id gets 404 (the
/// hospital part must equal the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRef {
    pub card_id: String,
    pub hospital_id: String,
    pub hsid: String,
}

impl SettlementRef {
    pub fn new(card_id: &str, hospital_id: &str, hsid: &str) -> SettlementRef {
        SettlementRef { card_id: card_id.into(), hospital_id: hospital_id.into(), hsid: hsid.into() }
    }

    pub fn encode(&self) -> String {
        format!("s1_{}", URL_SAFE_NO_PAD.encode(format!("{}|{}|{}", self.card_id, self.hsid, self.hospital_id)))
    }

    pub fn decode(settlement_id: &str) -> Option<SettlementRef> {
        let raw = URL_SAFE_NO_PAD.decode(settlement_id.strip_prefix("s1_")?).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let mut parts = text.splitn(3, '|');
        let (card_id, hsid, hospital_id) = (parts.next()?, parts.next()?, parts.next()?);
        if !is_valid_id(card_id) || !is_valid_id(hsid) || hospital_id.is_empty() {
            return None;
        }
        Some(SettlementRef { card_id: card_id.into(), hospital_id: hospital_id.into(), hsid: hsid.into() })
    }

    pub fn key(&self) -> String {
        settlement(&self.card_id, &self.hospital_id, &self.hsid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settlement_ref_round_trips() {
        let r = SettlementRef { card_id: "C1".into(), hospital_id: "H0001".into(), hsid: "H0001-20261129:42".into() };
        assert_eq!(SettlementRef::decode(&r.encode()), Some(r));
        assert_eq!(SettlementRef::decode("s1_!!"), None);
        assert_eq!(SettlementRef::decode("nope"), None);
    }

    #[test]
    fn hospital_and_id_never_collide() {
        assert_ne!(settlement("C", "H1:x", "y"), settlement("C", "H1", "x:y"));
        assert_ne!(claim("H1:x", "y"), claim("H1", "x:y"));
        assert_ne!(recon_events("2026-11-30", "H1:events"), recon_events("2026-11-30", "H1"));
    }

    #[test]
    fn one_card_one_hash_tag() {
        for k in [card("C1"), usage("C1"), settlement("C1", "H", "x")] {
            assert!(k.contains("{C1}"), "{k}");
        }
    }
}
