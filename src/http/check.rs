//! `POST /v1/reconciliation/check` (totals, a JSON body) and `POST /v1/reconciliation/check/details` (lines, an
//! NDJSON body streamed one line at a time with the import's [`LineFramer`] and limits). Both may be called by a
//! hospital (its own day) and by the relief office (any hospital's, named by `hospital_id`: in the body of the
//! totals call, in the query of the details call). The comparison itself is `app::check`.

use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::body::{self, Query};
use super::import::{Line, LineFramer};
use super::{json_response, wire, Ctx, Handled};
use crate::app::check::{CheckLine, DetailsCheck, DetailsReport, LineRef, TotalsClaim};
use crate::app::{ApiError, Caller};
use crate::domain::FieldError;

/// The NDJSON media types the details call takes (the import's).
const NDJSON: [&str; 3] = ["application/x-ndjson", "application/ndjson", "application/jsonl"];

fn result(matches: bool) -> &'static str {
    if matches {
        "match"
    } else {
        "mismatch"
    }
}

pub async fn totals(ctx: &Ctx, caller: Caller<'_>, req: Request<Incoming>) -> Handled {
    let claim: TotalsClaim = body::read_json(&ctx.limits, req).await?;
    let c = ctx.app.check_totals(caller, &claim).await?;
    let day = c.date.to_string();
    let differences: Vec<Value> =
        c.differences.iter().map(|d| json!({"field": d.field, "hospital": d.hospital, "gateway": d.gateway})).collect();
    let answer = json!({"date": day, "hospital_id": c.hospital_id, "result": result(c.differences.is_empty()),
                        "gateway": wire::day_totals(&day, &c.hospital_id, &c.gateway), "differences": differences});
    Ok(json_response(StatusCode::OK, wire::to_vec(&answer)))
}

pub async fn details(ctx: &Ctx, caller: Caller<'_>, q: &Query, req: Request<Incoming>) -> Handled {
    let media = body::media_type(&req);
    if !NDJSON.contains(&media.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!("expected application/x-ndjson, got {media:?}")));
    }
    let date = q.date_or(ctx.app.today())?;
    let mut check = ctx.app.details_check(caller, q.get("hospital_id"), date, ctx.limits.max_check_differences)?;
    if let Err(e) = read_lines(ctx, &mut check, req).await {
        check.discard().await;
        return Err(e);
    }
    let report = check.finish().await?;
    Ok(json_response(StatusCode::OK, wire::to_vec(&render(&report))))
}

