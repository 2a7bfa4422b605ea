//! The store's record formats (`settlegate::store::codec`): every parser on arbitrary text never panics, and what
//! it accepts re-encodes to text it parses to the same value; encoders of arbitrary valid values parse back.
//!
//! Input: the first byte picks the format (`P` payments, `C` canonical request, `E` reconciliation line, `R` settle
//! script reads, `T` tags, `K` cardholder hash, `S` settlement record, `B` tombstone, as `key=value` lines for the
//! hashes; anything else: valid values built through `arbitrary` and encoded); the rest is the text.

use std::collections::HashMap;

use arbitrary::Unstructured;
use chrono::NaiveDate;
use settlegate::domain::bill::{Amounts, Bill, Insurance, Operator, Visit};
use settlegate::domain::card::{CardStatus, Cardholder, MAX_TAGS};
use settlegate::domain::money::MAX_FEN;
use settlegate::domain::rules::VisitType;
use settlegate::domain::settlement::{Settlement, SettlementStatus};
use settlegate::domain::split::{CappedBy, Payment};
use settlegate::store::codec::{
    card_fields, encode_payments, parse_canonical, parse_card, parse_payments, parse_reads, parse_settlement,
    parse_tags, parse_tombstone, settlement_record, CanonicalRequest,
};
use settlegate::store::dayline::{encode_event, parse_event, DayEvent, LineContext, ProgramFen};

type Map = HashMap<String, String>;

