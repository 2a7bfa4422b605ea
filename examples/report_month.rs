//! Benchmark of relief reports (docs/BENCHMARKS.md "Relief reports"): one month of one million settlement lines,
//! written straight into a private Redis in the exact day-line format (`store::dayline::encode_event`), then
//! consumed by the report aggregator (timed, with Redis's own CPU time per line from `INFO commandstats`), then a
//! report of the whole month for every `by=` and for one street (timed, in process: the `App` call the HTTP
//! handler makes, without TLS and JSON rendering).
//!
//! `cargo run --release --offline --example report_month [-- LINES]` (needs `redis-server` on the PATH; it
//! starts its own on a free port, never 6379, and stops it at the end).
// the generator's arithmetic is on small counts and amounts (below 2^32)
#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use settlegate::app::{App, ReportLimits, ReportRequest};
use settlegate::domain::report::ReportBy;
use settlegate::domain::split::Payment;
use settlegate::rulebook::RulebookCache;
use settlegate::store::dayline::{encode_event, DayEvent, LineContext, ProgramFen};
use settlegate::store::keys;
use settlegate::store::link::Link;
use settlegate::store::Store;

const DAYS: u64 = 30;
const HOSPITALS: usize = 40;
const STREETS: usize = 20;
const COMMUNITIES_PER_STREET: usize = 10;
const CARDS: usize = 200_000;
const CATEGORIES: [&str; 5] = ["tekun", "dibao", "dibao_edge", "low_income", "illness_poverty"];
const PROGRAMS: [&str; 3] = ["medical_assistance", "critical_relief", "charity"];

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small deterministic generator (no dependency on `rand`).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn command_usec(info: &str, cmd: &str) -> u64 {
    info.lines()
        .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
        .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("usec=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let lines: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert_ne!(port, 6379);
    let dir = std::env::temp_dir().join(format!("sg-report-bench-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _server = Server(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH"),
    );
    let url = format!("redis://127.0.0.1:{port}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let link = Link::new(&url, Duration::from_secs(2), Duration::from_millis(250), 4096).unwrap();
    link.connect().await.expect("connect");
    let store = Arc::new(Store::new(link, Duration::from_millis(250)));
    let app = App::new(store.clone(), Arc::new(RulebookCache::default()), chrono_tz::Asia::Shanghai);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();

    // the month: `lines` lines spread evenly over 30 days and 40 hospitals, 3 % reversals
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let started = Instant::now();
    let mut rng = Lcg(7);
    let per_day = lines / DAYS as usize;
    for d in 0..DAYS {
        let day = first + Days::new(d);
        let mut by_hospital: Vec<Vec<String>> = vec![Vec::new(); HOSPITALS];
        for i in 0..per_day {
            let card = rng.next(CARDS);
            let street = card % STREETS;
            let community = (card / STREETS) % COMMUNITIES_PER_STREET;
            let reversal = rng.next(100) < 3;
            let n_programs = 1 + rng.next(PROGRAMS.len());
            let payments: Vec<Payment> = PROGRAMS[..n_programs]
                .iter()
                .map(|p| Payment {
                    program: p.to_string(),
                    paid_fen: 1000 + rng.next(500_000) as i64,
                    deductible_applied_fen: 0,
                    capped_by: None,
                })
                .collect();
            let relief: i64 = payments.iter().map(|p| p.paid_fen).sum();
            let sign = if reversal { -1 } else { 1 };
            let e = DayEvent {
                reversal,
                at: format!("{day}T10:00:00.000+08:00"),
                settlement_id: format!("s2_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA{i:08}"),
                hospital_settlement_id: format!("HIS-{day}-{i:08}"),
                card_id: format!("110101{card:012}"),
                total_fen: sign * (relief + 200_000),
                insurance_fen: sign * 100_000,
                relief_fen: sign * relief,
                patient_fen: sign * 100_000,
                by_program: payments
                    .iter()
                    .map(|p| ProgramFen { program: p.program.clone(), fen: sign * p.paid_fen })
                    .collect(),
                context: LineContext {
                    category: CATEGORIES[card % CATEGORIES.len()].into(),
                    street: format!("street{street:02}"),
                    community: format!("street{street:02}-c{community:02}"),
                    insurance_settlement_ref: format!("SETL{i:010}"),
                    operator_id: "cashier-07".into(),
                },
            };
            by_hospital[rng.next(HOSPITALS)].push(encode_event(&e, &payments));
        }
        for (h, list) in by_hospital.iter().enumerate() {
            let hospital = format!("H{h:04}");
            for chunk in list.chunks(2000) {
                let _: () = redis::pipe()
                    .cmd("RPUSH")
                    .arg(keys::recon_events(&day.to_string(), &hospital))
                    .arg(chunk)
                    .ignore()
                    .cmd("SADD")
                    .arg(keys::recon_hospitals(&day.to_string()))
                    .arg(&hospital)
                    .ignore()
                    .query_async(&mut raw)
                    .await
                    .unwrap();
            }
        }
    }
    let total_lines = per_day * DAYS as usize;
    println!("loaded {total_lines} lines over {DAYS} days in {:.1} s", started.elapsed().as_secs_f64());
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut raw).await.unwrap();

    // the aggregator: every line of the month consumed, as the background task and reports do
    let days: Vec<String> = (0..DAYS).map(|d| (first + Days::new(d)).to_string()).collect();
    // the gateway's default step (`limits.report_batch_lines`)
    let limits = ReportLimits::from(&settlegate::config::LimitsConfig::default());
    let started = Instant::now();
    let consumed = store.report_catch_up(&days, limits.batch_lines).await.unwrap();
    let took = started.elapsed();
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut raw).await.unwrap();
    let lrange = command_usec(&info, "lrange");
    let scripts = command_usec(&info, "evalsha") + command_usec(&info, "eval");
    let all: u64 = info
        .lines()
        .filter_map(|l| l.split(',').find_map(|f| f.strip_prefix("usec=")))
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    println!(
        "aggregated {consumed} lines in {:.2} s ({:.1} µs/line wall); Redis CPU per line: {:.2} µs all commands \
         (LRANGE {:.2} µs, scripts {:.2} µs)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / consumed as f64,
        all as f64 / consumed as f64,
        lrange as f64 / consumed as f64,
        scripts as f64 / consumed as f64
    );
    let used: String = redis::cmd("INFO").arg("memory").query_async(&mut raw).await.unwrap();
    let mut entry_bytes = 0u64;
    for day in &days {
        let n: u64 = redis::cmd("STRLEN").arg(keys::report_entries(day)).query_async(&mut raw).await.unwrap();
        entry_bytes += n;
    }
    println!(
        "report entries: {:.1} MB ({:.1} bytes/line); {}",
        entry_bytes as f64 / 1e6,
        entry_bytes as f64 / total_lines as f64,
        used.lines().find(|l| l.starts_with("used_memory_human")).unwrap_or("")
    );

    // reports of the whole month
    let (from, to) = (first, first + Days::new(DAYS - 1));
    for by in ReportBy::ALL {
        let mut best = Duration::MAX;
        let mut rows = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let r = app.relief_report(&ReportRequest { from, to, by }, None, &limits).await.unwrap();
            best = best.min(started.elapsed());
            rows = r.rows.len();
            assert_eq!(r.total.settled_count + r.total.reversed_count, total_lines as i64);
        }
        println!("by={:<9} {rows:>4} rows: {:>6.0} ms (best of 3)", by.as_str(), best.as_secs_f64() * 1e3);
    }
    let started = Instant::now();
    let r = app.relief_report(&ReportRequest { from, to, by: ReportBy::Community }, Some("street03"), &limits).await;
    println!(
        "by=community, street street03 only: {} rows, {:.0} ms",
        r.unwrap().rows.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);
}
