//! Request bodies through the server's own parser, `settlegate::http::wire::parse`.

use std::fmt::Debug;

use chrono::{Days, NaiveDate};
use serde::de::DeserializeOwned;
use serde::Serialize;
use settlegate::app::{ApiError, EligibilityRequest, ReversalRequest};
use settlegate::domain::bill::{Bill, QuoteRequest, SettleRequest};
use settlegate::domain::money::MAX_FEN;
use settlegate::http::wire::parse;

use super::assert_fields_named;

/// A fixed "today" for the date check of validation (the real one is the gateway's clock).
fn fixed_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).expect("a date")
}

/// Parses `data` as the server does. A rejection must be a 400 naming a field; an accepted value is returned. The
/// server is never more lenient than strict serde_json (one value, nothing after it): what it accepts, serde_json
/// reads as the same value. (It is stricter: no struct from an array, `wire::ARRAY_FIELDS`.)
fn parse_or_named_rejection<T: DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let parsed = parse::<T>(data);
    if let Ok(v) = &parsed {
        let strict = serde_json::from_slice::<T>(data).ok();
        assert_eq!(
            Some(v),
            strict.as_ref(),
            "wire::parse accepts what serde_json does not: {:?}",
            String::from_utf8_lossy(data)
        );
    }
    match parsed {
        Ok(v) => Some(v),
        Err(ApiError::Invalid(errors)) => {
            assert!(!errors.is_empty(), "a rejection without errors for {:?}", String::from_utf8_lossy(data));
            assert_fields_named(&errors, &format!("body {:?}", String::from_utf8_lossy(data)));
            None
        }
        Err(other) => panic!("wire::parse returned {other:?}, not Invalid, for {:?}", String::from_utf8_lossy(data)),
    }
}

/// `expected` serialised by serde_json and parsed again by the server's parser is `expected` again.
fn assert_round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(value: &T, expected: &T) {
    let json = serde_json::to_vec(value).expect("a parsed request serialises");
    match parse::<T>(&json) {
        Ok(again) => assert_eq!(&again, expected, "re-parsing {:?} changed the value", String::from_utf8_lossy(&json)),
        Err(e) => panic!("re-parsing {:?} failed: {e}", String::from_utf8_lossy(&json)),
    }
}

/// What the validation of a bill promises when it finds nothing wrong.
fn assert_valid_bill(bill: &Bill<'_>) {
    let a = &bill.amounts;
    let i = &bill.insurance;
    for v in [a.total_fen, a.in_scope_fen, a.pre_self_pay_fen, a.over_limit_fen, a.self_pay_fen] {
        assert!((0..=MAX_FEN).contains(&v), "a valid bill has an amount {v} outside 0..=2^53-1: {bill:?}");
    }
    for v in [i.basic_fen, i.critical_illness_fen, i.other_fen] {
        assert!((0..=MAX_FEN).contains(&v), "a valid bill has an insurance amount {v} outside 0..=2^53-1: {bill:?}");
    }
    // In i128, so that the check itself cannot overflow.
    let buckets: i128 =
        [a.in_scope_fen, a.pre_self_pay_fen, a.over_limit_fen, a.self_pay_fen].iter().map(|&v| i128::from(v)).sum();
    assert_eq!(buckets, i128::from(a.total_fen), "a valid bill's buckets do not sum to its total: {bill:?}");
    let insured = i128::from(i.basic_fen) + i128::from(i.critical_illness_fen) + i128::from(i.other_fen);
    assert!(insured <= i128::from(a.in_scope_fen), "a valid bill's insurance exceeds in_scope: {bill:?}");
    let residual = bill.residual();
    assert!(residual.iter().all(|&r| r >= 0), "a valid bill has a negative residual {residual:?}: {bill:?}");
    assert!(residual.iter().sum::<i64>() <= a.total_fen, "residual {residual:?} exceeds the total: {bill:?}");
}

/// The date rule of validation: `visit.date` is refused exactly when it lies more than one day after today.
fn assert_date_rule(bill: &Bill<'_>, errors: &[settlegate::domain::FieldError], today: NaiveDate) {
    let too_late = today.checked_add_days(Days::new(1)).is_some_and(|limit| bill.visit.date > limit);
    let refused = errors.iter().any(|e| e.field == "visit.date");
    assert_eq!(refused, too_late, "visit.date {} against today {today}: {errors:?}", bill.visit.date);
}

pub fn check_settle_body(data: &[u8]) {
    let Some(req) = parse_or_named_rejection::<SettleRequest>(data) else { return };
    assert_round_trip(&req, &req);
    // On the visit's own day the date rule cannot refuse: what remains is the amounts and the ids.
    let errors = req.validate(req.visit.date);
    assert_fields_named(&errors, "settle validation");
    if errors.is_empty() {
        assert_valid_bill(&req.bill());
    }
    let errors = req.validate(fixed_today());
    assert_fields_named(&errors, "settle validation");
    assert_date_rule(&req.bill(), &errors, fixed_today());
}

pub fn check_quote_body(data: &[u8]) {
    let Some(req) = parse_or_named_rejection::<QuoteRequest>(data) else { return };
    // hospital_settlement_id is accepted and ignored (never serialised): the round trip drops it.
    let expected = QuoteRequest { hospital_settlement_id: None, ..req.clone() };
    assert_round_trip(&req, &expected);
    assert_eq!(req.bill().canonical(), expected.bill().canonical(), "the ignored id changed the canonical form");
    let errors = req.bill().validate(req.visit.date);
    assert_fields_named(&errors, "quote validation");
    if errors.is_empty() {
        assert_valid_bill(&req.bill());
    }
    let errors = req.bill().validate(fixed_today());
    assert_fields_named(&errors, "quote validation");
    assert_date_rule(&req.bill(), &errors, fixed_today());
}

pub fn check_reversal_body(data: &[u8]) {
    let Some(req) = parse_or_named_rejection::<ReversalRequest>(data) else { return };
    assert_round_trip(&req, &req);
}

pub fn check_eligibility_body(data: &[u8]) {
    let Some(req) = parse_or_named_rejection::<EligibilityRequest>(data) else { return };
    assert_round_trip(&req, &req);
}
