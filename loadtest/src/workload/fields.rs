//! The optional request fields of API version 2, derived rather than stored: a settlement's
//! `insurance.settlement_ref` is a function of its `hospital_settlement_id`, an operator a function of its hospital
//! and number, so the ledger keeps a flag and an index per request and the audit can still say what was sent.

use super::answers::Operator;

/// Names of the operators, in turn; every fifth operator has none (the field is optional).
const NAMES: [&str; 8] = ["王丽", "李娜", "张伟", "刘洋", "陈静", "Zhou Xin", "杨敏", "O'Neil-Ng"];

/// The `insurance.settlement_ref` a settlement with this `hospital_settlement_id` carries: unique per settlement
/// because the id is (run id, hospital, sequence number).
pub fn insurance_ref(hsid: &str) -> String {
    format!("IR.{hsid}")
}

/// Longest `insurance.settlement_ref` the API takes.
pub const MAX_REF_CHARS: usize = 64;

/// Operator `n` of hospital `hospital` (by index): `cashier-<hospital:03>-<n:04>`.
pub fn operator(hospital: usize, n: u32) -> Operator {
    let name = if n % 5 == 4 { None } else { Some(NAMES[(n as usize + hospital) % NAMES.len()].to_string()) };
    Operator { id: format!("cashier-{hospital:03}-{n:04}"), name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_fields_fit_the_api() {
        let op = operator(255, 9999);
        assert_eq!(op.id, "cashier-255-9999");
        assert!(op.id.len() <= 64);
        assert_eq!(operator(0, 4).name, None);
        assert_eq!(operator(0, 0).name.as_deref(), Some("王丽"));
        assert_eq!(insurance_ref("LTabc-0-00000001"), "IR.LTabc-0-00000001");
        let ok = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        assert!(ok(&insurance_ref("LTabc-0-00000001")) && ok(&op.id));
    }
}
