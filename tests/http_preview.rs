//! `POST /admin/v1/rulesets/preview` and `settlegate rules preview` over HTTPS on a real Redis (API.md "A rule
//! change, tried before it is published"): bills settled through the gateway (some reversed, some capped by the
//! annual cap, a charity pool that runs dry), then previewed. The published ruleset as the draft gives the recorded
//! relief twice; a changed ratio, cap and pool give what `domain::split` computes on the same bills one after the
//! other; nothing in the store changes (`DEBUG DIGEST`); a bad draft is 400 naming the field.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::*;
use serde_json::{json, Value};
use settlegate::domain::bill::SettleRequest;
use settlegate::domain::card::Cardholder;
use settlegate::domain::rules::{Program, Ruleset, RulesetInput};
use settlegate::domain::split::{split, CappedBy, ProgramUsage};

const PREVIEW: &str = "/admin/v1/rulesets/preview";

/// Medical assistance (annual cap for dibao), an elderly supplement for tagged cards, and a charity pool of
/// 120 000 fen: three worked-example bills run it dry.
fn published_ruleset() -> Value {
    json!({
        "effective_from": "2020-01-01",
        "programs": [
            {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
             "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}, "tekun": {"ratio_bp": 10000}}},
            {"id": "elderly", "name": "Elderly supplement", "covers": ["in_scope"], "require_tags": ["elderly_80"],
             "categories": {"dibao": {"ratio_bp": 2000}}},
            {"id": "charity", "name": "Charity fund", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
             "annual_pool_fen": 120000,
             "categories": {"dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000},
                            "tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100000}}}
        ]
    })
}

fn cards() -> Vec<Value> {
    let mut elderly = cardholder("C2", "dibao");
    elderly["tags"] = json!(["elderly_80"]);
    vec![cardholder("C1", "dibao"), elderly, cardholder("C3", "tekun"), cardholder("C4", "dibao")]
}

fn period(from_days_ago: u64) -> (String, String) {
    let today = today();
    ((today - chrono::Days::new(from_days_ago)).to_string(), (today + chrono::Days::new(1)).to_string())
}

fn preview_body(ruleset: &Value) -> Value {
    let (from, to) = period(30);
    json!({"ruleset": ruleset, "from": from, "to": to})
}

/// A settled bill, kept to recompute it independently.
struct Sent {
    bill: Value,
    reply: Value,
    reversed: bool,
}

/// Settles every bill as H0001, in this order, then reverses those marked. Neither reversal gives back anything a
/// later bill used (C4 has one bill, on which the exhausted pool paid 0; B8 is the last), so the recorded relief of
/// the standing bills is what a replay of them alone gives.
async fn settle_all(gw: &Gateway) -> Vec<Sent> {
    let h = gw.client("H0001");
    let bills: Vec<(Value, bool)> = vec![
        (worked_bill("B1", "C1"), false), // medical assistance capped at 300 000 (annual cap)
        (outpatient_bill("B2", "C2", 60_000, 5_000), false), // the elderly supplement too
        (worked_bill("B3", "C3"), false), // tekun: charity takes the pool's last 67 060
        (worked_bill("B4", "C4"), true),  // charity 0 (pool), reversed
        (outpatient_bill("B5", "C2", 300_000, 0), false), // C2 reaches its annual cap
        (worked_bill("B6", "C1"), false), // C1's cap already reached: 0
        (outpatient_bill("B7", "C3", 10_000, 0), false), // charity's base is 0
        (outpatient_bill("B8", "C1", 10_000, 0), true), // the last one, reversed
    ];
    let mut sent = Vec::new();
    for (bill, reversed) in bills {
        let r = h.post("/v1/settlements", &bill).await;
        assert_eq!(r.status, 201, "settle {}: {}", bill["hospital_settlement_id"], r.body);
        sent.push(Sent { bill, reply: r.body, reversed });
    }
    for s in sent.iter().filter(|s| s.reversed) {
        let body = json!({"card_id": s.bill["card_id"], "hospital_settlement_id": s.bill["hospital_settlement_id"],
                          "reason": "test"});
        let r = h.post("/v1/reversals", &body).await;
        assert_eq!(r.status, 200, "reverse: {}", r.body);
    }
    sent
}

/// The draft as a domain ruleset.
fn as_ruleset(v: &Value, version: u64) -> Ruleset {
    let input: RulesetInput = serde_json::from_value(v.clone()).unwrap();
    Ruleset { version, effective_from: input.effective_from, published_at: String::new(), programs: input.programs }
}

/// What `split` gives for the standing bills, one after the other under `ruleset`, from fresh counters.
struct Expected {
    relief_fen: i64,
    patient_fen: i64,
    by_program: BTreeMap<String, i64>,
    capped_cards: BTreeSet<String>,
    charity_paid_fen: i64,
}

fn independently(ruleset: &Ruleset, sent: &[Sent]) -> Expected {
    let cards: HashMap<String, Cardholder> = cards()
        .into_iter()
        .map(|c| (c["card_id"].as_str().unwrap().to_string(), serde_json::from_value(c).unwrap()))
        .collect();
    let mut usage: HashMap<(String, String), (i64, i64)> = HashMap::new();
    let mut totals: HashMap<String, i64> = HashMap::new();
    let mut e = Expected {
        relief_fen: 0,
        patient_fen: 0,
        by_program: BTreeMap::new(),
        capped_cards: BTreeSet::new(),
        charity_paid_fen: 0,
    };
    for s in sent.iter().filter(|s| !s.reversed) {
        let req: SettleRequest = serde_json::from_value(s.bill.clone()).unwrap();
        let bill = req.bill();
        let card = &cards[&req.card_id];
        let used = |p: &Program| {
            let (paid_fen, deductible_met_fen) =
                usage.get(&(req.card_id.clone(), p.id.clone())).copied().unwrap_or_default();
            ProgramUsage {
                paid_fen,
                deductible_met_fen,
                program_paid_fen: totals.get(&p.id).copied().unwrap_or(0),
                pool_contributions_fen: 0,
            }
        };
        let out = split(ruleset, card, bill.visit.visit_type, bill.amounts.total_fen, bill.residual(), used);
        for p in &out.payments {
            let u = usage.entry((req.card_id.clone(), p.program.clone())).or_default();
            u.0 += p.paid_fen;
            u.1 += p.deductible_applied_fen;
            *totals.entry(p.program.clone()).or_default() += p.paid_fen;
            *e.by_program.entry(p.program.clone()).or_default() += p.paid_fen;
            if p.capped_by == Some(CappedBy::AnnualCap) {
                e.capped_cards.insert(req.card_id.clone());
            }
        }
        e.relief_fen += out.relief_fen;
        e.patient_fen += out.patient_fen;
    }
    e.charity_paid_fen = totals.get("charity").copied().unwrap_or(0);
    e
}

fn by_program(report: &Value, key: &str) -> BTreeMap<String, i64> {
    report["by_program"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["program"].as_str().unwrap().to_string(), r[key].as_i64().unwrap()))
        .filter(|(_, fen)| *fen != 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_replays_the_period_and_changes_nothing() {
    let stack = Stack::on(Redis::start_with_digest(), "");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed(&admin, &[published_ruleset()], &cards()).await;
    let sent = settle_all(gw).await;
    let standing: Vec<&Sent> = sent.iter().filter(|s| !s.reversed).collect();
    let recorded_relief: i64 = standing.iter().map(|s| s.reply["relief_fen"].as_i64().unwrap()).sum();
    let recorded_patient: i64 = standing.iter().map(|s| s.reply["patient_fen"].as_i64().unwrap()).sum();
    let mut recorded_by_program: BTreeMap<String, i64> = BTreeMap::new();
    let mut recorded_capped = BTreeSet::new();
    for s in &standing {
        for p in s.reply["payments"].as_array().unwrap() {
            *recorded_by_program.entry(p["program"].as_str().unwrap().into()).or_default() +=
                p["paid_fen"].as_i64().unwrap();
            if p["capped_by"] == "annual_cap" {
                recorded_capped.insert(s.bill["card_id"].as_str().unwrap().to_string());
            }
        }
    }
    recorded_by_program.retain(|_, fen| *fen != 0);
    let pools = admin.get(&format!("/admin/v1/pools?year={}", this_year())).await;
    assert_eq!(pools.body["pools"][0]["left_fen"], 0, "the bills ran the charity pool dry: {}", pools.body);

    // the published ruleset as the draft: baseline == draft == what was recorded
    let before = stack.redis.state();
    let r = admin.post(PREVIEW, &preview_body(&published_ruleset())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let report = &r.body;
    assert_eq!(report["settlements"], standing.len(), "{report}");
    for side in ["baseline", "draft"] {
        assert_eq!(report[side]["relief_fen"], recorded_relief, "{side}: {report}");
        assert_eq!(report[side]["patient_fen"], recorded_patient, "{side}: {report}");
    }
    assert_eq!(by_program(report, "baseline_fen"), recorded_by_program);
    assert_eq!(by_program(report, "draft_fen"), recorded_by_program);
    let programs: Vec<&str> =
        report["by_program"].as_array().unwrap().iter().map(|r| r["program"].as_str().unwrap()).collect();
    assert_eq!(programs, ["medical_assistance", "elderly", "charity"], "the draft's order");
    assert_eq!(
        report["cards_at_annual_cap"],
        json!({"baseline": recorded_capped.len(), "draft": recorded_capped.len()})
    );
    assert_eq!(
        report["pools"],
        json!([{"program": "charity", "year": this_year(), "budget_fen": 120000, "draft_paid_fen": 120000,
                "exhausted_on": today().to_string()}])
    );
    let categories: Vec<&str> =
        report["by_category"].as_array().unwrap().iter().map(|r| r["category"].as_str().unwrap()).collect();
    assert_eq!(categories, ["dibao", "tekun"]);
    assert_eq!(stack.redis.state().digest, before.digest, "a preview changes nothing");

    // a changed ratio, cap and pool: what the domain split gives on the same bills
    let mut draft = published_ruleset();
    draft["programs"][0]["categories"]["dibao"] = json!({"ratio_bp": 7000, "annual_cap_fen": 500000});
    draft["programs"][2]["annual_pool_fen"] = json!(400000);
    draft["programs"][2]["categories"]["dibao"]["ratio_bp"] = json!(4000);
    let r = admin.post(PREVIEW, &preview_body(&draft)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let report = &r.body;
    let expected = independently(&as_ruleset(&draft, 2), &sent);
    assert_eq!(report["baseline"]["relief_fen"], recorded_relief);
    assert_eq!(report["draft"]["relief_fen"], expected.relief_fen, "{report}");
    assert_eq!(report["draft"]["patient_fen"], expected.patient_fen, "{report}");
    assert_ne!(expected.relief_fen, recorded_relief, "the draft changes something");
    let mut want = expected.by_program.clone();
    want.retain(|_, fen| *fen != 0);
    assert_eq!(by_program(report, "draft_fen"), want);
    assert_eq!(report["cards_at_annual_cap"]["draft"], expected.capped_cards.len());
    assert_eq!(report["pools"][0]["budget_fen"], 400000);
    assert_eq!(report["pools"][0]["draft_paid_fen"], expected.charity_paid_fen);
    assert_eq!(report["pools"][0]["exhausted_on"], Value::Null, "a pool of 400 000 is not exhausted: {report}");
    let dibao = &report["by_category"][0];
    assert_eq!(dibao["category"], "dibao");
    assert_ne!(dibao["baseline_fen"], dibao["draft_fen"]);

    // a period that starts after every visit replays nothing
    let r = admin
        .post(
            PREVIEW,
            &json!({"ruleset": draft, "from": (today() + chrono::Days::new(2)).to_string(),
                                        "to": (today() + chrono::Days::new(3)).to_string()}),
        )
        .await;
    assert_eq!((r.status, &r.body["settlements"]), (200, &json!(0)), "{}", r.body);
    assert_eq!(stack.redis.state().digest, before.digest, "previews change nothing");

    // contributions raise the pool's budget (the field the contribution script keeps)
    let year = this_year();
    stack.redis.cli(&["HSET", "{sg}:program_paid", &format!("{year}:charity:contrib"), "30000"]);
    let r = admin.post(PREVIEW, &preview_body(&published_ruleset())).await;
    assert_eq!(r.body["pools"][0]["budget_fen"], 150000, "{}", r.body);
    assert!(r.body["draft"]["relief_fen"].as_i64().unwrap() > recorded_relief, "more pool, more relief: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_drafts_and_periods_are_400_naming_the_field_and_only_the_office_may_preview() {
    let stack = Stack::start("[limits]\nmax_preview_days = 31\n");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed(&admin, &[published_ruleset()], &cards()).await;
    let mut bad = published_ruleset();
    bad["programs"][0]["categories"]["dibao"]["ratio_bp"] = json!(10001);
    let r = admin.post(PREVIEW, &preview_body(&bad)).await;
    assert_invalid(&r, "ruleset.programs[0].categories.dibao.ratio_bp", "ratio above 100 %");
    let mut bad = published_ruleset();
    bad["programs"][1]["id"] = json!("medical_assistance");
    assert_invalid(&admin.post(PREVIEW, &preview_body(&bad)).await, "ruleset.programs[1].id", "duplicate id");
    let (from, to) = period(3);
    let r = admin.post(PREVIEW, &json!({"ruleset": published_ruleset(), "from": to, "to": from})).await;
    assert_invalid(&r, "to", "to before from");
    let (from, to) = period(31);
    let r = admin.post(PREVIEW, &json!({"ruleset": published_ruleset(), "from": from, "to": to})).await;
    assert_invalid(&r, "to", "33 days, more than limits.max_preview_days");
    let r = admin.post(PREVIEW, &json!({"ruleset": published_ruleset(), "from": "2026-1-1", "to": to})).await;
    assert_problem(&r, 400, "invalid_request", "a date that is not YYYY-MM-DD");
    let r =
        admin.post(PREVIEW, &json!({"ruleset": published_ruleset(), "from": from, "to": to, "publish": true})).await;
    assert_problem(&r, 400, "invalid_request", "an unknown field");
    let r = gw.client("H0001").post(PREVIEW, &preview_body(&published_ruleset())).await;
    assert_problem(&r, 403, "forbidden", "a hospital");
    let r = admin.get(PREVIEW).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")), "no ruleset version `preview`");
    // nothing was published by any of these
    assert_eq!(admin.get("/admin/v1/rulesets").await.body["rulesets"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_the_table_and_refuses_too_many_settlements() {
    let stack = Stack::start("[limits]\nmax_preview_settlements = 3\n");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed(&admin, &[published_ruleset()], &cards()).await;
    let h = gw.client("H0001");
    for (i, card) in ["C1", "C3"].iter().enumerate() {
        let r = h.post("/v1/settlements", &worked_bill(&format!("T{i}"), card)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("draft.toml");
    let mut draft = published_ruleset();
    draft["programs"][0]["categories"]["dibao"]["ratio_bp"] = json!(5000);
    std::fs::write(&file, toml::to_string(&draft).unwrap()).unwrap();
    let (from, to) = period(10);
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_settlegate"))
            .args(["rules", "preview"])
            .arg(file)
            .args(["--from", &from, "--to", &to, "--config"])
            .arg(gw.config_path())
            .output()
            .unwrap()
    };
    let out = run(&file);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(text.contains("2 standing settlements replayed"), "{text}");
    // C1's medical assistance: 300 000 (annual cap) before, 50 % of 501 100 = 250 550 after
    let line = text.lines().find(|l| l.trim_start().starts_with("medical_assistance")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&numbers[1..], [(300_000 + 501_100).to_string(), (250_550 + 501_100).to_string(), "-49450".into()]);
    assert!(
        text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["charity", &this_year().to_string(), "120000", "120000", &today().to_string()]),
        "{text}"
    );
    assert!(text.contains("cards at annual cap"), "{text}");

    for (i, card) in ["C2", "C4"].iter().enumerate() {
        let r = h.post("/v1/settlements", &outpatient_bill(&format!("U{i}"), card, 1000, 0)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = admin.post(PREVIEW, &preview_body(&published_ruleset())).await;
    assert_invalid(&r, "to", "4 settlements, more than limits.max_preview_settlements");
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("max_preview_settlements"), "{}", r.body);
    let out = run(&file);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_preview_settlements"));
}
