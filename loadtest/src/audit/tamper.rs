//! `--tamper`: a deliberate fault (1 fen added to one card's usage directly in Redis, bypassing the gateway), so
//! that a run can prove the audit catches it.

use serde::Serialize;

/// The deliberate fault of `--tamper`, reported with the audit that should catch it.
#[derive(Debug, Clone, Serialize)]
pub struct Tamper {
    /// The card whose usage was bumped: the first with an answered settlement (card 0 if there was none yet).
    pub card_id: String,
    /// The Redis hash that was changed.
    pub key: String,
    /// Its field that got the extra fen.
    pub field: String,
    /// HINCRBY succeeded: if so, `card_usage_equals_answers` must fail.
    pub applied: bool,
    /// Why HINCRBY failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `--tamper`: adds 1 fen to one card's usage directly in Redis, bypassing the gateway.
pub async fn tamper(redis_url: &str, key: &str, field: &str) -> Result<i64, String> {
    let client = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    redis::cmd("HINCRBY").arg(key).arg(field).arg(1).query_async::<i64>(&mut conn).await.map_err(|e| e.to_string())
}

/// Fills the `--tamper-key` / `--tamper-field` templates.
pub fn tamper_names(
    key_template: &str,
    field_template: &str,
    card_id: &str,
    year: &str,
    program: &str,
) -> TamperTarget {
    let fill = |t: &str| t.replace("$CARD", card_id).replace("$YEAR", year).replace("$PROGRAM", program);
    TamperTarget { key: fill(key_template), field: fill(field_template) }
}

/// Where `--tamper` adds its fen: one field of one Redis hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TamperTarget {
    /// The card's usage hash (the gateway's key layout, e.g. `sg:{LT1-0000001}:usage`).
    pub key: String,
    /// The field of one year and program in that hash (e.g. `2026:medical_assistance:paid`).
    pub field: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tamper_templates() {
        let t = tamper_names("sg:{$CARD}:usage", "$YEAR:$PROGRAM:paid", "LT1-0000001", "2026", "medical_assistance");
        assert_eq!(t.key, "sg:{LT1-0000001}:usage");
        assert_eq!(t.field, "2026:medical_assistance:paid");
    }
}
