//! The console's authentication in a real browser: Debian's headless Chromium over WebDriver
//! (tests/browser_support), the real `settlegate serve` binary with `[console]` and a private Redis
//! (tests/common). The tests running at the same time share one gateway and one chromedriver; each opens its own
//! Chromium (no cookies) and uses accounts of its own, so none depends on another.
//!
//! Screenshots (target/console-screenshots/, and $SG_SCREENSHOTS_DIR when set): `harness-smoke`, `login-zh`,
//! `login-en`, `login-locked-zh`.

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::console::{login_error, Console, IDLE_MINUTES, MAX_FAILED_LOGINS};
use browser_support::*;
use serde_json::Value;

/// A password `users add` accepts (10 characters or more).
const PASSWORD: &str = "correct horse battery";

/// `POST /api/admin/v1/pools/x/contributions` (`{}`) from the page with `fetch`, `headers` added to its
/// content-type: `{status, type, body, protocol}` (`protocol`: the page's HTTP version, e.g. `h2`).
async fn post_from_page(b: &Browser, headers: &str) -> Value {
    let js = format!(
        "return fetch('/api/admin/v1/pools/x/contributions', {{method: 'POST', body: '{{}}', \
         headers: {{'content-type': 'application/json'{headers}}}}})\
         .then(r => r.text().then(t => ({{status: r.status, type: r.headers.get('content-type'), body: t, \
         protocol: performance.getEntriesByType('navigation')[0].nextHopProtocol}})));"
    );
    b.execute(&js).await
}

/// A signed-in admin's browser on the Today page.
async fn signed_in(console: &Console, name: &str) -> Browser {
    console.add_user(name, "admin", PASSWORD);
    let b = console.browser().await;
    console.log_in(&b, name, PASSWORD).await;
    b.wait_for("body[data-page=today]", WAIT).await;
    b
}

// ---- the harness itself ------------------------------------------------------------------------------------------

/// Chromium loads a page of the gateway (the ops port, plain HTTP) and renders Chinese text with real glyphs (the
/// screenshot `harness-smoke` shows them; fonts-noto-cjk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_smoke_healthz_and_chinese_text() {
    let console = Console::shared();
    let b = console.browser().await;

    b.goto(&format!("http://127.0.0.1:{}/healthz", console.stack.gw.ops_port)).await;
    assert_eq!(b.text("body").await.trim(), "ok");

    b.goto("data:text/html;charset=utf-8,<p>中文 settlegate</p>").await;
    assert_eq!(b.wait_text("p", "中文", WAIT).await, "中文 settlegate");
    let png = b.screenshot("harness-smoke").await;
    assert!(std::fs::metadata(&png).unwrap().len() > 1000, "{} is (nearly) empty", png.display());
    b.close().await;
}

// ---- the login page ------------------------------------------------------------------------------------------------

/// The login page in Chinese (the default) and, after `#lang-toggle`, in English (cookie `sg_lang`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_page_in_chinese_and_english() {
    let console = Console::shared();
    let b = console.browser().await;
    b.goto(&console.url("/today")).await;
    b.wait_url("/login", WAIT).await;
    b.wait_for("#login-form", WAIT).await;
    assert_eq!(b.attr("html", "lang").await.as_deref(), Some("zh-CN"));
    assert_eq!(b.text("#login-submit").await, "登录");
    assert_eq!(b.attr("input[name=csrf]", "type").await.as_deref(), Some("hidden"));
    assert_eq!(b.attr("#login-name", "name").await.as_deref(), Some("name"));
    assert_eq!(b.attr("#login-password", "type").await.as_deref(), Some("password"));
    assert!(!b.exists("#login-error").await, "a first visit shows no error");
    b.screenshot("login-zh").await;

    b.click_and_wait_page("#lang-toggle", WAIT).await;
    b.wait_text("#login-submit", "Sign in", WAIT).await;
    assert_eq!(b.attr("html", "lang").await.as_deref(), Some("en"));
    assert_eq!(b.cookie("sg_lang").await.map(|c| c.value().to_string()).as_deref(), Some("en"));
    b.screenshot("login-en").await;

    b.click_and_wait_page("#lang-toggle", WAIT).await;
    b.wait_text("#login-submit", "登录", WAIT).await;
    b.close().await;
}

// ---- logging in -----------------------------------------------------------------------------------------------------