/// Streams the body into `check`: every line parsed strictly, written in batches. The first bad line ends the
/// call (400 naming it); so does a body over `limits.max_import_bytes` (413) or not finished within
/// `limits.import_timeout_ms` (400).
async fn read_lines(ctx: &Ctx, check: &mut DetailsCheck, req: Request<Incoming>) -> Result<(), ApiError> {
    let max_bytes = ctx.limits.max_import_bytes;
    let declared = req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max_bytes)) {
        return Err(ApiError::PayloadTooLarge(max_bytes));
    }
    let deadline = Instant::now() + Duration::from_millis(ctx.limits.import_timeout_ms);
    let max_line = ctx.limits.max_import_line_bytes;
    let mut framer = LineFramer::new(max_line);
    let mut body = req.into_body();
    let mut received = 0usize;
    let mut refused: Option<ApiError> = None;
    loop {
        let frame = match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Err(_) => return Err(ApiError::invalid("body", "not finished within limits.import_timeout_ms")),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(ApiError::invalid("body", format!("could not be read: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        if data.len() > max_bytes - received {
            return Err(ApiError::PayloadTooLarge(max_bytes));
        }
        received += data.len();
        framer.feed(&data, &mut |line| take(check, &mut refused, max_line, line));
        if let Some(e) = refused.take() {
            return Err(e);
        }
        if check.batch_full() {
            check.flush().await?;
        }
    }
    framer.finish(&mut |line| take(check, &mut refused, max_line, line));
    refused.map_or(Ok(()), Err)
}

/// One framed line into the check, or the refusal of the call (the first bad line only).
fn take(check: &mut DetailsCheck, refused: &mut Option<ApiError>, max_line_bytes: usize, line: Line<'_>) {
    if refused.is_some() {
        return;
    }
    match parse_check_line(line, max_line_bytes) {
        Ok(Some((line_no, l))) => check.add(line_no, l),
        Ok(None) => {}
        Err(e) => *refused = Some(e),
    }
}

/// One NDJSON line of the details call: `Ok(None)` for a blank line (skipped); a bad line is 400 with the field
/// `line <n>` (1-based) and a message naming the line's own field.
pub fn parse_check_line(line: Line<'_>, max_line_bytes: usize) -> Result<Option<(u64, CheckLine)>, ApiError> {
    let (line_no, bytes) = match line {
        Line::TooLong { line_no } => {
            return Err(ApiError::invalid(&format!("line {line_no}"), format!("longer than {max_line_bytes} bytes")))
        }
        Line::Text { line_no, bytes } => (line_no, bytes),
    };
    let text = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let at_line = |errors: Vec<FieldError>| {
        let named = errors.into_iter().map(|e| {
            let message = if e.field == "body" { e.message } else { format!("{}: {}", e.field, e.message) };
            FieldError::new(format!("line {line_no}"), message)
        });
        ApiError::Invalid(named.collect())
    };
    let parsed: CheckLine = wire::parse(text).map_err(|e| match e {
        ApiError::Invalid(errors) => at_line(errors),
        other => other,
    })?;
    let errors = parsed.validate();
    if !errors.is_empty() {
        return Err(at_line(errors));
    }
    Ok(Some((line_no, parsed)))
}

/// The answer of the details call: the contract's fields, then the project's (the counts of every list, the
/// event of each missing line, repeated lines, lines read per side).
fn render(r: &DetailsReport) -> Value {
    let ids = |lines: &[LineRef]| lines.iter().map(|l| json!(l.hospital_settlement_id)).collect::<Vec<_>>();
    let with_events = |lines: &[LineRef]| {
        lines
            .iter()
            .map(|l| json!({"event": l.event.as_str(), "hospital_settlement_id": l.hospital_settlement_id}))
            .collect::<Vec<_>>()
    };
    let mismatches: Vec<Value> = r
        .amount_mismatch
        .listed
        .iter()
        .map(|m| {
            json!({"hospital_settlement_id": m.hospital_settlement_id, "event": m.event.as_str(), "field": m.field,
                   "hospital": m.hospital, "gateway": m.gateway})
        })
        .collect();
    let duplicates: Vec<Value> = r
        .duplicate_in_hospital
        .listed
        .iter()
        .map(|d| json!({"hospital_settlement_id": d.hospital_settlement_id, "event": d.event.as_str(), "line": d.line}))
        .collect();
    let (gw, hosp) = (&r.missing_in_gateway, &r.missing_in_hospital);
    json!({
        "date": r.date.to_string(),
        "matched": r.matched,
        "missing_in_gateway": ids(&gw.listed),
        "missing_in_hospital": ids(&hosp.listed),
        "amount_mismatch": mismatches,
        "hospital_id": r.hospital_id,
        "result": result(r.is_match()),
        "hospital_lines": r.hospital_lines,
        "gateway_lines": r.gateway_lines,
        "missing_in_gateway_total": gw.total,
        "missing_in_hospital_total": hosp.total,
        "amount_mismatch_total": r.amount_mismatch.total,
        "missing_in_gateway_lines": with_events(&gw.listed),
        "missing_in_hospital_lines": with_events(&hosp.listed),
        "duplicate_in_hospital": duplicates,
        "duplicate_in_hospital_total": r.duplicate_in_hospital.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(line: &[u8]) -> (String, String) {
        match parse_check_line(Line::Text { line_no: 7, bytes: line }, 4096) {
            Err(ApiError::Invalid(e)) => (e[0].field.clone(), e[0].message.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_lines_are_named_and_blank_lines_skipped() {
        assert!(matches!(parse_check_line(Line::Text { line_no: 1, bytes: b" \r" }, 4096), Ok(None)));
        let ok = br#"{"event":"settled","hospital_settlement_id":"H-1","total_fen":5,"relief_fen":2,"patient_fen":3}"#;
        let mut crlf = ok.to_vec();
        crlf.push(b'\r');
        assert!(matches!(parse_check_line(Line::Text { line_no: 2, bytes: &crlf }, 4096), Ok(Some((2, _)))));
        let (field, message) =
            field_of(br#"{"event":"settled","hospital_settlement_id":"H-1","total_fen":5,"relief_fen":2,"patient_fen":3,"card_id":"C1"}"#);
        assert_eq!(field, "line 7");
        assert!(message.starts_with("card_id: unknown field"), "{message}");
        let (field, message) = field_of(b"not json");
        assert_eq!(field, "line 7");
        assert!(!message.starts_with("body"), "{message}");
        let (_, message) = field_of(
            br#"{"event":"settled","hospital_settlement_id":"H 1","total_fen":5,"relief_fen":2,"patient_fen":3}"#,
        );
        assert!(message.starts_with("hospital_settlement_id:"), "{message}");
        match parse_check_line(Line::TooLong { line_no: 3 }, 256) {
            Err(ApiError::Invalid(e)) => assert_eq!(e[0].field, "line 3"),
            other => panic!("{other:?}"),
        }
    }
}
