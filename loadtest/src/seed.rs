//! The seed step: creates the run's cardholders through the bulk NDJSON import and publishes the scenario's
//! ruleset, then waits until the gateway uses it (it promises to within 1 s).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;

use crate::client::{Endpoint, JsonAnswer, Payload};
use crate::stats::elapsed_ms;
use crate::workload::CardBook;
use crate::BoxError;

/// Lines per import request (~150 bytes each: a few MB per request, far below the 64 MiB import limit).
pub const IMPORT_CHUNK_LINES: u32 = 50_000;
const IMPORT_TIMEOUT: Duration = Duration::from_secs(120);
const RULESET_WAIT: Duration = Duration::from_secs(10);

/// What the seed step created (`seed` in report.json).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seeded {
    /// Cardholders imported: the scenario's whole population.
    pub cards: u32,
    /// How long the import took, milliseconds.
    pub import_ms: u64,
    /// The version the ruleset was published as: every answer of the run must name it.
    pub ruleset_version: u64,
    /// From publishing to the first eligibility answer that used the new version.
    pub ruleset_visible_ms: u64,
}

/// NDJSON of cards `from..to`.
pub fn import_body(cards: &CardBook, from: u32, to: u32, year: i32) -> Bytes {
    let mut out = Vec::with_capacity((to - from) as usize * 160);
    for i in from..to {
        serde_json::to_writer(&mut out, &cards.line(i, year)).expect("json");
        out.push(b'\n');
    }
    Bytes::from(out)
}

pub async fn import_cards(admin: &Endpoint, cards: &CardBook, year: i32) -> Result<u64, BoxError> {
    let t0 = Instant::now();
    let mut from = 0;
    while from < cards.count {
        let to = (from + IMPORT_CHUNK_LINES).min(cards.count);
        let body = import_body(cards, from, to, year);
        let answer = admin
            .call_with_timeout(
                Method::POST,
                "/admin/v1/cardholders/import",
                Some(Payload::ndjson(body)),
                IMPORT_TIMEOUT,
            )
            .await
            .map_err(|f| format!("cardholder import: {} {f:?}", f.code()))?;
        if !(200..300).contains(&answer.status) {
            return Err(format!(
                "cardholder import: HTTP {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
            )
            .into());
        }
        let v = answer.json()?;
        let imported = v["imported"].as_u64().unwrap_or(0);
        if imported != (to - from) as u64 {
            return Err(format!("cardholder import: {imported} of {} lines imported: {v}", to - from).into());
        }
        from = to;
    }
    Ok(elapsed_ms(t0))
}

pub async fn publish_ruleset(admin: &Endpoint, ruleset: &serde_json::Value) -> Result<u64, BoxError> {
    let JsonAnswer { status, body: v } = admin.json(Method::POST, "/admin/v1/rulesets", Some(ruleset)).await?;
    if status != 201 {
        return Err(format!("publishing the ruleset: HTTP {status} {v}").into());
    }
    v["version"].as_u64().ok_or_else(|| format!("publishing the ruleset: no version in {v}").into())
}

/// Polls an eligibility check until the answer names `version` (or a later one).
pub async fn wait_for_ruleset(
    hospital: &Endpoint,
    card_id: &str,
    visit_date: &str,
    version: u64,
) -> Result<u64, BoxError> {
    let t0 = Instant::now();
    let body = serde_json::json!({"card_id": card_id, "visit": {"type": "outpatient", "date": visit_date}});
    let mut last = String::new();
    while t0.elapsed() < RULESET_WAIT {
        match hospital.json(Method::POST, "/v1/eligibility", Some(&body)).await {
            Ok(JsonAnswer { status: 200, body: v }) if v["ruleset_version"].as_u64().is_some_and(|n| n >= version) => {
                if v["ruleset_version"].as_u64() != Some(version) {
                    return Err(format!(
                        "another ruleset (version {}) was published during the seed step",
                        v["ruleset_version"]
                    )
                    .into());
                }
                if v["eligible"] != true {
                    return Err(format!("seeded card {card_id} is not eligible: {v}").into());
                }
                return Ok(elapsed_ms(t0));
            }
            Ok(JsonAnswer { status, body: v }) => last = format!("HTTP {status} {v}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("ruleset version {version} not in use after {RULESET_WAIT:?}; last answer: {last}").into())
}

pub async fn seed(
    admin: &Endpoint,
    probe: &Endpoint,
    cards: &CardBook,
    ruleset: &serde_json::Value,
    visit_date: &str,
    year: i32,
) -> Result<Seeded, BoxError> {
    let import_ms = import_cards(admin, cards, year).await?;
    let ruleset_version = publish_ruleset(admin, ruleset).await?;
    let ruleset_visible_ms = wait_for_ruleset(probe, &cards.card_id(0), visit_date, ruleset_version).await?;
    Ok(Seeded { cards: cards.count, import_ms, ruleset_version, ruleset_visible_ms })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::CardholderLine;

    #[test]
    fn import_body_is_one_cardholder_per_line() {
        let s = crate::scenario::smoke();
        let book = CardBook::new(&s, "LTx");
        let body = import_body(&book, 10, 13, 2026);
        let lines: Vec<CardholderLine> =
            body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].card_id, "LTx-0000010");
        assert_eq!(lines[2], book.line(12, 2026));
    }
}
