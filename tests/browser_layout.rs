//! Every console page in a real browser, as a desk official meets it: drawn without a script error, readable at
//! 1280×800 and on a 1920-wide screen (no sideways scrolling), in Chinese with a CJK font and in English, and usable
//! by keyboard alone (sign in with the keyboard, the skip link, the navigation by Tab and Enter).

mod browser_support;
mod common;

use std::time::Duration;

use browser_support::console::Console;
use browser_support::*;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const PAGES: [&str; 7] = ["today", "rules", "cards", "fund", "clearing", "reports", "audit"];
/// WebDriver's key codes.
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

/// Waits until the page's script has drawn `#app` (something in it, and no "loading" left), within `WAIT`.
async fn drawn(b: &Browser) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let state = b
            .execute(
                "var a = document.getElementById('app'); \
                 return {n: a ? a.children.length : 0, text: a ? a.innerText : '', \
                 loading: !!document.querySelector('#app [aria-busy=true]')};",
            )
            .await;
        let text = state["text"].as_str().unwrap_or("");
        let loading =
            state["loading"].as_bool().unwrap_or(false) || text.contains("加载中") || text.contains("Loading");
        if state["n"].as_u64().unwrap_or(0) > 0 && !loading {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "page not drawn: {}", b.page_state().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the page reports about itself: script errors, sideways overflow, the language, the CJK font.
async fn inspect(b: &Browser) -> Value {
    b.execute(
        "return {errors: (window.SG_ERRORS || []).concat((window.SG && SG.cspViolations) || []), \
         overflow: document.documentElement.scrollWidth - window.innerWidth, \
         lang: document.documentElement.lang, h1: (document.querySelector('h1') || {}).textContent || '', \
         cjk: document.fonts.check('16px \"Noto Sans CJK SC\"')};",
    )
    .await
}

async fn press(b: &Browser, keys: &str) {
    b.client().active_element().await.unwrap().send_keys(keys).await.unwrap();
}

async fn focused(b: &Browser) -> String {
    let v = b.execute("var e = document.activeElement; return e ? (e.id || e.tagName) + '|' + (e.getAttribute('href') || '') : '';").await;
    v.as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_draws_without_errors_and_fits_1280_and_1920_in_both_languages() {
    let console = Console::shared();
    console.add_user("layout.admin", "admin", PASSWORD);
    let b = console.browser().await;
    console.log_in(&b, "layout.admin", PASSWORD).await;
    b.wait_for("body[data-page=today]", WAIT).await;
    for (lang, html_lang) in [("zh", "zh-CN"), ("en", "en")] {
        for (w, h) in [(1280, 800), (1920, 1080)] {
            b.set_window(w, h).await;
            for page in PAGES {
                b.goto(&console.url(&format!("/{page}"))).await;
                b.wait_for(&format!("body[data-page={page}]"), WAIT).await;
                drawn(&b).await;
                let got = inspect(&b).await;
                assert_eq!(got["errors"], Value::Array(vec![]), "{page} {lang} {w}: script errors");
                assert!(got["overflow"].as_i64().unwrap() <= 0, "{page} {lang} {w}: wider than the window: {got}");
                assert_eq!(got["lang"], html_lang, "{page}");
                if lang == "zh" {
                    assert_eq!(got["cjk"], true, "{page}: no CJK font ({got})");
                    assert!(
                        got["h1"].as_str().unwrap().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                        "{got}"
                    );
                } else {
                    assert!(got["h1"].as_str().unwrap().is_ascii(), "{page}: {got}");
                }
            }
        }
        if lang == "zh" {
            b.click("#lang-toggle").await;
            b.wait_for("html[lang=en]", WAIT).await;
        }
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyboard_alone_signs_in_and_moves_between_pages() {
    let console = Console::shared();
    console.add_user("keys.admin", "admin", PASSWORD);
    let b = console.browser().await;
    b.goto(&console.url("/login")).await;
    b.wait_for("#login-name", WAIT).await;
    // the name field has the focus on arrival; Tab goes to the password, Enter submits
    assert!(focused(&b).await.starts_with("login-name"), "{}", focused(&b).await);
    press(&b, "keys.admin").await;
    press(&b, TAB).await;
    assert!(focused(&b).await.starts_with("login-password"));
    press(&b, PASSWORD).await;
    press(&b, ENTER).await;
    b.wait_for("body[data-page=today]", WAIT).await;
    drawn(&b).await;
    // the first Tab reaches the skip link, Enter moves the focus to the content
    b.execute("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);").await;
    press(&b, TAB).await;
    assert!(focused(&b).await.ends_with("|#main"), "{}", focused(&b).await);
    // then the navigation: Tab to the Rules link, Enter opens it
    press(&b, TAB).await;
    assert!(focused(&b).await.starts_with("nav-today"), "{}", focused(&b).await);
    press(&b, TAB).await;
    assert!(focused(&b).await.starts_with("nav-rules"), "{}", focused(&b).await);
    press(&b, ENTER).await;
    b.wait_for("body[data-page=rules]", WAIT).await;
    // every focusable control of every page has a visible focus outline
    for page in PAGES {
        b.goto(&console.url(&format!("/{page}"))).await;
        drawn(&b).await;
        let bad = b
            .execute(
                "var bad = []; document.querySelectorAll('a[href], button, input, select, textarea').forEach(function (e) { \
                 if (e.offsetParent === null) return; e.focus(); var s = getComputedStyle(e); \
                 if (document.activeElement === e && s.outlineStyle === 'none' && s.boxShadow === 'none') \
                 bad.push(e.outerHTML.slice(0, 80)); }); return bad;",
            )
            .await;
        assert_eq!(bad, Value::Array(vec![]), "{page}: controls without a visible focus");
    }
    b.close().await;
}
