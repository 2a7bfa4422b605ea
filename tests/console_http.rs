//! The web console's auth and CSRF over HTTPS, without a browser (docs/CONSOLE.md): every page and every `/api`
//! path of the console — each admin route of `Route::ALL` under `/api` — refuses a request without a live session;
//! every non-GET refuses a missing, wrong or cross-origin CSRF token and changes nothing; the login form refuses a
//! token that does not match its cookie; failures lock the account; logout and `users disable` end the session;
//! a street account reaches only its street, as a street certificate does; what the console writes is audited
//! with role `console`.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use serde_json::{json, Value};
use settlegate::http::routes::{Role, Route};

const PASSWORD: &str = "a long enough password";

/// One console response.
struct Got {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
    fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }
    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_string()
    }
}

/// A browser stand-in: HTTPS without a client certificate, and a cookie jar.
struct Visitor {
    port: u16,
    ca: std::path::PathBuf,
    jar: BTreeMap<String, String>,
}

impl Visitor {
    fn new(stack: &Stack, port: u16) -> Visitor {
        Visitor { port, ca: stack.gw.certs.ca(), jar: BTreeMap::new() }
    }

    async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Got {
        let config = tls_client_config(None, &self.ca);
        let stream = tls_connect(self.port, config).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let mut req =
            http::Request::builder().method(method).uri(path).header("host", format!("localhost:{}", self.port));
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header("cookie", cookies.join("; "));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender.send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await.unwrap();
        let r = read_reply(resp).await.unwrap();
        let got = Got { status: r.status, headers: r.headers, body: String::from_utf8_lossy(&r.raw).into_owned() };
        for c in got.set_cookies() {
            let (pair, _) = c.split_once(';').unwrap_or((&c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
        got
    }

    async fn get(&mut self, path: &str) -> Got {
        self.send("GET", path, &[], "").await
    }

    /// The login form's hidden token (and its cookie, now in the jar).
    async fn login_token(&mut self) -> String {
        let page = self.get("/login").await;
        assert_eq!(page.status, 200);
        hidden(&page.body, "csrf")
    }

    async fn login(&mut self, name: &str, password: &str) -> Got {
        let token = self.login_token().await;
        let form = form(&[("name", name), ("password", password), ("csrf", &token)]);
        self.send("POST", "/login", &[("content-type", "application/x-www-form-urlencoded")], &form).await
    }

    /// The page's CSRF token (`<meta name="csrf-token">`).
    async fn csrf(&mut self) -> String {
        let page = self.get("/cards").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let needle = "name=\"csrf-token\" content=\"";
        let at = page.body.find(needle).unwrap() + needle.len();
        page.body[at..].split('"').next().unwrap().to_string()
    }
}

fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html.find(&needle).unwrap() + needle.len();
    html[at..].split('"').next().unwrap().to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn users(stack: &Stack, args: &[&str], password: Option<&str>) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_settlegate"))
        .arg("users")
        .args(args)
        .arg("--config")
        .arg(stack.gw.config_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(p) = password {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{p}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn add_user(stack: &Stack, name: &str, role: &str) {
    let (ok, out) = users(stack, &["add", name, "--role", role, "--password-stdin"], Some(PASSWORD));
    assert!(ok, "{out}");
}

fn start() -> (Stack, u16) {
    // every login of these tests comes from 127.0.0.1: the per-address pace is its own test's
    start_with("login_burst_per_ip = 10000\n")
}

fn start_with(console_extra: &str) -> (Stack, u16) {
    let port = free_port();
    // a loaded machine (argon2 on both cores) must not turn a slow answer into a 504
    let extra = format!("{STREETS_TOML}[redis]\nresponse_timeout_ms = 5000\n[console]\nlisten = \"127.0.0.1:{port}\"\nsession_idle_minutes = 7\n{console_extra}");
    (Stack::start(&extra), port)
}

fn audit_head(stack: &Stack) -> String {
    stack.redis.cli(&["HGET", "{sg}:audit", "head"])
}

/// The admin routes with their `{param}`s filled, as the console serves them.
fn api_routes() -> Vec<(Route, String)> {
    Route::ALL
        .iter()
        .filter(|r| r.path().starts_with("/admin/") && r.role() != Role::Ops)
        .map(|r| {
            let path = r
                .path()
                .replace("{card_id}", "C100001")
                .replace("{version}", "1")
                .replace("{program}", "medical_assistance")
                .replace("{clearing_id}", "cl_2026-11_H0001");
            (*r, format!("/api{path}"))
        })
        .collect()
}

#[tokio::test]
async fn nothing_is_served_without_a_live_session() {
    let (stack, port) = start();
    let mut v = Visitor::new(&stack, port);
    for page in ["/", "/today", "/rules", "/cards", "/fund", "/clearing", "/reports", "/audit"] {
        let r = v.get(page).await;
        assert_eq!((r.status, r.header("location")), (303, if page == "/" { "/today" } else { "/login" }), "{page}");
    }
    let mut paths: Vec<(String, String)> = api_routes().into_iter().map(|(r, p)| (r.method().to_string(), p)).collect();
    for p in ["/api/console/me", "/api/console/today", "/api/console/audit/verify", "/api/nope"] {
        paths.push(("GET".into(), p.into()));
    }
    for (method, path) in &paths {
        let r = v.send(method, path, &[("content-type", "application/json")], "{}").await;
        assert_eq!((r.status, r.code().as_str()), (401, "login_required"), "{method} {path}: {}", r.body);
    }
    // a cookie that names no session: back to the login page, told why
    v.jar.insert("sg_session".into(), "forged".into());
    let r = v.get("/today").await;
    assert_eq!((r.status, r.header("location")), (303, "/login?expired=1"));
    let login = v.get("/login?expired=1").await;
    assert!(login.body.contains("data-code=\"expired\""), "{}", login.body);
    // every answer carries the security headers; assets are served without a session
    for h in ["content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"] {
        assert!(!login.header(h).is_empty(), "{h}");
    }
    for asset in settlegate::console::assets::ALL {
        let r = v.get(&format!("/assets/{}", asset.name)).await;
        assert_eq!((r.status, r.header("content-type")), (200, asset.content_type), "{}", asset.name);
    }
    assert_eq!(v.get("/assets/../Cargo.toml").await.status, 404);
}

#[tokio::test]
async fn logins_need_the_forms_token_the_password_and_stop_after_repeated_failures() {
    let (stack, port) = start();
    add_user(&stack, "li.ming", "admin");
    let mut v = Visitor::new(&stack, port);
    // the hidden token must match the form's cookie
    let token = v.login_token().await;
    let body = form(&[("name", "li.ming"), ("password", PASSWORD), ("csrf", "tampered")]);
    let r = v.send("POST", "/login", &[("content-type", "application/x-www-form-urlencoded")], &body).await;
    assert!(r.body.contains("data-code=\"csrf_refused\""), "{}", r.body);
    v.jar.clear();
    let body = form(&[("name", "li.ming"), ("password", PASSWORD), ("csrf", &token)]);
    let r = v.send("POST", "/login", &[("content-type", "application/x-www-form-urlencoded")], &body).await;
    assert!(r.body.contains("data-code=\"csrf_refused\""), "no cookie: {}", r.body);
    assert!(!v.jar.contains_key("sg_session"));
    // an oversized form
    let big = "x".repeat(10_000);
    let r = v.send("POST", "/login", &[("content-type", "application/x-www-form-urlencoded")], &big).await;
    assert_eq!(r.status, 413);

    // a wrong password, then an unknown name: the same answer; only the known account's failure is audited
    let before = audit_head(&stack);
    let r = v.login("li.ming", "wrong password!").await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("data-code=\"bad_credentials\""), "{}", r.body);
    let r = v.login("nobody", "wrong password!").await;
    assert!(r.body.contains("data-code=\"bad_credentials\""), "{}", r.body);
    assert!(!v.jar.contains_key("sg_session"));
    let admin = stack.gw.client(ADMIN);
    let entries = admin.get("/admin/v1/audit?action=console.login_failed").await;
    let lines: Vec<Value> =
        String::from_utf8_lossy(&entries.raw).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!((lines[0]["target"].as_str(), lines[0]["role"].as_str()), (Some("li.ming"), Some("console")));
    assert_ne!(audit_head(&stack), before);

    // five failures in a row lock the account, even for the right password
    for _ in 0..4 {
        v.login("li.ming", "wrong password!").await;
    }
    let r = v.login("li.ming", PASSWORD).await;
    assert!(r.body.contains("data-code=\"locked\""), "{}", r.body);
    assert!(!v.jar.contains_key("sg_session"));
    let ttl: i64 = stack.redis.cli(&["PTTL", "{sg}:console:failures:li.ming"]).trim().parse().unwrap();
    assert!((14 * 60_000..=15 * 60_000).contains(&ttl), "{ttl}");
    // the lock expires: then the right password works and the counter is gone
    stack.redis.cli(&["PEXPIRE", "{sg}:console:failures:li.ming", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let r = v.login("li.ming", PASSWORD).await;
    assert_eq!((r.status, r.header("location")), (303, "/today"), "{}", r.body);
    let session = r.set_cookies().into_iter().find(|c| c.starts_with("sg_session=")).unwrap();
    for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=420"] {
        assert!(session.contains(part), "{session}");
    }
    assert_eq!(stack.redis.cli(&["EXISTS", "{sg}:console:failures:li.ming"]).trim(), "0");
    // the session's key has the idle timeout as its TTL, and only the token's hash is stored
    let token = v.jar["sg_session"].clone();
    assert_eq!(stack.redis.cli(&["KEYS", &format!("*{token}*")]).trim(), "");
    let keys = stack.redis.cli(&["KEYS", "{sg}:console:session:*"]);
    let ttl: i64 = stack.redis.cli(&["TTL", keys.trim()]).trim().parse().unwrap();
    assert!((7 * 60 - 5..=7 * 60).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn every_write_needs_the_sessions_csrf_token_from_the_console_itself() {
    let (stack, port) = start();
    add_user(&stack, "li.ming", "admin");
    let mut v = Visitor::new(&stack, port);
    assert_eq!(v.login("li.ming", PASSWORD).await.status, 303);
    let csrf = v.csrf().await;
    let head = audit_head(&stack);
    let origin = format!("https://localhost:{port}");
    for (route, path) in api_routes().into_iter().filter(|(r, _)| r.method() != "GET") {
        for headers in [
            vec![("content-type", "application/json")],
            vec![("content-type", "application/json"), ("x-csrf-token", "wrong")],
            vec![("content-type", "application/json"), ("x-csrf-token", &csrf), ("origin", "https://evil.example")],
        ] {
            let r = v.send(route.method(), &path, &headers, "{}").await;
            assert_eq!((r.status, r.code().as_str()), (403, "csrf_refused"), "{route:?} {headers:?}: {}", r.body);
        }
        // with the token (and its own origin) the request reaches the API: a 400 for the empty body
        let headers = [("content-type", "application/json"), ("x-csrf-token", &csrf), ("origin", &origin)];
        let r = v.send(route.method(), &path, &headers, "{}").await;
        assert_ne!(r.code(), "csrf_refused", "{route:?}");
        assert_ne!(r.status, 401, "{route:?}");
    }
    assert_eq!(audit_head(&stack), head, "a refused request appended nothing");
    // logout is a form: without its token it is refused and the session lives on
    let r = v.send("POST", "/logout", &[("content-type", "application/x-www-form-urlencoded")], "csrf=wrong").await;
    assert_eq!((r.status, r.code().as_str()), (403, "csrf_refused"));
    assert_eq!(v.get("/api/console/me").await.status, 200);
    let old = v.jar.clone();
    let body = form(&[("csrf", &csrf)]);
    let r = v.send("POST", "/logout", &[("content-type", "application/x-www-form-urlencoded")], &body).await;
    assert_eq!((r.status, r.header("location")), (303, "/login"));
    v.jar = old; // the old cookie, replayed, names nothing
    assert_eq!(v.get("/api/console/me").await.status, 401);
    assert_eq!(v.get("/today").await.header("location"), "/login?expired=1");
}

#[tokio::test]
async fn console_writes_are_the_apis_audited_as_the_console_account() {
    let (stack, port) = start();
    add_user(&stack, "li.ming", "admin");
    let mut v = Visitor::new(&stack, port);
    v.login("li.ming", PASSWORD).await;
    let csrf = v.csrf().await;
    let me = v.get("/api/console/me").await.json();
    assert_eq!((me["name"].as_str(), me["role"].as_str()), (Some("li.ming"), Some("admin")));
    let card = json!({"card_id": "C700001", "category": "dibao", "valid_from": "2020-01-01",
                      "valid_until": "2099-12-31", "status": "active", "tags": [], "street": "jinrongjie"});
    let headers = [("content-type", "application/json"), ("x-csrf-token", csrf.as_str())];
    let r = v.send("PUT", "/api/admin/v1/cardholders/C700001", &headers, &card.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // a 400 names the field, as on the API, and writes nothing
    let head = audit_head(&stack);
    let mut bad = card.clone();
    bad["valid_until"] = json!("2019-01-01");
    let r = v.send("PUT", "/api/admin/v1/cardholders/C700001", &headers, &bad.to_string()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["errors"][0]["field"].is_string(), "{}", r.body);
    assert_eq!(audit_head(&stack), head);
    // over mTLS the relief office sees the card and the entry: actor = the account, role console
    let admin = stack.gw.client(ADMIN);
    assert_eq!(admin.get("/admin/v1/cardholders/C700001").await.body["street"], "jinrongjie");
    let trail = admin.get("/admin/v1/audit").await;
    let entries: Vec<Value> =
        String::from_utf8_lossy(&trail.raw).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let actions: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap(), e["role"].as_str().unwrap()))
        .collect();
    assert!(actions.contains(&("user.add", actions[0].1, "admin")), "{actions:?}");
    assert!(actions.contains(&("console.login", "li.ming", "console")), "{actions:?}");
    assert!(actions.contains(&("cardholder.put", "li.ming", "console")), "{actions:?}");
    let verify = v.get("/api/console/audit/verify").await.json();
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["entries"].as_u64(), Some(entries.len() as u64));
}

#[tokio::test]
async fn a_street_account_sees_its_street_only_and_a_disabled_account_is_out_at_once() {
    let (stack, port) = start();
    add_user(&stack, "admin", "admin");
    add_user(&stack, "wang", "street:jinrongjie");
    let admin = stack.gw.client(ADMIN);
    for (id, street) in [("C800001", "jinrongjie"), ("C800002", "yuetan")] {
        let mut c = cardholder(id, "dibao");
        c["street"] = json!(street);
        assert_eq!(admin.put(&format!("/admin/v1/cardholders/{id}"), &c).await.status, 200);
    }
    let mut v = Visitor::new(&stack, port);
    let r = v.login("wang", PASSWORD).await;
    assert_eq!((r.status, r.header("location")), (303, "/cards"));
    let cards = v.get("/cards").await;
    assert!(cards.body.contains("id=\"nav-cards\"") && cards.body.contains("id=\"nav-reports\""));
    for page in ["today", "rules", "fund", "clearing", "audit"] {
        assert!(!cards.body.contains(&format!("id=\"nav-{page}\"")), "{page}");
        assert_eq!(v.get(&format!("/{page}")).await.status, 403, "{page}");
    }
    assert_eq!(v.get("/reports").await.status, 200);
    assert_eq!(v.get("/api/admin/v1/cardholders/C800001").await.status, 200);
    let other = v.get("/api/admin/v1/cardholders/C800002").await;
    assert_eq!((other.status, other.code().as_str()), (404, "card_not_found"));
    for path in ["/api/admin/v1/pools", "/api/admin/v1/audit", "/api/admin/v1/rulesets"] {
        let r = v.get(path).await;
        assert_eq!((r.status, r.code().as_str()), (403, "forbidden"), "{path}");
    }
    for path in ["/api/console/today", "/api/console/audit/verify"] {
        assert_eq!(v.get(path).await.status, 403, "{path}");
    }
    // disabled: the open session ends at its next request, and no new one starts
    let (ok, out) = users(&stack, &["disable", "wang"], None);
    assert!(ok, "{out}");
    assert_eq!(v.get("/api/console/me").await.status, 401);
    let r = v.login("wang", PASSWORD).await;
    assert!(r.body.contains("data-code=\"bad_credentials\""), "{}", r.body);
    let (ok, out) = users(&stack, &["list"], None);
    assert!(ok && out.contains("wang\tstreet\tjinrongjie\tdisabled"), "{out}");
    assert!(!out.contains("argon2"), "{out}");
    // an existing name is not silently replaced
    let (ok, out) = users(&stack, &["add", "admin", "--role", "admin", "--password-stdin"], Some(PASSWORD));
    assert!(!ok && out.contains("--replace"), "{out}");
}

#[tokio::test]
async fn with_redis_down_the_login_page_says_so_and_nothing_is_served() {
    let (mut stack, port) = start();
    add_user(&stack, "li.ming", "admin");
    let mut v = Visitor::new(&stack, port);
    v.login("li.ming", PASSWORD).await;
    stack.redis.stop();
    let r = v.login("li.ming", PASSWORD).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("data-code=\"unavailable\""), "{}", r.body);
    let api = v.get("/api/console/me").await;
    assert_eq!((api.status, api.code().as_str()), (503, "unavailable"), "{}", api.body);
}

#[tokio::test]
async fn one_address_gets_a_burst_of_login_attempts_then_a_pace() {
    let (stack, port) = start_with("login_burst_per_ip = 3\nlogins_per_second_per_ip = 1\n");
    add_user(&stack, "li.ming", "admin");
    let mut v = Visitor::new(&stack, port);
    // three attempts at once (refused for their token, which costs no password check, so they take no time)
    let form_type = [("content-type", "application/x-www-form-urlencoded")];
    for _ in 0..3 {
        let r = v.send("POST", "/login", &form_type, "name=li.ming&password=x&csrf=none").await;
        assert!(r.body.contains("data-code=\"csrf_refused\""), "{}", r.body);
    }
    // the 4th at once is paced: refused before any password is checked, and no attempt of the account counted
    let r = v.login("li.ming", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("data-code=\"rate_limited\""), "{}", r.body);
    assert_eq!(stack.redis.cli(&["EXISTS", "{sg}:console:failures:li.ming"]).trim(), "0");
    // a second later one more attempt is let through
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(v.login("li.ming", PASSWORD).await.status, 303);
}
