//! The opaque `settlement_id`: where a settlement lives ([`SettlementRef`]: card, hospital, hospital's id), sealed so
//! that whoever holds an id (a receipt, a log line, a reconciliation file) learns nothing from it, and yet
//! `GET /v1/settlements/{id}` finds the record with one Redis read and no index.
//!
//! `s2_` + base64url(nonce ‖ ChaCha20-Poly1305(key, nonce, plaintext, associated data)) where
//!
//! * plaintext = `card|hsid`, zero-padded to a multiple of 16 bytes (ids cannot contain `|` or NUL), so the id's
//!   length tells little about the card id's;
//! * associated data = the hospital id: the hospital is not inside the id but must be supplied to open it, so another
//!   hospital's id (or a forged one) fails authentication and is 404 like an unknown one;
//! * nonce = the first 12 bytes of HMAC-SHA256(nonce key, `hospital|card|hsid`) — synthetic, SIV style: the same
//!   settlement always gets the same id on every gateway instance (a retry through another instance agrees), two
//!   different settlements get different nonces (a collision needs ~2^48 ids), and decoding re-derives it, so the
//!   one id the gateway minted for a settlement is the only one it accepts. Deterministic encryption reveals only
//!   that two ids are equal, which ids of the same settlement are anyway.
//!
//! The AEAD key and the nonce key are derived with HKDF-SHA256 from one 32-byte secret that every instance reads
//! from Redis (`keys::ID_SECRET`, created once by whichever instance needs it first; see `Store::ids`).
//!
//! `s1_` ids (base64url of `card|hsid|hospital`, handed out by earlier builds) still decode, so settlements recorded
//! before keep their ids and stay reachable. Accepting them gives nothing away: an `s1_` id says only what its
//! holder must already know to build it, and its hospital must still be the caller.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::{hkdf, hmac};

use super::keys::SettlementRef;
use crate::domain::is_valid_id;

/// Length of the shared secret in `sg:secret:ids`.
pub const SECRET_LEN: usize = 32;

/// The prefix of the ids this build hands out.
pub const V2_PREFIX: &str = "s2_";

/// The prefix of the ids earlier builds handed out (card id readable inside); decoded, never minted.
pub const V1_PREFIX: &str = "s1_";

/// Plaintext is padded to a multiple of this many bytes.
const PAD_TO: usize = 16;

/// The longest `s2_` id: `card|hsid` of 64 + 1 + 64 bytes padded to 144, plus nonce and tag, in base64url.
const MAX_V2_CHARS: usize = V2_PREFIX.len() + ((NONCE_LEN + 144 + 16) * 4).div_ceil(3);

/// HKDF salt and labels: a new id format takes new labels (and a new prefix), never reuses these.
const HKDF_SALT: &[u8] = b"settlegate settlement_id v2";
const AEAD_LABEL: &[u8] = b"settlement_id aead";
const NONCE_LABEL: &[u8] = b"settlement_id nonce";

/// Seals and opens `s2_` settlement ids with the keys derived from the shared secret.
pub struct IdCodec {
    aead: LessSafeKey,
    nonce_key: hmac::Key,
}

impl std::fmt::Debug for IdCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdCodec { .. }")
    }
}

impl IdCodec {
    /// The codec of a secret; `None` unless it is [`SECRET_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Option<IdCodec> {
        if secret.len() != SECRET_LEN {
            return None;
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(secret);
        let aead_key: UnboundKey = prk.expand(&[AEAD_LABEL], &CHACHA20_POLY1305).ok()?.into();
        let nonce_key: hmac::Key = prk.expand(&[NONCE_LABEL], hmac::HMAC_SHA256).ok()?.into();
        Some(IdCodec { aead: LessSafeKey::new(aead_key), nonce_key })
    }

    /// The synthetic nonce of a settlement (the same inputs give the same nonce, on every instance).
    fn nonce(&self, at: &SettlementRef) -> [u8; NONCE_LEN] {
        let mut ctx = hmac::Context::with_key(&self.nonce_key);
        for (i, part) in [&at.hospital_id, &at.card_id, &at.hsid].into_iter().enumerate() {
            if i > 0 {
                ctx.update(b"|");
            }
            ctx.update(part.as_bytes());
        }
        let tag = ctx.sign();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&tag.as_ref()[..NONCE_LEN]);
        nonce
    }

    /// The `s2_` id of a settlement. Ids have no `|` (`is_valid_id`), so `card|hsid` splits back unambiguously.
    pub fn encode(&self, at: &SettlementRef) -> String {
        let nonce = self.nonce(at);
        let plain_len = at.card_id.len() + 1 + at.hsid.len();
        let mut buf = Vec::with_capacity(NONCE_LEN + plain_len.next_multiple_of(PAD_TO) + 16);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(at.card_id.as_bytes());
        buf.push(b'|');
        buf.extend_from_slice(at.hsid.as_bytes());
        buf.resize(NONCE_LEN + plain_len.next_multiple_of(PAD_TO), 0);
        let mut sealed = buf.split_off(NONCE_LEN);
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(at.hospital_id.as_bytes()),
                &mut sealed,
            )
            .expect("ChaCha20-Poly1305 seals any input below 256 GiB");
        buf.extend_from_slice(&sealed);
        format!("{V2_PREFIX}{}", URL_SAFE_NO_PAD.encode(&buf))
    }

    /// Where an `s2_` id of `hospital_id` points; `None` for anything else: malformed, tampered with, sealed for
    /// another hospital, or not minted by this secret.
    pub fn decode(&self, settlement_id: &str, hospital_id: &str) -> Option<SettlementRef> {
        let body = settlement_id.strip_prefix(V2_PREFIX)?;
        if settlement_id.len() > MAX_V2_CHARS {
            return None;
        }
        let mut raw = URL_SAFE_NO_PAD.decode(body).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let mut sealed = raw.split_off(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = raw.try_into().ok()?;
        let plain = self
            .aead
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(hospital_id.as_bytes()), &mut sealed)
            .ok()?;
        let end = plain.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let text = std::str::from_utf8(&plain[..end]).ok()?;
        let (card_id, hsid) = text.split_once('|')?;
        if !is_valid_id(card_id) || !is_valid_id(hsid) {
            return None;
        }
        let at = SettlementRef::new(card_id, hospital_id, hsid);
        // the nonce is a MAC of the contents too: only the id `encode` gives is accepted
        (self.nonce(&at) == nonce).then_some(at)
    }
}

