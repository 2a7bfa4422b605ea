//! `GET /admin/v1/reports/relief`: the query read into a [`ReportRequest`], the report rendered as JSON or, with
//! `format=csv`, as CSV (a header row, then one line per row and a last `total` line, the same numbers).

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use super::body::Query;
use super::{full, Ctx, Handled};
use crate::app::{ApiError, ReportLimits, ReportRequest};
use crate::domain::report::{ReliefReport, ReportBy, ReportRow};

/// The CSV columns: `row` is `row` or `total`; `by_program` is `program=fen;…` by program id (as in
/// `settlegate export`).
pub const CSV_COLUMNS: [&str; 7] =
    ["row", "key", "settled_count", "reversed_count", "cards", "relief_fen", "by_program"];

/// Serves the report; `street`: a street office's view (only its street's lines), `None` for the relief office.
pub async fn relief(ctx: &Ctx, q: &Query, street: Option<&str>) -> Handled {
    let date = |name: &str| -> Result<chrono::NaiveDate, ApiError> {
        let raw = q.required(name)?;
        crate::domain::date::parse(raw)
            .ok_or_else(|| ApiError::invalid(name, format!("{raw:?} is not a date (YYYY-MM-DD)")))
    };
    let (from, to) = (date("from")?, date("to")?);
    let raw_by = q.required("by")?;
    let by = ReportBy::parse(raw_by).ok_or_else(|| {
        ApiError::invalid("by", format!("{raw_by:?} is not one of street, community, category, program, hospital, day"))
    })?;
    let csv = match q.get("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::invalid("format", format!("{other:?} is not json or csv"))),
    };
    let req = ReportRequest { from, to, by };
    let report = ctx.app.relief_report(&req, street, &ReportLimits::from(&ctx.limits)).await?;
    let (body, content_type) = if csv {
        (render_csv(&report)?, "text/csv; charset=utf-8")
    } else {
        (super::wire::to_vec(&render_json(&req, &report)), "application/json")
    };
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

fn row_json(r: &ReportRow) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("settled_count".into(), json!(r.settled_count));
    m.insert("reversed_count".into(), json!(r.reversed_count));
    m.insert("cards".into(), json!(r.cards));
    m.insert("relief_fen".into(), json!(r.relief_fen));
    m.insert("by_program".into(), json!(r.by_program));
    m
}

/// `{"from", "to", "by", "rows": [{"key", …}], "total": {…}}`.
pub fn render_json(req: &ReportRequest, r: &ReliefReport) -> Value {
    let rows: Vec<Value> = r
        .rows
        .iter()
        .map(|row| {
            let mut m = serde_json::Map::new();
            m.insert("key".into(), json!(row.key));
            m.extend(row_json(row));
            Value::Object(m)
        })
        .collect();
    json!({"from": req.from.to_string(), "to": req.to.to_string(), "by": r.by.as_str(), "rows": rows,
           "total": Value::Object(row_json(&r.total))})
}

/// The CSV body ([`CSV_COLUMNS`]).
pub fn render_csv(r: &ReliefReport) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::Internal(format!("writing the CSV report: {e}"));
    w.write_record(CSV_COLUMNS).map_err(fail)?;
    let lines = r.rows.iter().map(|row| ("row", row)).chain([("total", &r.total)]);
    for (kind, row) in lines {
        let by_program: Vec<String> = row.by_program.iter().map(|(p, fen)| format!("{p}={fen}")).collect();
        let key = if kind == "total" { "" } else { row.key.as_str() };
        w.write_record([
            kind,
            key,
            &row.settled_count.to_string(),
            &row.reversed_count.to_string(),
            &row.cards.to_string(),
            &row.relief_fen.to_string(),
            &by_program.join(";"),
        ])
        .map_err(fail)?;
    }
    w.into_inner().map_err(|e| ApiError::Internal(format!("writing the CSV report: {e}")))
}
