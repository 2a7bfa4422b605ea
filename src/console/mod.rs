//! The relief office's web console (docs/CONSOLE.md): HTTPS on `[console] listen`, for officials at a desk.
//!
//! * [`auth`] — argon2id hashes, tokens, cookies, account names.
//! * [`pages`] — the login page and the shell of every page, rendered here in the chosen language.
//! * [`assets`] — the CSS, JS and chart library, built into the binary (no network, no CDN).
//!
//! Every action of a page is a call to `/api/admin/v1/...`, served by the admin API's own dispatch
//! (`http::handle`) as the signed-in account: the same validation, the same store call, the same audit entry
//! (role `console`, the account's name as the actor); a street account is scoped to its street exactly as a
//! street certificate. `/api/console/*` adds the Today page's figures, the audit chain's verification and who is
//! signed in.

pub mod assets;
pub mod auth;
pub mod pages;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::config::{ConsoleConfig, LimitsConfig};
use crate::domain::audit::{Actor, AuditRole};
use crate::http::tls::Identity;
use crate::http::{full, Body, Ctx};
use crate::store::console::{AccountRole, ConsoleOutcome, ConsoleWrite, LoginBegin, Session};
use auth::{LOGIN_COOKIE, SESSION_COOKIE};
use pages::{Lang, Page};

/// The console listener's state.
pub struct Console {
    /// The API: its `App`, limits and dispatch serve every `/api/admin/...` call.
    pub api: Arc<Ctx>,
    /// `[console]`.
    pub config: ConsoleConfig,
    /// Login attempts per client address (`console.login_burst_per_ip`, `logins_per_second_per_ip`).
    pub logins: crate::http::ratelimit::HospitalLimiter,
}

impl Console {
    pub fn new(api: Arc<Ctx>, config: ConsoleConfig) -> Console {
        let logins =
            crate::http::ratelimit::HospitalLimiter::new(config.logins_per_second_per_ip, config.login_burst_per_ip);
        Console { api, config, logins }
    }
}

/// A console response.
type Reply = Response<Body>;

impl crate::http::server::Site for Console {
    fn limits(&self) -> &LimitsConfig {
        &self.api.limits
    }

