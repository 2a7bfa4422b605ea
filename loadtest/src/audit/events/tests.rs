//! The events audit against hand-made pages: cursors, duplicates, missing and extra events.
use super::*;
use crate::scenario::smoke;
use crate::workload::{RefSent, SettlementAnswer};
use serde_json::json;

const RUN: &str = "LTt";

fn answer(hsid: &str, card: &str) -> SettlementAnswer {
    SettlementAnswer {
        settlement_id: format!("s-{hsid}"),
        hospital_settlement_id: hsid.into(),
        status: "settled".into(),
        card_id: card.into(),
        ruleset_version: 3,
        total_fen: 10_000,
        insurance_fen: 4_000,
        relief_fen: 3_000,
        patient_fen: 3_000,
        payments: vec![Payment {
            program: "medical_assistance".into(),
            paid_fen: 3_000,
            deductible_applied_fen: 0,
            capped_by: None,
        }],
        settled_at: Some("2026-11-30T10:00:00.000+08:00".into()),
        reversed_at: None,
    }
}

fn record(cards: &CardBook, seq: u64, state: RecordState) -> SettlementRecord {
    let hsid = format!("{RUN}-0-{seq:08}");
    let card = u32::try_from(seq).unwrap();
    let mut r = SettlementRecord {
        hospital: 0,
        card,
        hsid: hsid.clone(),
        body: Bytes::new(),
        answer: Some(answer(&hsid, &cards.card_id(card))),
        state,
        reversed_at: None,
        insurance_ref: RefSent::Own,
        operator: Some(1),
        reversal_operator: None,
    };
    if state == RecordState::Reversed {
        r.reversed_at = Some("2026-11-30T10:05:00.000+08:00".into());
        r.reversal_operator = Some(2);
    }
    r
}

/// The event the gateway should have written for a record (settled, or reversed).
fn event(r: &SettlementRecord, kind: &str, n: u64) -> String {
    let a = r.answer.as_ref().unwrap();
    let mut data = serde_json::to_value(a).unwrap();
    data["hospital_id"] = json!("H0001");
    data["insurance_settlement_ref"] = json!(format!("IR.{}", r.hsid));
    data["operator"] = serde_json::to_value(operator(0, 1)).unwrap();
    data.as_object_mut().unwrap().remove("reversed_at");
    let mut at = a.settled_at.clone().unwrap();
    if kind == REVERSED {
        data["status"] = json!("reversed");
        data["reversed_at"] = json!(r.reversed_at);
        data["reason"] = json!(REVERSAL_REASON);
        data["reversed_by"] = serde_json::to_value(r.reversal_operator.map(|n| operator(0, n))).unwrap();
        at = r.reversed_at.clone().unwrap();
    }
    json!({"cursor": format!("c1.1.{n}"), "event_id": format!("ev1.1.{n}"), "type": kind, "at": at, "data": data})
        .to_string()
}

fn check<'c>(checks: &'c [Check], name: &str) -> &'c Check {
    checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name}"))
}

