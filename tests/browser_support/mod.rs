//! Real-browser test harness: Debian's headless Chromium (`/usr/bin/chromium`), driven over WebDriver by
//! `/usr/bin/chromedriver` on a free port of 127.0.0.1, from Rust through fantoccini (plain HTTP, no TLS stack).
//! Included by a test file with `mod common; mod browser_support;` (it takes free ports from `common`).
//!
//! - [`Chromedriver`]: the driver process, stopped on drop (with every browser it still runs).
//! - [`Browser`]: one Chromium session (a fresh profile: no cookies), closed on drop, with helpers that panic
//!   with the page's URL and a part of its HTML when something is not there in time.
//! - [`shared`]: one value (a gateway, a driver) for the tests of a binary that run at the same time.
//! - [`console`]: the web console under test (a gateway with `[console]`, its accounts, logging in).
//!
//! A missing browser is a failure, never a skip: `.ci/run` installs `chromium`, `chromium-driver` and
//! `fonts-noto-cjk`; nothing downloads a browser at test time. Chromium reaches nothing but loopback addresses
//! (every other address goes to a proxy that is not there).
#![allow(dead_code)] // each test binary uses a part of the harness

pub mod console;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::common::free_port;

/// The WebDriver server of Debian's `chromium-driver`.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's `chromium` launcher.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// What to do when either is missing.
const INSTALL_HINT: &str = "run .ci/run or apt-get install chromium chromium-driver fonts-noto-cjk";
/// How long a helper waits when the test names no time of its own.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running chromedriver on a free port of 127.0.0.1, stopped (with its browsers) on drop.
pub struct Chromedriver {
    /// The process; `None` once stopped.
    child: Option<Child>,
    /// Where it listens (WebDriver over plain HTTP).
    pub port: u16,
    /// Its log (stdout and stderr), shown when a test fails.
    pub log: PathBuf,
    /// Holds the log; removed on drop.
    _dir: tempfile::TempDir,
}