/// The right password opens the Today page as that account, with a session cookie that scripts cannot read, that
/// goes over HTTPS only and never with a request from another site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_opens_today_with_a_strict_session_cookie() {
    let console = Console::shared();
    let b = signed_in(&console, "case-login").await;
    assert!(b.url().await.ends_with("/today"), "{}", b.url().await);
    assert_eq!(b.text("#user-name").await, "case-login");
    assert!(b.exists("form#logout-form #logout").await);
    let csrf = b.attr("meta[name=csrf-token]", "content").await.unwrap_or_default();
    assert_eq!(csrf.len(), 43, "the page's CSRF token: {csrf:?}");

    let session = b.cookie("sg_session").await.expect("a session cookie");
    assert_eq!(session.http_only(), Some(true), "{session:?}");
    assert_eq!(session.secure(), Some(true), "{session:?}");
    assert_eq!(session.same_site(), Some(cookie::SameSite::Strict), "{session:?}");
    assert_eq!(b.execute("return document.cookie.includes('sg_session');").await, Value::Bool(false));
    assert!(b.cookie("sg_login").await.is_none(), "the login form's cookie is gone after the login");

    // every page of the shell opens in the same session
    for page in ["rules", "cards", "fund", "clearing", "reports", "audit", "today"] {
        b.goto(&console.url(&format!("/{page}"))).await;
        b.wait_for(&format!("body[data-page={page}]"), WAIT).await;
        assert_eq!(b.text("#user-name").await, "case-login", "on /{page}");
    }
    b.close().await;
}

/// A wrong password shows `bad_credentials` and sets no session cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_without_a_session() {
    let console = Console::shared();
    console.add_user("case-wrong", "admin", PASSWORD);
    let b = console.browser().await;
    console.log_in(&b, "case-wrong", "not the password").await;
    assert_eq!(login_error(&b).await, "bad_credentials");
    assert!(b.exists("#login-form").await);
    assert!(b.cookie("sg_session").await.is_none(), "cookies: {:?}", b.cookies().await);

    // an unknown name is refused alike
    console.log_in(&b, "case-nobody", PASSWORD).await;
    assert_eq!(login_error(&b).await, "bad_credentials");
    assert!(b.cookie("sg_session").await.is_none());
    b.close().await;
}

/// `max_failed_logins` wrong passwords in a row lock the account: the last of them already says `locked`, and so
/// does the right password afterwards (for `lockout_minutes`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_refuses_even_the_right_password() {
    let console = Console::shared();
    console.add_user("case-lockout", "admin", PASSWORD);
    let b = console.browser().await;
    for attempt in 1..=MAX_FAILED_LOGINS {
        console.log_in(&b, "case-lockout", &format!("wrong password {attempt}")).await;
        let want = if attempt < MAX_FAILED_LOGINS { "bad_credentials" } else { "locked" };
        assert_eq!(login_error(&b).await, want, "attempt {attempt}");
    }
    console.log_in(&b, "case-lockout", PASSWORD).await;
    assert_eq!(login_error(&b).await, "locked", "the right password while locked");
    assert!(b.cookie("sg_session").await.is_none());
    b.wait_text("#login-error", "锁定", WAIT).await;
    b.screenshot("login-locked-zh").await;
    b.close().await;
}

/// A disabled account cannot log in any more, and its open session ends at its next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_account_cannot_log_in() {
    let console = Console::shared();
    let b = signed_in(&console, "case-disabled").await;

    let token = b.cookie("sg_session").await.expect("a session cookie").value().to_string();
    let key = Console::session_key(&token);
    console.disable_user("case-disabled");
    b.refresh().await;
    b.wait_for("#login-form", WAIT).await;
    assert!(b.url().await.contains("/login"), "{}", b.url().await);
    assert_eq!(console.stack.redis.cli(&["EXISTS", &key]).trim(), "0", "the open session is gone");

    // (the dead session's cookie is still in the browser: gone, so that no cookie below can be an old one)
    b.delete_cookie("sg_session").await;
    console.log_in(&b, "case-disabled", PASSWORD).await;
    assert_eq!(login_error(&b).await, "bad_credentials");
    assert!(b.cookie("sg_session").await.is_none());
    b.close().await;
}

// ---- CSRF ---------------------------------------------------------------------------------------------------------

/// In a signed-in page, a POST to the API without `X-CSRF-Token` is refused 403 `csrf_refused`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_call_without_csrf_header_is_refused() {
    let console = Console::shared();
    let b = signed_in(&console, "case-csrf-api").await;
    let refused = post_from_page(&b, "").await;
    assert_eq!(refused["status"], 403, "{refused}");
    assert_eq!(refused["type"], "application/problem+json", "{refused}");
    let problem: Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
    assert_eq!(problem["code"], "csrf_refused", "{refused}");
    b.close().await;
}

