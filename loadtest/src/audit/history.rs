//! Check family 8: the office's view of a card's history (`GET /admin/v1/cardholders/{card_id}/settlements`) lists
//! exactly the run's applied settlements of the card (the run owns its cards), each as answered and with its
//! hospital, newest first. A sample of at most `audit.max_history_checks` touched cards.

use std::collections::{BTreeMap, BTreeSet};

use super::check::Check;
use super::read::{bounded, read_json};
use super::AuditInput;
use crate::client::JsonAnswer;
use crate::workload::{RecordState, SettlementAnswer, SettlementRecord, HISTORY_LIMIT};

/// Judges one card's office history against the run's applied settlements of the card.
fn judge(v: &serde_json::Value, want: &[&SettlementRecord], hospitals: &[String]) -> Result<(), String> {
    let items = v["settlements"].as_array().ok_or_else(|| format!("no settlements list: {v}"))?;
    let mut listed: BTreeMap<String, (SettlementAnswer, String)> = BTreeMap::new();
    let mut previous: Option<String> = None;
    for item in items {
        let s: SettlementAnswer =
            serde_json::from_value(item.clone()).map_err(|e| format!("unreadable item ({e}): {item}"))?;
        if let (Some(p), Some(t)) = (&previous, &s.settled_at) {
            if p < t {
                return Err(format!("not newest first: {} after {p}", s.settlement_id));
            }
        }
        previous.clone_from(&s.settled_at);
        let hospital = item["hospital_id"].as_str().unwrap_or_default().to_string();
        if listed.insert(s.settlement_id.clone(), (s, hospital)).is_some() {
            return Err(format!("a settlement listed twice: {item}"));
        }
    }
    let complete = items.len() < HISTORY_LIMIT;
    let mut wanted = BTreeSet::new();
    for r in want {
        let a = r.answer.as_ref().expect("answered");
        wanted.insert(a.settlement_id.as_str());
        let status = if r.state == RecordState::Reversed { "reversed" } else { "settled" };
        match listed.get(&a.settlement_id) {
            Some((s, hospital))
                if !s.same_money(a) || s.status != status || Some(hospital) != hospitals.get(r.hospital) =>
            {
                return Err(format!(
                    "{} listed as {} {} by {hospital}, answered {status} by {:?}",
                    a.settlement_id,
                    s.status,
                    serde_json::to_string(s).unwrap_or_default(),
                    hospitals.get(r.hospital)
                ));
            }
            None if complete => return Err(format!("{} ({}) is not listed", a.settlement_id, r.hsid)),
            Some(_) | None => {}
        }
    }
    if let Some(extra) = listed.keys().find(|id| !wanted.contains(id.as_str())) {
        return Err(format!("{extra} is listed, but the run never had it applied"));
    }
    Ok(())
}

/// `card_history_lists_the_answers`, and whether the gateway serves the view (`false` after a 404 `not_found`).
pub(super) async fn check(input: &AuditInput, settled: &[&SettlementRecord], touched: &BTreeSet<u32>) -> Check {
    let w = &input.workload;
    let mut check = Check::new("card_history_lists_the_answers");
    let sample: Vec<u32> = touched.iter().copied().take(input.options.max_history_checks).collect();
    if sample.is_empty() {
        return check;
    }
    let mut by_card: BTreeMap<u32, Vec<&SettlementRecord>> = BTreeMap::new();
    for r in settled {
        by_card.entry(r.card).or_default().push(r);
    }
    let admin = input.admin.clone();
    let year = input.year.clone();
    let wc = w.clone();
    let reads = bounded(sample, input.options.concurrency, move |card: u32| {
        let admin = admin.clone();
        let path = format!("/admin/v1/cardholders/{}/settlements?year={year}", wc.cards.card_id(card));
        async move { (card, read_json(&admin, &path).await) }
    })
    .await;
    let hospitals: Vec<String> = w.hospitals.iter().map(|h| h.name.clone()).collect();
    for (card, read) in reads {
        let card_id = w.cards.card_id(card);
        match read {
            Ok(JsonAnswer { status: 200, body: v }) => {
                let want = by_card.get(&card).map(Vec::as_slice).unwrap_or_default();
                match judge(&v, want, &hospitals) {
                    Ok(()) => check.ok(),
                    Err(e) => check.fail(format!("{card_id}: {e}")),
                }
            }
            Ok(JsonAnswer { status: 404, body: v }) if check.checked == 0 && v["code"] == "not_found" => {
                check.note =
                    Some("not served: GET /admin/v1/cardholders/{card_id}/settlements answered 404 not_found".into());
                return check;
            }
            Ok(JsonAnswer { status, body: v }) => check.fail(format!("{card_id}: HTTP {status} {v}")),
            Err(e) => check.fail(e),
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Payment, RefSent};
    use bytes::Bytes;
    use serde_json::json;

    fn record(n: u32, hospital: usize, state: RecordState, settled_at: &str) -> SettlementRecord {
        SettlementRecord {
            hospital,
            card: 1,
            hsid: format!("LT-{hospital}-{n}"),
            body: Bytes::new(),
            answer: Some(SettlementAnswer {
                settlement_id: format!("s{n}"),
                hospital_settlement_id: format!("LT-{hospital}-{n}"),
                status: "settled".into(),
                card_id: "LT-0000001".into(),
                ruleset_version: 1,
                total_fen: 100,
                insurance_fen: 0,
                relief_fen: 10,
                patient_fen: 90,
                payments: vec![Payment {
                    program: "p".into(),
                    paid_fen: 10,
                    deductible_applied_fen: 0,
                    capped_by: None,
                }],
                settled_at: Some(settled_at.into()),
                reversed_at: None,
            }),
            state,
            reversed_at: None,
            insurance_ref: RefSent::None,
            operator: None,
            reversal_operator: None,
        }
    }

    fn item(r: &SettlementRecord, hospital: &str, status: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(r.answer.as_ref().unwrap()).unwrap();
        v["status"] = json!(status);
        v["hospital_id"] = json!(hospital);
        v
    }

    #[test]
    fn office_history_must_list_exactly_the_applied_settlements() {
        let hospitals = vec!["H0001".to_string(), "H0002".to_string()];
        let a = record(1, 0, RecordState::Settled, "2026-11-30T10:00:00.000+08:00");
        let b = record(2, 1, RecordState::Reversed, "2026-11-30T11:00:00.000+08:00");
        let want = [&a, &b];
        let good = json!({"card_id": "LT-0000001", "year": 2026,
                          "settlements": [item(&b, "H0002", "reversed"), item(&a, "H0001", "settled")]});
        assert_eq!(judge(&good, &want, &hospitals), Ok(()));
        let old_first = json!({"settlements": [item(&a, "H0001", "settled"), item(&b, "H0002", "reversed")]});
        assert!(judge(&old_first, &want, &hospitals).unwrap_err().contains("newest first"));
        let missing = json!({"settlements": [item(&b, "H0002", "reversed")]});
        assert!(judge(&missing, &want, &hospitals).unwrap_err().contains("not listed"));
        let wrong_status = json!({"settlements": [item(&b, "H0002", "settled"), item(&a, "H0001", "settled")]});
        assert!(judge(&wrong_status, &want, &hospitals).is_err());
        let wrong_hospital = json!({"settlements": [item(&b, "H0001", "reversed"), item(&a, "H0001", "settled")]});
        assert!(judge(&wrong_hospital, &want, &hospitals).is_err());
        assert!(judge(&good, &[&a], &hospitals).unwrap_err().contains("never had it applied"));
    }
}