impl Chromedriver {
    /// Starts `/usr/bin/chromedriver --port=<free port>` and waits until `/status` says it is ready. Panics when
    /// chromedriver or Chromium is not installed.
    pub fn start() -> Chromedriver {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(Path::new(bin).exists(), "{bin} is missing: {INSTALL_HINT}");
        }
        for _attempt in 0..5 {
            if let Some(driver) = Chromedriver::try_start() {
                return driver;
            }
        }
        panic!("chromedriver did not start in 5 attempts");
    }

    /// One attempt on a fresh port; `None` when the process exited first (the port was taken meanwhile).
    fn try_start() -> Option<Chromedriver> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("chromedriver.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{CHROMEDRIVER} did not run ({e}): {INSTALL_HINT}"));
        let mut driver = Chromedriver { child: Some(child), port, log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = local_http(port, "GET", "/status");
            if status == 200 && body.contains("\"ready\":true") {
                return Some(driver);
            }
            if driver.child.as_mut().unwrap().try_wait().ok().flatten().is_some() {
                eprintln!("chromedriver exited: {}", driver.log_text());
                return None;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer /status: {}", driver.log_text());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The WebDriver URL a client connects to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // `/shutdown` quits the browsers it still runs; a kill would leave them behind.
        local_http(self.port, "GET", "/shutdown");
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The `goog:chromeOptions` arguments of every session.
const CHROMIUM_ARGS: [&str; 13] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
    "--lang=zh-CN",
    "--ignore-certificate-errors",
    // no traffic but to this machine: no background services, and any non-loopback address goes to a closed port
    // (loopback addresses bypass a proxy)
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--proxy-server=http://127.0.0.1:9",
];

/// One headless Chromium session of a [`Chromedriver`]: a fresh profile (no cookies), closed on drop.
pub struct Browser {
    /// The WebDriver client; `None` once closed.
    client: Option<Client>,
    /// The session's id, for the blocking close on drop (the client's own close needs a running runtime).
    session: String,
    /// The driver's port, for that close.
    driver_port: u16,
}

impl Browser {
    /// Opens a session: Chromium headless, `zh-CN`, 1280×800, trusting any certificate (the console serves the
    /// gateway's dev certificate, issued by a test CA).
    pub async fn start(driver: &Chromedriver) -> Browser {
        let options = json!({
            "binary": CHROMIUM,
            "args": CHROMIUM_ARGS,
            "prefs": { "intl.accept_languages": "zh-CN,zh" },
        });
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("acceptInsecureCerts".into(), json!(true));
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("no Chromium session ({e:?}); chromedriver's log: {}", driver.log_text()));
        let session = client.session_id().await.unwrap().expect("a WebDriver session id");
        Browser { client: Some(client), session, driver_port: driver.port }
    }

    /// The fantoccini client, for what the helpers below do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is closed")
    }

    /// Loads `url` and waits for the page's load event (following redirects).
    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The address of the page shown now.
    pub async fn url(&self) -> String {
        self.client().current_url().await.unwrap().to_string()
    }

    /// Reloads the page shown.
    pub async fn refresh(&self) {
        self.client().refresh().await.unwrap();
    }

    /// The page's HTML as it is now.
    pub async fn html(&self) -> String {
        self.client().source().await.unwrap_or_default()
    }

    /// The page's URL and the first part of its HTML, for a failure's message.
    pub async fn page_state(&self) -> String {
        let html = self.html().await;
        let snippet: String = html.chars().take(3000).collect();
        format!("\n  page: {}\n  html: {snippet}", self.url().await)
    }

    /// The element `css` selects, or `None` (no waiting).
    pub async fn find(&self, css: &str) -> Option<Element> {
        self.client().find(Locator::Css(css)).await.ok()
    }

    /// Whether `css` selects an element now (displayed or not).
    pub async fn exists(&self, css: &str) -> bool {
        self.find(css).await.is_some()
    }

    /// Waits until `css` selects a displayed element and returns it.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(el) = self.find(css).await {
                if el.is_displayed().await.unwrap_or(false) {
                    return el;
                }
            }
            if Instant::now() >= deadline {
                let state = self.page_state().await;
                panic!("no displayed `{css}` within {timeout:?}{state}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `css` selects a displayed element whose text contains `substring`; returns the text.
    pub async fn wait_text(&self, css: &str, substring: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let el = self.wait_for(css, deadline.saturating_duration_since(Instant::now())).await;
            let text = el.text().await.unwrap_or_default();
            if text.contains(substring) {
                return text;
            }
            if Instant::now() >= deadline {
                let state = self.page_state().await;
                panic!("`{css}` shows {text:?}, not {substring:?}, after {timeout:?}{state}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's URL contains `substring`; returns the URL.
    pub async fn wait_url(&self, substring: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.url().await;
            if url.contains(substring) {
                return url;
            }
            if Instant::now() >= deadline {
                let state = self.page_state().await;
                panic!("the URL does not contain {substring:?} after {timeout:?}{state}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the displayed field `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.wait_for(css, WAIT).await;
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// Clicks the displayed element `css`.
    pub async fn click(&self, css: &str) {
        let el = self.wait_for(css, WAIT).await;
        el.click().await.unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    }

    /// Clicks `css` (a link, a submit button, a control that reloads) and waits until the next document has loaded:
    /// what the helpers find afterwards is on the new page, never a left-over of this one.
    pub async fn click_and_wait_page(&self, css: &str, timeout: Duration) {
        self.execute("window.__sgOldPage = true;").await;
        self.click(css).await;
        let deadline = Instant::now() + timeout;
        let new_page = "return window.__sgOldPage === undefined && document.readyState === 'complete';";
        // while the navigation runs a script may fail; that is "not yet"
        while self.client().execute(new_page, vec![]).await.ok() != Some(Value::Bool(true)) {
            if Instant::now() >= deadline {
                let state = self.page_state().await;
                panic!("no new page within {timeout:?} of clicking `{css}`{state}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the displayed element `css`.
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css, WAIT).await.text().await.unwrap()
    }

    /// An attribute of the element `css` (displayed or not, e.g. a hidden input); panics when nothing matches.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        match self.find(css).await {
            Some(el) => el.attr(name).await.unwrap(),
            None => panic!("no `{css}`{}", self.page_state().await),
        }
    }

    /// Resizes the window (the viewport of the next screenshots).
    pub async fn set_window(&self, width: u32, height: u32) {
        self.client().set_window_size(width, height).await.unwrap();
    }

    /// Saves a PNG of the viewport as `target/console-screenshots/<name>.png` (under `CARGO_TARGET_DIR` when set)
    /// and, when `SG_SCREENSHOTS_DIR` is set, as `$SG_SCREENSHOTS_DIR/<name>.png`; returns the first path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client().screenshot().await.unwrap();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        let mut dirs = vec![target.join("console-screenshots")];
        dirs.extend(std::env::var_os("SG_SCREENSHOTS_DIR").map(PathBuf::from));
        for dir in &dirs {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        }
        let path = dirs[0].join(format!("{name}.png"));
        eprintln!("screenshot {name}: {}", path.display());
        path
    }

    /// Every cookie of the page's site, HttpOnly ones included (WebDriver sees them; scripts do not).
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        self.client().get_all_cookies().await.unwrap()
    }

    /// The cookie `name` of the page's site, or `None`.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies().await.into_iter().find(|c| c.name() == name)
    }

    /// Sets a cookie on the page's site (e.g. one kept from before a logout).
    pub async fn add_cookie(&self, cookie: Cookie<'static>) {
        self.client().add_cookie(cookie).await.unwrap();
    }

    pub async fn delete_cookie(&self, name: &str) {
        self.client().delete_cookie(name).await.unwrap();
    }

    /// Runs `js` in the page as a function body and returns what it returns; a returned promise is awaited.
    pub async fn execute(&self, js: &str) -> Value {
        self.client().execute(js, vec![]).await.unwrap_or_else(|e| panic!("script failed ({e}): {js}"))
    }

    /// Ends the session (and its Chromium).
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            client.close().await.unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // a test that panicked never reached `close`: end the session here, without the (ending) runtime
        if self.client.take().is_some() {
            local_http(self.driver_port, "DELETE", &format!("/session/{}", self.session));
        }
    }
}

/// The value `slot` holds while any test still uses it, else a new one from `make`: the tests of one binary that
/// run at the same time share it, and the last one to finish stops it (dropped with its last `Arc`; a static
/// would never be dropped, leaving its processes behind).
pub fn shared<T>(slot: &Mutex<Weak<T>>, make: impl FnOnce() -> T) -> Arc<T> {
    let mut weak = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(value) = weak.upgrade() {
        return value;
    }
    let value = Arc::new(make());
    *weak = Arc::downgrade(&value);
    value
}

/// One request to 127.0.0.1:`port` with std only (for start-up polling and drops): status (0 when nothing
/// answered) and body. Reads `Content-Length` bytes of body: chromedriver keeps the connection open.
pub fn local_http(port: u16, method: &str, path: &str) -> (u16, String) {
    let nothing = (0, String::new());
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return nothing };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return nothing;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let head_end = got.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length =
                head.lines().find_map(|l| l.strip_prefix("content-length:")).map(|v| v.trim().parse::<usize>());
            if let Some(Ok(length)) = length {
                if got.len() >= end + 4 + length {
                    break;
                }
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let out = String::from_utf8_lossy(&got);
    let status = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    (status, body)
}

// ---- console-fe1: helpers of the money pages' tests (tests/browser_pages_money.rs) -------------------------------

impl Browser {
    /// Resizes the window so that the page's viewport (what a screenshot shows) is `width`×`height` CSS pixels:
    /// the window is larger than its viewport by the browser's own frame.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.set_window(width, height).await;
        let inner = self.execute("return [window.innerWidth, window.innerHeight];").await;
        let dim = |i: usize| u32::try_from(inner[i].as_u64().unwrap_or(0)).unwrap_or(0);
        let (w, h) = (dim(0), dim(1));
        if (w, h) != (width, height) && w > 0 && h > 0 {
            self.set_window(width + width.saturating_sub(w), height + height.saturating_sub(h)).await;
        }
    }
}

// ---- console-fe2 ----
// Helpers of tests/browser_pages_office.rs (branch console-fe2); `set_viewport` is console-fe1's, above.

impl Browser {
    /// Puts the file at `path` into the displayed `<input type="file">` `css` (WebDriver types the path into it).
    pub async fn upload(&self, css: &str, path: &Path) {
        let el = self.wait_for(css, WAIT).await;
        el.send_keys(&path.display().to_string()).await.unwrap_or_else(|e| panic!("a file into `{css}`: {e}"));
    }

    /// Like [`Browser::screenshot`], of the whole page at the window's width: the window is made as tall as the
    /// page (at least as tall as it was, at most 6000 px) for the shot, then set back.
    pub async fn screenshot_full(&self, name: &str) -> PathBuf {
        let size = self
            .execute(
                "return [window.outerWidth, window.outerHeight, window.innerHeight, \
                 document.documentElement.scrollHeight]",
            )
            .await;
        let n = |i: usize| size[i].as_u64().and_then(|v| u32::try_from(v).ok()).unwrap_or(800);
        let (width, height, inner, page) = (n(0), n(1), n(2), n(3));
        let tall = (page + height.saturating_sub(inner)).clamp(height, 6000);
        if tall > height {
            self.set_window(width, tall).await;
            tokio::time::sleep(Duration::from_millis(300)).await; // charts and layout follow the resize
        }
        let path = self.screenshot(name).await;
        if tall > height {
            self.set_window(width, height).await;
        }
        path
    }
}