    fn identify(&self, _chain: Option<&[rustls_pki_types::CertificateDer<'_>]>) -> Identity {
        // no client certificate on the console: who is calling is the session's account
        Identity::new(crate::http::tls::CallerKind::Unusable, String::new())
    }

    async fn handle(self: Arc<Self>, _who: Arc<Identity>, req: Request<Incoming>) -> Result<Reply, Infallible> {
        // `/api/admin/*` calls are logged by the API's own handler; this line names only the kind of path (a page,
        // an asset, the login form), never what a client typed
        let kind = path_kind(req.uri().path());
        let method = req.method().clone();
        let mut resp = self.route(req).await;
        secure_headers(resp.headers_mut());
        let status = resp.status().as_u16();
        metrics::counter!("settlegate_console_requests_total", "kind" => kind, "status" => status.to_string())
            .increment(1);
        tracing::debug!(%method, kind, status, "console served");
        Ok(resp)
    }
}

impl Console {
    async fn route(&self, req: Request<Incoming>) -> Reply {
        let lang = Lang::of(req.headers());
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        if let Some(name) = path.strip_prefix("/assets/") {
            return match (method, assets::find(name)) {
                (Method::GET | Method::HEAD, Some(a)) => assets::response(a),
                _ => text(StatusCode::NOT_FOUND, "not found"),
            };
        }
        match (&method, path.as_str()) {
            (&Method::GET, "/") => redirect("/today"),
            (&Method::GET, "/login") => self.login_page(&req, lang, None),
            (&Method::POST, "/login") => self.login(req, lang).await,
            (&Method::POST, "/logout") => self.logout(req).await,
            _ if path.starts_with("/api/") => self.api_call(req, &path).await,
            (&Method::GET, p) => match Page::from_path(p) {
                Some(page) => self.page(&req, page, lang).await,
                None => text(StatusCode::NOT_FOUND, "not found"),
            },
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    fn actor(&self, name: &str) -> Actor {
        Actor {
            name: name.to_string(),
            role: AuditRole::Console,
            request_id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    fn now(&self) -> String {
        self.api.app.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
    }

    /// The session a request's cookie names, if it is alive; `Err` when Redis cannot say.
    async fn session(&self, headers: &http::HeaderMap) -> Result<Option<(String, Session)>, Reply> {
        let Some(token) = auth::cookie(headers, SESSION_COOKIE) else { return Ok(None) };
        let sha = auth::token_sha256(&token);
        match self.api.app.store.session_touch(&sha, self.config.session_idle_ms()).await {
            Ok(s) => Ok(s.map(|s| (sha, s))),
            Err(e) => Err(crate::app::ApiError::from(e).to_response()),
        }
    }

    fn login_page(&self, req: &Request<Incoming>, lang: Lang, error: Option<pages::LoginError>) -> Reply {
        let error = error.or_else(|| {
            let q = crate::http::body::Query::parse(req.uri().query());
            q.get("expired").map(|_| pages::LoginError::Expired)
        });
        let token = auth::random_token();
        let status = if error.is_some_and(|e| e != pages::LoginError::Expired) {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        let mut resp = html(status, pages::login(lang, &token, error));
        add_cookie(&mut resp, &auth::set_cookie(LOGIN_COOKIE, &token, 3600, true));
        resp
    }

    async fn login(&self, req: Request<Incoming>, lang: Lang) -> Reply {
        let peer = req.extensions().get::<crate::http::server::Peer>().map_or_else(String::new, |p| p.0.to_string());
        if self.logins.check(&peer).is_err() {
            metrics::counter!("settlegate_console_logins_total", "outcome" => "rate_limited").increment(1);
            return self.login_page_for(lang, pages::LoginError::RateLimited);
        }
        let cookie_token = auth::cookie(req.headers(), LOGIN_COOKIE);
        let Some(form) = self.read_form(req).await else {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "form too large");
        };
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
        let (name, password) = (field("name").trim().to_string(), field("password").to_string());
        let fail = |e| self.login_page_for(lang, e);
        if !cookie_token.as_deref().is_some_and(|c| auth::same_token(c, field("csrf"))) {
            return fail(pages::LoginError::CsrfRefused);
        }
        if !auth::is_valid_name(&name) || password.is_empty() || password.len() > 1024 {
            return fail(pages::LoginError::BadCredentials);
        }
        let store = &self.api.app.store;
        let begin = store.login_begin(&name, self.config.max_failed_logins, self.config.lockout_ms()).await;
        let (account, attempt) = match begin {
            Err(e) => {
                tracing::warn!(error = %e, "console login: the store did not answer");
                return self.login_page_for(lang, pages::LoginError::Unavailable);
            }
            Ok(LoginBegin::Locked { ms_left }) => {
                metrics::counter!("settlegate_console_logins_total", "outcome" => "locked").increment(1);
                return fail(pages::LoginError::Locked { minutes_left: ms_left.div_ceil(60_000) });
            }
            Ok(LoginBegin::Unknown | LoginBegin::Disabled) => {
                // as slow as a real check, so that timing does not tell which names exist
                let _ = tokio::task::spawn_blocking(move || auth::verify_password(&password, &auth::DUMMY_HASH)).await;
                metrics::counter!("settlegate_console_logins_total", "outcome" => "unknown").increment(1);
                return fail(pages::LoginError::BadCredentials);
            }
            Ok(LoginBegin::Check { account, attempt }) => (account, attempt),
        };
        let phc = account.password_hash.clone();
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &phc)).await.unwrap_or(false);
        let by = self.actor(&name);
        if !ok {
            metrics::counter!("settlegate_console_logins_total", "outcome" => "failed").increment(1);
            let locked = attempt >= self.config.max_failed_logins;
            let detail = serde_json::json!({"failures": attempt, "locked": locked});
            if let Err(e) =
                store.console_write(&ConsoleWrite::LoginFailed { name: &name }, &self.now(), &by, detail).await
            {
                return crate::app::ApiError::from(e).to_response();
            }
            return fail(if locked {
                pages::LoginError::Locked { minutes_left: self.config.lockout_minutes }
            } else {
                pages::LoginError::BadCredentials
            });
        }
        let token = auth::random_token();
        let sha = auth::token_sha256(&token);
        let csrf = auth::random_token();
        let w = ConsoleWrite::Login {
            name: &name,
            token_sha256: &sha,
            csrf: &csrf,
            idle_ms: self.config.session_idle_ms(),
        };
        let detail = serde_json::json!({"role": account.role, "street": account.street});
        if let Err(e) = store.console_write(&w, &self.now(), &by, detail).await {
            // no session without its audit entry
            tracing::warn!(error = %e, "console login: the session was not recorded");
            return self.login_page_for(lang, pages::LoginError::Unavailable);
        }
        metrics::counter!("settlegate_console_logins_total", "outcome" => "ok").increment(1);
        tracing::info!(user = %crate::redact::log_safe(&name), "console login");
        let mut resp = redirect(if account.role == AccountRole::Street { "/cards" } else { "/today" });
        add_cookie(&mut resp, &auth::set_cookie(SESSION_COOKIE, &token, self.config.session_idle_minutes * 60, true));
        add_cookie(&mut resp, &auth::set_cookie(LOGIN_COOKIE, "", 0, true));
        resp
    }

    fn login_page_for(&self, lang: Lang, error: pages::LoginError) -> Reply {
        let token = auth::random_token();
        let status = match error {
            pages::LoginError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            pages::LoginError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::UNAUTHORIZED,
        };
        let mut resp = html(status, pages::login(lang, &token, Some(error)));
        add_cookie(&mut resp, &auth::set_cookie(LOGIN_COOKIE, &token, 3600, true));
        resp
    }

    async fn logout(&self, req: Request<Incoming>) -> Reply {
        let session = match self.session(req.headers()).await {
            Ok(s) => s,
            Err(resp) => return resp,
        };
        let Some((sha, session)) = session else { return redirect("/login") };
        let Some(form) = self.read_form(req).await else {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "form too large");
        };
        let csrf = form.iter().find(|(n, _)| n == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
        if !auth::same_token(&session.csrf, csrf) {
            return problem(StatusCode::FORBIDDEN, "csrf_refused", "the form's CSRF token does not match the session");
        }
        let name = session.account.name.clone();
        let w = ConsoleWrite::Logout { name: &name, token_sha256: &sha };
        match self.api.app.store.console_write(&w, &self.now(), &self.actor(&name), serde_json::json!({})).await {
            Ok(ConsoleOutcome::Applied | ConsoleOutcome::NotFound) => {}
            Ok(other) => tracing::warn!(?other, "logout"),
            Err(e) => return crate::app::ApiError::from(e).to_response(),
        }
        let mut resp = redirect("/login");
        add_cookie(&mut resp, &auth::set_cookie(SESSION_COOKIE, "", 0, true));
        resp
    }

    async fn page(&self, req: &Request<Incoming>, page: Page, lang: Lang) -> Reply {
        let had_cookie = auth::cookie(req.headers(), SESSION_COOKIE).is_some();
        match self.session(req.headers()).await {
            Err(resp) => resp,
            Ok(None) if had_cookie => {
                // the cookie names a session that is gone: forget it too
                let mut resp = redirect("/login?expired=1");
                add_cookie(&mut resp, &auth::set_cookie(SESSION_COOKIE, "", 0, true));
                resp
            }
            Ok(None) => redirect("/login"),
            Ok(Some((_, s))) if !page.allowed(&s.account.role) => {
                html(StatusCode::FORBIDDEN, pages::forbidden(lang, &s, page))
            }
            Ok(Some((_, s))) => html(StatusCode::OK, pages::shell(lang, &s, page, &self.api.app.today().to_string())),
        }
    }

    /// `/api/...`: a live session, and for anything but GET its CSRF token and a same-origin `Origin`.
    async fn api_call(&self, mut req: Request<Incoming>, path: &str) -> Reply {
        let session = match self.session(req.headers()).await {
            Ok(Some((_, s))) => s,
            Ok(None) => return problem(StatusCode::UNAUTHORIZED, "login_required", "sign in to the console first"),
            Err(resp) => return resp,
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let header = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
            if !auth::same_token(&session.csrf, header) {
                return problem(StatusCode::FORBIDDEN, "csrf_refused", "missing or wrong X-CSRF-Token header");
            }
            if !same_origin(&req) {
                return problem(StatusCode::FORBIDDEN, "csrf_refused", "the request's Origin is not this console");
            }
        }
        let account = &session.account;
        let admin = account.role == AccountRole::Admin;
        match (req.method(), path) {
            (&Method::GET, "/api/console/me") => json(&serde_json::json!({
                "name": account.name, "role": account.role, "street": account.street,
                "session_idle_minutes": self.config.session_idle_minutes,
            })),
            (&Method::GET, "/api/console/today") if admin => match self.api.app.today_page().await {
                Ok(t) => json(&serde_json::to_value(&t).unwrap_or_default()),
                Err(e) => e.to_response(),
            },
            (&Method::GET, "/api/console/audit/verify") if admin => match self.api.app.store.verify_audit().await {
                Ok(Ok(n)) => json(&serde_json::json!({"ok": true, "entries": n, "broken_seq": null, "reason": null})),
                Ok(Err(b)) => {
                    json(&serde_json::json!({"ok": false, "entries": null, "broken_seq": b.seq, "reason": b.reason}))
                }
                Err(e) => crate::app::ApiError::from(e).to_response(),
            },
            (_, p) if p.starts_with("/api/console/") => {
                problem(StatusCode::FORBIDDEN, "forbidden", "this console account may not call this path")
            }
            (_, p) if p.starts_with("/api/admin/") => {
                let rest = &req.uri().to_string()[..];
                let rewritten =
                    rest.find("/api/admin/").map(|at| rest[at + 4..].to_string()).unwrap_or_else(|| p[4..].to_string());
                match rewritten.parse() {
                    Ok(uri) => *req.uri_mut() = uri,
                    Err(_) => return problem(StatusCode::BAD_REQUEST, "invalid_request", "bad path"),
                }
                let who = Arc::new(Identity::console_user(&account.name, account.street.as_deref()));
                let Ok(resp) = crate::http::handle(self.api.clone(), who, req).await;
                resp
            }
            _ => problem(StatusCode::NOT_FOUND, "not_found", "no such path"),
        }
    }

    /// A urlencoded form of at most `console.max_form_bytes`; `None` when it is larger.
    async fn read_form(&self, req: Request<Incoming>) -> Option<Vec<(String, String)>> {
        let limited = http_body_util::Limited::new(req.into_body(), self.config.max_form_bytes);
        let bytes: Bytes = limited.collect().await.ok()?.to_bytes();
        Some(form_urlencoded::parse(&bytes).into_owned().collect())
    }
}

/// The log label of a console path.
fn path_kind(path: &str) -> &'static str {
    match path {
        "/login" | "/logout" => "login",
        p if p.starts_with("/assets/") => "asset",
        p if p.starts_with("/api/admin/") => "api_admin",
        p if p.starts_with("/api/console/") => "api_console",
        p if Page::from_path(p).is_some() || p == "/" => "page",
        _ => "other",
    }
}

/// Whether a request's `Origin` (when it has one) is the console's own `https://<host>`: the `Host` header on
/// HTTP/1.1, the `:authority` (the URI's) on HTTP/2, which has no `Host`.
fn same_origin<B>(req: &Request<B>) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str))
        .unwrap_or("");
    !host.is_empty() && origin == format!("https://{host}")
}

