//! The ruleset preview at scale, and its benchmark (docs/BENCHMARKS.md "Ruleset preview"): a year of settlement
//! events written straight into a private Redis in the settle script's exact event format (and each settlement's
//! record `status`, which the preview reads), then `settlegate rules preview` run (and timed) on it. By default
//! (`cargo test`, CI) 20 000 settlements with the debug binary; the benchmark is the same test at a million with a
//! release binary:
//!
//! ```text
//! cargo build --release --offline --bin settlegate
//! PREVIEW_BENCH_BIN=$CARGO_TARGET_DIR/release/settlegate PREVIEW_BENCH_SETTLEMENTS=1000000 \
//!   cargo test --offline --test bench_preview -- --nocapture
//! ```
//!
//! The events' payments are computed by `domain::split` on the generator's own counters, one after the other, so
//! the preview's baseline must equal the recorded relief of the standing settlements: the run checks it.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use chrono::{Days, NaiveDate};
use common::*;
use serde_json::json;
use settlegate::domain::bill::{Amounts, Bill, Insurance, Visit};
use settlegate::domain::card::Cardholder;
use settlegate::domain::rules::{Program, Ruleset, RulesetInput, VisitType};
use settlegate::domain::split::{split, ProgramUsage};
use settlegate::store::codec::{card_fields, encode_payments};

/// Settlements per seeded card: a million settlements go to 100 000 cards (ten a card in the year).
const SETTLEMENTS_PER_CARD: usize = 10;
const BATCH: usize = 5_000;

/// xorshift64: a fixed, dependency-free sequence of bills.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap()
    }
}

