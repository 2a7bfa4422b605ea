//! Request bodies as the gateway's API takes them.

use bytes::Bytes;
use serde::Serialize;

use super::answers::Operator;
use super::bills::Bill;
use crate::client::json_bytes;

#[derive(Serialize)]
struct VisitBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    date: &'a str,
}

#[derive(Serialize)]
struct AmountsBody {
    total_fen: u64,
    in_scope_fen: u64,
    pre_self_pay_fen: u64,
    over_limit_fen: u64,
    self_pay_fen: u64,
}

#[derive(Serialize)]
struct InsuranceBody<'a> {
    basic_fen: u64,
    critical_illness_fen: u64,
    other_fen: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    settlement_ref: Option<&'a str>,
}

#[derive(Serialize)]
struct SettleBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    hospital_settlement_id: Option<&'a str>,
    card_id: &'a str,
    visit: VisitBody<'a>,
    amounts: AmountsBody,
    insurance: InsuranceBody<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<&'a Operator>,
}

/// The optional version 2 fields of a settlement body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// `insurance.settlement_ref`.
    pub settlement_ref: Option<&'a str>,
    /// `operator`.
    pub operator: Option<&'a Operator>,
}

/// The JSON body of a settlement (with an id) or a quote (without).
pub fn settle_body(hsid: Option<&str>, card_id: &str, date: &str, bill: &Bill) -> Bytes {
    settle_body_with(hsid, card_id, date, bill, Extras::default())
}

/// [`settle_body`] with the version 2 fields.
pub fn settle_body_with(hsid: Option<&str>, card_id: &str, date: &str, bill: &Bill, extras: Extras<'_>) -> Bytes {
    let body = SettleBody {
        hospital_settlement_id: hsid,
        card_id,
        visit: VisitBody { kind: bill.visit_type, date },
        amounts: AmountsBody {
            total_fen: bill.total_fen,
            in_scope_fen: bill.in_scope_fen,
            pre_self_pay_fen: bill.pre_self_pay_fen,
            over_limit_fen: bill.over_limit_fen,
            self_pay_fen: bill.self_pay_fen,
        },
        insurance: InsuranceBody {
            basic_fen: bill.basic_fen,
            critical_illness_fen: bill.critical_illness_fen,
            other_fen: 0,
            settlement_ref: extras.settlement_ref,
        },
        operator: extras.operator,
    };
    json_bytes(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_body_has_the_api_shape() {
        let bill = Bill {
            visit_type: "inpatient",
            total_fen: 2_000_000,
            in_scope_fen: 1_799_999,
            pre_self_pay_fen: 30_001,
            over_limit_fen: 20_000,
            self_pay_fen: 150_000,
            basic_fen: 1_203_999,
            critical_illness_fen: 94_900,
        };
        let v: serde_json::Value =
            serde_json::from_slice(&settle_body(Some("H-1"), "C1", "2026-11-29", &bill)).unwrap();
        assert_eq!(v["hospital_settlement_id"], "H-1");
        assert_eq!(v["visit"]["type"], "inpatient");
        assert_eq!(v["amounts"]["in_scope_fen"], 1_799_999);
        assert_eq!(v["insurance"]["critical_illness_fen"], 94_900);
        let q: serde_json::Value = serde_json::from_slice(&settle_body(None, "C1", "2026-11-29", &bill)).unwrap();
        assert!(q.get("hospital_settlement_id").is_none());
        assert!(q["insurance"].get("settlement_ref").is_none() && q.get("operator").is_none());
        let op = Operator { id: "cashier-001-0002".into(), name: Some("王丽".into()) };
        let extras = Extras { settlement_ref: Some("IR.H-1"), operator: Some(&op) };
        let v: serde_json::Value =
            serde_json::from_slice(&settle_body_with(Some("H-1"), "C1", "2026-11-29", &bill, extras)).unwrap();
        assert_eq!(v["insurance"]["settlement_ref"], "IR.H-1");
        assert_eq!(v["operator"], serde_json::json!({"id": "cashier-001-0002", "name": "王丽"}));
    }
}
