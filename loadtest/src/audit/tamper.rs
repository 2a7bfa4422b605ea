//! `--tamper`: a deliberate fault (1 fen added to one card's usage directly in Redis, bypassing the gateway), so
//! that a run can prove the audit catches it; `--tamper-events`: one `settlement.settled` event of the run deleted
//! from the event stream (the events audit must then miss it); `--tamper-audit`: one audit entry of the run's
//! contributions rewritten in place, its hash left as it was (the audit trail check must then fail).

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

/// The deliberate fault of `--tamper-events`, reported with the audit that should catch it.
#[derive(Debug, Clone, Serialize)]
pub struct EventsTamper {
    /// The stream (`{sg}:events`).
    pub key: String,
    /// The entry deleted (a `settlement.settled` of the run), if one was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// Its `hospital_settlement_id`: `settled_events_match_answers` must fail for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsid: Option<String>,
    /// XDEL removed it.
    pub applied: bool,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The deliberate fault of `--tamper-audit`, reported with the audit that should catch it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditTamper {
    /// The audit trail's hash (`{sg}:audit`: `head` = "<seq>|<sha256>", `<seq>` = the stored entry).
    pub key: String,
    /// The entry rewritten (the newest `pool.contribution` entry of the run among the last 1000), if one was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// HSET wrote it: `audit_chain_intact` and `contributions_audited` must then fail at that seq.
    pub applied: bool,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `--tamper-audit`: adds 1 fen to the `amount_fen` of the newest audit entry of a contribution of the run (its
/// stored JSON contains `"contribution_id":"<id_prefix>`) among the last 1000, directly in Redis, without resealing.
pub async fn tamper_audit(redis_url: &str, key: &str, id_prefix: &str) -> AuditTamper {
    let mut t = AuditTamper { key: key.to_string(), seq: None, applied: false, error: None };
    let result = async {
        let client = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
        let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        let head: Option<String> =
            redis::cmd("HGET").arg(key).arg("head").query_async(&mut conn).await.map_err(|e| e.to_string())?;
        let head = head.ok_or("the audit trail is empty")?;
        let last: u64 = head.split('|').next().and_then(|s| s.parse().ok()).ok_or("unreadable head")?;
        let marker = format!("\"contribution_id\":\"{id_prefix}");
        for seq in (last.saturating_sub(1000).max(1)..=last).rev() {
            let stored: Option<String> =
                redis::cmd("HGET").arg(key).arg(seq).query_async(&mut conn).await.map_err(|e| e.to_string())?;
            let Some(stored) = stored.filter(|s| s.contains(&marker)) else { continue };
            let v: serde_json::Value = serde_json::from_str(&stored).map_err(|e| e.to_string())?;
            let amount = v["detail"]["amount_fen"].as_i64().ok_or("an entry without detail.amount_fen")?;
            let forged =
                stored.replacen(&format!("\"amount_fen\":{amount}"), &format!("\"amount_fen\":{}", amount + 1), 1);
            t.seq = Some(seq);
            redis::cmd("HSET")
                .arg(key)
                .arg(seq)
                .arg(&forged)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(());
        }
        Err(format!(
            "no audit entry of a contribution of the run among seq {}..={last}",
            last.saturating_sub(1000).max(1)
        ))
    }
    .await;
    t.applied = result.is_ok() && t.seq.is_some();
    t.error = result.err();
    t
}

/// `--tamper-events`: deletes the newest `settlement.settled` entry of the run (its `hsid` field starts with
/// `hsid_prefix`) among the last 2000 of the stream `key`, directly in Redis.
pub async fn tamper_events(redis_url: &str, key: &str, hsid_prefix: &str) -> EventsTamper {
    let mut t = EventsTamper { key: key.to_string(), entry_id: None, hsid: None, applied: false, error: None };
    let result = async {
        let client = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
        let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(2000)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let field = |fields: &[String], name: &str| {
            fields.chunks(2).find(|kv| kv.len() == 2 && kv[0] == name).map(|kv| kv[1].clone())
        };
        let (id, hsid) = entries
            .into_iter()
            .find_map(|(id, fields)| {
                let hsid = field(&fields, "hsid").filter(|h| h.starts_with(hsid_prefix))?;
                (field(&fields, "type").as_deref() == Some("settlement.settled")).then_some((id, hsid))
            })
            .ok_or_else(|| format!("no settlement.settled entry of the run among the last 2000 of {key}"))?;
        let removed: i64 =
            redis::cmd("XDEL").arg(key).arg(&id).query_async(&mut conn).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((id, hsid, removed == 1))
    }
    .await;
    match result {
        Ok((id, hsid, applied)) => {
            t.entry_id = Some(id);
            t.hsid = Some(hsid);
            t.applied = applied;
        }
        Err(e) => t.error = Some(e),
    }
    t
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
    /// The card's usage hash (the gateway's key layout, e.g. `{sg}:{LT1-0000001}:usage`).
    pub key: String,
    /// The field of one year and program in that hash (e.g. `2026:medical_assistance:paid`).
    pub field: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tamper_templates() {
        let t = tamper_names("{sg}:{$CARD}:usage", "$YEAR:$PROGRAM:paid", "LT1-0000001", "2026", "medical_assistance");
        assert_eq!(t.key, "{sg}:{LT1-0000001}:usage");
        assert_eq!(t.field, "2026:medical_assistance:paid");
    }
}
