//! Request bodies as the gateway's API takes them.

use bytes::Bytes;
use serde::Serialize;

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
struct InsuranceBody {
    basic_fen: u64,
    critical_illness_fen: u64,
    other_fen: u64,
}

#[derive(Serialize)]
struct SettleBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    hospital_settlement_id: Option<&'a str>,
    card_id: &'a str,
    visit: VisitBody<'a>,
    amounts: AmountsBody,
    insurance: InsuranceBody,
}

/// The JSON body of a settlement (with an id) or a quote (without).
pub fn settle_body(hsid: Option<&str>, card_id: &str, date: &str, bill: &Bill) -> Bytes {
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
        },
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
    }
}
