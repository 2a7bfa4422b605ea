//! Relief reports (`GET /admin/v1/reports/relief`, docs/API.md "Reports") over the real `settlegate serve` binary
//! and a private Redis: settlements of several hospitals, categories, streets, communities and programs, with
//! reversals, reported right after they are acknowledged; every `by=` equals what the reconciliation detail of the
//! same days adds up to (`GET /v1/reconciliation/settlements?date=` per hospital, the hospitals from
//! `GET /admin/v1/reconciliation?date=`), fen for fen, with `cards` distinct and exact; the CSV says the same; bad
//! queries are 400 naming the field. In process: the street filter, and concurrent aggregators counting each line
//! once.
//!
//! Yesterday cannot be settled through the API (settlements are stamped with the gateway's clock), so its lines are
//! written straight into Redis in the exact format of `store::dayline::encode_event`, as the scripts write them.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Days, NaiveDate};
use common::app::connect_app;
use common::*;
use serde_json::{json, Value};
use settlegate::app::{ReportLimits, ReportRequest};
use settlegate::domain::report::ReportBy;
use settlegate::domain::split::Payment;
use settlegate::store::dayline::{encode_event, DayEvent, LineContext, ProgramFen};

/// (card, category, street, community): "" = the card has none.
const CARDS: [(&str, &str, &str, &str); 7] = [
    ("C01", "dibao", "s1", "c1a"),
    ("C02", "dibao", "s1", "c1b"),
    ("C03", "tekun", "s1", "c1a"),
    ("C04", "low_income", "s2", "c2a"),
    ("C05", "dibao", "s2", "c2a"),
    ("C06", "tekun", "", ""),
    ("C07", "dibao", "s2", "c2b"),
];

/// Cards of yesterday's lines (written straight into Redis): (card, category, street, community).
const PAST_CARDS: [(&str, &str, &str, &str); 2] = [("C09", "dibao", "s1", "c1a"), ("C10", "", "", "")];

