//! The HTTPS API: TLS and identity ([`tls`]), the accept loop with its limits ([`server`]), the route table
//! ([`routes`]), dispatch and the handlers (this module), request reading ([`body`]), JSON ⇄ domain ([`wire`]),
//! problem+json ([`problem`]), the streamed import ([`import`]), NDJSON detail ([`stream`]), the reconciliation
//! checks ([`check`]) and per-hospital rate limits ([`ratelimit`]). Handlers stay thin: parse, call one `App`
//! operation, render.

pub mod body;
pub mod check;
pub mod events;
pub mod import;
pub mod problem;
pub mod ratelimit;
pub mod report;
pub mod routes;
pub mod server;
pub mod stream;
pub mod tls;
pub mod wire;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tracing::Instrument;

use crate::app::{
    Actor, ApiError, App, AuditQuery, Caller, ClearingRequest, ContributionRequest, EligibilityRequest, PaidRequest,
    ReversalRequest,
};
use crate::config::LimitsConfig;
use crate::domain::audit::AuditRole;
use crate::domain::bill::{QuoteRequest, SettleRequest};
use crate::domain::card::Cardholder;
use crate::domain::rules::RulesetInput;
use body::{read_json, Query};
use ratelimit::HospitalLimiter;
use routes::{Match, Params, Role, Route};
use tls::{CallerKind, Identity};

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed_unsync()
}

