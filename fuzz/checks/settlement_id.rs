//! Opaque settlement ids (`SettlementRef::encode` / `decode`).

use arbitrary::Unstructured;
use settlegate::domain::is_valid_id;
use settlegate::store::keys::SettlementRef;

/// The alphabet of card ids, hospital settlement ids and hospital ids (`domain::is_valid_id`).
const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";

fn valid_id(u: &mut Unstructured<'_>) -> String {
    let len = u.int_in_range(1..=64usize).unwrap_or(1);
    (0..len).map(|_| char::from(*u.choose(ID_CHARS).unwrap_or(&b'0'))).collect()
}

/// A settlement id must be usable as one URL path segment as it is.
fn assert_url_safe(id: &str) {
    assert!(
        id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')),
        "settlement id {id:?} is not URL-safe"
    );
}

pub fn check_settlement_id(data: &[u8]) {
    // Decoding: whatever decodes, encodes back to the same text and decodes to the same reference.
    let text = String::from_utf8_lossy(data);
    for candidate in [text.as_ref(), text.trim()] {
        if let Some(r) = SettlementRef::decode(candidate) {
            assert!(is_valid_id(&r.card_id) && is_valid_id(&r.hsid) && !r.hospital_id.is_empty(), "decoded {r:?}");
            let encoded = r.encode();
            assert_eq!(SettlementRef::decode(&encoded).as_ref(), Some(&r), "decode(encode(r)) != r for {candidate:?}");
            assert_eq!(encoded, candidate, "two settlement ids decode to the same reference {r:?}");
        }
    }

    // Encoding: any reference made of valid ids round-trips and is URL-safe.
    let mut u = Unstructured::new(data);
    let card_id = valid_id(&mut u);
    let hsid = valid_id(&mut u);
    let hospital_id = valid_id(&mut u);
    let r = SettlementRef { card_id, hospital_id, hsid };
    let encoded = r.encode();
    assert_url_safe(&encoded);
    assert_eq!(SettlementRef::decode(&encoded).as_ref(), Some(&r), "decode(encode(r)) != r for {r:?}");
    assert!(r.key().contains(&format!("{{{}}}", r.card_id)), "the record key {} lacks the card's hash tag", r.key());
}