/// Where an `s1_` id (earlier builds: base64url of `card|hsid|hospital`) points; `None` when malformed.
pub fn decode_v1(settlement_id: &str) -> Option<SettlementRef> {
    let raw = URL_SAFE_NO_PAD.decode(settlement_id.strip_prefix(V1_PREFIX)?).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.splitn(3, '|');
    let (card_id, hsid, hospital_id) = (parts.next()?, parts.next()?, parts.next()?);
    if !is_valid_id(card_id) || !is_valid_id(hsid) || hospital_id.is_empty() {
        return None;
    }
    Some(SettlementRef::new(card_id, hospital_id, hsid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(seed: u8) -> IdCodec {
        IdCodec::new(&[seed; SECRET_LEN]).unwrap()
    }

    fn at(card: &str, hospital: &str, hsid: &str) -> SettlementRef {
        SettlementRef::new(card, hospital, hsid)
    }

    #[test]
    fn round_trips_and_is_deterministic_across_instances() {
        let r = at("C100001", "H0001", "H0001-20261129:42");
        let id = codec(7).encode(&r);
        assert!(id.starts_with("s2_"), "{id}");
        assert_eq!(codec(7).decode(&id, "H0001"), Some(r.clone()), "another codec of the same secret opens it");
        assert_eq!(codec(7).encode(&r), id, "same settlement, same id");
        let longest = at(&"C".repeat(64), "H0001", &"h".repeat(64));
        let long_id = codec(7).encode(&longest);
        assert_eq!(long_id.len(), MAX_V2_CHARS);
        assert_eq!(codec(7).decode(&long_id, "H0001"), Some(longest));
        assert_eq!(codec(7).decode(&format!("{long_id}AAAA"), "H0001"), None);
    }

    #[test]
    fn reveals_no_card_id() {
        let c = codec(1);
        for card in ["C100001", "Q9", "ABC", "card.with-long_id:0123456789"] {
            let id = c.encode(&at(card, "H0001", "H0001-C100001-1"));
            assert!(!id.contains(card), "{id}");
            let raw = URL_SAFE_NO_PAD.decode(id.strip_prefix("s2_").unwrap()).unwrap();
            assert!(!raw.windows(card.len()).any(|w| w == card.as_bytes()), "{id}");
        }
        // two settlements of one card share nothing visible
        let (a, b) = (c.encode(&at("C1", "H1", "x1")), c.encode(&at("C1", "H1", "x2")));
        assert_ne!(a[3..19], b[3..19]);
        let (short, long) = (c.encode(&at("C1", "H1", "x")), c.encode(&at("C1234567", "H1", "x")));
        assert_eq!(short.len(), long.len(), "padding hides small length differences");
    }

    #[test]
    fn another_hospital_or_another_secret_fails() {
        let id = codec(1).encode(&at("C1", "H0001", "x"));
        assert_eq!(codec(1).decode(&id, "H0002"), None);
        assert_eq!(codec(1).decode(&id, ""), None);
        assert_eq!(codec(2).decode(&id, "H0001"), None);
    }

    #[test]
    fn any_tampered_byte_fails() {
        let c = codec(3);
        let id = c.encode(&at("C100001", "H0001", "H0001-42"));
        let raw = URL_SAFE_NO_PAD.decode(&id[3..]).unwrap();
        for i in 0..raw.len() {
            for bit in [0x01, 0x80] {
                let mut t = raw.clone();
                t[i] ^= bit;
                let forged = format!("s2_{}", URL_SAFE_NO_PAD.encode(&t));
                assert_eq!(c.decode(&forged, "H0001"), None, "byte {i}");
            }
        }
        let truncated = format!("s2_{}", URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]));
        for bad in ["s2_", "s2_!!", "s2_AAAA", &truncated, &id[1..], &id.replacen("s2_", "s1_", 1)] {
            assert_eq!(c.decode(bad, "H0001"), None, "{bad}");
        }
    }

    #[test]
    fn s1_ids_still_decode() {
        let old = format!("s1_{}", URL_SAFE_NO_PAD.encode("C100001|H0001-20261129:42|H0001"));
        assert_eq!(decode_v1(&old), Some(at("C100001", "H0001", "H0001-20261129:42")));
        assert_eq!(decode_v1("s1_!!"), None);
        assert_eq!(decode_v1("nope"), None);
        assert_eq!(decode_v1(&format!("s1_{}", URL_SAFE_NO_PAD.encode("C1|x"))), None);
        assert_eq!(codec(1).decode(&old, "H0001"), None, "the s2 codec opens only s2 ids");
    }

    #[test]
    fn secrets_of_the_wrong_length_are_refused() {
        assert!(IdCodec::new(&[0; 31]).is_none());
        assert!(IdCodec::new(&[0; 33]).is_none());
        assert!(IdCodec::new(&[]).is_none());
    }
}
