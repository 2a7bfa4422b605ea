//! The relief office's console pages — Cardholders, Clearing, Reports, Audit — in a real browser (Debian's headless
//! Chromium over WebDriver, tests/browser_support) on the real `settlegate serve` binary and a private Redis
//! (tests/common), on a working day made through the real mTLS API: a ruleset of three programs, two dozen cards in
//! two streets, four hospitals settling dozens of bills (one reversed), a donation to the charity pool and clearing
//! statements. What a page shows is compared with what the API answers; each page is photographed in Chinese and
//! English (`SG_SCREENSHOTS_DIR=docs/console` keeps the PNGs).
//!
//! Settlements are stamped with the gateway's clock, so earlier days (the month before, for the statements that
//! can be confirmed, and the days of this month before today) cannot be settled through the API: their
//! reconciliation lines are written straight into Redis in the exact format of `store::dayline::encode_event`, as
//! tests/http_clearing.rs and tests/http_reports.rs do. Today's settlements all go through the API.

mod browser_support;
mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use browser_support::*;
use chrono::{Datelike, Days, NaiveDate};
use common::*;
use serde_json::{json, Value};
use settlegate::domain::split::Payment;
use settlegate::store::dayline::{encode_event, DayEvent, LineContext, ProgramFen};

const ADMIN_USER: &str = "wang.min";
const ADMIN_PASSWORD: &str = "Minzheng-2026-guanli";
const STREET_USER: &str = "li.jrj";
const STREET_PASSWORD: &str = "Jinrongjie-2026-jiedao";
const STREET_A: &str = "金融街街道";
const STREET_B: &str = "月坛街道";
/// The card whose page is photographed: a dibao card of street A near its annual cap, with a reversal.
const SHOWN_CARD: &str = "C100001";
/// A card of street B (invisible to the street account).
const OTHER_STREET_CARD: &str = "C100002";

// ---- the working day -----------------------------------------------------------------------------------------------

/// The ruleset in force: medical assistance, the charity pool, and a programme for disabled cardholders.
fn ruleset() -> Value {
    json!({"effective_from": "2020-01-01", "programs": [
        {"id": "medical_assistance", "name": "医疗救助", "covers": ["in_scope"],
         "categories": {
             "tekun": {"ratio_bp": 10000, "annual_cap_fen": 15_000_000},
             "dibao": {"ratio_bp": 9000, "annual_cap_fen": 3_000_000},
             "dibao_edge": {"ratio_bp": 7000, "deductible_fen": 50_000, "annual_cap_fen": 2_000_000},
             "low_income": {"ratio_bp": 7000, "deductible_fen": 100_000, "annual_cap_fen": 6_000_000},
             "illness_poverty": {"ratio_bp": 6000, "deductible_fen": 250_000, "annual_cap_fen": 15_000_000}}},
        {"id": "disability_support", "name": "残疾人专项救助", "covers": ["pre_self_pay", "over_limit"],
         "require_tags": ["disabled"],
         "categories": {
             "tekun": {"ratio_bp": 8000, "annual_cap_fen": 500_000},
             "dibao": {"ratio_bp": 5000, "annual_cap_fen": 300_000},
             "low_income": {"ratio_bp": 5000, "annual_cap_fen": 300_000}}},
        {"id": "charity", "name": "慈善救助", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
         "annual_pool_fen": 50_000_000,
         "categories": {
             "tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100_000},
             "dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50_000},
             "illness_poverty": {"ratio_bp": 4000, "per_visit_cap_fen": 200_000}}}
    ]})
}

/// (card, category, street, community, tags)
const CARDS: [(&str, &str, &str, &str, &[&str]); 24] = [
    ("C100001", "dibao", STREET_A, "丰盛社区", &["elderly_80", "disabled"]),
    ("C100002", "tekun", STREET_B, "月坛社区", &["disabled"]),
    ("C100003", "low_income", STREET_A, "二龙路社区", &[]),
    ("C100004", "illness_poverty", STREET_B, "南礼士路社区", &[]),
    ("C100005", "dibao_edge", STREET_A, "武定侯社区", &[]),
    ("C100006", "dibao", STREET_B, "三里河社区", &["elderly_80"]),
    ("C100007", "dibao", STREET_A, "丰盛社区", &[]),
    ("C100008", "tekun", STREET_A, "二龙路社区", &["elderly_80"]),
    ("C100009", "low_income", STREET_B, "月坛社区", &["disabled"]),
    ("C100010", "dibao", STREET_B, "南礼士路社区", &[]),
    ("C100011", "illness_poverty", STREET_A, "武定侯社区", &[]),
    ("C100012", "dibao", STREET_A, "二龙路社区", &["disabled"]),
    ("C100013", "tekun", STREET_B, "三里河社区", &[]),
    ("C100014", "dibao_edge", STREET_B, "月坛社区", &[]),
    ("C100015", "low_income", STREET_A, "丰盛社区", &["elderly_80"]),
    ("C100016", "dibao", STREET_B, "南礼士路社区", &["disabled"]),
    ("C100017", "dibao", STREET_A, "武定侯社区", &[]),
    ("C100018", "illness_poverty", STREET_B, "三里河社区", &[]),
    ("C100019", "tekun", STREET_A, "丰盛社区", &["disabled"]),
    ("C100020", "dibao", STREET_B, "月坛社区", &[]),
    ("C100021", "low_income", STREET_B, "南礼士路社区", &[]),
    ("C100022", "dibao", STREET_A, "二龙路社区", &[]),
    ("C100023", "dibao_edge", STREET_A, "武定侯社区", &["elderly_80"]),
    ("C100024", "tekun", STREET_B, "月坛社区", &[]),
];

fn card_json(i: usize) -> Value {
    let (id, category, street, community, tags) = CARDS[i];
    json!({"card_id": id, "category": category, "valid_from": format!("{}-01-01", this_year()),
           "valid_until": format!("{}-12-31", this_year() + 1), "status": "active", "tags": tags,
           "street": street, "community": community})
}

/// A small deterministic generator for the bills' amounts.
struct Lcg(u64);

impl Lcg {
    /// The next value in `lo..=hi`.
    fn next(&mut self, lo: i64, hi: i64) -> i64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        lo + i64::try_from(self.0 >> 33).unwrap().rem_euclid(hi - lo + 1)
    }

    /// The next value in `0..n`.
    fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.next(0, i64::try_from(n).unwrap() - 1)).unwrap()
    }
}