fn ruleset_json() -> serde_json::Value {
    json!({
        "effective_from": "2020-01-01",
        "programs": [
            {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
             "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000},
                            "tekun": {"ratio_bp": 10000},
                            "low_income": {"ratio_bp": 7000, "deductible_fen": 100000, "annual_cap_fen": 6000000}}},
            {"id": "elderly", "name": "Elderly supplement", "covers": ["in_scope"], "require_tags": ["elderly_80"],
             "categories": {"dibao": {"ratio_bp": 2000}, "low_income": {"ratio_bp": 2000}}},
            {"id": "charity", "name": "Charity fund", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
             "annual_pool_fen": 2000000000,
             "categories": {"dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000},
                            "tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100000}}}
        ]
    })
}

fn as_ruleset(v: &serde_json::Value, version: u64) -> Ruleset {
    let input: RulesetInput = serde_json::from_value(v.clone()).unwrap();
    Ruleset { version, effective_from: input.effective_from, published_at: String::new(), programs: input.programs }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_a_seeded_year_matches_the_recorded_relief_and_changes_nothing() {
    let n: usize = std::env::var("PREVIEW_BENCH_SETTLEMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let bin = std::env::var("PREVIEW_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_settlegate").to_string());
    // PREVIEW_BENCH_REDIS_URL: seed that server instead (started with --enable-debug-command yes), e.g. to profile
    // the CLI on it afterwards; PREVIEW_BENCH_SEED_ONLY=1 stops after seeding.
    let external = std::env::var("PREVIEW_BENCH_REDIS_URL").ok();
    let owned = external.is_none().then(Redis::start_with_digest);
    let url = external.unwrap_or_else(|| owned.as_ref().unwrap().url());
    let digest = || {
        let out = std::process::Command::new("redis-cli").args(["-u", &url, "DEBUG", "DIGEST"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ruleset = as_ruleset(&ruleset_json(), 1);
    redis::pipe()
        .hset("{sg}:rulesets", "1", serde_json::to_string(&ruleset).unwrap())
        .hset("{sg}:rulesets", "latest", 1)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let categories = ["dibao", "dibao", "tekun", "low_income"];
    let card_count = (n / SETTLEMENTS_PER_CARD).max(1);
    let cards: Vec<Cardholder> = (0..card_count)
        .map(|i| {
            let mut c = cardholder_record(&format!("C{i:06}"), categories[i % categories.len()]);
            if i % 5 == 0 {
                c.tags = vec!["elderly_80".into()];
            }
            c
        })
        .collect();
    for chunk in cards.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for c in chunk {
            let fields: Vec<(&str, String)> = card_fields(c).into_iter().collect();
            pipe.hset_multiple(format!("{{sg}}:{{{}}}:card", c.card_id), &fields).ignore();
        }
        pipe.query_async::<()>(&mut conn).await.unwrap();
    }

    // the events, as settle.lua writes them, with payments from the engine on the generator's counters
    let seeding = Instant::now();
    let year_start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut usage: HashMap<(usize, String), (i64, i64)> = HashMap::new();
    let mut totals: HashMap<String, i64> = HashMap::new();
    let (mut standing, mut relief_fen, mut patient_fen) = (0u64, 0i64, 0i64);
    let mut pipe = redis::pipe();
    for i in 0..n {
        let ci = rng.below(card_count);
        let card = &cards[ci];
        let day = u64::try_from(i * 334 / n).unwrap();
        let visit = Visit {
            visit_type: [VisitType::Outpatient, VisitType::Chronic, VisitType::Inpatient][rng.below(3)],
            date: year_start + Days::new(day),
        };
        let in_scope = 1_000 + i64::try_from(rng.below(400_000)).unwrap();
        let amounts = Amounts {
            total_fen: in_scope + 3000,
            in_scope_fen: in_scope,
            pre_self_pay_fen: 1000,
            over_limit_fen: 0,
            self_pay_fen: 2000,
        };
        let insurance =
            Insurance { basic_fen: in_scope / 2, critical_illness_fen: 0, other_fen: 0, settlement_ref: None };
        let bill = Bill { card_id: &card.card_id, visit, amounts, insurance: &insurance };
        let reversed = i % 50 == 7; // 2 %: reversed, and (for this check) never counted
        let used = |p: &Program| {
            let (paid_fen, deductible_met_fen) = usage.get(&(ci, p.id.clone())).copied().unwrap_or_default();
            ProgramUsage {
                paid_fen,
                deductible_met_fen,
                program_paid_fen: totals.get(&p.id).copied().unwrap_or(0),
                pool_contributions_fen: 0,
            }
        };
        let s = split(&ruleset, card, visit.visit_type, amounts.total_fen, bill.residual(), used);
        if !reversed {
            for p in &s.payments {
                let u = usage.entry((ci, p.program.clone())).or_default();
                u.0 += p.paid_fen;
                u.1 += p.deductible_applied_fen;
                *totals.entry(p.program.clone()).or_default() += p.paid_fen;
            }
            standing += 1;
            relief_fen += s.relief_fen;
            patient_fen += s.patient_fen;
        }
        let hsid = format!("H0001-{i:08}");
        let at = format!("{}T10:00:00.000+08:00", visit.date);
        let (ins, rel, pat) = (s.insurance_fen.to_string(), s.relief_fen.to_string(), s.patient_fen.to_string());
        let payments = encode_payments(&s.payments);
        let req = bill.canonical();
        let sid = format!("s2_bench{i}");
        // the settled event as this build's settle.lua writes it (the day line in one field); the reversal's as
        // reverse.lua writes it (each value in a field of its own)
        let line = format!(
            "S|{at}|{sid}|{hsid}|{}|{}|{ins}|{rel}|{pat}|{payments}|{}||||",
            card.card_id, amounts.total_fen, card.category
        );
        let settled = [
            ("type", "settlement.settled"),
            ("at", at.as_str()),
            ("line", line.as_str()),
            ("req", req.as_str()),
            ("ruleset_version", "1"),
            ("hospital", "H0001"),
            ("operator_name", ""),
        ];
        let mut xadd = |fields: &[(&str, &str)]| {
            let cmd = pipe.cmd("XADD").arg("{sg}:events").arg("*");
            for (k, v) in fields {
                cmd.arg(*k).arg(*v);
            }
            cmd.ignore();
        };
        xadd(&settled);
        if reversed {
            xadd(&[
                ("type", "settlement.reversed"),
                ("at", at.as_str()),
                ("req", req.as_str()),
                ("category", card.category.as_str()),
                ("ruleset_version", "1"),
                ("insurance_fen", ins.as_str()),
                ("relief_fen", rel.as_str()),
                ("patient_fen", pat.as_str()),
                ("payments", payments.as_str()),
                ("hospital", "H0001"),
                ("hsid", hsid.as_str()),
                ("settlement_id", sid.as_str()),
                ("operator_id", ""),
                ("operator_name", ""),
            ]);
        }
        let record = format!("{{sg}}:{{{}}}:stl:H0001/{hsid}", card.card_id);
        pipe.hset_multiple(
            &record,
            &[("kind", "settlement"), ("status", if reversed { "reversed" } else { "settled" })],
        )
        .ignore();
        if (i + 1) % BATCH == 0 || i + 1 == n {
            pipe.query_async::<()>(&mut conn).await.unwrap();
            pipe = redis::pipe();
        }
    }
    eprintln!("seeded {n} settlements ({standing} standing, relief {relief_fen}) in {:?}", seeding.elapsed());
    if std::env::var("PREVIEW_BENCH_SEED_ONLY").is_ok() {
        return;
    }

    let certs = Certs::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let c = certs.path().display();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:1\"\ntimezone = \"Asia/Shanghai\"\n[tls]\ncert = \"{c}/server.pem\"\n\
             key = \"{c}/server.key\"\nclient_ca = \"{c}/ca.pem\"\n[admin]\nidentities = [\"{ADMIN}\"]\n\
             [redis]\nurl = \"{url}\"\nresponse_timeout_ms = 2000\n"
        ),
    )
    .unwrap();
    let before = digest();
    assert_eq!(before.len(), 40, "DEBUG DIGEST: {before:?}");
    let mut drafts = Vec::new();
    let mut same = ruleset_json();
    same["effective_from"] = json!("2026-01-01");
    drafts.push(("the published ruleset", same.clone()));
    let mut changed = same.clone();
    changed["programs"][0]["categories"]["dibao"] = json!({"ratio_bp": 8000, "annual_cap_fen": 400000});
    changed["programs"][2]["annual_pool_fen"] = json!(500000000);
    drafts.push(("ratio, cap and pool changed", changed));
    for (name, draft) in drafts {
        let file = dir.path().join("draft.json");
        std::fs::write(&file, serde_json::to_vec(&draft).unwrap()).unwrap();
        let started = Instant::now();
        let out = std::process::Command::new("/usr/bin/time")
            .args(["-f", "max RSS %M KiB, %U s user, %S s system"])
            .arg(&bin)
            .args(["rules", "preview"])
            .arg(&file)
            .args(["--from", "2026-01-01", "--to", "2026-12-31", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
        eprintln!("== {name}: {elapsed:?} wall; {}\n{text}", String::from_utf8_lossy(&out.stderr).trim());
        assert!(text.contains(&format!("{standing} standing settlements replayed")), "{text}");
        let relief = text.lines().find(|l| l.trim_start().starts_with("relief ")).unwrap();
        assert_eq!(relief.split_whitespace().nth(1), Some(relief_fen.to_string().as_str()), "baseline = recorded");
        let patient = text.lines().find(|l| l.trim_start().starts_with("patient ")).unwrap();
        assert_eq!(patient.split_whitespace().nth(1), Some(patient_fen.to_string().as_str()));
    }
    assert_eq!(digest(), before, "the previews changed nothing");
}