/// Shared by every connection.
pub struct Ctx {
    /// The operations of the API.
    pub app: App,
    /// Body sizes and timeouts of requests (`[limits]`).
    pub limits: LimitsConfig,
    /// Per-hospital request quotas (`[rate_limit]`).
    pub limiter: HospitalLimiter,
    /// Certificate CNs with the relief office's role (`admin.identities`).
    pub admins: Vec<String>,
    /// Certificate CNs of the street offices and the street each serves (`[streets] identities`).
    pub streets: crate::config::StreetsConfig,
    /// Requests being served now, at most `limits.max_in_flight`; past it, 503 at once (load shedding).
    pub in_flight: tokio::sync::Semaphore,
    /// This instance's settle latencies per minute, flushed to Redis for the console's Today page.
    pub stats: Arc<crate::store::stats::SettleStats>,
}

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
    let Ok(_in_flight) = ctx.in_flight.try_acquire() else {
        // overloaded: a fast "try again" instead of a queue that makes every request time out
        metrics::counter!("settlegate_http_shed_total").increment(1);
        let mut resp =
            ApiError::Unavailable("this instance is at limits.max_in_flight; nothing was changed".into()).to_response();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        return Ok(resp);
    };
    let method = req.method().clone();
    // the raw path may hold a card id (`/admin/v1/cardholders/C100001`) or anything a client typed: logs get the
    // route's pattern, or only the literal segments of the route table an unknown path starts with
    let raw_path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, caller = %who.log_name());
    let (matched, result) = dispatch(&ctx, &who, &request_id, req).instrument(span.clone()).await;
    let route = matched.map_or("unknown", Route::name);
    let path = matched.map_or_else(|| routes::log_path(&raw_path), |r| r.path().into());
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
    if route == "settle" && status.is_success() {
        ctx.stats.record(elapsed);
    }
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    metrics::counter!("settlegate_http_requests_total", "route" => route, "status" => status.as_str().to_string(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("settlegate_http_request_duration_seconds", "route" => route, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| tracing::info!(%method, %path, route, status = status.as_u16(), outcome, latency_us, "served"));
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

/// Finds the route, checks who may call it (and the hospital's quota), then serves it. Returns the route (for the
/// metrics label and the log line; `None` when none matched).
async fn dispatch(ctx: &Ctx, who: &Identity, request_id: &str, req: Request<Incoming>) -> (Option<Route>, Handled) {
    // Every request of a non-admin caller counts against its quota, refused ones (403, 404, 405) too.
    if who.kind() != CallerKind::Admin && !who.is_console() {
        if let Err(retry_after_s) = ctx.limiter.check(who.name()) {
            return (None, Err(ApiError::RateLimited { retry_after_s }));
        }
    }
    let path = decoded_path(req.uri().path());
    let own = match who.kind() {
        CallerKind::Hospital => Some(Role::Hospital),
        CallerKind::Admin => Some(Role::Admin),
        CallerKind::Street => Some(Role::Street),
        CallerKind::Unusable => None,
    };
    // a path under another role's prefix is forbidden whether or not it exists (API.md: 403), unless a route the
    // caller may call has that path (the reconciliation checks, which both roles call: a wrong method is 405; a
    // street office's cardholder paths) (worked out only when no route matched, off the path of every request
    // served)
    let foreign = || {
        let reachable = own.is_some_and(|o| !matches!(routes::find("", &path, |r| r.admits(o)), Match::NotFound));
        !reachable && [Role::Hospital, Role::Admin].into_iter().any(|r| Some(r) != own && path.starts_with(r.prefix()))
    };
    let (route, params) = match routes::find(req.method().as_str(), &path, |r| r != Role::Ops) {
        Match::Found { route, params } => (route, params),
        _ if own.is_none() || foreign() => {
            return (None, Err(ApiError::Forbidden(format!("{} may not call this path", who.log_name()))));
        }
        Match::WrongMethod { allowed } => return (None, Err(ApiError::MethodNotAllowed(allowed))),
        Match::NotFound => return (None, Err(ApiError::NotFound("no such path".into()))),
    };
    // Who may call what is the route table's role column, and only it (API.md "Transport and identity", "Two-sided
    // reconciliation", "Three levels"); the handler then scopes by the caller (its hospital, its street).
    let Some(own) = own.filter(|o| route.role().admits(*o)) else {
        let why = match who.kind() {
            CallerKind::Admin => "the relief office cannot call /v1",
            CallerKind::Hospital => "hospitals cannot call /admin",
            CallerKind::Street => "a street office may call only its street's cardholders, their import and history",
            CallerKind::Unusable => "this certificate is not a valid caller (one CN, a valid id)",
        };
        return (Some(route), Err(ApiError::Forbidden(why.into())));
    };
    let caller = match own {
        Role::Hospital => Caller::Hospital(who.name()),
        Role::Street => Caller::Street(who.street().unwrap_or_default()),
        _ => Caller::Admin,
    };
    let query = Query::parse(req.uri().query());
    // who an office write's audit entry names
    let role = match caller {
        _ if who.is_console() => AuditRole::Console,
        Caller::Street(_) => AuditRole::Street,
        _ => AuditRole::Admin,
    };
    let by = Actor { name: who.name().to_string(), role, request_id: request_id.to_string() };
    let result = serve(ctx, route, params, &query, caller, &by, req).await;
    if let Err(e) = &result {
        // the code only: a detail may name the card (`card C100001 not found`) or echo what the client sent
        tracing::debug!(route = route.name(), code = e.code(), "refused");
    }
    let result = result.map(|mut r| {
        if r.extensions().get::<Outcome>().is_none() {
            r.extensions_mut().insert(Outcome("ok"));
        }
        r
    });
    (Some(route), result)
}

/// The path with its percent-escapes decoded (`/admin/v1/cardholders/a%3Ab` names the card `a:b`), so that a
/// client's encoding of a valid id does not change what it names. Not UTF-8 once decoded: kept as sent (its ids
/// then fail validation or match no route).
fn decoded_path(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_string();
    }
    percent_encoding::percent_decode_str(raw).decode_utf8().map_or_else(|_| raw.to_string(), |p| p.into_owned())
}

/// One route's handler: parse, call the `App` operation, render. `hospital_id` is "" for the relief office.
async fn serve(
    ctx: &Ctx,
    route: Route,
    params: Params<'_>,
    q: &Query,
    caller: Caller<'_>,
    by: &Actor,
    req: Request<Incoming>,
) -> Handled {
    let app = &ctx.app;
    let hospital_id = caller.hospital_id();
    let ok = |body: Vec<u8>| Ok(json_response(StatusCode::OK, body));
    match route {
        Route::Eligibility => {
            let r: EligibilityRequest = read_json(&ctx.limits, req).await?;
            ok(wire::eligibility(&app.eligibility(&r).await?))
        }
        Route::Settle => {
            let r: SettleRequest = read_json(&ctx.limits, req).await?;
            let (s, created) = app.settle(hospital_id, &r).await?;
            let mut resp =
                json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, wire::settlement(&s));
            if !created {
                resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                resp.extensions_mut().insert(Outcome("replayed"));
            }
            Ok(resp)
        }
        Route::Quote => {
            let r: QuoteRequest = read_json(&ctx.limits, req).await?;
            ok(wire::settlement(&app.quote(&r).await?))
        }
        Route::GetSettlement => ok(wire::settlement(&app.get_settlement(hospital_id, params.get(0)).await?)),
        Route::FindSettlement => {
            let (card_id, year) = (q.required("card_id")?, q.year()?);
            match q.get("hospital_settlement_id") {
                Some(hsid) => ok(wire::settlement(&app.find_settlement(hospital_id, card_id, hsid).await?)),
                None => {
                    let max = ctx.limits.max_history_items;
                    ok(events::hospital_history(&app.hospital_card_history(hospital_id, card_id, year, max).await?))
                }
            }
        }
        Route::Reverse => {
            let r: ReversalRequest = read_json(&ctx.limits, req).await?;
            ok(wire::reversal(&app.reverse(hospital_id, &r).await?))
        }
        Route::Reconciliation => {
            let date = q.date_or(app.today())?;
            let totals = app.day_totals(hospital_id, date).await?;
            ok(wire::to_vec(&wire::day_totals(&date.to_string(), hospital_id, &totals)))
        }
        Route::ReconciliationDetail => stream::day_events(ctx, hospital_id.to_string(), q.date_or(app.today())?).await,
        Route::ReconciliationCheck => check::totals(ctx, caller, req).await,
        Route::ReconciliationCheckDetails => check::details(ctx, caller, q, req).await,
        Route::Clearings => ok(wire::clearings(&app.list_clearings(q.get("period"), Some(hospital_id), None).await?)),
        Route::PutCardholder => {
            let card: Cardholder = read_json(&ctx.limits, req).await?;
            ok(wire::to_vec(&app.put_cardholder(params.get(0), card, by, caller.street()).await?))
        }
        Route::GetCardholder => {
            ok(wire::cardholder_with_usage(&app.get_cardholder(params.get(0), q.year()?, caller.street()).await?))
        }
        Route::ImportCardholders => import::import(ctx, by, req, caller.street()).await,
        Route::PublishRuleset => {
            let input: RulesetInput = read_json(&ctx.limits, req).await?;
            Ok(json_response(StatusCode::CREATED, wire::to_vec(&app.publish_ruleset(&input, by).await?)))
        }
        Route::ListRulesets => ok(wire::to_vec(&serde_json::json!({"rulesets": app.rulesets().await?}))),
        Route::GetRuleset => {
            let raw = params.get(0);
            let version: u64 = raw.parse().map_err(|_| ApiError::NotFound(format!("no ruleset {raw}")))?;
            let all = app.rulesets().await?;
            let r = all
                .iter()
                .find(|r| r.version == version)
                .ok_or_else(|| ApiError::NotFound(format!("no ruleset {version}")))?;
            ok(wire::to_vec(r))
        }
        Route::PreviewRuleset => {
            let r: crate::app::preview::PreviewRequest = read_json(&ctx.limits, req).await?;
            ok(wire::to_vec(&app.preview_ruleset(&r, crate::app::preview::PreviewLimits::of(&ctx.limits)).await?))
        }
        Route::Pools => ok(wire::pools(&app.pools(q.year()?).await?)),
        Route::Contribute => {
            let r: ContributionRequest = read_json(&ctx.limits, req).await?;
            let receipt = app.contribute(params.get(0), &r, by).await?;
            let status = if receipt.created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(json_response(status, wire::contribution(&receipt)))
        }
        Route::Audit => {
            let query = AuditQuery {
                from: q.get("from"),
                to: q.get("to"),
                actor: q.get("actor"),
                action: q.get("action"),
                after: q.get("after"),
                limit: q.get("limit"),
            };
            events::audit(&app.audit(&query).await?)
        }
        Route::AdminReconciliation => {
            let date = q.date_or(app.today())?;
            let day = date.to_string();
            let list: Vec<serde_json::Value> = app
                .admin_day_totals(date)
                .await?
                .iter()
                .map(|h| wire::day_totals(&day, &h.hospital_id, &h.totals))
                .collect();
            ok(wire::to_vec(&serde_json::json!({"date": day, "hospitals": list})))
        }
        Route::CardHistory => {
            let max = ctx.limits.max_history_items;
            let (year, list) = app.card_history(params.get(0), q.year()?, max, caller.street()).await?;
            ok(events::office_history(params.get(0), year, &list))
        }
        Route::Events => {
            let after = q.get("after");
            events::events(&app.events(after, q.get("limit")).await?, after)
        }
        Route::CreateClearing => {
            let r: ClearingRequest = read_json(&ctx.limits, req).await?;
            let (c, created) = app.create_clearing(&r, by).await?;
            Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, c.render()))
        }
        Route::ListClearings => {
            let list = app.list_clearings(q.get("period"), q.get("hospital_id"), q.get("status")).await?;
            ok(wire::clearings(&list))
        }
        Route::ConfirmClearing => ok(app.confirm_clearing(params.get(0), by).await?.render()),
        Route::PayClearing => {
            let r: PaidRequest = read_json(&ctx.limits, req).await?;
            ok(app.pay_clearing(params.get(0), &r, by).await?.render())
        }
        Route::Reports => report::relief(ctx, q, caller.street()).await,
        // served by the ops listener (`crate::ops`); `dispatch` never selects them
        Route::Healthz | Route::Readyz | Route::Metrics => {
            Err(ApiError::Internal(format!("{} is served on the ops listener", route.name())))
        }
    }
}