/// A settle body: `in_scope` with insurance paying `insured_bp` of it, plus the other buckets.
#[allow(clippy::too_many_arguments)]
fn bill(hsid: &str, card: &str, kind: &str, date: NaiveDate, in_scope: i64, pre: i64, over: i64, own: i64) -> Value {
    let basic = in_scope * 62 / 100;
    let critical = if kind == "inpatient" { in_scope * 8 / 100 } else { 0 };
    json!({"hospital_settlement_id": hsid, "card_id": card, "visit": {"type": kind, "date": date.to_string()},
           "amounts": {"total_fen": in_scope + pre + over + own, "in_scope_fen": in_scope, "pre_self_pay_fen": pre,
                       "over_limit_fen": over, "self_pay_fen": own},
           "insurance": {"basic_fen": basic, "critical_illness_fen": critical, "other_fen": 0,
                         "settlement_ref": format!("SETL-{hsid}")},
           "operator": {"id": "cashier-07", "name": "王丽"}})
}

/// One reconciliation line of an earlier day, as the settle script writes it.
fn past_line(card: usize, day: NaiveDate, n: usize, hospital: &str, payments: &[(&str, i64)]) -> String {
    let (card_id, category, street, community, _) = CARDS[card];
    let relief: i64 = payments.iter().map(|p| p.1).sum();
    let insurance = relief * 2;
    let patient = relief / 3 + 1_500;
    let hsid = format!("{hospital}-{}-{n:04}", day.format("%Y%m%d"));
    let event = DayEvent {
        reversal: false,
        at: format!("{day}T{:02}:{:02}:00.000+08:00", 8 + n % 9, (n * 7) % 60),
        settlement_id: format!("s2_past-{hsid}"),
        hospital_settlement_id: hsid,
        card_id: card_id.into(),
        total_fen: relief + insurance + patient,
        insurance_fen: insurance,
        relief_fen: relief,
        patient_fen: patient,
        by_program: payments.iter().map(|(p, fen)| ProgramFen { program: p.to_string(), fen: *fen }).collect(),
        context: LineContext {
            category: category.into(),
            street: street.into(),
            community: community.into(),
            ..Default::default()
        },
    };
    let paid: Vec<Payment> = payments
        .iter()
        .map(|(p, fen)| Payment { program: p.to_string(), paid_fen: *fen, deductible_applied_fen: 0, capped_by: None })
        .collect();
    encode_event(&event, &paid)
}

fn push_lines(redis: &Redis, day: NaiveDate, hospital: &str, lines: &[String]) {
    let key = format!("{{sg}}:recon:{day}:{hospital}:events");
    let mut args = vec!["RPUSH", key.as_str()];
    args.extend(lines.iter().map(String::as_str));
    assert!(redis.cli(&args).trim().parse::<u64>().is_ok(), "RPUSH {key}");
    redis.cli(&["SADD", &format!("{{sg}}:recon:{day}:hospitals"), hospital]);
}

/// The earlier days: every weekday of last month and the days of this month before today, 2–6 lines per
/// hospital and day.
fn write_past_days(redis: &Redis) {
    let t = today();
    let first = t.with_day(1).unwrap();
    let last_month = first.checked_sub_months(chrono::Months::new(1)).unwrap();
    let mut rng = Lcg(7);
    let mut n = 0;
    for day in last_month.iter_days().take_while(|d| *d < t) {
        let weekend = matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
        if weekend && day < first {
            continue;
        }
        for hospital in HOSPITALS {
            let count = 2 + rng.index(5);
            let lines: Vec<String> = (0..count)
                .map(|_| {
                    n += 1;
                    let card = rng.index(CARDS.len());
                    let assistance = rng.next(8_000, 180_000);
                    let charity = if rng.next(0, 2) == 0 { rng.next(2_000, 50_000) } else { 0 };
                    let mut payments = vec![("medical_assistance", assistance)];
                    if charity > 0 {
                        payments.push(("charity", charity));
                    }
                    past_line(card, day, n, hospital, &payments)
                })
                .collect();
            push_lines(redis, day, hospital, &lines);
        }
    }
}

/// What the tests need to know of the day made.
struct Facts {
    /// The settlement answers of today, in order.
    settlements: Vec<Value>,
    /// The reversed one.
    reversed: Value,
}

/// The gateway with its console, its data and the two accounts, and a chromedriver; shared by the tests.
struct Office {
    stack: Stack,
    console_port: u16,
    driver: Chromedriver,
    facts: Facts,
}

impl Office {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.console_port)
    }

    fn admin(&self) -> Client {
        self.stack.gw.client(ADMIN)
    }
}

static OFFICE: Mutex<Weak<Office>> = Mutex::new(Weak::new());

fn office() -> Arc<Office> {
    // made on a thread of its own with its own runtime: the tests' runtimes come and go, the office stays
    shared(&OFFICE, || std::thread::spawn(make_office).join().expect("the office"))
}

fn make_office() -> Office {
    let console_port = free_port();
    let extra = format!(
        "[console]\nlisten = \"127.0.0.1:{console_port}\"\n\
         [streets]\nidentities = {{ \"xc-jinrongjie\" = \"{STREET_A}\", \"xc-yuetan\" = \"{STREET_B}\" }}\n\
         [redis]\nresponse_timeout_ms = 5000\n"
    );
    let stack = Stack::start(&extra);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", console_port)).is_err() {
        assert!(Instant::now() < deadline, "the console did not listen: {}", stack.gw.log_text());
        std::thread::sleep(Duration::from_millis(25));
    }
    add_user(&stack.gw, ADMIN_USER, "admin", ADMIN_PASSWORD);
    add_user(&stack.gw, STREET_USER, &format!("street:{STREET_A}"), STREET_PASSWORD);
    write_past_days(&stack.redis);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let facts = rt.block_on(working_day(&stack.gw));
    let driver = Chromedriver::start();
    Office { stack, console_port, driver, facts }
}

