//! The HTTPS API: TLS and identity ([`tls`]), the accept loop with its limits ([`server`]), routing and the
//! handlers (this module), JSON ⇄ domain ([`wire`]), problem+json ([`problem`]) and per-hospital rate limits
//! ([`ratelimit`]). Handlers stay thin: parse, call one `App` operation, render.

pub mod problem;
pub mod ratelimit;
pub mod server;
pub mod tls;
pub mod wire;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::NaiveDate;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use tracing::Instrument;

use crate::app::{ApiError, App, EligibilityRequest, ReversalRequest};
use crate::config::LimitsConfig;
use crate::domain::bill::{QuoteRequest, SettleRequest};
use crate::domain::card::Cardholder;
use crate::domain::rules::RulesetInput;
use ratelimit::HospitalLimiter;
use tls::Identity;

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed_unsync()
}

/// Shared by every connection.
pub struct Ctx {
    pub app: App,
    pub limits: LimitsConfig,
    pub limiter: HospitalLimiter,
    pub admins: Vec<String>,
}

/// Every route served, as (method, path template): the OpenAPI document must list exactly these (tested).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/eligibility"),
    ("POST", "/v1/settlements"),
    ("GET", "/v1/settlements"),
    ("POST", "/v1/settlements/quote"),
    ("GET", "/v1/settlements/{settlement_id}"),
    ("POST", "/v1/reversals"),
    ("GET", "/v1/reconciliation"),
    ("GET", "/v1/reconciliation/settlements"),
    ("PUT", "/admin/v1/cardholders/{card_id}"),
    ("GET", "/admin/v1/cardholders/{card_id}"),
    ("POST", "/admin/v1/cardholders/import"),
    ("POST", "/admin/v1/rulesets"),
    ("GET", "/admin/v1/rulesets"),
    ("GET", "/admin/v1/rulesets/{version}"),
    ("GET", "/admin/v1/pools"),
    ("GET", "/admin/v1/reconciliation"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

/// Handles one request: request id, dispatch, problem+json for errors, metrics and one log line.
pub async fn handle(ctx: Arc<Ctx>, who: Arc<Identity>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, caller = %who.name());
    let (route, result) = dispatch(&ctx, &who, req).instrument(span.clone()).await;
    let mut resp = result.unwrap_or_else(|e| {
        if matches!(e, ApiError::Internal(_)) {
            span.in_scope(|| tracing::error!(error = %e, "internal error"));
        }
        e.to_response()
    });
    let status = resp.status();
    let outcome =
        resp.extensions().get::<Outcome>().map(|o| o.0).unwrap_or(if status.is_success() { "ok" } else { "error" });
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let elapsed = started.elapsed();
    metrics::counter!("settlegate_http_requests_total", "route" => route, "status" => status.as_str().to_string(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("settlegate_http_request_duration_seconds", "route" => route, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(%method, %path, route, status = status.as_u16(), outcome, latency_us = elapsed.as_micros() as u64, "served")
    });
    Ok(resp)
}

/// The problem code (or "ok") of a response, for metrics.
#[derive(Clone, Copy)]
struct Outcome(&'static str);

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

type Handled = Result<Response<Body>, ApiError>;

async fn dispatch(ctx: &Ctx, who: &Identity, req: Request<Incoming>) -> (&'static str, Handled) {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    let q = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());

    let route: &'static str = match (&method, segments.as_slice()) {
        (&Method::POST, ["v1", "eligibility"]) => "eligibility",
        (&Method::POST, ["v1", "settlements"]) => "settle",
        (&Method::GET, ["v1", "settlements"]) => "find_settlement",
        (&Method::POST, ["v1", "settlements", "quote"]) => "quote",
        (&Method::GET, ["v1", "settlements", _]) => "get_settlement",
        (&Method::POST, ["v1", "reversals"]) => "reverse",
        (&Method::GET, ["v1", "reconciliation"]) => "reconciliation",
        (&Method::GET, ["v1", "reconciliation", "settlements"]) => "reconciliation_detail",
        (&Method::PUT, ["admin", "v1", "cardholders", _]) => "admin_put_cardholder",
        (&Method::POST, ["admin", "v1", "cardholders", "import"]) => "admin_import",
        (&Method::GET, ["admin", "v1", "cardholders", _]) => "admin_get_cardholder",
        (&Method::POST, ["admin", "v1", "rulesets"]) => "admin_publish_ruleset",
        (&Method::GET, ["admin", "v1", "rulesets"]) => "admin_list_rulesets",
        (&Method::GET, ["admin", "v1", "rulesets", _]) => "admin_get_ruleset",
        (&Method::GET, ["admin", "v1", "pools"]) => "admin_pools",
        (&Method::GET, ["admin", "v1", "reconciliation"]) => "admin_reconciliation",
        _ => {
            // a path under the other role's prefix is forbidden whether or not it exists (API.md: 403)
            let forbidden = match who {
                Identity::Hospital(_) => path.starts_with("/admin/"),
                Identity::Admin(_) => path.starts_with("/v1/"),
                Identity::Unusable(_) => true,
            };
            if forbidden {
                return ("unknown", Err(ApiError::Forbidden(format!("{} may not call {path}", who.name()))));
            }
            return ("unknown", Err(ApiError::NotFound(format!("no route for {method} {path}"))));
        }
    };

    // Who may call what: hospitals /v1, the relief office /admin (API.md "Transport and identity").
    let hospital_id = match (who, route.starts_with("admin_")) {
        (Identity::Hospital(id), false) => {
            if let Err(retry_after_s) = ctx.limiter.check(id) {
                return (route, Err(ApiError::RateLimited { retry_after_s }));
            }
            id.as_str()
        }
        (Identity::Admin(_), true) => "",
        (Identity::Admin(_), false) => {
            return (route, Err(ApiError::Forbidden("the relief office cannot call /v1".into())))
        }
        (Identity::Hospital(_), true) => {
            return (route, Err(ApiError::Forbidden("hospitals cannot call /admin".into())))
        }
        (Identity::Unusable(cn), _) => {
            return (route, Err(ApiError::Forbidden(format!("certificate CN {cn:?} is not a valid caller id"))))
        }
    };
    let app = &ctx.app;
    let last = segments.last().copied().unwrap_or("").to_string();

    let result: Handled = async {
        match route {
            "eligibility" => {
                let r: EligibilityRequest = read_json(ctx, req).await?;
                Ok(json_response(StatusCode::OK, wire::eligibility(&app.eligibility(&r).await?)))
            }
            "settle" => {
                let r: SettleRequest = read_json(ctx, req).await?;
                let (s, created) = app.settle(hospital_id, &r).await?;
                let mut resp =
                    json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, wire::settlement(&s));
                if !created {
                    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                    resp.extensions_mut().insert(Outcome("replayed"));
                }
                Ok(resp)
            }
            "quote" => {
                let r: QuoteRequest = read_json(ctx, req).await?;
                Ok(json_response(StatusCode::OK, wire::settlement(&app.quote(&r).await?)))
            }
            "get_settlement" => {
                Ok(json_response(StatusCode::OK, wire::settlement(&app.get_settlement(hospital_id, &last).await?)))
            }
            "find_settlement" => {
                let card_id = q("card_id").ok_or_else(|| ApiError::invalid("card_id", "query parameter required"))?;
                let hsid = q("hospital_settlement_id")
                    .ok_or_else(|| ApiError::invalid("hospital_settlement_id", "query parameter required"))?;
                Ok(json_response(
                    StatusCode::OK,
                    wire::settlement(&app.find_settlement(hospital_id, &card_id, &hsid).await?),
                ))
            }
            "reverse" => {
                let r: ReversalRequest = read_json(ctx, req).await?;
                Ok(json_response(StatusCode::OK, wire::reversal(&app.reverse(hospital_id, &r).await?)))
            }
            "reconciliation" => {
                let date = query_date(q("date"), app.today())?;
                let totals = app.day_totals(hospital_id, date).await?;
                Ok(json_response(
                    StatusCode::OK,
                    wire::to_vec(&wire::day_totals(&date.to_string(), hospital_id, &totals)),
                ))
            }
            "reconciliation_detail" => {
                day_events(ctx, hospital_id.to_string(), query_date(q("date"), app.today())?).await
            }
            "admin_put_cardholder" => {
                let card: Cardholder = read_json(ctx, req).await?;
                Ok(json_response(StatusCode::OK, wire::to_vec(&app.put_cardholder(&last, card).await?)))
            }
            "admin_get_cardholder" => {
                let year = query_year(q("year"))?;
                let (card, year, usage) = app.get_cardholder(&last, year).await?;
                Ok(json_response(StatusCode::OK, wire::cardholder_with_usage(&card, year, &usage)))
            }
            "admin_import" => import(ctx, req).await,
            "admin_publish_ruleset" => {
                let input: RulesetInput = read_json(ctx, req).await?;
                Ok(json_response(StatusCode::CREATED, wire::to_vec(&app.publish_ruleset(&input).await?)))
            }
            "admin_list_rulesets" => {
                Ok(json_response(StatusCode::OK, wire::to_vec(&serde_json::json!({"rulesets": app.rulesets().await?}))))
            }
            "admin_get_ruleset" => {
                let version: u64 = last.parse().map_err(|_| ApiError::NotFound(format!("no ruleset {last}")))?;
                let all = app.rulesets().await?;
                let r = all
                    .iter()
                    .find(|r| r.version == version)
                    .ok_or_else(|| ApiError::NotFound(format!("no ruleset {version}")))?;
                Ok(json_response(StatusCode::OK, wire::to_vec(r)))
            }
            "admin_pools" => {
                let year = query_year(q("year"))?;
                let (year, version, pools) = app.pools(year).await?;
                Ok(json_response(StatusCode::OK, wire::pools(year, version, &pools)))
            }
            "admin_reconciliation" => {
                let date = query_date(q("date"), app.today())?;
                let list: Vec<serde_json::Value> = app
                    .admin_day_totals(date)
                    .await?
                    .iter()
                    .map(|(h, t)| wire::day_totals(&date.to_string(), h, t))
                    .collect();
                Ok(json_response(
                    StatusCode::OK,
                    wire::to_vec(&serde_json::json!({"date": date.to_string(), "hospitals": list})),
                ))
            }
            _ => Err(ApiError::Internal(format!("route {route} has no handler"))),
        }
    }
    .await;
    if let Err(e) = &result {
        tracing::debug!(route, code = e.code(), detail = %e, "refused");
    }
    (
        route,
        result.map(|mut r| {
            if r.extensions().get::<Outcome>().is_none() {
                r.extensions_mut().insert(Outcome("ok"));
            }
            r
        }),
    )
}

