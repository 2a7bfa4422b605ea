//! `settlegate export` against a private Redis filled through the real gateway (and, for a day already closed,
//! lines planted in the day's list as the scripts write them): byte-identical files on a second run, a manifest
//! whose totals are the day's reconciliation, both formats.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{json, Value};
use settlegate::domain::split::Payment;
use settlegate::store::dayline::{encode_event, LineContext};
use settlegate::store::{DayEvent, ProgramFen};

fn export(gw: &Gateway, from: &str, to: &str, out: &Path, format: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_settlegate"))
        .args(["export", "--config"])
        .arg(gw.config_path())
        .args(["--from", from, "--to", to, "--format", format, "--out"])
        .arg(out)
        .output()
        .unwrap()
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A settled line of an earlier day for hospital H0003, as settle.lua writes it.
fn planted_line(i: i64) -> String {
    let e = DayEvent {
        reversal: false,
        at: "2020-06-01T09:00:00.000+08:00".into(),
        settlement_id: format!("s2_planted{i}"),
        hospital_settlement_id: format!("P-{i}"),
        card_id: "C1".into(),
        total_fen: 1000 + i,
        insurance_fen: 0,
        relief_fen: 900,
        patient_fen: 100 + i,
        by_program: vec![ProgramFen { program: "medical_assistance".into(), fen: 900 }],
        context: LineContext {
            category: "dibao".into(),
            insurance_settlement_ref: format!("SETL-{i}"),
            operator_id: "cashier-1".into(),
            ..Default::default()
        },
    };
    let pay =
        Payment { program: "medical_assistance".into(), paid_fen: 900, deductible_applied_fen: 0, capped_by: None };
    encode_event(&e, &[pay])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_byte_identical_and_matches_reconciliation() {
    let stack = Stack::start("");
    let (gw, redis) = (&stack.gw, &stack.redis);
    let admin = gw.client(ADMIN);
    let mut c1 = cardholder("C1", "dibao");
    c1["street"] = json!("长安街道");
    c1["community"] = json!("西城社区");
    seed(&admin, &[worked_ruleset()], &[c1, cardholder("C2", "dibao")]).await;
    let got = admin.get("/admin/v1/cardholders/C1").await;
    assert_eq!((got.body["street"].as_str(), got.body["community"].as_str()), (Some("长安街道"), Some("西城社区")));
    assert_eq!(admin.get("/admin/v1/cardholders/C2").await.body.get("street"), None, "absent stays absent");
    for (i, h) in ["H0001", "H0002", "H0001", "H0002"].iter().enumerate() {
        let mut bill = outpatient_bill(&format!("e-{i}"), if i % 2 == 0 { "C1" } else { "C2" }, 10_000, 500);
        bill["insurance"] = json!({"settlement_ref": format!("SETL-T{i}")});
        bill["operator"] = json!({"id": "cashier-07", "name": "王丽"});
        let r = gw.client(h).post("/v1/settlements", &bill).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let rev = json!({"card_id": "C1", "hospital_settlement_id": "e-0", "operator": {"id": "desk-9"}});
    assert_eq!(gw.client("H0001").post("/v1/reversals", &rev).await.status, 200);
    // a closed day, long ago
    let closed = "2020-06-01";
    for i in 0..3 {
        redis.cli(&["RPUSH", &format!("{{sg}}:recon:{closed}:H0003:events"), &planted_line(i)]);
    }
    redis.cli(&["SADD", &format!("{{sg}}:recon:{closed}:hospitals"), "H0003"]);

    let today = today().to_string();
    let dirs = tempfile::tempdir().unwrap();
    let (a, b) = (dirs.path().join("a"), dirs.path().join("b"));
    for out in [&a, &b] {
        let run = export(gw, closed, closed, out, "jsonl");
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let run = export(gw, &today, &today, &out.join("today"), "jsonl");
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        assert!(String::from_utf8_lossy(&run.stderr).contains("not over yet"), "today is flagged as open");
    }
    let closed_file = format!("settlements-{closed}.jsonl");
    let sha = |dir: &Path| {
        let d = ring::digest::digest(&ring::digest::SHA256, &read(dir, &closed_file));
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    eprintln!("{closed_file}: sha256 run 1 {} run 2 {}", sha(&a), sha(&b));
    assert_eq!(read(&a, &closed_file), read(&b, &closed_file), "a closed day is byte-identical");
    assert_eq!(read(&a, "manifest.json"), read(&b, "manifest.json"));
    let manifest: Value = serde_json::from_slice(&read(&a, "manifest.json")).unwrap();
    assert_eq!(manifest[0]["file"], closed_file);
    assert_eq!(manifest[0]["lines"], 3);
    assert_eq!(manifest[0]["relief_fen"], 2700);
    let digest = ring::digest::digest(&ring::digest::SHA256, &read(&a, &closed_file));
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(manifest[0]["sha256"], hex);
    let first: Value =
        serde_json::from_str(std::str::from_utf8(&read(&a, &closed_file)).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["hospital_id"], "H0003");
    assert_eq!(first["insurance_settlement_ref"], "SETL-0");
    assert_eq!(first["operator_id"], "cashier-1");
    assert_eq!(first["street"], Value::Null);

    // today's manifest equals today's reconciliation, hospital by hospital summed
    let recon = admin.get(&format!("/admin/v1/reconciliation?date={today}")).await;
    let hospitals = recon.body["hospitals"].as_array().unwrap();
    let relief: i64 = hospitals.iter().map(|h| h["net"]["relief_fen"].as_i64().unwrap()).sum();
    let count: i64 =
        hospitals.iter().map(|h| h["settled_count"].as_i64().unwrap() + h["reversed_count"].as_i64().unwrap()).sum();
    let m: Value = serde_json::from_slice(&read(&a.join("today"), "manifest.json")).unwrap();
    assert_eq!(m[0]["relief_fen"], relief);
    assert_eq!(m[0]["lines"], count);
    assert_eq!(count, 5, "4 settled + 1 reversed");
    let text = String::from_utf8(read(&a.join("today"), &format!("settlements-{today}.jsonl"))).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let reversed = lines.iter().find(|l| l["event"] == "reversed").unwrap();
    assert_eq!(reversed["operator_id"], "desk-9", "a reversal's line names the reversal's operator");
    assert_eq!(reversed["insurance_settlement_ref"], "SETL-T0");
    assert!(reversed["relief_fen"].as_i64().unwrap() < 0);
    assert_eq!(lines.iter().filter(|l| l["category"] == "dibao").count(), 5);
    // C1's street and community are recorded with its settlements (and its reversal); C2 has none
    for l in &lines {
        let (street, community) = if l["card_id"] == "C1" {
            (json!("长安街道"), json!("西城社区"))
        } else {
            (Value::Null, Value::Null)
        };
        assert_eq!((&l["street"], &l["community"]), (&street, &community), "{l}");
    }
    // a PUT without them clears them
    let r = admin.put("/admin/v1/cardholders/C1", &cardholder("C1", "dibao")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(admin.get("/admin/v1/cardholders/C1").await.body.get("street"), None);
    let mut bad = cardholder("C1", "dibao");
    bad["street"] = json!("a;b");
    assert_invalid(&admin.put("/admin/v1/cardholders/C1", &bad).await, "street", "a ; in a street");

    // CSV: a header row, then one row per line
    let c = dirs.path().join("c");
    let run = export(gw, closed, closed, &c, "csv");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let csv = String::from_utf8(read(&c, &format!("settlements-{closed}.csv"))).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], settlegate::export::COLUMNS.join(","));
    assert_eq!(rows.len(), 4);
    assert!(rows[1].contains(",medical_assistance=900,H0003,dibao,,,SETL-0,cashier-1"), "{}", rows[1]);

    // limits: a reversed range, a range too long
    assert!(!export(gw, "2020-06-02", closed, &c, "jsonl").status.success());
    let long = export(gw, "2019-01-01", "2020-06-01", &c, "jsonl");
    assert!(String::from_utf8_lossy(&long.stderr).contains("limits.max_export_days"));
}