#[test]
fn a_clean_stream_passes_and_every_fault_is_named() {
    let s = smoke();
    let cards = CardBook::new(&s, RUN);
    let records = vec![
        record(&cards, 0, RecordState::Settled),
        record(&cards, 1, RecordState::Reversed),
        record(&cards, 2, RecordState::NotApplied),
    ];
    let cancels = vec![CancelRecord {
        hospital: 0,
        card: 9,
        hsid: format!("{RUN}-0-00000003"),
        state: CancelState::Cancelled,
        operator: None,
    }];
    let refused = [4u64];
    let cancel_event = json!({"cursor": "c1.1.9", "event_id": "ev1.1.9", "type": CANCELLED,
        "at": "2026-11-30T10:06:00.000+08:00",
        "data": {"status": "reversed_before_settled", "card_id": cards.card_id(9),
                 "hospital_settlement_id": format!("{RUN}-0-00000003"), "reversed_at": "2026-11-30T10:06:00.000+08:00",
                 "hospital_id": "H0001", "reason": CANCEL_REASON, "reversed_by": null}})
    .to_string();
    let foreign = json!({"cursor": "c1.1.10", "event_id": "ev1.1.10", "type": SETTLED, "at": "x",
                         "data": {"hospital_settlement_id": "other-run-1"}})
    .to_string();
    let import = json!({"cursor": "c1.1.11", "event_id": "ev1.1.11", "type": "cardholder.import", "at": "x",
                        "data": {"imported": 5}})
    .to_string();
    let good = [
        event(&records[0], SETTLED, 1),
        event(&records[1], SETTLED, 2),
        event(&records[1], REVERSED, 3),
        cancel_event,
        foreign,
        import,
    ];
    let run = |lines: &[String]| {
        let mut m = Matcher::new(RUN, vec!["H0001".into()], &cards, &records, &cancels, &refused, 5);
        let body = lines.join("\n");
        let last = lines.last().map(|l| cursor_of(l.as_bytes()).unwrap());
        let next = m.page("c1.0.0", last.as_deref(), body.as_bytes());
        assert_eq!(next, last);
        assert_eq!(m.page(last.as_deref().unwrap(), last.as_deref(), b""), None);
        m.finish()
    };
    let (checks, summary) = run(&good);
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");
    assert_eq!(check(&checks, "settled_events_match_answers").checked, 2);
    assert_eq!(check(&checks, "no_event_without_an_acknowledged_change").checked, 2, "refused + not applied");
    assert_eq!(summary.events, 6);
    assert_eq!(summary.others, 2);
    assert_eq!(summary.of_the_run[SETTLED], 2);

    // one fen off in an event's payments
    let mut bad = good.clone();
    bad[0] = bad[0].replace("\"paid_fen\":3000", "\"paid_fen\":3001");
    let (checks, _) = run(&bad);
    let c = check(&checks, "settled_events_match_answers");
    assert!(!c.passed && c.examples[0].contains("payments"), "{c:?}");
    // a lost reversal event, a doubled settlement event
    let (checks, _) = run(&[good[0].clone(), good[0].replace("ev1.1.1", "ev1.1.7"), good[1].clone()]);
    assert!(!check(&checks, "settled_events_match_answers").passed);
    assert!(!check(&checks, "reversed_events_match_reversals").passed);
    assert!(!check(&checks, "cancel_events_match_cancels").passed);
    // an event for the refused request and for the one never applied; an id twice
    let ghost = event(&records[0], SETTLED, 5).replace("-0-00000000", "-0-00000004");
    let not_applied = event(&records[2], SETTLED, 6);
    let (checks, _) = run(&[good.to_vec(), vec![ghost, not_applied, good[5].clone()]].concat());
    let stray = check(&checks, "no_event_without_an_acknowledged_change");
    assert_eq!(stray.failed, 2, "{stray:?}");
    assert!(!check(&checks, "event_ids_unique").passed);
    // the operator of the reversal missing (reversed_by must then be null, and is present here)
    let (checks, _) = run(&[good[0].clone(), good[1].clone(), good[2].replace("\"cashier-000-0002\"", "\"x\"")]);
    let c = check(&checks, "reversed_events_match_reversals");
    assert!(!c.passed && c.examples[0].contains("reversed_by"), "{c:?}");
}

#[test]
fn paging_follows_next_cursor() {
    let s = smoke();
    let cards = CardBook::new(&s, RUN);
    let mut m = Matcher::new(RUN, vec!["H0001".into()], &cards, &[], &[], &[], 0);
    assert_eq!(m.page("c1.5.0", Some("c1.5.0"), b""), None);
    let (checks, _) = m.finish();
    assert!(check(&checks, "event_stream_paging").passed);
    let mut m = Matcher::new(RUN, vec!["H0001".into()], &cards, &[], &[], &[], 0);
    assert_eq!(m.page("c1.5.0", Some("c1.0.0"), b""), None, "nothing new must give back `after`");
    let (checks, _) = m.finish();
    assert!(!check(&checks, "event_stream_paging").passed);
    assert_eq!(query_value("c1.5.0"), "c1.5.0");
    assert_eq!(query_value("a b&c"), "a%20b%26c");
}
