//! Opaque settlement ids (`store::ids`): `s2_` ids sealed for one hospital, and the `s1_` ids of earlier builds.

use arbitrary::Unstructured;
use settlegate::domain::is_valid_id;
use settlegate::store::ids::{decode_v1, IdCodec};
use settlegate::store::keys::SettlementRef;

/// The alphabet of card ids, hospital settlement ids and hospital ids (`domain::is_valid_id`).
const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";

/// A fixed secret: the properties hold for any.
const SECRET: [u8; 32] = [7; 32];

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
    let codec = IdCodec::new(&SECRET).expect("a 32-byte secret");
    // Decoding arbitrary text: never panics; what decodes is the one id `encode` gives, for that hospital only.
    let text = String::from_utf8_lossy(data);
    for candidate in [text.as_ref(), text.trim()] {
        if let Some(r) = codec.decode(candidate, "H0001") {
            assert!(is_valid_id(&r.card_id) && is_valid_id(&r.hsid) && r.hospital_id == "H0001", "decoded {r:?}");
            assert_eq!(codec.encode(&r), candidate, "two settlement ids decode to the same reference {r:?}");
        }
        if let Some(r) = decode_v1(candidate) {
            assert!(is_valid_id(&r.card_id) && is_valid_id(&r.hsid) && !r.hospital_id.is_empty(), "decoded {r:?}");
        }
    }

    // Encoding: any reference made of valid ids round-trips, is URL-safe, hides the card id, and is refused for
    // another hospital.
    let mut u = Unstructured::new(data);
    let r = SettlementRef::new(&valid_id(&mut u), &valid_id(&mut u), &valid_id(&mut u));
    let encoded = codec.encode(&r);
    assert_url_safe(&encoded);
    assert!(!encoded.contains(&r.card_id) || r.card_id.len() < 4, "the id {encoded} shows the card id");
    assert_eq!(codec.decode(&encoded, &r.hospital_id).as_ref(), Some(&r), "decode(encode(r)) != r for {r:?}");
    let other = format!("{}x", r.hospital_id);
    assert_eq!(codec.decode(&encoded, &other), None, "an id of {} opened for {other}", r.hospital_id);
    assert!(r.key().contains(&format!("{{{}}}", r.card_id)), "the record key {} lacks the card's hash tag", r.key());
}