/// The control of the test above: the same call with the page's `<meta name=csrf-token>` in `X-CSRF-Token` (as
/// console.js sends it) gets past the CSRF check to the admin API (here: 400 `invalid_request`, the body lacks
/// `contribution_id`). Chromium speaks HTTP/2 to the console (ALPN h2), where a request has no `Host` header (its
/// authority is in the URI): a same-origin check that compares `Origin` with `https://<Host>` refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_call_with_the_pages_csrf_token_is_let_through() {
    let console = Console::shared();
    let b = signed_in(&console, "case-csrf-ok").await;
    let token = ", 'x-csrf-token': document.querySelector('meta[name=csrf-token]').content";
    let answer = post_from_page(&b, token).await;
    eprintln!("with the page's token: {answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap_or(Value::Null);
    assert_ne!(body["code"], "csrf_refused", "with the page's token: {answer}");
    b.close().await;
}

/// The login form posted with a csrf field that does not match its `sg_login` cookie is refused `csrf_refused`,
/// even with the right password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_form_with_tampered_csrf_is_refused() {
    let console = Console::shared();
    console.add_user("case-csrf-login", "admin", PASSWORD);
    let b = console.browser().await;
    b.goto(&console.url("/login")).await;
    b.fill("#login-name", "case-csrf-login").await;
    b.fill("#login-password", PASSWORD).await;
    b.execute("document.querySelector('#login-form input[name=csrf]').value = 'tampered-' + Date.now();").await;
    b.click_and_wait_page("#login-submit", WAIT).await;
    assert_eq!(login_error(&b).await, "csrf_refused");
    assert!(b.cookie("sg_session").await.is_none());

    // the page shown again carries a fresh token: the form works from there
    b.fill("#login-name", "case-csrf-login").await;
    b.fill("#login-password", PASSWORD).await;
    b.click_and_wait_page("#login-submit", WAIT).await;
    b.wait_for("body[data-page=today]", WAIT).await;
    b.close().await;
}

// ---- the session's end --------------------------------------------------------------------------------------------

/// The session's Redis key lives `session_idle_minutes` and each request restarts that clock; once it has expired
/// (simulated with PEXPIRE) the next page load goes to the login page saying `expired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_session_expires_to_the_login_page() {
    let console = Console::shared();
    let b = signed_in(&console, "case-expiry").await;
    let token = b.cookie("sg_session").await.expect("a session cookie").value().to_string();
    let key = Console::session_key(&token);
    let redis = &console.stack.redis;
    let idle_s = i64::try_from(IDLE_MINUTES * 60).unwrap();

    let ttl: i64 = redis.cli(&["TTL", &key]).trim().parse().unwrap();
    assert!((idle_s - 5..=idle_s + 5).contains(&ttl), "TTL {ttl} of {key}, want {idle_s} ± 5");
    // each request restarts the idle clock
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before: i64 = redis.cli(&["PTTL", &key]).trim().parse().unwrap();
    b.refresh().await;
    b.wait_for("body[data-page=today]", WAIT).await;
    let after: i64 = redis.cli(&["PTTL", &key]).trim().parse().unwrap();
    assert!(after > before + 1000, "PTTL {before} ms before a request, {after} ms after");

    // the idle timeout, simulated: only this test's session (the Redis is shared with the other tests)
    assert_eq!(redis.cli(&["PEXPIRE", &key, "1"]).trim(), "1");
    tokio::time::sleep(Duration::from_millis(20)).await;
    b.refresh().await;
    b.wait_url("/login?expired=1", WAIT).await;
    assert_eq!(login_error(&b).await, "expired");
    b.close().await;
}

/// Logout goes back to the login page, and the old session cookie no longer opens a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_for_good() {
    let console = Console::shared();
    let b = signed_in(&console, "case-logout").await;
    let old = b.cookie("sg_session").await.expect("a session cookie");
    let key = Console::session_key(old.value());
    assert_eq!(console.stack.redis.cli(&["EXISTS", &key]).trim(), "1");

    b.click_and_wait_page("#logout", WAIT).await;
    b.wait_for("#login-form", WAIT).await;
    assert!(b.url().await.ends_with("/login"), "{}", b.url().await);
    assert!(b.cookie("sg_session").await.is_none(), "the cookie is deleted");
    assert_eq!(console.stack.redis.cli(&["EXISTS", &key]).trim(), "0", "the session is gone from Redis");

    // the old cookie, put back by hand, opens nothing
    b.add_cookie(old).await;
    b.goto(&console.url("/today")).await;
    b.wait_for("#login-form", WAIT).await;
    assert!(b.url().await.contains("/login"), "GET /today with the old cookie: {}", b.url().await);
    assert!(!b.exists("body[data-page=today]").await);
    b.close().await;
}