fn add_user(gw: &Gateway, name: &str, role: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_settlegate"))
        .args(["users", "add", name, "--role", role, "--password-stdin", "--config"])
        .arg(gw.config_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "users add {name}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Today through the API: the ruleset, the cards (16 imported, 8 put), a donation, 44 settlements of four
/// hospitals, a reversal, and statements of last month (one paid, one confirmed, one draft) and this month.
async fn working_day(gw: &Gateway) -> Facts {
    let admin = gw.client(ADMIN);
    let r = admin.post("/admin/v1/rulesets", &ruleset()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ndjson: String = (8..CARDS.len()).map(|i| format!("{}\n", card_json(i))).collect();
    let r = admin.send("POST", "/admin/v1/cardholders/import", Some("application/x-ndjson"), ndjson.into()).await;
    let r = r.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["imported"], 16, "{}", r.body);
    for (i, card) in CARDS.iter().enumerate().take(8) {
        let r = admin.put(&format!("/admin/v1/cardholders/{}", card.0), &card_json(i)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let donation = json!({"contribution_id": format!("RC-{}-0012", this_year()), "year": this_year(),
                          "donor": "区红十字会", "amount_fen": 5_000_000, "kind": "donation", "note": "冬季助医专项"});
    let r = admin.post("/admin/v1/pools/charity/contributions", &donation).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // the shown card: two inpatient stays and outpatient visits at three hospitals, one of them reversed
    let t = today();
    let day = |back: u64| t.checked_sub_days(Days::new(back)).unwrap();
    let mut bills: Vec<(&str, Value)> = vec![
        ("H0001", bill("H0001-20001", SHOWN_CARD, "inpatient", day(1), 5_200_000, 40_000, 15_000, 120_000)),
        ("H0002", bill("H0002-20002", SHOWN_CARD, "outpatient", day(0), 58_000, 6_000, 0, 9_000)),
        ("H0003", bill("H0003-20003", SHOWN_CARD, "chronic", day(0), 126_000, 12_000, 3_000, 8_500)),
        ("H0001", bill("H0001-20004", SHOWN_CARD, "inpatient", day(0), 4_000_000, 60_000, 22_000, 95_000)),
        ("H0002", bill("H0002-20005", SHOWN_CARD, "outpatient", day(0), 43_500, 0, 0, 6_200)),
    ];
    let mut rng = Lcg(2026);
    let hsids: Vec<String> = (0..39).map(|i| format!("{}-{:05}", HOSPITALS[i % 4], 30_000 + i)).collect();
    for (i, hsid) in hsids.iter().enumerate() {
        let hospital = HOSPITALS[i % 4];
        let card = CARDS[1 + (i * 7) % (CARDS.len() - 1)].0;
        let kind = ["outpatient", "outpatient", "chronic", "outpatient", "inpatient"][i % 5];
        let in_scope = if kind == "inpatient" { rng.next(600_000, 2_400_000) } else { rng.next(12_000, 160_000) };
        let b = bill(
            hsid,
            card,
            kind,
            day((i % 3) as u64),
            in_scope,
            rng.next(0, 20_000),
            rng.next(0, 8_000),
            rng.next(1_000, 30_000),
        );
        bills.push((hospital, b));
    }
    let mut settlements = Vec::new();
    for (hospital, b) in &bills {
        let r = gw.client(hospital).post("/v1/settlements", b).await;
        assert_eq!(r.status, 201, "{hospital}: {}", r.body);
        settlements.push(r.body);
    }
    let rev = json!({"card_id": SHOWN_CARD, "hospital_settlement_id": "H0002-20002", "reason": "患者取消就诊",
                     "operator": {"id": "cashier-03", "name": "赵强"}});
    let r = gw.client("H0002").post("/v1/reversals", &rev).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let reversed = r.body;

    // statements: last month's of H0001 paid, H0002 confirmed, H0003 a draft; this month's drafts
    let this_month = format!("{:04}-{:02}", t.year(), t.month());
    let last = t.with_day(1).unwrap().pred_opt().unwrap();
    let last_month = format!("{:04}-{:02}", last.year(), last.month());
    for (hospital, period) in [
        ("H0001", &last_month),
        ("H0002", &last_month),
        ("H0003", &last_month),
        ("H0001", &this_month),
        ("H0002", &this_month),
    ] {
        let r = admin.post("/admin/v1/clearings", &json!({"hospital_id": hospital, "period": period})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    for id in [format!("cl_{last_month}_H0001"), format!("cl_{last_month}_H0002")] {
        let r = admin.post(&format!("/admin/v1/clearings/{id}/confirm"), &json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let paid = json!({"payment_ref": format!("PAY-{last_month}-H0001"), "paid_at": t.to_string()});
    let r = admin.post(&format!("/admin/v1/clearings/cl_{last_month}_H0001/paid"), &paid).await;
    assert_eq!(r.status, 200, "{}", r.body);
    Facts { settlements, reversed }
}

// ---- helpers -----------------------------------------------------------------------------------------------------

/// fen as the pages show them: "1,234.56".
fn yuan(fen: i64) -> String {
    let n = fen.unsigned_abs();
    let whole = (n / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{:02}", if fen < 0 { "-" } else { "" }, n % 100)
}

fn last_month() -> String {
    let last = today().with_day(1).unwrap().pred_opt().unwrap();
    format!("{:04}-{:02}", last.year(), last.month())
}

/// A browser signed in as `name` (the login form, as a person would).
async fn signed_in(office: &Office, name: &str, password: &str) -> Browser {
    let b = Browser::start(&office.driver).await;
    b.goto(&office.url("/login")).await;
    b.set_viewport(1280, 800).await;
    b.fill("#login-name", name).await;
    b.fill("#login-password", password).await;
    b.click("#login-submit").await;
    b.wait_text("#user-name", name, WAIT).await;
    b
}

/// Switches the console's language with the header's toggle and waits for the page in it.
async fn switch_language(b: &Browser, lang: &str) {
    b.click("#lang-toggle").await;
    let deadline = Instant::now() + WAIT;
    while b.execute("return document.documentElement.lang.slice(0, 2)").await != json!(lang) {
        assert!(Instant::now() < deadline, "the page did not switch to {lang}{}", b.page_state().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// JSON the page's script returns (`js` is a function body).
async fn js(b: &Browser, js: &str) -> Value {
    b.execute(js).await
}

/// Waits until `js` (a function body) returns true.
async fn wait_js(b: &Browser, what: &str, script: &str) {
    let deadline = Instant::now() + WAIT;
    while b.execute(script).await != json!(true) {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}{}", b.page_state().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What every page holds to (as tests/browser_pages_money.rs checks its pages): no refusal by the
/// Content-Security-Policy since the page loaded, no string in one language only, every field with a label, every
/// table (but uPlot's legend) with `<th scope>`, and nothing wider than the window.
async fn assert_page_clean(b: &Browser) {
    let v = b
        .execute(
            "const unlabelled = [...document.querySelectorAll('#app input, #app select, #app textarea, dialog input')]
               .filter(n => n.type !== 'hidden' && n.labels.length === 0).map(n => n.id || n.outerHTML);
             const tables = [...document.querySelectorAll('#app table:not(.u-legend)')]
               .filter(t => !t.querySelector('th[scope]')).map(t => t.id || t.outerHTML.slice(0, 80));
             return {csp: SG.cspViolations || [], strings: SG.stringProblems || [], unlabelled: unlabelled,
                     tables: tables, overflow: document.documentElement.scrollWidth - window.innerWidth};",
        )
        .await;
    let url = b.url().await;
    assert_eq!(v["csp"], json!([]), "{url}: CSP violations");
    assert_eq!(v["strings"], json!([]), "{url}: strings in one language only");
    assert_eq!(v["unlabelled"], json!([]), "{url}: fields without a <label for>");
    assert_eq!(v["tables"], json!([]), "{url}: tables without <th scope>");
    assert!(v["overflow"].as_i64().unwrap() <= 0, "{url}: wider than the window by {}px", v["overflow"]);
}

/// Records every Blob the page offers as a download (`SG.download` makes an object URL of it).
async fn capture_downloads(b: &Browser) {
    b.execute(
        "window.__blobs = []; var make = URL.createObjectURL; \
         URL.createObjectURL = function (x) { window.__blobs.push(x); return make.call(URL, x); }; return true;",
    )
    .await;
}

/// The text of the last Blob offered for download.
async fn last_download(b: &Browser) -> String {
    wait_js(b, "a download", "return window.__blobs.length > 0").await;
    b.execute("return window.__blobs[window.__blobs.length - 1].text()").await.as_str().unwrap().to_string()
}

// ---- Cardholders -------------------------------------------------------------------------------------------------

/// A card's page shows its facts, its use of each program's annual cap as the API counts it (paid per program, the
/// cap of the ruleset in force, the share's level) and this year's settlements as the history answers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_page_shows_the_usage_and_settlements_the_api_answers() {
    let office = office();
    let admin = office.admin();
    let b = signed_in(&office, ADMIN_USER, ADMIN_PASSWORD).await;
    b.goto(&office.url("/cards")).await;
    b.fill("#card-id", SHOWN_CARD).await;
    b.click("#card-find").await;
    b.wait_for(&format!("#card-box[data-card=\"{SHOWN_CARD}\"]"), WAIT).await;
    b.wait_for("#card-settlements", WAIT).await;
    assert_page_clean(&b).await;

    let api = admin.get(&format!("/admin/v1/cardholders/{SHOWN_CARD}")).await;
    assert_eq!(api.status, 200, "{}", api.body);
    assert_eq!(b.text("#card-eligibility").await, "可以结算");
    assert!(b.text("#card-facts").await.contains("低保"), "{}", b.text("#card-facts").await);
    assert!(b.text("#card-facts").await.contains(STREET_A));
    let rows = js(
        &b,
        "return Array.from(document.querySelectorAll('#card-usage tbody tr')).map(tr => ({program: tr.dataset.program, \
         paid: tr.cells[1].textContent, fen: tr.cells[1].querySelector('[data-fen]').dataset.fen, \
         cap: tr.cells[2].textContent, level: (tr.cells[4].querySelector('[data-level]') || {dataset: {}}).dataset.level}))",
    )
    .await;
    let rows = rows.as_array().unwrap();
    let usage = api.body["usage"].as_array().unwrap();
    assert_eq!(usage.len(), 3, "three programs paid this card: {}", api.body);
    // the ruleset's programs covering dibao (with the tag disabled): all three, in ruleset order
    let programs: Vec<&str> = rows.iter().map(|r| r["program"].as_str().unwrap()).collect();
    assert_eq!(programs, ["medical_assistance", "disability_support", "charity"]);
    for u in usage {
        let row = rows.iter().find(|r| r["program"] == u["program"]).unwrap();
        let paid = u["paid_fen"].as_i64().unwrap();
        assert_eq!(row["fen"], paid.to_string(), "{row}");
        assert_eq!(row["paid"], yuan(paid), "{row}");
    }
    let assistance = rows.iter().find(|r| r["program"] == "medical_assistance").unwrap();
    assert_eq!(assistance["cap"], yuan(3_000_000));
    let paid = usage.iter().find(|u| u["program"] == "medical_assistance").unwrap()["paid_fen"].as_i64().unwrap();
    let want_level = match paid * 100 / 3_000_000 {
        100.. => "full",
        90.. => "warn90",
        80.. => "warn80",
        _ => "ok",
    };
    assert_eq!(assistance["level"], want_level, "paid {paid} of 3,000,000");
    assert_ne!(want_level, "ok", "the shown card is near its cap (paid {paid})");

    let history = admin.get(&format!("/admin/v1/cardholders/{SHOWN_CARD}/settlements")).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let want: Vec<(String, String, String)> = history.body["settlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                format!("{}/{}", s["hospital_id"].as_str().unwrap(), s["hospital_settlement_id"].as_str().unwrap()),
                yuan(s["relief_fen"].as_i64().unwrap()),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(want.len(), 5);
    let shown = js(
        &b,
        "return Array.from(document.querySelectorAll('#card-settlements tbody tr')).map(tr => \
         [tr.dataset.settlement, tr.cells[6].textContent, tr.className])",
    )
    .await;
    let shown: Vec<(String, String, String)> = serde_json::from_value(shown).unwrap();
    assert_eq!(shown, want);
    assert!(shown.iter().any(|s| s.0 == "H0002/H0002-20002" && s.2 == "reversed"));
    assert_eq!(office.facts.reversed["status"], "reversed");
    b.screenshot_full("cards-zh").await;

    switch_language(&b, "en").await;
    b.wait_for("#card-settlements", WAIT).await;
    assert_eq!(b.text("#card-eligibility").await, "Eligible");
    b.wait_text("#usage-h", "annual cap", WAIT).await;
    b.screenshot_full("cards-en").await;
    assert_page_clean(&b).await;
    b.close().await;
}

/// Edited through its form, a card changes as the API then answers it: a 400 names the wrong field next to its
/// input; a suspension asks first (cancel leaves the card active), then suspends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_page_edits_and_suspends_a_card_as_the_api_then_shows() {
    let office = office();
    let admin = office.admin();
    let card = "C100017";
    let b = signed_in(&office, ADMIN_USER, ADMIN_PASSWORD).await;
    b.goto(&office.url(&format!("/cards?card={card}"))).await;
    b.wait_for(&format!("#card-box[data-card=\"{card}\"]"), WAIT).await;

    b.click("#card-edit").await;
    b.wait_for("#card-form", WAIT).await;
    assert_page_clean(&b).await;
    // a validity ending before it starts: the gateway's 400 names valid_until, shown at its input
    b.fill("#card-f-valid_until", "2020-01-01").await;
    b.click("#card-save").await;
    b.wait_for("#card-form .field-error[data-for=\"valid_until\"]", WAIT).await;
    assert_eq!(b.attr("#card-f-valid_until", "aria-invalid").await.as_deref(), Some("true"));
    let unchanged = admin.get(&format!("/admin/v1/cardholders/{card}")).await;
    assert_eq!(unchanged.body["valid_until"], format!("{}-12-31", this_year() + 1));

    let until = format!("{}-06-30", this_year() + 1);
    b.fill("#card-f-valid_until", &until).await;
    b.fill("#card-f-community", "二龙路社区").await;
    b.fill("#card-f-tags", "elderly_80, disabled").await;
    b.click("#card-save").await;
    b.wait_for("#card-saved", WAIT).await;
    let after = admin.get(&format!("/admin/v1/cardholders/{card}")).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body["community"], "二龙路社区");
    assert_eq!(after.body["tags"], json!(["elderly_80", "disabled"]));
    assert_eq!(after.body["valid_until"], until);
    assert_eq!(after.body["street"], STREET_A, "the street is kept");
    assert!(b.text("#card-facts").await.contains("二龙路社区"));

    // suspend: cancel first, then confirm
    b.click("#card-suspend").await;
    b.wait_for("#confirm-dialog", WAIT).await;
    b.click("#confirm-cancel").await;
    assert_eq!(admin.get(&format!("/admin/v1/cardholders/{card}")).await.body["status"], "active");
    b.click("#card-suspend").await;
    b.wait_for("#confirm-dialog", WAIT).await;
    b.click("#confirm-ok").await;
    b.wait_text("#card-eligibility", "已暂停", WAIT).await;
    assert_eq!(admin.get(&format!("/admin/v1/cardholders/{card}")).await.body["status"], "suspended");
    assert!(!b.exists("#card-suspend").await, "a suspended card has no suspend button");
    assert_page_clean(&b).await;
    b.close().await;
}

/// An import file goes up with its progress shown; a wrong line is listed with its line number and reason, the
/// others are stored. A CSV file keeps its own line numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_import_lists_the_rejected_lines_by_number() {
    let office = office();
    let admin = office.admin();
    let dir = tempfile::tempdir().unwrap();
    let y = this_year();
    let ndjson = dir.path().join("新增救助对象.ndjson");
    let line = |id: &str, status: &str| {
        format!(
            "{{\"card_id\":\"{id}\",\"category\":\"dibao\",\"valid_from\":\"{y}-01-01\",\"valid_until\":\"{y}-12-31\",\
             \"status\":\"{status}\",\"tags\":[],\"street\":\"{STREET_B}\",\"community\":\"月坛社区\"}}\n"
        )
    };
    let text =
        [line("C200001", "active"), line("C200002", "active"), line("C200003", "closed"), line("C200004", "active")]
            .concat();
    std::fs::write(&ndjson, text).unwrap();

    let b = signed_in(&office, ADMIN_USER, ADMIN_PASSWORD).await;
    b.goto(&office.url("/cards")).await;
    b.upload("#import-file", &ndjson).await;
    b.click("#import-start").await;
    b.wait_for("#import-summary", Duration::from_secs(20)).await;
    assert_eq!(b.attr("#import-summary", "data-imported").await.as_deref(), Some("3"));
    assert_eq!(b.attr("#import-summary", "data-rejected").await.as_deref(), Some("1"));
    let rejected =
        js(&b, "return Array.from(document.querySelectorAll('#import-rejected tbody tr')).map(tr => tr.dataset.line)")
            .await;
    assert_eq!(rejected, json!(["3"]));
    assert!(b.text("#import-rejected").await.contains("closed"));
    assert_eq!(js(&b, "return document.getElementById('import-progress').value").await, json!(100));
    assert_eq!(admin.get("/admin/v1/cardholders/C200004").await.status, 200);
    assert_eq!(admin.get("/admin/v1/cardholders/C200003").await.status, 404);
    b.screenshot_full("cards-import-zh").await;

    // CSV: line 3 has too few fields (refused in the page), line 5 a bad date (refused by the gateway)
    let csv = dir.path().join("cards.csv");
    std::fs::write(
        &csv,
        format!(
            "card_id,category,valid_from,valid_until,status,tags,street,community\n\
             C200011,tekun,{y}-01-01,{y}-12-31,active,disabled,{STREET_A},丰盛社区\n\
             C200012,dibao,{y}-01-01\n\
             C200013,low_income,{y}-01-01,{y}-12-31,active,elderly_80;disabled,{STREET_A},二龙路社区\n\
             C200014,dibao,{y}-02-30,{y}-12-31,active,,{STREET_A},丰盛社区\n"
        ),
    )
    .unwrap();
    b.upload("#import-file", &csv).await;
    b.click("#import-start").await;
    b.wait_text("#import-summary", "2", Duration::from_secs(20)).await;
    assert_eq!(b.attr("#import-summary", "data-imported").await.as_deref(), Some("2"));
    let rejected =
        js(&b, "return Array.from(document.querySelectorAll('#import-rejected tbody tr')).map(tr => tr.dataset.line)")
            .await;
    assert_eq!(rejected, json!(["3", "5"]));
    let stored = admin.get("/admin/v1/cardholders/C200013").await;
    assert_eq!(stored.body["tags"], json!(["elderly_80", "disabled"]), "{}", stored.body);
    assert_eq!(stored.body["community"], "二龙路社区");
    assert_page_clean(&b).await;
    b.close().await;
}

/// A street account's console: two pages in its navigation, its own street's cards, another street's card shown
/// exactly as a card that does not exist, the Today page forbidden, and its report only its street's (as the
/// street's certificate reads it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn street_account_sees_its_street_only() {
    let office = office();
    let b = signed_in(&office, STREET_USER, STREET_PASSWORD).await;
    b.wait_url("/cards", WAIT).await;
    let nav = js(&b, "return Array.from(document.querySelectorAll('header nav a')).map(a => a.id)").await;
    assert_eq!(nav, json!(["nav-cards", "nav-reports"]));

    b.fill("#card-id", SHOWN_CARD).await;
    b.click("#card-find").await;
    b.wait_for(&format!("#card-box[data-card=\"{SHOWN_CARD}\"]"), WAIT).await;
    b.wait_for("#card-settlements", WAIT).await;

    b.fill("#card-id", "C999999").await;
    b.click("#card-find").await;
    let missing = b.wait_text("#card-notfound", "C999999", WAIT).await;
    let missing_code = b.attr("#card-notfound", "data-code").await;
    b.fill("#card-id", OTHER_STREET_CARD).await;
    b.click("#card-find").await;
    let other = b.wait_text("#card-notfound", OTHER_STREET_CARD, WAIT).await;
    assert_eq!(b.attr("#card-notfound", "data-code").await, missing_code);
    assert_eq!(missing_code.as_deref(), Some("card_not_found"));
    assert_eq!(other.replace(OTHER_STREET_CARD, "C999999"), missing, "another street's card reads as a missing one");
    assert!(!b.exists("#card-create").await, "a street account creates no card from here");
    assert!(!b.exists("#card-box").await);
    b.screenshot("cards-street-notfound-zh").await;

    // the report: only its street, equal to what the street's certificate reads
    b.goto(&office.url("/reports")).await;
    b.wait_for("#rep-total-relief", WAIT).await;
    let t = today();
    let q = format!("from={}&to={t}&by=street", t.with_day(1).unwrap());
    let api = office.stack.gw.client("xc-jinrongjie").get(&format!("/admin/v1/reports/relief?{q}")).await;
    assert_eq!(api.status, 200, "{}", api.body);
    assert_eq!(b.attr("#rep-total-relief", "data-fen").await, Some(api.body["total"]["relief_fen"].to_string()));
    let keys =
        js(&b, "return Array.from(document.querySelectorAll('#rep-table tbody tr')).map(tr => tr.dataset.key)").await;
    assert_eq!(keys, json!([STREET_A]));

    b.goto(&office.url("/today")).await;
    b.wait_for("body[data-page=\"forbidden\"]", WAIT).await;
    assert_eq!(b.text("main h1").await, "无权访问");
    assert_page_clean(&b).await;
    b.close().await;
}

// ---- Clearing ----------------------------------------------------------------------------------------------------

/// The statements as the API lists them; one created, confirmed and paid through the page, each after a
/// confirmation, ending as the API then answers it; a wrong payment reference named at its input; the JSON and
/// CSV downloads made in the page say what the statement says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_page_creates_confirms_and_pays_a_statement() {
    let office = office();
    let admin = office.admin();
    let period = last_month();
    let b = signed_in(&office, ADMIN_USER, ADMIN_PASSWORD).await;
    b.goto(&office.url("/clearing")).await;
    b.wait_for("#clr-table", WAIT).await;

    let api = admin.get("/admin/v1/clearings").await;
    assert_eq!(api.status, 200);
    let listed = api.body["clearings"].as_array().unwrap().clone();
    let shown = js(&b, "return Array.from(document.querySelectorAll('#clr-table tbody tr')).map(tr => \
                        [tr.dataset.clearing, tr.querySelector('[data-fen]').dataset.fen, tr.querySelector('[data-status]').dataset.status])").await;
    let shown: Vec<(String, String, String)> = serde_json::from_value(shown).unwrap();
    let want: Vec<(String, String, String)> = listed
        .iter()
        .map(|c| {
            (
                c["clearing_id"].as_str().unwrap().into(),
                c["relief_fen"].to_string(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(shown, want);
    let sum: i64 = listed.iter().map(|c| c["relief_fen"].as_i64().unwrap()).sum();
    assert_eq!(b.attr("#clr-total-relief", "data-fen").await, Some(sum.to_string()));

    // create last month's statement of H0004
    let id = format!("cl_{period}_H0004");
    b.fill("#clr-c-hospital", "H0004").await;
    b.click("#clr-create-submit").await;
    b.wait_for("#confirm-dialog", WAIT).await;
    assert!(b.text("#confirm-body").await.contains("H0004"));
    b.click("#confirm-ok").await;
    let row = format!("#clr-table tr[data-clearing=\"{id}\"]");
    b.wait_for(&row, WAIT).await;
    let created = admin.get(&format!("/admin/v1/clearings?period={period}&hospital_id=H0004")).await;
    let statement = created.body["clearings"][0].clone();
    assert_eq!(statement["status"], "draft");
    assert!(statement["relief_fen"].as_i64().unwrap() > 0, "{statement}");
    assert_eq!(b.attr(&format!("{row} [data-fen]"), "data-fen").await, Some(statement["relief_fen"].to_string()));
    assert_eq!(b.text(&format!("{row} [data-fen]")).await, yuan(statement["relief_fen"].as_i64().unwrap()));

    // downloads: the statement's JSON, and its CSV rows with the total
    capture_downloads(&b).await;
    b.click(&format!("{row} button[data-action=\"json\"]")).await;
    let downloaded: Value = serde_json::from_str(&last_download(&b).await).unwrap();
    assert_eq!(downloaded, statement);
    b.click(&format!("{row} button[data-action=\"csv\"]")).await;
    let csv = last_download(&b).await;
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "clearing_id,hospital_id,period,status,program,program_name,settled_count,reversed_count,relief_fen,relief_yuan");
    let total = lines.last().unwrap();
    assert_eq!(
        *total,
        format!(
            "{id},H0004,{period},draft,total,,{},{},{},{}",
            statement["settled_count"],
            statement["reversed_count"],
            statement["relief_fen"],
            yuan(statement["relief_fen"].as_i64().unwrap()).replace(',', "")
        )
    );
    let by_program = statement["by_program"].as_object().unwrap();
    assert_eq!(lines.len(), 2 + by_program.len());
    for (p, fen) in by_program {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{id},H0004,{period},draft,{p},")) && l.contains(&format!(",{fen},"))),
            "{csv}"
        );
    }

    // confirm it
    b.click(&format!("{row} button[data-action=\"confirm\"]")).await;
    b.wait_for("#confirm-dialog", WAIT).await;
    b.click("#confirm-ok").await;
    b.wait_for(&format!("{row} [data-status=\"confirmed\"]"), WAIT).await;
    let confirmed = admin.get(&format!("/admin/v1/clearings?period={period}&hospital_id=H0004")).await;
    assert_eq!(confirmed.body["clearings"][0]["status"], "confirmed");

    // pay it: a wrong reference first
    b.click(&format!("{row} button[data-action=\"pay\"]")).await;
    b.wait_for("#clr-pay", WAIT).await;
    assert_page_clean(&b).await;
    b.fill("#clr-pay-ref", "银行 回单").await;
    b.click("#clr-pay-submit").await;
    b.wait_for("#confirm-dialog", WAIT).await;
    b.click("#confirm-ok").await;
    b.wait_for("#clr-pay .field-error[data-for=\"payment_ref\"]", WAIT).await;
    assert_eq!(
        admin.get(&format!("/admin/v1/clearings?period={period}&hospital_id=H0004")).await.body["clearings"][0]
            ["status"],
        "confirmed"
    );
    let reference = format!("PAY-{period}-H0004");
    b.fill("#clr-pay-ref", &reference).await;
    b.click("#clr-pay-submit").await;
    b.wait_for("#confirm-dialog", WAIT).await;
    b.click("#confirm-ok").await;
    b.wait_for(&format!("{row} [data-status=\"paid\"]"), WAIT).await;
    let paid = admin.get(&format!("/admin/v1/clearings?period={period}&hospital_id=H0004")).await;
    let paid = &paid.body["clearings"][0];
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payment_ref"], reference.as_str());
    assert_eq!(paid["paid_at"], today().to_string());
    assert_eq!(paid["relief_fen"], statement["relief_fen"], "frozen at confirmation");

    // this month cannot be confirmed: the API's 409 is shown
    let current = format!("cl_{:04}-{:02}_H0001", today().year(), today().month());
    b.click(&format!("#clr-table tr[data-clearing=\"{current}\"] button[data-action=\"confirm\"]")).await;
    b.wait_for("#confirm-dialog", WAIT).await;
    b.click("#confirm-ok").await;
    b.wait_for("#clr-message [data-code=\"period_not_ended\"]", WAIT).await;

    b.goto(&office.url("/clearing")).await;
    b.wait_for("#clr-table", WAIT).await;
    b.screenshot_full("clearing-zh").await;
    switch_language(&b, "en").await;
    b.wait_for("#clr-table", WAIT).await;
    b.wait_text("#clr-list-h", "Statements", WAIT).await;
    b.screenshot_full("clearing-en").await;
    assert_page_clean(&b).await;
    b.close().await;
}

// ---- Reports -----------------------------------------------------------------------------------------------------

/// This month by street: the table's rows and total equal the API's report fen for fen, a chart is drawn, and the
/// CSV link is the API's CSV. Last month by day: a line over every day. At 1920 wide too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_page_total_equals_the_api() {
    let office = office();
    let admin = office.admin();
    let t = today();
    let from = t.with_day(1).unwrap();
    let b = signed_in(&office, ADMIN_USER, ADMIN_PASSWORD).await;
    b.goto(&office.url("/reports")).await;
    b.wait_for("#rep-total-relief", WAIT).await;
    b.wait_for("#rep-chart canvas", WAIT).await;
    assert_eq!(js(&b, "return document.getElementById('rep-from').value").await, json!(from.to_string()));
    assert_eq!(js(&b, "return document.getElementById('rep-to').value").await, json!(t.to_string()));
    // a day that does not exist is named at its field before anything is asked
    b.fill("#rep-from", &format!("{}-02-30", t.year())).await;
    b.click("#rep-run").await;
    b.wait_for("#rep-form .field-error[data-for=\"from\"]", WAIT).await;
    b.fill("#rep-from", &from.to_string()).await;
    b.click("#rep-run").await;
    wait_js(
        &b,
        "the report again",
        "return !document.querySelector('#rep-form .field-error') && !!document.getElementById('rep-total-relief')",
    )
    .await;
    b.wait_for("#rep-chart canvas", WAIT).await;
    assert_page_clean(&b).await;

    let api = admin.get(&format!("/admin/v1/reports/relief?from={from}&to={t}&by=street")).await;
    assert_eq!(api.status, 200, "{}", api.body);
    let total = api.body["total"]["relief_fen"].as_i64().unwrap();
    assert_eq!(b.attr("#rep-total-relief", "data-fen").await, Some(total.to_string()));
    assert_eq!(b.text("#rep-total-relief").await, yuan(total));
    // today's settlements are in it
    let today_relief: i64 = office.facts.settlements.iter().map(|s| s["relief_fen"].as_i64().unwrap()).sum::<i64>()
        - office.facts.reversed["relief_fen"].as_i64().unwrap();
    assert!(total > today_relief, "this month holds today and the day(s) before");
    let rows = js(
        &b,
        "return Array.from(document.querySelectorAll('#rep-table tbody tr')).map(tr => \
                       [tr.dataset.key, tr.querySelector('[data-fen]').dataset.fen])",
    )
    .await;
    let rows: Vec<(String, String)> = serde_json::from_value(rows).unwrap();
    let want: Vec<(String, String)> = api.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().unwrap().to_string(), r["relief_fen"].to_string()))
        .collect();
    assert_eq!(rows, want);
    assert_eq!(rows.len(), 2, "two streets");

    // the CSV link is the API's CSV, fetched with the session cookie
    let href = b.attr("#rep-csv", "href").await.unwrap();
    assert!(href.ends_with(&format!("/api/admin/v1/reports/relief?from={from}&to={t}&by=street&format=csv")), "{href}");
    let csv = b.execute(&format!("return fetch('{href}').then(r => r.text())")).await;
    let api_csv = admin.get(&format!("/admin/v1/reports/relief?from={from}&to={t}&by=street&format=csv")).await;
    assert_eq!(csv.as_str().unwrap().as_bytes(), &api_csv.raw[..]);
    b.screenshot_full("reports-zh").await;

    switch_language(&b, "en").await;
    b.wait_for("#rep-chart canvas", WAIT).await;
    b.wait_text("#rep-t-h", "Figures", WAIT).await;
    b.screenshot_full("reports-en").await;
    switch_language(&b, "zh").await;

    // last month, by day: a line over every day, the total still the API's
    b.click("#rep-last-month").await;
    b.execute("var s = document.getElementById('rep-by'); s.value = 'day'; s.dispatchEvent(new Event('change')); return true;").await;
    wait_js(&b, "the day report", "var o = document.getElementById('rep-out'); return !!o && o.dataset.by === 'day' && !!document.querySelector('#rep-chart canvas')").await;
    let last = t.with_day(1).unwrap().pred_opt().unwrap();
    let first = last.with_day(1).unwrap();
    let api = admin.get(&format!("/admin/v1/reports/relief?from={first}&to={last}&by=day")).await;
    assert_eq!(b.attr("#rep-total-relief", "data-fen").await, Some(api.body["total"]["relief_fen"].to_string()));
    let days = api.body["rows"].as_array().unwrap().len();
    assert!(days >= 18, "weekdays of last month: {days}");
    b.screenshot_full("reports-day-zh").await;

    // by program, at 1920 wide
    b.set_viewport(1920, 1080).await;
    b.goto(&office.url("/reports?by=program")).await;
    b.wait_for("#rep-chart canvas", WAIT).await;
    let api = admin.get(&format!("/admin/v1/reports/relief?from={from}&to={t}&by=program")).await;
    assert_eq!(b.attr("#rep-total-relief", "data-fen").await, Some(api.body["total"]["relief_fen"].to_string()));
    assert!(b.text("#rep-table").await.contains("医疗救助"));
    b.screenshot("reports-program-1920-zh").await;
    assert_page_clean(&b).await;
    b.close().await;
}

// ---- Audit -------------------------------------------------------------------------------------------------------

/// The audit page lists the console account's own actions — its sign-in and a card saved through the Cardholders
/// page — with role console; pages follow each other with "load more" as the API's cursor says; the chain's
/// verification banner says it is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_page_lists_the_accounts_own_actions_and_the_chain_verifies() {
    let office = office();
    let admin = office.admin();
    let card = "C100010";
    let b = signed_in(&office, ADMIN_USER, ADMIN_PASSWORD).await;
    b.goto(&office.url(&format!("/cards?card={card}"))).await;
    b.wait_for(&format!("#card-box[data-card=\"{card}\"]"), WAIT).await;
    b.click("#card-edit").await;
    b.fill("#card-f-community", "三里河社区").await;
    b.click("#card-save").await;
    b.wait_for("#card-saved", WAIT).await;
    assert_eq!(admin.get(&format!("/admin/v1/cardholders/{card}")).await.body["community"], "三里河社区");

    b.goto(&office.url("/audit")).await;
    b.wait_for("#audit-verify[data-ok=\"true\"]", WAIT).await;
    assert!(b.text("#audit-verify").await.contains("审计链校验通过"), "{}", b.text("#audit-verify").await);
    b.wait_for("#audit-table tbody tr", WAIT).await;

    b.fill("#audit-actor", ADMIN_USER).await;
    b.click("#audit-search").await;
    wait_js(
        &b,
        "the account's entries",
        "return document.querySelectorAll('#audit-table tbody tr[data-action=\"cardholder.put\"]').length > 0",
    )
    .await;
    let rows = js(&b, "return Array.from(document.querySelectorAll('#audit-table tbody tr')).map(tr => \
                       [tr.dataset.seq, tr.dataset.action, tr.dataset.role, tr.cells[2].textContent, tr.cells[5].textContent])").await;
    let rows: Vec<(String, String, String, String, String)> = serde_json::from_value(rows).unwrap();
    b.screenshot("audit-zh").await;
    assert!(rows.iter().all(|r| r.3 == ADMIN_USER && r.2 == "console"), "{rows:?}");
    assert!(rows.iter().any(|r| r.1 == "console.login" && r.4 == ADMIN_USER), "{rows:?}");
    assert!(rows.iter().any(|r| r.1 == "cardholder.put" && r.4 == card), "{rows:?}");

    // every entry, 20 a page: "load more" shows the next page after the API's cursor, in the API's order
    b.fill("#audit-actor", "").await;
    b.execute("document.getElementById('audit-limit').value = '20'; return true;").await;
    b.click("#audit-search").await;
    wait_js(&b, "a first page of 20", "return document.querySelectorAll('#audit-table tbody tr').length === 20").await;
    b.click("#audit-more").await;
    wait_js(&b, "a second page", "return document.querySelectorAll('#audit-table tbody tr').length > 20").await;
    let shown = js(
        &b,
        "return Array.from(document.querySelectorAll('#audit-table tbody tr')).map(tr => Number(tr.dataset.seq))",
    )
    .await;
    let shown: Vec<u64> = serde_json::from_value(shown).unwrap();
    let from = today().checked_sub_days(Days::new(6)).unwrap();
    let api = admin.get(&format!("/admin/v1/audit?from={from}&limit=10000")).await;
    assert_eq!(api.status, 200);
    let all: Vec<u64> = String::from_utf8_lossy(&api.raw)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert!(all.len() >= shown.len() && all[..shown.len()] == shown[..], "page {shown:?}\napi {all:?}");
    let actions: BTreeMap<String, usize> =
        String::from_utf8_lossy(&api.raw).lines().fold(BTreeMap::new(), |mut m, l| {
            *m.entry(serde_json::from_str::<Value>(l).unwrap()["action"].as_str().unwrap().to_string()).or_default() +=
                1;
            m
        });
    for a in [
        "ruleset.publish",
        "cardholder.import",
        "cardholder.put",
        "pool.contribution",
        "clearing.create",
        "user.add",
        "console.login",
    ] {
        assert!(actions.contains_key(a), "{a} in {actions:?}");
    }

    switch_language(&b, "en").await;
    b.wait_for("#audit-verify[data-ok=\"true\"]", WAIT).await;
    assert!(b.text("#audit-verify").await.contains("Audit chain verified"));
    b.wait_for("#audit-table tbody tr", WAIT).await;
    b.screenshot("audit-en").await;
    switch_language(&b, "zh").await;

    // an entry changed in Redis: the banner names its seq; put back, the chain verifies again
    let redis = &office.stack.redis;
    let stored = redis.cli(&["HGET", "{sg}:audit", "3"]).trim_end_matches('\n').to_string();
    assert!(stored.contains("\"seq\":3"), "{stored}");
    let forged = stored.replacen("relief-office", "relief-0ffice", 1);
    assert_ne!(forged, stored);
    redis.cli(&["HSET", "{sg}:audit", "3", &forged]);
    b.click("#audit-verify-again").await;
    b.wait_for("#audit-verify[data-ok=\"false\"]", WAIT).await;
    assert_eq!(b.attr("#audit-verify", "data-broken-seq").await.as_deref(), Some("3"));
    assert!(b.text("#audit-verify").await.contains("第 3 条记录处断裂"), "{}", b.text("#audit-verify").await);
    b.screenshot("audit-broken-zh").await;
    redis.cli(&["HSET", "{sg}:audit", "3", &stored]);
    b.click("#audit-verify-again").await;
    b.wait_for("#audit-verify[data-ok=\"true\"]", WAIT).await;
    assert_page_clean(&b).await;
    b.close().await;
}

// ---- the pages' strings (no browser) -----------------------------------------------------------------------------

/// The `"key":` names of one language's block of an `SG.strings({zh: {...}, en: {...}})` call in `text`.
fn string_keys(text: &str, lang: &str) -> std::collections::BTreeSet<String> {
    let call = text.find("SG.strings({").expect("an SG.strings call");
    let text = &text[call..];
    let start = text.find(&format!("{lang}: {{")).unwrap_or_else(|| panic!("no {lang} block"));
    let block = &text[start..];
    let end = block.find("\n  },").or_else(|| block.find("},")).expect("the block's end");
    let key = regex_automata::meta::Regex::new(r#""([A-Za-z0-9_.]+)"\s*:"#).unwrap();
    key.captures_iter(&block[..end]).map(|c| block[c.get_group(1).unwrap().range()].to_string()).collect()
}

/// Each page of this branch names the same string keys in Chinese and English, and every key it asks `SG.t` for
/// by its full name is one of its own, of console.js's `console-fe2` block or of the common `i18n.json`.
#[test]
fn every_page_string_is_there_in_both_languages() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/web");
    let console = std::fs::read_to_string(web.join("console.js")).unwrap();
    let block = &console[console.find("// ---- console-fe2 ----").expect("the console-fe2 block")..];
    let (shared_zh, shared_en) = (string_keys(block, "zh"), string_keys(block, "en"));
    assert_eq!(shared_zh, shared_en, "console.js's console-fe2 strings");
    let common: Value = serde_json::from_str(&std::fs::read_to_string(web.join("i18n.json")).unwrap()).unwrap();
    let used = regex_automata::meta::Regex::new(r#"SG\.t\("([A-Za-z0-9_.]+)"\s*[,)]"#).unwrap();
    for page in ["cards", "clearing", "reports", "audit"] {
        let text = std::fs::read_to_string(web.join(format!("pages/{page}.js"))).unwrap();
        let (zh, en) = (string_keys(&text, "zh"), string_keys(&text, "en"));
        assert!(zh.len() > 10, "{page}: {zh:?}");
        assert_eq!(zh, en, "{page}.js: the same keys in both languages");
        for c in used.captures_iter(&text) {
            let key = &text[c.get_group(1).unwrap().range()];
            let known = zh.contains(key) || shared_zh.contains(key) || common["zh"].get(key).is_some();
            assert!(known, "{page}.js asks for the string {key:?}, which nothing defines");
        }
    }
}
