//! The console's authentication in a real browser: Debian's headless Chromium over WebDriver
//! (tests/browser_support), the real `settlegate serve` binary and a private Redis (tests/common).

mod browser_support;
mod common;

use browser_support::*;
use common::*;

// ---- the harness itself ------------------------------------------------------------------------------------------

/// Chromium loads a page of the gateway (the ops port, plain HTTP) and renders Chinese text with real glyphs (the
/// screenshot `harness-smoke` shows them; fonts-noto-cjk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_smoke_healthz_and_chinese_text() {
    let stack = Stack::start("");
    let driver = Chromedriver::start();
    let browser = Browser::start(&driver).await;

    browser.goto(&format!("http://127.0.0.1:{}/healthz", stack.gw.ops_port)).await;
    assert_eq!(browser.text("body").await.trim(), "ok");

    browser.goto("data:text/html;charset=utf-8,<p>中文 settlegate</p>").await;
    assert_eq!(browser.wait_text("p", "中文", WAIT).await, "中文 settlegate");
    let png = browser.screenshot("harness-smoke").await;
    assert!(std::fs::metadata(&png).unwrap().len() > 1000, "{} is (nearly) empty", png.display());
    browser.close().await;
}
