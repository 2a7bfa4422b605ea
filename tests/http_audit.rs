//! The audit trail (docs/API.md "Audit") over the real binary, mTLS and a private Redis: every office write has one
//! hash-chained entry written with it (a refused write none), `GET /admin/v1/audit` filters and pages them, and
//! `settlegate audit verify` exits 0 on the chain and 1 naming the first entry changed by hand in Redis.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

const SLOW_REDIS_OK: &str = "[redis]\nresponse_timeout_ms = 5000\n";

fn ndjson(raw: &[u8]) -> Vec<Value> {
    String::from_utf8(raw.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn audit(admin: &Client, query: &str) -> (Vec<Value>, String) {
    let r = admin.get(&format!("/admin/v1/audit{query}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    (ndjson(&r.raw), r.header("next-cursor").unwrap().to_string())
}

fn verify(gw: &Gateway) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_settlegate"))
        .args(["audit", "verify", "--config"])
        .arg(gw.config_path())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn every_office_write_is_audited_in_a_chain_that_verifies() {
    let stack = Stack::start(SLOW_REDIS_OK);
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    let mut ruleset = worked_ruleset();
    ruleset["programs"][1]["annual_pool_fen"] = json!(1_000_000);
    seed(&admin, &[ruleset], &[cardholder("C1", "dibao")]).await;
    let lines = format!("{}\n{}\n{{\"card_id\": \"bad\"}}\n", cardholder("C2", "dibao"), cardholder("C3", "tekun"));
    let r = admin
        .send("POST", "/admin/v1/cardholders/import", Some("application/x-ndjson"), lines.into_bytes())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let gift = json!({"contribution_id": "RC-1", "year": this_year(), "donor": "区残联", "amount_fen": 5_000,
                      "kind": "donation"});
    assert_eq!(admin.post("/admin/v1/pools/charity/contributions", &gift).await.status, 201);
    // replays and refusals write no entry
    assert_eq!(admin.post("/admin/v1/pools/charity/contributions", &gift).await.status, 200);
    let mut bad = cardholder("C4", "dibao");
    bad["valid_from"] = json!("not a date");
    assert_eq!(admin.put("/admin/v1/cardholders/C4", &bad).await.status, 400);
    assert_eq!(admin.post("/admin/v1/rulesets", &json!({"effective_from": "2020-01-01"})).await.status, 400);

    let (entries, next) = audit(&admin, "").await;
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["ruleset.publish", "cardholder.put", "cardholder.import", "pool.contribution"]);
    assert_eq!(next, "4");
    let mut prev = "0".repeat(64);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i + 1);
        assert_eq!(e["actor"], ADMIN);
        assert_eq!(e["role"], "admin");
        assert_eq!(e["prev_sha256"], prev.as_str());
        assert_eq!(e["sha256"].as_str().unwrap().len(), 64);
        assert!(!e["request_id"].as_str().unwrap().is_empty());
        prev = e["sha256"].as_str().unwrap().to_string();
    }
    assert_eq!(entries[0]["target"], "1", "the ruleset's version");
    assert_eq!(entries[1]["target"], "C1");
    assert_eq!(entries[1]["detail"]["category"], "dibao");
    assert_eq!(entries[2]["detail"], json!({"cards": 2}));
    assert_eq!(entries[3]["target"], "charity");
    assert_eq!(entries[3]["detail"]["amount_fen"], 5_000);

    // filters and paging
    let (only, _) = audit(&admin, "?action=cardholder.put").await;
    assert_eq!(only.len(), 1);
    let (page, next) = audit(&admin, "?limit=2").await;
    assert_eq!((page.len(), next.as_str()), (2, "2"));
    let (rest, _) = audit(&admin, "?after=2").await;
    assert_eq!(rest.iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [3, 4]);
    let today = today().to_string();
    assert_eq!(audit(&admin, &format!("?from={today}&to={today}")).await.0.len(), 4);
    assert_eq!(audit(&admin, "?to=2020-01-01").await.0.len(), 0);
    assert_eq!(audit(&admin, &format!("?actor={ADMIN}x")).await.0.len(), 0);
    assert_invalid(&admin.get("/admin/v1/audit?limit=0").await, "limit", "limit 0");
    assert_invalid(&admin.get("/admin/v1/audit?from=yesterday").await, "from", "not a date");
    assert_eq!(gw.client("H0001").get("/admin/v1/audit").await.status, 403);

    // every entry is also an event
    let events = ndjson(&admin.get("/admin/v1/events?limit=10000").await.raw);
    let appended: Vec<&Value> = events.iter().filter(|e| e["type"] == "audit.appended").map(|e| &e["data"]).collect();
    assert_eq!(appended.len(), 4);
    assert_eq!(appended[3], &entries[3]);

    // the command line
    let (code, text) = verify(gw);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("verified: 4 entries"), "{text}");
    println!("audit verify (intact): exit {code}: {}", text.trim());

    // one stored entry changed by hand: the chain breaks there
    let stored = stack.redis.cli(&["HGET", "{sg}:audit", "2"]);
    let edited = stored.trim().replace("\"dibao\"", "\"tekun\"");
    assert_ne!(edited, stored.trim());
    stack.redis.cli(&["HSET", "{sg}:audit", "2", &edited]);
    let (code, text) = verify(gw);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("broken at seq 2"), "{text}");
    println!("audit verify (entry 2 edited): exit {code}: {}", text.trim());

    // restored, then deleted: still seq 2
    stack.redis.cli(&["HSET", "{sg}:audit", "2", stored.trim()]);
    assert_eq!(verify(gw).0, 0);
    stack.redis.cli(&["HDEL", "{sg}:audit", "2"]);
    let (code, text) = verify(gw);
    assert_eq!(code, 1);
    assert!(text.contains("broken at seq 2: the entry is missing"), "{text}");
}

/// Concurrent office writes on two instances still make one chain without gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_on_two_instances_make_one_chain() {
    let stack = Stack::start(SLOW_REDIS_OK);
    let gw2 = Gateway::start(&stack.redis.url(), &stack.gw.certs, SLOW_REDIS_OK);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = if i % 2 == 0 { stack.gw.client(ADMIN) } else { gw2.client(ADMIN) };
        tasks.push(tokio::spawn(async move {
            let card = cardholder(&format!("C{i}"), "dibao");
            let r = client.put(&format!("/admin/v1/cardholders/C{i}"), &card).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (entries, _) = audit(&stack.gw.client(ADMIN), "").await;
    assert_eq!(entries.len(), 40);
    let (code, text) = verify(&stack.gw);
    assert_eq!(code, 0, "{text}");
}
