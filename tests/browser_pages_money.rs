//! The console's money pages in a real browser — Today, Rules, Charity fund — over Debian's headless Chromium
//! (tests/browser_support), the real `settlegate serve` binary with `[console]` and a private Redis (tests/common).
//! Each test starts its own gateway and makes a working day through the real mTLS API first: two rulesets, cards
//! of two streets, dozens of settlements at four hospitals, a reversal and a donation; then it signs in as a
//! console account of its own and checks what the pages show against what the API answers.
//!
//! Screenshots (target/console-screenshots/, and $SG_SCREENSHOTS_DIR when set; 1280×800 unless named otherwise):
//! `today-zh`, `today-en`, `today-1920-zh` (1920×1080), `fund-zh`, `fund-en`, `fund-overdraw-zh`, `rules-zh`,
//! `rules-en` (the comparison), `rules-draft-error-zh`, `rules-preview-zh`, `rules-preview-en`,
//! `rules-publish-confirm-zh`; `rules-preview-pools-zh` (the preview's lower half).

mod browser_support;
mod common;

use std::time::{Duration, Instant};

use browser_support::console::Console;
use browser_support::*;
use common::*;
use serde_json::{json, Value};

/// A password `users add` accepts.
const PASSWORD: &str = "correct horse battery staple";

/// A console of the test's own (its Redis holds the test's day), with the admin account `name` signed in in a
/// fresh Chromium whose viewport is 1280×800, on the Today page.
async fn signed_in(name: &str) -> (Console, Browser) {
    let c = Console::start();
    c.add_user(name, "admin", PASSWORD);
    let b = c.browser().await;
    b.set_viewport(1280, 800).await;
    (c, b)
}

/// Signs `name` in and waits for the Today page to be drawn.
async fn log_in(c: &Console, b: &Browser, name: &str) {
    c.log_in(b, name, PASSWORD).await;
    b.wait_for("body[data-page=today] #app[data-loaded]", WAIT).await;
}

// ---- a working day through the mTLS API -------------------------------------------------------------------------

