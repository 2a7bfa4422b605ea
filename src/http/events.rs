//! Version 2 answers about what happened: the event stream as NDJSON (`GET /admin/v1/events`, with its
//! `Next-Cursor` header) and a card's history, both rendered from the settlement bodies of [`wire`].

use http::{header, HeaderValue, Response, StatusCode};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{full, wire, Handled};
use crate::app::{ApiError, AuditPage};
use crate::domain::bill::Operator;
use crate::domain::settlement::{Settlement, SettlementStatus, Tombstone};
use crate::store::events::{Event, EventBody, StreamPos};

/// One NDJSON line of the event stream.
#[derive(Serialize)]
struct EventLine<'a> {
    cursor: String,
    event_id: String,
    #[serde(rename = "type")]
    event_type: &'a str,
    at: &'a str,
    data: EventData<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EventData<'a> {
    Settlement(SettlementData<'a>),
    Tombstone(TombstoneData<'a>),
    Raw(&'a RawValue),
}

/// `settlement.settled` / `settlement.reversed`: the settlement body plus who and why.
#[derive(Serialize)]
struct SettlementData<'a> {
    #[serde(flatten)]
    body: wire::SettlementJson<'a>,
    hospital_id: &'a str,
    /// Reversed only: the reversal's reason ("" when none was given) and its operator (or null).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reversed_by: Option<Option<&'a Operator>>,
}

/// `settlement.cancelled_before_arrival`: the reversal answer's body plus who and why.
#[derive(Serialize)]
struct TombstoneData<'a> {
    status: &'static str,
    card_id: &'a str,
    hospital_settlement_id: &'a str,
    reversed_at: &'a str,
    hospital_id: &'a str,
    reason: &'a str,
    reversed_by: Option<&'a Operator>,
}

fn settlement_data(s: &Settlement) -> SettlementData<'_> {
    let reversed = s.status == SettlementStatus::Reversed;
    SettlementData {
        body: wire::settlement_json(s),
        hospital_id: s.hospital_id.as_deref().unwrap_or(""),
        reason: reversed.then(|| s.reason.as_deref().unwrap_or("")),
        reversed_by: reversed.then_some(s.reversed_by.as_ref()),
    }
}

fn tombstone_data(t: &Tombstone) -> TombstoneData<'_> {
    TombstoneData {
        status: "reversed_before_settled",
        card_id: &t.card_id,
        hospital_settlement_id: &t.hospital_settlement_id,
        reversed_at: &t.reversed_at,
        hospital_id: &t.hospital_id,
        reason: &t.reason,
        reversed_by: t.reversed_by.as_ref(),
    }
}

/// The answer of `GET /admin/v1/events`: the lines, and `Next-Cursor` = the last line's cursor, or `after` as given
/// when nothing is new (the start cursor when there was none).
pub fn events(events: &[Event], after: Option<&str>) -> Handled {
    let mut body = Vec::with_capacity(events.len() * 768);
    for e in events {
        let data = match &e.body {
            EventBody::Settlement(s) => EventData::Settlement(settlement_data(s)),
            EventBody::Tombstone(t) => EventData::Tombstone(tombstone_data(t)),
            EventBody::Data(text) => EventData::Raw(serde_json::from_str(text).map_err(|err| {
                tracing::error!(event = %e.pos, error = %err, "an event's data is not JSON");
                ApiError::Internal("an event could not be read".into())
            })?),
        };
        let line = EventLine {
            cursor: e.pos.cursor(),
            event_id: e.pos.event_id(),
            event_type: &e.event_type,
            at: &e.at,
            data,
        };
        serde_json::to_writer(&mut body, &line).expect("event serialises");
        body.push(b'\n');
    }
    let next = match (events.last(), after) {
        (Some(last), _) => last.pos.cursor(),
        (None, Some(after)) => after.to_string(),
        (None, None) => StreamPos::START.cursor(),
    };
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    // a cursor is ASCII this gateway made, or the client's own `after` (a header-safe query value, checked)
    let value = HeaderValue::from_str(&next).map_err(|_| ApiError::invalid("after", "not a cursor"))?;
    headers.insert("next-cursor", value);
    Ok(resp)
}

/// `GET /admin/v1/cardholders/{card_id}/settlements`: bodies with `hospital_id`.
pub fn office_history(card_id: &str, year: i32, settlements: &[Settlement]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Answer<'a> {
        card_id: &'a str,
        year: i32,
        settlements: Vec<SettlementData<'a>>,
    }
    let settlements =
        settlements.iter().map(|s| SettlementData { reason: None, reversed_by: None, ..settlement_data(s) }).collect();
    wire::to_vec(&Answer { card_id, year, settlements })
}

/// `GET /v1/settlements?card_id=`: the hospital's own bodies.
pub fn hospital_history(settlements: &[Settlement]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Answer<'a> {
        settlements: Vec<wire::SettlementJson<'a>>,
    }
    wire::to_vec(&Answer { settlements: settlements.iter().map(wire::settlement_json).collect() })
}

/// `GET /admin/v1/audit`: the entries as stored, one per line, oldest first; `Next-Cursor` is the last `seq`
/// examined (pass it as `after`).
pub fn audit(page: &AuditPage) -> Handled {
    let mut body = Vec::with_capacity(page.entries.iter().map(|e| e.len() + 1).sum());
    for e in &page.entries {
        body.extend_from_slice(e.as_bytes());
        body.push(b'\n');
    }
    let mut resp = Response::new(full(body));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    headers.insert("next-cursor", HeaderValue::from(page.next_after));
    Ok(resp)
}