fn secure_headers(h: &mut http::HeaderMap) {
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             font-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("strict-transport-security", HeaderValue::from_static("max-age=31536000"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}

fn add_cookie(resp: &mut Reply, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn html(status: StatusCode, body: String) -> Reply {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

fn json(v: &serde_json::Value) -> Reply {
    let mut resp = Response::new(full(serde_json::to_vec(&v).unwrap_or_default()));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A console refusal as problem+json, like the API's.
fn problem(status: StatusCode, code: &'static str, detail: &str) -> Reply {
    let body = serde_json::json!({
        "type": "about:blank", "title": status.canonical_reason().unwrap_or(""), "status": status.as_u16(),
        "code": code, "detail": detail,
    });
    let mut resp = Response::new(full(serde_json::to_vec(&body).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    resp
}

fn redirect(to: &'static str) -> Reply {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp.headers_mut().insert(header::LOCATION, HeaderValue::from_static(to));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: http::Version, uri: &str, host: Option<&str>, origin: Option<&str>) -> Request<()> {
        let mut b = Request::builder().method("POST").uri(uri).version(version);
        if let Some(h) = host {
            b = b.header(header::HOST, h);
        }
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn the_origin_must_be_the_console_itself_on_http1_and_http2() {
        let h1 = |origin| req(http::Version::HTTP_11, "/api/x", Some("localhost:8444"), origin);
        assert!(same_origin(&h1(None)));
        assert!(same_origin(&h1(Some("https://localhost:8444"))));
        assert!(!same_origin(&h1(Some("https://evil.example"))));
        assert!(!same_origin(&h1(Some("http://localhost:8444"))));
        // HTTP/2: no Host header, the authority is in the URI
        let h2 = |origin| req(http::Version::HTTP_2, "https://localhost:8444/api/x", None, origin);
        assert!(same_origin(&h2(Some("https://localhost:8444"))));
        assert!(!same_origin(&h2(Some("https://evil.example"))));
        assert!(!same_origin(&req(http::Version::HTTP_2, "/api/x", None, Some("https://localhost:8444"))));
    }
}