/// One line as the settle (or reverse) script writes it: `payments` (program, fen) unsigned as recorded.
fn line(
    card: (&str, &str, &str, &str),
    day: NaiveDate,
    reversal: bool,
    hsid: &str,
    payments: &[(&str, i64)],
) -> String {
    let relief: i64 = payments.iter().map(|p| p.1).sum();
    let sign = if reversal { -1 } else { 1 };
    let event = DayEvent {
        reversal,
        at: format!("{day}T10:00:00.000+08:00"),
        settlement_id: format!("s2_test-{hsid}"),
        hospital_settlement_id: hsid.to_string(),
        card_id: card.0.to_string(),
        total_fen: sign * (relief + 10_000),
        insurance_fen: 0,
        relief_fen: sign * relief,
        patient_fen: sign * 10_000,
        by_program: payments.iter().map(|(p, fen)| ProgramFen { program: p.to_string(), fen: sign * fen }).collect(),
        context: LineContext {
            category: card.1.into(),
            street: card.2.into(),
            community: card.3.into(),
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
    assert!(redis.cli(&args).trim().parse::<u64>().is_ok());
    redis.cli(&["SADD", &format!("{{sg}}:recon:{day}:hospitals"), hospital]);
}

/// A row being added up from detail lines.
#[derive(Default)]
struct Expect {
    settled: i64,
    reversed: i64,
    cards: BTreeSet<String>,
    relief: i64,
    by_program: BTreeMap<String, i64>,
}

impl Expect {
    fn add(&mut self, settled: bool, card: &str, relief: i64, programs: &[(String, i64)]) {
        if settled {
            self.settled += 1;
            self.cards.insert(card.to_string());
        } else {
            self.reversed += 1;
        }
        self.relief += relief;
        for (p, fen) in programs {
            *self.by_program.entry(p.clone()).or_default() += fen;
        }
    }

    fn json(&self) -> Value {
        json!({"settled_count": self.settled, "reversed_count": self.reversed, "cards": self.cards.len(),
               "relief_fen": self.relief, "by_program": self.by_program})
    }
}

/// The report `by` should give, computed from the reconciliation detail of `days` (read as each hospital).
async fn expected_from_detail(gw: &Gateway, admin: &Client, days: &[NaiveDate], by: &str) -> Value {
    let context: HashMap<&str, (&str, &str, &str)> =
        CARDS.iter().chain(&PAST_CARDS).map(|c| (c.0, (c.1, c.2, c.3))).collect();
    let mut rows: BTreeMap<String, Expect> = BTreeMap::new();
    let mut total = Expect::default();
    for day in days {
        let r = admin.get(&format!("/admin/v1/reconciliation?date={day}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for h in r.body["hospitals"].as_array().unwrap() {
            let hospital = h["hospital_id"].as_str().unwrap();
            let detail = gw.client(hospital).get(&format!("/v1/reconciliation/settlements?date={day}")).await;
            assert_eq!(detail.status, 200);
            for l in std::str::from_utf8(&detail.raw).unwrap().lines() {
                let l: Value = serde_json::from_str(l).unwrap();
                let card = l["card_id"].as_str().unwrap();
                let (category, street, community) = context[card];
                let settled = l["event"] == "settled";
                let relief = l["relief_fen"].as_i64().unwrap();
                let programs: Vec<(String, i64)> = l["by_program"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(p, fen)| (p.clone(), fen.as_i64().unwrap()))
                    .collect();
                total.add(settled, card, relief, &programs);
                let key = match by {
                    "street" => street.to_string(),
                    "community" => community.to_string(),
                    "category" => category.to_string(),
                    "hospital" => hospital.to_string(),
                    "day" => day.to_string(),
                    "program" => {
                        for (p, fen) in &programs {
                            rows.entry(p.clone()).or_default().add(settled, card, *fen, &[(p.clone(), *fen)]);
                        }
                        continue;
                    }
                    other => panic!("{other}"),
                };
                rows.entry(key).or_default().add(settled, card, relief, &programs);
            }
        }
    }
    let rows: Vec<Value> = rows
        .iter()
        .map(|(k, e)| {
            let mut v = e.json();
            v["key"] = json!(k);
            v
        })
        .collect();
    json!({"from": days[0].to_string(), "to": days[days.len() - 1].to_string(), "by": by, "rows": rows,
           "total": total.json()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_equal_the_reconciliation_detail_for_every_grouping() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    let cards: Vec<Value> = CARDS
        .iter()
        .map(|(id, category, street, community)| {
            let mut c = cardholder(id, category);
            if !street.is_empty() {
                c["street"] = json!(street);
                c["community"] = json!(community);
            }
            c
        })
        .collect();
    seed(&admin, &[worked_ruleset()], &cards).await;

    // yesterday: written as the scripts would have (a card since gone, a line of a card without labels)
    let today = today();
    let yesterday = today - Days::new(1);
    push_lines(
        &stack.redis,
        yesterday,
        "H0001",
        &[
            line(PAST_CARDS[0], yesterday, false, "y1", &[("medical_assistance", 1000), ("charity", 200)]),
            line(PAST_CARDS[0], yesterday, false, "y2", &[("medical_assistance", 50)]),
            line(PAST_CARDS[0], yesterday, true, "y2", &[("medical_assistance", 50)]),
        ],
    );
    push_lines(&stack.redis, yesterday, "H0004", &[line(PAST_CARDS[1], yesterday, false, "y3", &[])]);

    // today, through the API: C01 settles three times (distinct cards), two settlements are reversed
    let bills = [
        ("H0001", "a1", "C01", 40_000),
        ("H0001", "a2", "C02", 25_000),
        ("H0001", "a3", "C03", 60_000),
        ("H0001", "a4", "C01", 10_000),
        ("H0001", "a5", "C04", 300_000),
        ("H0002", "b1", "C05", 33_333),
        ("H0002", "b2", "C06", 12_345),
        ("H0002", "b3", "C01", 7_000),
        ("H0002", "b4", "C07", 90_000),
        ("H0003", "c1", "C03", 5_000),
        ("H0003", "c2", "C05", 1_000),
    ];
    for (h, hsid, card, in_scope) in bills {
        let r = gw.client(h).post("/v1/settlements", &outpatient_bill(hsid, card, in_scope, 2_000)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    for (h, hsid, card) in [("H0001", "a2", "C02"), ("H0002", "b2", "C06")] {
        let r = gw
            .client(h)
            .post("/v1/reversals", &json!({"card_id": card, "hospital_settlement_id": hsid, "reason": "t"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // reported at once, every grouping, over today alone and over both days
    let both = [yesterday, today];
    for days in [&both[1..], &both[..]] {
        for by in ["street", "community", "category", "program", "hospital", "day"] {
            let (from, to) = (days[0], days[days.len() - 1]);
            let r = admin.get(&format!("/admin/v1/reports/relief?from={from}&to={to}&by={by}")).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.body, expected_from_detail(gw, &admin, days, by).await, "by={by} {from}..{to}");
            if by != "program" {
                for field in ["settled_count", "reversed_count", "relief_fen"] {
                    let sum: i64 =
                        r.body["rows"].as_array().unwrap().iter().map(|row| row[field].as_i64().unwrap()).sum();
                    assert_eq!(sum, r.body["total"][field].as_i64().unwrap(), "by={by} {field}");
                }
            }

            // the CSV says the same
            let csv = admin.get(&format!("/admin/v1/reports/relief?from={from}&to={to}&by={by}&format=csv")).await;
            assert_eq!(csv.status, 200);
            assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
            let mut reader = csv::Reader::from_reader(&csv.raw[..]);
            let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
            assert_eq!(header, ["row", "key", "settled_count", "reversed_count", "cards", "relief_fen", "by_program"]);
            let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
            let mut want: Vec<(&str, &Value)> = r.body["rows"].as_array().unwrap().iter().map(|v| ("row", v)).collect();
            want.push(("total", &r.body["total"]));
            assert_eq!(records.len(), want.len());
            for (rec, (kind, v)) in records.iter().zip(want) {
                assert_eq!(&rec[0], kind);
                assert_eq!(&rec[1], v["key"].as_str().unwrap_or(""));
                for (i, f) in [(2, "settled_count"), (3, "reversed_count"), (4, "cards"), (5, "relief_fen")] {
                    assert_eq!(rec[i].parse::<i64>().unwrap(), v[f].as_i64().unwrap(), "{by} {f}");
                }
                let programs: Vec<String> =
                    v["by_program"].as_object().unwrap().iter().map(|(p, fen)| format!("{p}={fen}")).collect();
                assert_eq!(&rec[6], programs.join(";"));
            }
        }
    }

    // the figures themselves, not only their agreement: distinct cards, and today's totals as reconciliation has them
    let r = admin.get(&format!("/admin/v1/reports/relief?from={yesterday}&to={today}&by=street")).await;
    assert_eq!(r.body["total"]["cards"], 9, "{}", r.body);
    assert_eq!(
        (r.body["total"]["settled_count"].as_i64(), r.body["total"]["reversed_count"].as_i64()),
        (Some(14), Some(3))
    );
    let s1 = r.body["rows"].as_array().unwrap().iter().find(|row| row["key"] == "s1").unwrap();
    assert_eq!((s1["settled_count"].as_i64(), s1["cards"].as_i64()), (Some(8), Some(4)), "{s1}");
    let day = admin.get(&format!("/admin/v1/reconciliation?date={today}")).await;
    let relief: i64 =
        day.body["hospitals"].as_array().unwrap().iter().map(|h| h["net"]["relief_fen"].as_i64().unwrap()).sum();
    let r = admin.get(&format!("/admin/v1/reports/relief?from={today}&to={today}&by=hospital")).await;
    assert_eq!(r.body["total"]["relief_fen"].as_i64(), Some(relief));
    assert!(relief > 0);

    // a settlement right after a report is in the next one
    let r = gw.client("H0003").post("/v1/settlements", &outpatient_bill("c3", "C07", 8_000, 0)).await;
    assert_eq!(r.status, 201);
    let paid = r.body["relief_fen"].as_i64().unwrap();
    let after = admin.get(&format!("/admin/v1/reports/relief?from={today}&to={today}&by=hospital")).await;
    assert_eq!(after.body["total"]["relief_fen"].as_i64(), Some(relief + paid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_400_naming_the_field() {
    let stack = Stack::start("[limits]\nmax_report_days = 31\n");
    let admin = stack.gw.client(ADMIN);
    let base = "/admin/v1/reports/relief";
    for (query, field) in [
        ("to=2026-11-30&by=day", "from"),
        ("from=2026-11-01&by=day", "to"),
        ("from=2026-11-01&to=2026-11-30", "by"),
        ("from=2026-11-01&to=2026-11-30&by=ward", "by"),
        ("from=2026-11-1&to=2026-11-30&by=day", "from"),
        ("from=2026-11-01&to=2026-02-30&by=day", "to"),
        ("from=2026-11-30&to=2026-11-01&by=day", "to"),
        ("from=2026-11-01&to=2026-12-02&by=day", "to"),
        ("from=2026-11-01&to=2026-11-30&by=day&format=xml", "format"),
    ] {
        let r = admin.get(&format!("{base}?{query}")).await;
        assert_invalid(&r, field, query);
    }
    let r = admin.get(&format!("{base}?from=2026-11-01&to=2026-12-01&by=day")).await;
    assert_eq!(r.status, 200, "31 days are allowed: {}", r.body);
    assert_eq!(r.body["rows"], json!([]));
    // hospitals cannot read it
    let r = stack.gw.client("H0001").get(&format!("{base}?from=2026-11-01&to=2026-11-01&by=day")).await;
    assert_eq!(r.status, 403);
}

/// Lines of `n` settlements of one day over two streets and three hospitals, some reversed.
fn many_lines(day: NaiveDate, n: i64) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let street = if i % 3 == 0 { "s1" } else { "s2" };
            let card = format!("K{}", i % 97);
            let c = (card.as_str(), "dibao", street, "c");
            let hospital = format!("H{}", i % 3);
            let payments = [("medical_assistance", 100 + i), ("charity", i % 5)];
            (hospital, line(c, day, i % 11 == 0, &format!("m{i}"), &payments))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_street_filter_and_concurrent_aggregators() {
    let redis = Redis::start();
    let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let lines = many_lines(day, 600);
    for h in ["H0", "H1", "H2"] {
        let mine: Vec<String> = lines.iter().filter(|(x, _)| x == h).map(|(_, l)| l.clone()).collect();
        push_lines(&redis, day, h, &mine);
    }
    // four instances race, in small batches: every line counted once
    let apps: Vec<settlegate::app::App> = futures_util::future::join_all((0..4).map(|_| connect_app(&redis))).await;
    let days = vec![day.to_string()];
    let consumed = futures_util::future::join_all(apps.iter().map(|a| a.store.report_catch_up(&days, 7))).await;
    let consumed: u64 = consumed.into_iter().map(Result::unwrap).sum();
    assert_eq!(consumed, 600);
    assert_eq!(apps[0].store.report_catch_up(&days, 7).await.unwrap(), 0);

    let limits = ReportLimits { max_days: 366, batch_lines: 50 };
    let req = |by| ReportRequest { from: day, to: day, by };
    let all = apps[1].relief_report(&req(ReportBy::Street), None, &limits).await.unwrap();
    let settled = i64::try_from(lines.iter().enumerate().filter(|(i, _)| i % 11 != 0).count()).unwrap();
    assert_eq!((all.total.settled_count, all.total.reversed_count), (settled, 600 - settled));
    assert_eq!(all.total.cards, 97);
    for street in ["s1", "s2"] {
        let row = all.rows.iter().find(|r| r.key == street).unwrap();
        for by in ReportBy::ALL {
            let only = apps[2].relief_report(&req(by), Some(street), &limits).await.unwrap();
            let mut want = row.clone();
            want.key = String::new();
            assert_eq!(only.total, want, "{street} by {by:?}");
            if by == ReportBy::Street {
                assert_eq!(only.rows.len(), 1);
                assert_eq!(only.rows[0], *row);
            }
        }
    }
    let none = apps[3].relief_report(&req(ReportBy::Day), Some("s9"), &limits).await.unwrap();
    assert_eq!((none.rows.len(), none.total.settled_count, none.total.cards), (0, 0, 0));
}
