//! Check family 6: cancelled-before-settled ids have no settlement, and a late settle with one is refused 409
//! `already_reversed` (refusals only: nothing changes if the gateway is right).

use http::Method;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::check::Check;
use super::read::{bounded, read_json};
use super::AuditInput;
use crate::client::{JsonAnswer, Payload};
use crate::workload::{settle_body, CancelRecord, CancelState};

/// `cancelled_ids_stay_cancelled` over a sample of at most `audit.max_cancel_checks` cancelled ids.
pub(super) async fn check(input: &AuditInput, cancels: &[CancelRecord]) -> Check {
    let w = &input.workload;
    let concurrency = input.options.concurrency;
    let mut cancel_check = Check::new("cancelled_ids_stay_cancelled");
    let sample: Vec<_> = cancels
        .iter()
        .filter(|c| c.state == CancelState::Cancelled)
        .take(input.options.max_cancel_checks)
        .cloned()
        .collect();
    let wc = w.clone();
    let cancel_results = bounded(sample, concurrency, move |c: CancelRecord| {
        let w = wc.clone();
        async move {
            let hospital = w.hospitals[c.hospital].clone();
            let card_id = w.cards.card_id(c.card);
            let lookup =
                read_json(&hospital, &format!("/v1/settlements?card_id={card_id}&hospital_settlement_id={}", c.hsid))
                    .await;
            let mut rng = SmallRng::seed_from_u64(c.card as u64);
            let bill = w.bills.make(&mut rng);
            let body = settle_body(Some(&c.hsid), &card_id, &w.visit_date, &bill);
            let late = hospital.call(Method::POST, "/v1/settlements", Some(Payload::json(body))).await;
            (c, lookup, late)
        }
    })
    .await;
    for (c, lookup, late) in cancel_results {
        match lookup {
            Ok(JsonAnswer { status: 404, .. }) => cancel_check.ok(),
            Ok(JsonAnswer { status, body: v }) => cancel_check.fail(format!("{}: lookup HTTP {status} {v}", c.hsid)),
            Err(e) => cancel_check.fail(e),
        }
        match late {
            Ok(a) if a.status == 409 && a.problem_code().as_deref() == Some("already_reversed") => cancel_check.ok(),
            Ok(a) => cancel_check.fail(format!(
                "{}: late settle answered {} {}",
                c.hsid,
                a.status,
                String::from_utf8_lossy(&a.body)
            )),
            Err(f) => cancel_check.fail(format!("{}: late settle {}", c.hsid, f.code())),
        }
    }
    cancel_check
}