/// An optional `?year=` (1900..=9999).
fn query_year(raw: Option<String>) -> Result<Option<i32>, ApiError> {
    raw.map(|y| {
        y.parse::<i32>()
            .ok()
            .filter(|y| (1900..=9999).contains(y))
            .ok_or_else(|| ApiError::invalid("year", "must be a year like 2026"))
    })
    .transpose()
}

/// `?date=YYYY-MM-DD`, today (local) when absent.
fn query_date(raw: Option<String>, today: NaiveDate) -> Result<NaiveDate, ApiError> {
    let Some(raw) = raw else { return Ok(today) };
    crate::domain::date::parse(&raw)
        .ok_or_else(|| ApiError::invalid("date", format!("{raw:?} is not a date (YYYY-MM-DD)")))
}

fn media_type(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads a JSON body: content type checked (415), size bounded (413), time bounded, parsed strictly (400).
async fn read_json<T: serde::de::DeserializeOwned>(ctx: &Ctx, req: Request<Incoming>) -> Result<T, ApiError> {
    let media = media_type(&req);
    if media != "application/json" {
        return Err(ApiError::UnsupportedMediaType(format!("expected application/json, got {media:?}")));
    }
    let max = ctx.limits.max_body_bytes;
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
    {
        return Err(ApiError::PayloadTooLarge(max));
    }
    let read = Limited::new(req.into_body(), max).collect();
    let body = match tokio::time::timeout(Duration::from_millis(ctx.limits.request_timeout_ms), read).await {
        Err(_) => return Err(ApiError::invalid("body", "not received in time")),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(ApiError::PayloadTooLarge(max))
        }
        Ok(Err(e)) => return Err(ApiError::invalid("body", format!("could not be read: {e}"))),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    wire::parse(&body)
}

/// Most rejected lines listed in an import answer; the rest are only counted.
const MAX_LISTED_REJECTS: usize = 1000;
/// Cardholders stored per Redis pipeline during an import.
const IMPORT_BATCH: usize = 500;

/// `POST /admin/v1/cardholders/import`: streamed, one NDJSON line at a time; at most one batch of cards and one line
/// are held in memory. A line over `limits.max_import_line_bytes` is skipped and listed as rejected. When the body
/// fails (too large, too slow, broken), the lines received before are still stored and the error says how many.
async fn import(ctx: &Ctx, req: Request<Incoming>) -> Handled {
    let media = media_type(&req);
    if !matches!(media.as_str(), "application/x-ndjson" | "application/ndjson" | "application/jsonl") {
        return Err(ApiError::UnsupportedMediaType(format!("expected application/x-ndjson, got {media:?}")));
    }
    let deadline = Instant::now() + Duration::from_millis(ctx.limits.import_timeout_ms);
    let max_bytes = ctx.limits.max_import_bytes;
    let mut body = req.into_body();
    let mut received = 0usize;
    let mut import = Import::new(ctx.limits.max_import_line_bytes);
    let failure = loop {
        let frame = match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Err(_) => break Some(ApiError::invalid("body", "import not finished within limits.import_timeout_ms")),
            Ok(None) => break None,
            Ok(Some(Err(e))) => break Some(ApiError::invalid("body", format!("could not be read: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            // Feed up to the limit, so every line that arrived whole before it is stored; then refuse the rest.
            let room = max_bytes - received;
            import.feed(&data[..data.len().min(room)]);
            received += data.len().min(room);
            if import.batch.len() >= IMPORT_BATCH {
                import.flush(ctx).await?;
            }
            if data.len() > room {
                break Some(ApiError::PayloadTooLarge(max_bytes));
            }
        }
    };
    if failure.is_none() {
        import.finish();
    }
    import.flush(ctx).await?;
    tracing::info!(imported = import.imported, rejected = import.rejected_total, "cardholders imported");
    if let Some(e) = failure {
        let detail = format!("{e}; the {} cardholders received before were stored", import.imported);
        return Err(match e {
            ApiError::Invalid(mut errors) => {
                errors[0].message = detail;
                ApiError::Invalid(errors)
            }
            ApiError::PayloadTooLarge(_) => {
                tracing::warn!("{detail}");
                e
            }
            other => other,
        });
    }
    Ok(json_response(
        StatusCode::OK,
        wire::to_vec(&serde_json::json!({"imported": import.imported, "rejected": import.rejected,
                                        "rejected_total": import.rejected_total})),
    ))
}

/// The line splitter and batcher of an import.
struct Import {
    max_line: usize,
    /// Bytes of the current, unfinished line.
    pending: BytesMut,
    /// Inside a line that is too long: drop bytes up to its newline.
    skipping: bool,
    line_no: u64,
    batch: Vec<Cardholder>,
    imported: u64,
    rejected_total: u64,
    rejected: Vec<serde_json::Value>,
}

impl Import {
    fn new(max_line: usize) -> Import {
        Import {
            max_line,
            pending: BytesMut::new(),
            skipping: false,
            line_no: 0,
            batch: Vec::with_capacity(IMPORT_BATCH),
            imported: 0,
            rejected_total: 0,
            rejected: Vec::new(),
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match data.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    if !self.skipping {
                        self.pending.extend_from_slice(&data[..i]);
                    }
                    self.end_line();
                    data = &data[i + 1..];
                }
                None => {
                    if !self.skipping {
                        self.pending.extend_from_slice(data);
                        if self.pending.len() > self.max_line {
                            self.skipping = true;
                            self.pending.clear();
                        }
                    }
                    data = &[];
                }
            }
        }
    }

    /// The body ended: a last line without a newline still counts.
    fn finish(&mut self) {
        if self.skipping || !self.pending.is_empty() {
            self.end_line();
        }
    }

    fn end_line(&mut self) {
        self.line_no += 1;
        let line = self.pending.split();
        let parsed = if std::mem::take(&mut self.skipping) || line.len() > self.max_line {
            Err(format!("line longer than {} bytes", self.max_line))
        } else {
            let text = line.strip_suffix(b"\r").unwrap_or(&line);
            if text.iter().all(|b| b.is_ascii_whitespace()) {
                return;
            }
            wire::parse::<Cardholder>(text).map_err(|e| e.to_string()).and_then(|c| {
                let errors = c.validate();
                if errors.is_empty() {
                    Ok(c)
                } else {
                    Err(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
                }
            })
        };
        match parsed {
            Ok(card) => self.batch.push(card),
            Err(error) => {
                self.rejected_total += 1;
                if self.rejected.len() < MAX_LISTED_REJECTS {
                    self.rejected.push(serde_json::json!({"line": self.line_no, "error": error}));
                }
            }
        }
    }

    async fn flush(&mut self, ctx: &Ctx) -> Result<(), ApiError> {
        ctx.app.store.put_cardholders(&self.batch).await?;
        self.imported += self.batch.len() as u64;
        self.batch.clear();
        Ok(())
    }
}

/// `GET /v1/reconciliation/settlements`: the day's events as NDJSON, read from Redis a page at a time as the client
/// consumes them. The first page is read before answering, so a store failure is still a proper 503.
async fn day_events(ctx: &Ctx, hospital_id: String, date: NaiveDate) -> Handled {
    use crate::store::EVENTS_PAGE;
    let store = ctx.app.store.clone();
    let day = date.to_string();
    let first = store.day_events(&day, &hospital_id, 0).await?;
    let render = |events: &[crate::store::DayEvent]| -> Bytes {
        let mut chunk = Vec::new();
        for e in events {
            chunk.extend_from_slice(&wire::day_event(e));
        }
        Bytes::from(chunk)
    };
    let next = if (first.len() as isize) < EVENTS_PAGE { None } else { Some(EVENTS_PAGE) };
    let head = futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(render(&first)))]);
    let rest = futures_util::stream::unfold(next, move |state| {
        let store = store.clone();
        let (day, hospital_id) = (day.clone(), hospital_id.clone());
        async move {
            let start = state?;
            match store.day_events(&day, &hospital_id, start).await {
                Ok(events) => {
                    let next = if (events.len() as isize) < EVENTS_PAGE { None } else { Some(start + EVENTS_PAGE) };
                    Some((Ok(Frame::data(render(&events))), next))
                }
                // the status line is sent already: end the stream with an error so the client sees it broken
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let stream = futures_util::StreamExt::chain(head, rest);
    let mut resp = Response::new(BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream)));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(resp)
}
