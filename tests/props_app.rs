//! Fixed cases through `App` and a real Redis that the random ones (tests/props_lua.rs) might miss: RULES.md's
//! worked example and a bill of 2^53 − 1 fen against the engine, and hospital ids that contain ':'.

mod common;
mod props_support;

use common::app::{connect_app, publish, put_cards};
use common::Redis;
use common::{assistance_ruleset, cardholder_record, outpatient_bill, settle_body, visit_today, worked_bill};
use serde_json::json;
use settlegate::app::{Reversal, ReversalRequest};
use settlegate::domain::bill::SettleRequest;
use settlegate::domain::money::{pct, MAX_FEN};
use settlegate::domain::split::CappedBy;

use props_support::counters::Counters;
use props_support::recorder::{recorder, MISMATCH};
use props_support::strategies::BillDraft;

fn request(body: serde_json::Value) -> SettleRequest {
    serde_json::from_value(body).unwrap()
}

/// The worked example of RULES.md and a bill of 2^53 − 1 through `App`: the gateway's cross-check
/// (`settlegate_engine_mismatch_total`) stays at 0 while the recorder demonstrably counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn engine_cross_check_never_fires() {
    let rec = recorder();
    let redis = Redis::start();
    let app = connect_app(&redis).await;
    let rs = publish(
        &app,
        &json!({
            "effective_from": "2026-01-01",
            "programs": [
                {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
                 "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}, "tekun": {"ratio_bp": 9999}}},
                {"id": "charity", "name": "Charity", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
                 "categories": {"dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000}, "tekun": {"ratio_bp": 3333}}}
            ]
        }),
    )
    .await;
    let cards = [cardholder_record("CX1", "dibao"), cardholder_record("CX2", "tekun")];
    put_cards(&app, &cards).await;
    let settled_before = rec.get("settlegate_settlements_total");
    let worked = request(worked_bill("X-1", "CX1"));
    let top_amounts = json!({"total_fen": MAX_FEN, "in_scope_fen": MAX_FEN - 3, "pre_self_pay_fen": 1,
                             "over_limit_fen": 1, "self_pay_fen": 1});
    let top = request(settle_body("X-2", "CX2", visit_today("inpatient"), top_amounts));
    let mut counters = Counters::default();
    for (r, holder) in [(&worked, &cards[0]), (&top, &cards[1])] {
        let (s, created) = app.settle("H0001", r).await.unwrap();
        assert!(created);
        let draft = BillDraft { visit: r.visit, amounts: r.amounts, insurance: r.insurance.clone() };
        let e = counters.engine(&rs, holder, &draft);
        assert_eq!(s.payments, e.payments, "{}", r.hospital_settlement_id);
        assert_eq!((s.insurance_fen, s.relief_fen, s.patient_fen), (e.insurance_fen, e.relief_fen, e.patient_fen));
        counters.apply(&holder.card_id, chrono::Datelike::year(&r.visit.date), &s.payments, 1);
    }
    // RULES.md's worked example, to the fen
    let (s, created) = app.settle("H0001", &worked).await.unwrap();
    assert!(!created);
    assert_eq!(
        s.payments.iter().map(|p| (p.paid_fen, p.capped_by)).collect::<Vec<_>>(),
        vec![(300_000, Some(CappedBy::AnnualCap)), (50_000, Some(CappedBy::PerVisitCap))]
    );
    assert_eq!((s.insurance_fen, s.relief_fen, s.patient_fen), (1_298_899, 350_000, 351_101));
    // 2^53 - 1 - 3 at 99.99 %: 9006298534815514 (half up), then 33.33 % of what is left
    let (s, _) = app.settle("H0001", &top).await.unwrap();
    assert_eq!(s.payments[0].paid_fen, pct(MAX_FEN - 3, 9_999));
    assert_eq!(s.payments[0].paid_fen, 9_006_298_534_815_514);
    assert!(
        rec.get("settlegate_settlements_total") >= settled_before + 2,
        "the recorder must see the gateway's counters"
    );
    assert_eq!(rec.get(MISMATCH), 0, "settle script and engine disagree");
}

/// API.md: idempotency ids are scoped to the hospital, and "a hospital sees and changes only its own settlements".
///
/// Regression: hospital ids and hospital_settlement_ids may both contain ':'; the store keys join them with '/',
/// which neither may contain, so hospital `H1:x` with id `y` and hospital `H1` with id `x:y` never share a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn ids_of_different_hospitals_never_collide() {
    let redis = Redis::start();
    let app = connect_app(&redis).await;
    publish(&app, &assistance_ruleset("2026-01-01", json!({"ratio_bp": 9000}))).await;
    put_cards(&app, &[cardholder_record("CH1", "dibao")]).await;
    let req = |hsid: &str| request(outpatient_bill(hsid, "CH1", 1000, 0));
    let mut failures = Vec::new();
    // settle: hospital H1's first use of its id `x:y` must create a settlement of its own
    assert!(app.settle("H1:x", &req("y")).await.unwrap().1);
    match app.settle("H1", &req("x:y")).await {
        Ok((_, true)) => {}
        Ok((s, false)) => failures.push(format!(
            "settle as H1 with id x:y replayed the settlement of hospital {:?} (settlement_id {:?})",
            s.hospital_id, s.settlement_id
        )),
        Err(e) => failures.push(format!("settle as H1 with id x:y refused: {e:?}")),
    }
    // reverse: hospital H2 cancelling its id `x:y` (never settled) must not touch H2:x's settlement `y`
    assert!(app.settle("H2:x", &req("y")).await.unwrap().1);
    let cancel = ReversalRequest {
        card_id: "CH1".into(),
        hospital_settlement_id: Some("x:y".into()),
        settlement_id: None,
        reason: None,
        operator: None,
    };
    match app.reverse("H2", &cancel).await {
        Ok(Reversal::ReversedBeforeSettled(_)) => {}
        Ok(Reversal::Settlement(s)) => failures.push(format!(
            "reverse as H2 with id x:y reversed the settlement of hospital {:?} (status {:?})",
            s.hospital_id, s.status
        )),
        Err(e) => failures.push(format!("reverse as H2 with id x:y refused: {e:?}")),
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