fn as_map<K: ToString>(fields: impl IntoIterator<Item = (K, String)>) -> Map {
    fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `key=value` lines as a hash (a later key wins, as HSET would).
fn lines_map(text: &str) -> Map {
    text.lines().map(|l| l.split_once('=').unwrap_or((l, ""))).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn canonical_of(c: &CanonicalRequest) -> String {
    Bill { card_id: &c.card_id, visit: c.visit, amounts: c.amounts, insurance: &c.insurance }.canonical()
}

/// A reconciliation line's program amounts as the payments it was encoded from (the unsigned paid amounts).
fn event_payments(e: &DayEvent) -> Vec<Payment> {
    e.by_program
        .iter()
        .map(|p| Payment {
            program: p.program.clone(),
            paid_fen: i64::try_from(p.fen.unsigned_abs()).expect("parsed amounts are at most i64::MAX"),
            deductible_applied_fen: 0,
            capped_by: None,
        })
        .collect()
}

// ---- arbitrary text -----------------------------------------------------------------------------------------------

fn check_text(kind: u8, text: &str) {
    match kind {
        b'P' => {
            if let Ok(p) = parse_payments(text) {
                assert_eq!(parse_payments(&encode_payments(&p)), Ok(p), "payments {text:?}");
            }
        }
        b'C' => {
            if let Ok(c) = parse_canonical(text) {
                assert_eq!(parse_canonical(&canonical_of(&c)), Ok(c), "canonical request {text:?}");
            }
        }
        b'E' => {
            if let Some(e) = parse_event(text) {
                assert_eq!(parse_event(&encode_event(&e, &event_payments(&e))).as_ref(), Some(&e), "event {text:?}");
            }
        }
        b'R' => {
            let _ = parse_reads(text);
        }
        b'T' => {
            let tags = parse_tags(text);
            let c = Cardholder {
                card_id: "C".into(),
                category: "c".into(),
                valid_from: NaiveDate::MIN,
                valid_until: NaiveDate::MAX,
                status: CardStatus::Active,
                tags: tags.clone(),
                street: None,
                community: None,
            };
            let fields = as_map(card_fields(&c));
            assert_eq!(parse_tags(&fields["tags"]), tags, "tags {text:?}");
        }
        b'K' => {
            if let Ok(Some(c)) = parse_card(&lines_map(text)) {
                assert_eq!(parse_card(&as_map(card_fields(&c))), Ok(Some(c)), "cardholder hash {text:?}");
            }
        }
        b'S' => {
            if let Ok(s) = parse_settlement(&lines_map(text)) {
                assert!(s.check_invariants());
                assert_eq!(parse_settlement(&as_map(settlement_record(&s))), Ok(s), "settlement record {text:?}");
            }
        }
        b'B' => {
            let _ = parse_tombstone(&lines_map(text));
        }
        _ => unreachable!(),
    }
}

// ---- arbitrary valid values ---------------------------------------------------------------------------------------

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";
const NAME_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";

type R<T> = arbitrary::Result<T>;

fn from_alphabet(u: &mut Unstructured<'_>, alphabet: &[u8]) -> R<String> {
    let len = u.int_in_range(1..=64usize)?;
    (0..len).map(|_| u.choose(alphabet).map(|b| char::from(*b))).collect()
}

/// A category or tag (`domain::is_valid_label`): 1-64 visible characters, none of `, ; = | { }`.
fn label(u: &mut Unstructured<'_>) -> R<String> {
    let len = u.int_in_range(1..=64usize)?;
    (0..len)
        .map(|_| {
            let c: char = u.arbitrary()?;
            Ok(if c.is_whitespace() || c.is_control() || ",;=|{}".contains(c) { 'x' } else { c })
        })
        .collect()
}

fn fen(u: &mut Unstructured<'_>) -> R<i64> {
    u.int_in_range(0..=MAX_FEN)
}

/// A local date with a four-digit year, as the API accepts them.
fn date(u: &mut Unstructured<'_>) -> R<NaiveDate> {
    let lo = NaiveDate::from_ymd_opt(1000, 1, 1).expect("a date");
    Ok(lo + chrono::Days::new(u.int_in_range(0..=3_287_181u64)?)) // up to 9999-12-31
}

fn visit(u: &mut Unstructured<'_>) -> R<Visit> {
    Ok(Visit { visit_type: *u.choose(&VisitType::ALL)?, date: date(u)? })
}

fn payment(u: &mut Unstructured<'_>, most: i64) -> R<Payment> {
    Ok(Payment {
        program: from_alphabet(u, NAME_CHARS)?,
        paid_fen: u.int_in_range(0..=most)?,
        deductible_applied_fen: fen(u)?,
        capped_by: *u.choose(&[None, Some(CappedBy::PerVisitCap), Some(CappedBy::AnnualCap), Some(CappedBy::Pool)])?,
    })
}

fn opt_id(u: &mut Unstructured<'_>) -> R<Option<String>> {
    if u.arbitrary()? {
        Ok(Some(from_alphabet(u, ID_CHARS)?))
    } else {
        Ok(None)
    }
}

fn cardholder(u: &mut Unstructured<'_>) -> R<Cardholder> {
    let (a, b) = (date(u)?, date(u)?);
    let n = u.int_in_range(0..=MAX_TAGS)?;
    Ok(Cardholder {
        card_id: from_alphabet(u, ID_CHARS)?,
        category: label(u)?,
        valid_from: a.min(b),
        valid_until: a.max(b),
        status: *u.choose(&[CardStatus::Active, CardStatus::Suspended])?,
        tags: (0..n).map(|_| label(u)).collect::<R<_>>()?,
        street: if u.arbitrary()? { Some(label(u)?) } else { None },
        community: if u.arbitrary()? { Some(label(u)?) } else { None },
    })
}

/// A settlement that keeps the invariants: the parts of the total add up, the payments to the relief.
fn settlement(u: &mut Unstructured<'_>) -> R<Settlement> {
    let q = MAX_FEN / 4;
    let amounts = Amounts {
        in_scope_fen: u.int_in_range(0..=q)?,
        pre_self_pay_fen: u.int_in_range(0..=q)?,
        over_limit_fen: u.int_in_range(0..=q)?,
        self_pay_fen: u.int_in_range(0..=q)?,
        total_fen: 0,
    };
    let amounts = Amounts {
        total_fen: amounts.in_scope_fen + amounts.pre_self_pay_fen + amounts.over_limit_fen + amounts.self_pay_fen,
        ..amounts
    };
    let basic = u.int_in_range(0..=amounts.in_scope_fen)?;
    let insurance = Insurance { basic_fen: basic, critical_illness_fen: 0, other_fen: 0, settlement_ref: opt_id(u)? };
    let mut left = amounts.total_fen - basic;
    let mut payments = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let p = payment(u, left)?;
        left -= p.paid_fen;
        payments.push(p);
    }
    let relief_fen = payments.iter().map(|p| p.paid_fen).sum();
    let status = *u.choose(&[SettlementStatus::Settled, SettlementStatus::Reversed, SettlementStatus::Quote])?;
    let stamp = |u: &mut Unstructured<'_>| -> R<Option<String>> { u.arbitrary() };
    let s = Settlement {
        settlement_id: opt_id(u)?,
        hospital_settlement_id: opt_id(u)?,
        hospital_id: opt_id(u)?,
        status,
        card_id: from_alphabet(u, ID_CHARS)?,
        category: label(u)?,
        visit: visit(u)?,
        amounts,
        insurance,
        ruleset_version: u.arbitrary()?,
        insurance_fen: basic,
        payments,
        relief_fen,
        patient_fen: left,
        settled_at: stamp(u)?,
        reversed_at: stamp(u)?,
        operator: operator(u)?,
        reversed_by: operator(u)?,
        reason: u.arbitrary()?,
    };
    assert!(s.check_invariants(), "the generator broke the invariants: {s:?}");
    Ok(s)
}

/// An operator: any name, as a record field holds any bytes.
fn operator(u: &mut Unstructured<'_>) -> R<Option<Operator>> {
    let Some(id) = opt_id(u)? else { return Ok(None) };
    Ok(Some(Operator { id, name: u.arbitrary()? }))
}

fn event(u: &mut Unstructured<'_>) -> R<DayEvent> {
    let reversal: bool = u.arbitrary()?;
    let sign = if reversal { -1 } else { 1 };
    let n = u.int_in_range(0..=4)?;
    let by_program = (0..n)
        .map(|_| Ok(ProgramFen { program: from_alphabet(u, NAME_CHARS)?, fen: sign * fen(u)? }))
        .collect::<R<_>>()?;
    let at: String = u.arbitrary()?;
    Ok(DayEvent {
        reversal,
        at: at.replace('|', "-"),
        settlement_id: from_alphabet(u, ID_CHARS)?,
        hospital_settlement_id: from_alphabet(u, ID_CHARS)?,
        card_id: from_alphabet(u, ID_CHARS)?,
        total_fen: sign * fen(u)?,
        insurance_fen: sign * fen(u)?,
        relief_fen: sign * fen(u)?,
        patient_fen: sign * fen(u)?,
        by_program,
        context: LineContext {
            category: label(u)?,
            street: label(u)?,
            community: label(u)?,
            insurance_settlement_ref: opt_id(u)?.unwrap_or_default(),
            operator_id: opt_id(u)?.unwrap_or_default(),
        },
    })
}

fn check_values(u: &mut Unstructured<'_>) -> R<()> {
    let n = u.int_in_range(0..=4)?;
    let payments = (0..n).map(|_| payment(u, MAX_FEN)).collect::<R<Vec<_>>>()?;
    assert_eq!(parse_payments(&encode_payments(&payments)).as_ref(), Ok(&payments), "payments round trip");

    let c = CanonicalRequest {
        card_id: from_alphabet(u, ID_CHARS)?,
        visit: visit(u)?,
        amounts: Amounts {
            total_fen: u.arbitrary()?,
            in_scope_fen: u.arbitrary()?,
            pre_self_pay_fen: u.arbitrary()?,
            over_limit_fen: u.arbitrary()?,
            self_pay_fen: u.arbitrary()?,
        },
        insurance: Insurance {
            basic_fen: u.arbitrary()?,
            critical_illness_fen: u.arbitrary()?,
            other_fen: u.arbitrary()?,
            settlement_ref: opt_id(u)?,
        },
    };
    assert_eq!(parse_canonical(&canonical_of(&c)).as_ref(), Ok(&c), "canonical request round trip");

    let card = cardholder(u)?;
    assert!(card.validate().is_empty(), "the generator made an invalid card: {card:?}");
    assert_eq!(parse_card(&as_map(card_fields(&card))).as_ref(), Ok(&Some(card.clone())), "cardholder round trip");

    let e = event(u)?;
    assert_eq!(parse_event(&encode_event(&e, &event_payments(&e))).as_ref(), Some(&e), "event round trip");

    let s = settlement(u)?;
    assert_eq!(parse_settlement(&as_map(settlement_record(&s))).as_ref(), Ok(&s), "settlement round trip");
    Ok(())
}

pub fn check_record_codec(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else { return };
    match kind {
        b'P' | b'C' | b'E' | b'R' | b'T' | b'K' | b'S' | b'B' => check_text(kind, &String::from_utf8_lossy(rest)),
        _ => {
            // Not enough input for a whole value is not a failure: arbitrary then runs out of data.
            let _ = check_values(&mut Unstructured::new(rest));
        }
    }
}