/// Version 1 (since 2020) and version 2 (since 1 January): a higher dibao ratio, a lower deductible and a cap for
/// low-income cards, a larger charity pool, and a program of its own (temporary relief for inpatients).
fn rulesets() -> [Value; 2] {
    let v1 = json!({"effective_from": "2020-01-01", "programs": [
        {"id": "medical_assistance", "name": "医疗救助", "covers": ["in_scope"], "categories": {
            "dibao": {"ratio_bp": 9000, "annual_cap_fen": 3_000_000},
            "tekun": {"ratio_bp": 10000, "annual_cap_fen": 15_000_000},
            "low_income": {"ratio_bp": 7000, "deductible_fen": 100_000, "annual_cap_fen": 600_000}}},
        {"id": "charity", "name": "慈善救助", "covers": ["in_scope", "self_pay"], "annual_pool_fen": 600_000,
         "categories": {"dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50_000},
                        "tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100_000}}}]});
    let v2 = json!({"effective_from": format!("{}-01-01", this_year()), "programs": [
        {"id": "medical_assistance", "name": "医疗救助", "covers": ["in_scope"], "categories": {
            "dibao": {"ratio_bp": 9500, "annual_cap_fen": 3_000_000},
            "tekun": {"ratio_bp": 10000, "annual_cap_fen": 15_000_000},
            "low_income": {"ratio_bp": 7000, "deductible_fen": 80_000, "annual_cap_fen": 200_000}}},
        {"id": "charity", "name": "慈善救助", "covers": ["in_scope", "self_pay"], "annual_pool_fen": 800_000,
         "categories": {"dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50_000},
                        "tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100_000}}},
        {"id": "temporary_relief", "name": "临时救助", "covers": ["self_pay"], "visit_types": ["inpatient"],
         "annual_pool_fen": 280_000,
         "categories": {"dibao": {"ratio_bp": 5000, "per_visit_cap_fen": 30_000},
                        "tekun": {"ratio_bp": 6000, "per_visit_cap_fen": 50_000}}}]});
    [v1, v2]
}

/// Cards of two streets: (card, category, street, community).
const CARDS: [(&str, &str, &str, &str); 14] = [
    ("JR0001", "dibao", "jinrongjie", "fengsheng"),
    ("JR0002", "dibao", "jinrongjie", "erlonglu"),
    ("JR0003", "tekun", "jinrongjie", "fengsheng"),
    ("JR0004", "low_income", "jinrongjie", "erlonglu"),
    ("JR0005", "dibao", "jinrongjie", "fengsheng"),
    ("JR0006", "low_income", "jinrongjie", "fengsheng"),
    ("JR0007", "tekun", "jinrongjie", "erlonglu"),
    ("YT0001", "dibao", "yuetan", "baiyunguan"),
    ("YT0002", "tekun", "yuetan", "nanlishilu"),
    ("YT0003", "low_income", "yuetan", "baiyunguan"),
    ("YT0004", "dibao", "yuetan", "nanlishilu"),
    ("YT0005", "dibao", "yuetan", "baiyunguan"),
    ("YT0006", "low_income", "yuetan", "nanlishilu"),
    ("YT0007", "tekun", "yuetan", "baiyunguan"),
];

/// Settlements made by [`working_day`].
const SETTLEMENTS: usize = 36;
/// The one reversed, by index.
const REVERSED: usize = 5;
/// The donation recorded over the API before the pages are opened.
const FIRST_DONATION_FEN: i64 = 200_000;

/// What the day left behind.
struct Day {
    /// The settle answers, in order.
    settled: Vec<Value>,
}

impl Day {
    /// Net relief today: every settlement's, less the reversed one's.
    fn net_relief_fen(&self) -> i64 {
        let relief = |s: &Value| s["relief_fen"].as_i64().unwrap();
        self.settled.iter().map(relief).sum::<i64>() - relief(&self.settled[REVERSED])
    }
}

/// A bill of settlement `i`: outpatient visits of a few hundred yuan, one in four an inpatient stay of several
/// thousand, basic insurance paying a part of the in-scope cost.
fn bill(i: usize, hospital: &str, card: &str) -> Value {
    let n = i64::try_from(i).unwrap();
    let inpatient = i % 6 == 0 || (i % 6 == 3 && i % 4 == 1);
    let (in_scope, self_pay) = if inpatient {
        (800_000 + (n * 104_729) % 1_200_000, 50_000 + (n * 7_777) % 100_000)
    } else {
        (15_000 + (n * 7_919) % 60_000, 2_000 + (n * 3_301) % 10_000)
    };
    let (basic, critical) = if inpatient { (in_scope * 6 / 10, in_scope / 20) } else { (in_scope / 2, 0) };
    json!({
        "hospital_settlement_id": format!("{hospital}-{}-{:06}", today().format("%Y%m%d"), i + 1),
        "card_id": card,
        "visit": visit_today(if inpatient { "inpatient" } else { "outpatient" }),
        "amounts": {"total_fen": in_scope + self_pay, "in_scope_fen": in_scope, "pre_self_pay_fen": 0,
                    "over_limit_fen": 0, "self_pay_fen": self_pay},
        "insurance": {"basic_fen": basic, "critical_illness_fen": critical, "other_fen": 0},
        "operator": {"id": format!("cashier-{:02}", i % 5 + 1)}
    })
}

/// Rulesets, cards, [`SETTLEMENTS`] settlements at four hospitals, one reversal and one donation.
async fn working_day(gw: &Gateway) -> Day {
    let admin = gw.client(ADMIN);
    let cards: Vec<Value> = CARDS
        .iter()
        .map(|(id, category, street, community)| {
            let mut c = cardholder(id, category);
            c["street"] = json!(street);
            c["community"] = json!(community);
            c
        })
        .collect();
    seed(&admin, &rulesets(), &cards).await;
    let hospitals: Vec<Client> = HOSPITALS.iter().map(|h| gw.client(h)).collect();
    let mut settled = Vec::new();
    for i in 0..SETTLEMENTS {
        let h = i % HOSPITALS.len();
        let card = CARDS[(i * 5) % CARDS.len()].0;
        let r = hospitals[h].post("/v1/settlements", &bill(i, HOSPITALS[h], card)).await;
        assert_eq!(r.status, 201, "settlement {i}: {}", r.body);
        settled.push(r.body);
    }
    let gone = &settled[REVERSED];
    let rev = json!({"card_id": gone["card_id"], "hospital_settlement_id": gone["hospital_settlement_id"],
                     "reason": "重复录入"});
    let r = hospitals[REVERSED % HOSPITALS.len()].post("/v1/reversals", &rev).await;
    assert_eq!(r.status, 200, "reversal: {}", r.body);
    let donation = json!({"contribution_id": "RC-0001", "year": this_year(), "donor": "区慈善总会",
                          "amount_fen": FIRST_DONATION_FEN, "kind": "donation", "note": "年初拨付"});
    let r = admin.post("/admin/v1/pools/charity/contributions", &donation).await;
    assert_eq!(r.status, 201, "donation: {}", r.body);
    Day { settled }
}

/// A pool's row of `GET /admin/v1/pools` (this year).
async fn pool_row(gw: &Gateway, program: &str) -> Value {
    let r = gw.client(ADMIN).get("/admin/v1/pools").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["pools"].as_array().unwrap().iter().find(|p| p["program"] == program).cloned().expect("the pool")
}

/// `GET /admin/v1/audit?action=` over mTLS: the entries, oldest first.
async fn audit(gw: &Gateway, action: &str) -> Vec<Value> {
    let r = gw.client(ADMIN).get(&format!("/admin/v1/audit?action={action}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    String::from_utf8_lossy(&r.raw)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Fen as the pages show yuan: `1234567` → `"12,345.67"`.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    let whole = (fen / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", fen % 100)
}

// ---- page helpers ------------------------------------------------------------------------------------------------

/// The value of a CSS selector as a JS string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Sets a field's value from script (date inputs, selects) and fires `input` and `change`, as a user's edit does.
async fn set_value(b: &Browser, css: &str, value: &str) {
    b.wait_for(css, WAIT).await;
    let done = b
        .execute(&format!(
            "const n = document.querySelector({}); n.value = {}; n.dispatchEvent(new Event('input', {{bubbles: true}})); \
             n.dispatchEvent(new Event('change', {{bubbles: true}})); return n.value;",
            js(css),
            js(value)
        ))
        .await;
    assert_eq!(done, json!(value), "{css} did not take {value:?}");
}

/// Scrolls `css` to the top of the viewport (for a screenshot of that part of a long page).
async fn scroll_to(b: &Browser, css: &str) {
    b.wait_for(css, WAIT).await;
    b.execute(&format!(
        "document.querySelector({}).scrollIntoView({{block: 'start'}}); window.scrollBy(0, -8);",
        js(css)
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
}

/// Waits until `script` (a function body) returns true.
async fn wait_js(b: &Browser, script: &str, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        if b.client().execute(script, vec![]).await.ok() == Some(Value::Bool(true)) {
            return;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}{}", b.page_state().await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `css` selects a displayed element; on a timeout the failure shows what the page says (the text of
/// `#app` and any dialog), not its first lines of HTML.
async fn expect(b: &Browser, css: &str, timeout: Duration) -> fantoccini::elements::Element {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(el) = b.find(css).await {
            if el.is_displayed().await.unwrap_or(false) {
                return el;
            }
        }
        if Instant::now() >= deadline {
            let said = b
                .execute(
                    "return [...document.querySelectorAll('#app, dialog[open]')].map(n => n.innerText).join('\\n---\\n');",
                )
                .await;
            let said: String = said.as_str().unwrap_or_default().chars().take(6000).collect();
            panic!("no displayed `{css}` within {timeout:?} on {}; the page says:\n{said}", b.url().await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens a console page and waits until its script has drawn it from the API.
async fn open(b: &Browser, c: &Console, page: &str) {
    b.goto(&c.url(&format!("/{page}"))).await;
    b.wait_for(&format!("body[data-page={page}] #app[data-loaded]"), WAIT).await;
}

/// Switches the language with `#lang-toggle` (the page reloads) and waits for the page to be drawn again.
async fn toggle_language(b: &Browser, page: &str, lang: &str) {
    b.execute("window.__sgOld = true;").await;
    b.click("#lang-toggle").await;
    let html_lang = if lang == "zh" { "zh-CN" } else { "en" };
    wait_js(
        b,
        &format!(
            "return window.__sgOld === undefined && document.documentElement.lang === {} && \
             !!document.querySelector('body[data-page={page}] #app[data-loaded]');",
            js(html_lang)
        ),
        WAIT,
        "the page in the other language",
    )
    .await;
}

/// What every page must hold to: no refusal by the Content-Security-Policy, both languages of every string, every
/// field labelled, nothing wider than the window.
async fn assert_clean(b: &Browser, what: &str) {
    let v = b
        .execute(
            "const unlabelled = [...document.querySelectorAll('#app input, #app select, #app textarea, dialog input')]
               .filter(n => n.type !== 'hidden' && n.labels.length === 0).map(n => n.id || n.outerHTML);
             const tables = [...document.querySelectorAll('#app table:not(.u-legend)')].filter(t => !t.querySelector('th[scope]')).length;
             return {csp: SG.cspViolations, strings: SG.stringProblems, unlabelled: unlabelled, tables_without_th: tables,
                     overflow: document.documentElement.scrollWidth - window.innerWidth};",
        )
        .await;
    assert_eq!(v["csp"], json!([]), "{what}: CSP violations");
    assert_eq!(v["strings"], json!([]), "{what}: strings in one language only");
    assert_eq!(v["unlabelled"], json!([]), "{what}: fields without a <label for>");
    assert_eq!(v["tables_without_th"], json!(0), "{what}: tables without <th scope>");
    assert!(v["overflow"].as_i64().unwrap() <= 0, "{what}: the page is wider than the window by {}px", v["overflow"]);
}

/// The current value of the field `css` (what the user sees, not the attribute it was made with).
async fn value_of(b: &Browser, css: &str) -> String {
    b.wait_for(css, WAIT).await;
    let v = b.execute(&format!("return document.querySelector({}).value;", js(css))).await;
    v.as_str().unwrap_or_default().to_string()
}

/// The text of `css`, trimmed.
/// (Read by script: a table the page redraws meanwhile leaves no stale element behind.)
async fn text_of(b: &Browser, css: &str) -> String {
    b.wait_for(css, WAIT).await;
    let v = b.execute(&format!("const n = document.querySelector({}); return n ? n.innerText : null;", js(css))).await;
    v.as_str().unwrap_or_else(|| panic!("`{css}` is gone")).trim().to_string()
}

// ---- Today and the charity fund ------------------------------------------------------------------------------------

/// The Today page shows the day made over the API (today's count and relief, a pool's budget exactly as the API
/// answers it, the last hour's chart, the reversal, the instance up); a donation recorded on the Fund page raises
/// that pool's budget on the Fund page and on the Today page by exactly its amount, an overdrawing withdrawal is
/// refused with its reason on the page, and the audit trail names the console account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn today_shows_the_day_and_a_donation_on_the_fund_page_raises_the_budget() {
    let (c, b) = signed_in("mz-wang").await;
    let gw = &c.stack.gw;
    let day = working_day(gw).await;
    log_in(&c, &b, "mz-wang").await;

    // the latencies reach the page with the gateway's next flush (every 5 s)
    wait_js(
        &b,
        &format!(
            "return fetch('/api/console/today').then(r => r.json()).then(t => t.last_hour.settled >= {SETTLEMENTS} && \
             t.instances.some(i => i.up));"
        ),
        Duration::from_secs(20),
        "the last hour's settle requests",
    )
    .await;
    b.click("#today-refresh").await;
    b.wait_text("#today-hour-summary", &SETTLEMENTS.to_string(), WAIT).await;

    assert_eq!(text_of(&b, "#today-settled [data-value]").await, SETTLEMENTS.to_string(), "today's settlements");
    assert!(text_of(&b, "#today-settled .note").await.contains('1'), "one reversal");
    assert_eq!(text_of(&b, "#today-relief [data-value]").await, yuan(day.net_relief_fen()), "today's net relief");
    assert_eq!(text_of(&b, "#month-settled [data-value]").await, SETTLEMENTS.to_string());
    let charity = pool_row(gw, "charity").await;
    let budget0 = charity["budget_fen"].as_i64().unwrap();
    assert_eq!(budget0, 800_000 + FIRST_DONATION_FEN);
    let budget_cell = "#pools-table tr[data-program=charity] td[data-col=budget_fen]";
    assert_eq!(text_of(&b, budget_cell).await, yuan(budget0), "the pool's budget as the API answers it");
    assert_eq!(
        text_of(&b, "#pools-table tr[data-program=charity] td[data-col=paid_fen]").await,
        yuan(charity["paid_fen"].as_i64().unwrap())
    );
    let relief = pool_row(gw, "temporary_relief").await;
    let level = b.attr("#pools-table tr[data-program=temporary_relief]", "data-level").await.unwrap();
    let permille = relief["paid_fen"].as_i64().unwrap() * 1000 / relief["budget_fen"].as_i64().unwrap();
    let want = match permille {
        1000.. => "full",
        900.. => "warn90",
        800.. => "warn80",
        _ => "ok",
    };
    assert_eq!(level, want, "temporary relief at {permille} ‰: {relief}");
    assert!(b.exists("#today-chart canvas").await, "the last hour's chart");
    assert!(b.exists("#reversals-table tbody tr").await, "the reversal");
    assert_eq!(
        text_of(&b, "#reversals-table tbody tr td[data-col=relief_fen]").await,
        yuan(day.settled[REVERSED]["relief_fen"].as_i64().unwrap())
    );
    assert!(b.exists("#instances-table tr[data-up=true]").await, "the instance is up");
    assert!(b.exists("#redis-status [data-up=true]").await, "Redis is up");
    assert_clean(&b, "today").await;
    b.screenshot("today-zh").await;

    b.set_viewport(1920, 1080).await;
    b.refresh().await;
    b.wait_for("#app[data-loaded] #today-chart canvas", WAIT).await;
    assert_clean(&b, "today at 1920").await;
    b.screenshot("today-1920-zh").await;
    b.set_viewport(1280, 800).await;

    toggle_language(&b, "today", "en").await;
    b.wait_for("#today-chart canvas", WAIT).await;
    assert_eq!(text_of(&b, "#today-settled .label").await, "Settlements today");
    assert_eq!(text_of(&b, budget_cell).await, yuan(budget0));
    assert_clean(&b, "today, English").await;
    b.screenshot("today-en").await;
    toggle_language(&b, "today", "zh").await;

    // ---- the Fund page: a donation ----
    open(&b, &c, "fund").await;
    let fund_budget = "#fund-pools-table tr[data-program=charity] td[data-col=budget_fen]";
    assert_eq!(text_of(&b, fund_budget).await, yuan(budget0));
    assert!(text_of(&b, "#donors-charity").await.contains("区慈善总会"), "the first donor");
    assert!(b.exists("#records-table tbody tr").await, "the year's contributions");
    set_value(&b, "#contrib-program", "charity").await;
    set_value(&b, "#contrib-kind", "donation").await;
    b.fill("#contrib-donor", "区红十字会").await;
    b.fill("#contrib-amount", "12,345.67").await;
    b.wait_text("#contrib-amount-hint", "12,345.67", WAIT).await;
    b.fill("#contrib-note", "第二批善款").await;
    let id = value_of(&b, "#contrib-id").await;
    assert!(id.starts_with("web-"), "a contribution id the user sees: {id}");
    b.click("#contrib-submit").await;
    expect(&b, "#contrib-result .notice[data-code=recorded]", WAIT).await;
    let donated = 1_234_567;
    b.wait_text(fund_budget, &yuan(budget0 + donated), WAIT).await;
    assert_eq!(text_of(&b, fund_budget).await, yuan(budget0 + donated));
    assert_eq!(pool_row(gw, "charity").await["budget_fen"], budget0 + donated, "the API agrees");
    assert!(text_of(&b, "#donors-charity").await.contains("区红十字会"));
    assert!(text_of(&b, "#records-table").await.contains(&id), "the new record is listed");
    assert_ne!(value_of(&b, "#contrib-id").await, id, "a new id for the next one");
    assert_clean(&b, "fund").await;
    b.execute("window.scrollTo(0, 0);").await;
    b.screenshot("fund-zh").await;

    // a withdrawal of more than is left: refused, and the page says why
    set_value(&b, "#contrib-kind", "withdrawal").await;
    b.fill("#contrib-donor", "区红十字会").await;
    b.fill("#contrib-amount", "20000").await;
    b.click("#contrib-submit").await;
    expect(&b, "#contrib-result .error[data-code=pool_would_overdraw]", WAIT).await;
    let said = text_of(&b, "#contrib-result .error[data-code=pool_would_overdraw]").await;
    assert!(said.contains("20,000.00") && said.contains("不能支取"), "{said}");
    assert_eq!(text_of(&b, fund_budget).await, yuan(budget0 + donated), "nothing changed");
    scroll_to(&b, "#contrib-form").await;
    b.screenshot("fund-overdraw-zh").await;

    toggle_language(&b, "fund", "en").await;
    assert_eq!(text_of(&b, fund_budget).await, yuan(budget0 + donated));
    assert_clean(&b, "fund, English").await;
    b.screenshot("fund-en").await;
    toggle_language(&b, "fund", "zh").await;

    // ---- the Today page sees the donation, and refreshes itself ----
    open(&b, &c, "today").await;
    assert_eq!(text_of(&b, budget_cell).await, yuan(budget0 + donated), "the budget on the Today page, after");
    let one_more = gw.client("H0003").post("/v1/settlements", &bill(SETTLEMENTS, "H0003", "YT0002")).await;
    assert_eq!(one_more.status, 201, "{}", one_more.body);
    let next = (SETTLEMENTS + 1).to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    while text_of(&b, "#today-settled [data-value]").await != next {
        assert!(Instant::now() < deadline, "the Today page did not refresh itself within 15 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // the audit trail: the donation, by the console account
    let entries = audit(gw, "pool.contribution").await;
    let entry = entries.iter().find(|e| e["detail"]["contribution_id"] == id.as_str()).expect("the donation's entry");
    assert_eq!(entry["actor"], "mz-wang", "{entry}");
    assert_eq!(entry["role"], "console", "{entry}");
    assert_eq!(entry["target"], "charity", "{entry}");
    assert_eq!(entry["detail"]["amount_fen"], donated, "{entry}");
    assert_eq!(entries.len(), 2, "the API's donation and the page's, not the refused withdrawal: {entries:?}");
    b.close().await;
}

// ---- Rules ---------------------------------------------------------------------------------------------------------

/// The `data-field` of medical assistance's dibao ratio in the draft (the field a 400 names, less `ruleset.`).
const DIBAO_RATIO: &str = "programs[0].categories.dibao.ratio_bp";

/// Rules: two versions side by side with their differences marked; a draft from version 2 with a negative ratio is
/// refused with the message on that field; fixed, its preview over today's settlements shows tables and charts;
/// published after a dialog naming its effective date, it is the version the next settlement uses, at its rate;
/// the audit trail names the console account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_compare_draft_preview_and_publish_a_new_version() {
    let (c, b) = signed_in("mz-li").await;
    let gw = &c.stack.gw;
    let day = working_day(gw).await;
    log_in(&c, &b, "mz-li").await;
    open(&b, &c, "rules").await;

    // ---- the comparison: version 1 against version 2 ----
    assert_eq!(value_of(&b, "#cmp-a").await, "1");
    assert_eq!(value_of(&b, "#cmp-b").await, "2");
    b.wait_for("#cmp-table", WAIT).await;
    let row = |path: &str| format!("#cmp-table tr[data-path=\"{path}\"]");
    for path in [
        "effective_from",
        "programs[medical_assistance].categories.dibao.ratio_bp",
        "programs[medical_assistance].categories.low_income.deductible_fen",
        "programs[charity].annual_pool_fen",
        "programs[temporary_relief].name",
        "programs[temporary_relief].categories.dibao.ratio_bp",
    ] {
        assert!(b.exists(&format!("{}.diff", row(path))).await, "{path} is marked as a difference");
    }
    for path in ["programs[medical_assistance].categories.tekun.ratio_bp", "programs[charity].covers"] {
        assert!(b.exists(&row(path)).await && !b.exists(&format!("{}.diff", row(path))).await, "{path} is the same");
    }
    assert!(b.exists(&format!("{}.only-b", row("programs[temporary_relief].name"))).await);
    let dibao = text_of(&b, &row("programs[medical_assistance].categories.dibao.ratio_bp")).await;
    assert!(dibao.contains("90%") && dibao.contains("95%"), "{dibao}");
    assert_clean(&b, "rules").await;
    b.screenshot("rules-zh").await;

    toggle_language(&b, "rules", "en").await;
    b.wait_for(&format!("{}.diff", row("programs[charity].annual_pool_fen")), WAIT).await;
    assert!(text_of(&b, "#cmp-count").await.contains("differences between version 1 and version 2"));
    assert_clean(&b, "rules, English").await;
    b.screenshot("rules-en").await;
    toggle_language(&b, "rules", "zh").await;

    // ---- a draft from version 2, with an error ----
    set_value(&b, "#draft-base", "2").await;
    b.click("#draft-start").await;
    b.wait_for("#draft-form", WAIT).await;
    let today = today().to_string();
    set_value(&b, "#draft-effective", &today).await;
    let ratio = format!("#draft-form input[data-field=\"{DIBAO_RATIO}\"]");
    assert_eq!(value_of(&b, &ratio).await, "95", "ratios in percent");
    let pool = "#draft-form input[data-field=\"programs[1].annual_pool_fen\"]";
    assert_eq!(value_of(&b, pool).await, "8000.00", "amounts in yuan");
    b.fill(&ratio, "-5").await;
    b.click("#draft-preview").await;
    expect(&b, &format!("{ratio}[aria-invalid=true]"), WAIT).await;
    let message = format!("#draft-form .field-error[data-for=\"{DIBAO_RATIO}\"]");
    assert!(text_of(&b, &message).await.contains("0%"), "the message on the field");
    let next_to = b
        .execute(&format!(
            "const n = document.querySelector({}).nextElementSibling; return n && n.matches('.field-error') ? n.textContent : null;",
            js(&ratio)
        ))
        .await;
    assert!(next_to.is_string(), "the message is right after the field");
    assert_eq!(
        b.execute("return document.activeElement.getAttribute('data-field');").await,
        json!(DIBAO_RATIO),
        "the field has the focus"
    );
    assert!(!b.exists("#preview-result table").await, "no preview of an invalid draft");
    b.execute(&format!("document.querySelector({}).scrollIntoView({{block: 'center'}});", js(&ratio))).await;
    b.screenshot("rules-draft-error-zh").await;

    // ---- fixed: the preview ----
    b.fill(&ratio, "80").await;
    set_value(&b, "#preview-from", &format!("{}-01", &today[..7])).await;
    set_value(&b, "#preview-to", &today).await;
    b.click("#draft-preview").await;
    expect(&b, "#preview-result[data-settlements] #preview-programs", Duration::from_secs(20)).await;
    assert!(!b.exists("[aria-invalid=true]").await, "the error is gone");
    assert_eq!(b.attr("#preview-result", "data-settlements").await, Some((SETTLEMENTS - 1).to_string()));
    for chart in ["#chart-program canvas", "#chart-category canvas"] {
        assert!(b.exists(chart).await, "{chart}");
    }
    let ma = "#preview-programs tr[data-program=medical_assistance]";
    assert!(b.exists(&format!("{ma}.changed")).await, "medical assistance pays less under the draft");
    assert!(b.exists("#preview-categories tr[data-category=dibao].changed").await);
    assert!(!b.exists("#preview-categories tr[data-category=tekun].changed").await, "tekun is not changed");
    assert!(b.exists("#preview-pools tbody tr").await, "the pools of the draft");
    assert_clean(&b, "rules preview").await;
    scroll_to(&b, "#preview-title").await;
    b.screenshot("rules-preview-zh").await;
    scroll_to(&b, "#preview-categories").await;
    b.screenshot("rules-preview-pools-zh").await;

    // ---- publish, after the dialog names the date ----
    b.click("#draft-publish").await;
    expect(&b, "#publish-dialog[open]", WAIT).await;
    // by keyboard: the focus starts on Cancel (Enter does not publish), Escape closes the dialog, and Enter on the
    // publish button opens it again
    assert_eq!(b.execute("return document.activeElement.id;").await, json!("publish-cancel"));
    b.client().active_element().await.unwrap().send_keys("\u{e00c}").await.unwrap();
    wait_js(&b, "return !document.querySelector('#publish-dialog').open;", WAIT, "Escape closes the dialog").await;
    b.execute("document.querySelector('#draft-publish').focus();").await;
    b.client().active_element().await.unwrap().send_keys("\u{e007}").await.unwrap();
    expect(&b, "#publish-dialog[open]", WAIT).await;
    assert_eq!(text_of(&b, "#publish-date").await, format!("将于 {today} 生效"));
    assert!(text_of(&b, "#publish-body").await.contains("第 3 版"));
    b.screenshot("rules-publish-confirm-zh").await;
    assert_eq!(
        gw.client(ADMIN).get("/admin/v1/rulesets").await.body["rulesets"].as_array().unwrap().len(),
        2,
        "not yet"
    );
    b.click("#publish-confirm").await;
    expect(&b, "#draft-notice .notice[data-version=\"3\"]", WAIT).await;
    b.wait_for("#rulesets-table tr[data-version=\"3\"]", WAIT).await;
    assert!(!b.exists("#publish-dialog[open]").await, "the dialog closed");
    let published = gw.client(ADMIN).get("/admin/v1/rulesets/3").await;
    assert_eq!(published.status, 200, "{}", published.body);
    assert_eq!(published.body["effective_from"], today.as_str());
    assert_eq!(published.body["programs"][0]["categories"]["dibao"]["ratio_bp"], 8000);

    // the next settlement uses version 3, at 80 %
    let admin = gw.client(ADMIN);
    seed(&admin, &[], &[cardholder("YT0099", "dibao")]).await;
    let s =
        gw.client("H0002").post("/v1/settlements", &outpatient_bill("H0002-after-publish", "YT0099", 20_000, 0)).await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(s.body["ruleset_version"], 3, "{}", s.body);
    let paid = s.body["payments"].as_array().unwrap().iter().find(|p| p["program"] == "medical_assistance").unwrap();
    assert_eq!(paid["paid_fen"], 16_000, "80 % of 200 yuan: {}", s.body);
    assert_eq!(day.settled[0]["ruleset_version"], 2, "the day's settlements used version 2");

    // the audit trail: the publication, by the console account
    let entries = audit(gw, "ruleset.publish").await;
    let entry = entries.iter().find(|e| e["target"] == "3").expect("the publication's entry");
    assert_eq!(entry["actor"], "mz-li", "{entry}");
    assert_eq!(entry["role"], "console", "{entry}");
    assert_eq!(entry["detail"]["effective_from"], today.as_str(), "{entry}");

    // ---- the preview in English: a draft of version 3, dibao back to 90 %, and a program added ----
    toggle_language(&b, "rules", "en").await;
    set_value(&b, "#draft-base", "3").await;
    b.click("#draft-start").await;
    set_value(&b, "#draft-effective", &today).await;
    b.fill(&ratio, "90").await;
    b.click("#draft-add-program").await;
    let added = "#draft-programs fieldset.program:last-of-type";
    assert_eq!(b.attr(added, "data-index").await.as_deref(), Some("3"), "a fourth program");
    b.fill(&format!("{added} input[data-field=\"programs[3].id\"]"), "winter_relief").await;
    b.fill(&format!("{added} input[data-field=\"programs[3].name\"]"), "冬季临时补助").await;
    b.fill(&format!("{added} input[data-field=\"programs[3].covers\"]"), "self_pay").await;
    b.click(&format!("{added} button.add-category")).await;
    b.fill(&format!("{added} tr.category input[data-role=cat-name]"), "dibao").await;
    b.fill(&format!("{added} tr.category input[data-role=ratio_bp]"), "20").await;
    set_value(&b, "#preview-from", &format!("{}-01", &today[..7])).await;
    set_value(&b, "#preview-to", &today).await;
    b.click("#draft-preview").await;
    expect(&b, "#preview-result[data-settlements] #chart-category canvas", Duration::from_secs(20)).await;
    assert!(text_of(&b, "#preview-title").await.starts_with("Preview: visits from"));
    let winter = "#preview-programs tr[data-program=winter_relief]";
    assert_eq!(text_of(&b, &format!("{winter} td[data-col=baseline_fen]")).await, "0.00", "a new program");
    assert_ne!(text_of(&b, &format!("{winter} td[data-col=draft_fen]")).await, "0.00", "pays under the draft");
    assert_clean(&b, "rules preview, English").await;
    scroll_to(&b, "#preview-title").await;
    b.screenshot("rules-preview-en").await;
    b.close().await;
}
