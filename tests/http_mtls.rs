//! Who may call what, over the real `settlegate serve` binary and a private Redis per test (docs/API.md): mTLS
//! refuses a missing or foreign client certificate, the roles (hospital, relief office, unusable CN) get 403
//! outside their paths, and hospitals never see each other's settlements.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Connects with `config` and tries one HTTP request; panics if any HTTP response comes back. With TLS 1.2 a
/// refused client certificate fails the handshake; with TLS 1.3 the client's handshake may complete and the
/// server's alert arrives on the first read — either way no byte of HTTP may be served, and the connection must
/// end (not hang).
async fn assert_refused(port: u16, config: rustls::ClientConfig, what: &str) {
    let mut stream = match tls_connect(port, config).await {
        Err(e) => {
            eprintln!("{what}: refused in the handshake: {e}");
            return;
        }
        Ok(s) => s,
    };
    let write = stream
        .write_all(b"GET /v1/reconciliation?date=2026-01-01 HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await;
    let _ = stream.flush().await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got))
        .await
        .unwrap_or_else(|_| panic!("{what}: the connection neither answered nor closed within 5 s"));
    assert!(
        got.is_empty(),
        "{what}: got {} bytes of response: {:?}",
        got.len(),
        String::from_utf8_lossy(&got[..got.len().min(200)])
    );
    assert!(
        write.is_err() || read.is_err(),
        "{what}: connection closed without a TLS alert (write {write:?}, read {read:?})"
    );
    eprintln!("{what}: refused after the handshake: write {:?}, read {:?}", write.err(), read.err());
}

// ---- transport: no certificate, a stranger's certificate ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_missing_and_foreign_client_certificates() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let ca = gw.certs.ca();
    let reconciliation = format!("/v1/reconciliation?date={}", today());

    // Control: a proper certificate is served (the refusals below are about the certificate, not the setup).
    let ok = gw.client("H0001").get(&reconciliation).await;
    assert_eq!(ok.status, 200, "control request: {}", ok.body);

    // No client certificate (TLS 1.3 and 1.2 offered, 1.3 negotiated).
    assert_refused(gw.port, tls_client_config(None, &ca), "no certificate").await;
    // No client certificate, TLS 1.2 only: the handshake itself must fail.
    let tls12 = tls12_only_config(None, &ca);
    assert!(tls_connect(gw.port, tls12).await.is_err(), "TLS 1.2 without a client certificate: handshake completed");

    // A certificate with a valid-looking CN (H0001) signed by another CA.
    let Identity { cert: other_cert, key: other_key } = gw.certs.identity("other/H0001");
    assert!(other_cert.exists() && other_key.exists(), "harness: no other/H0001.pem");
    assert_refused(gw.port, tls_client_config(Some((&other_cert, &other_key)), &ca), "certificate of another CA").await;
    let tls12 = tls12_only_config(Some((&other_cert, &other_key)), &ca);
    assert!(tls_connect(gw.port, tls12).await.is_err(), "TLS 1.2 with another CA's certificate: handshake completed");
    // And through a full HTTP client: an error, never a status.
    let stranger = Client::new(gw.port, &other_cert, &other_key, &ca);
    let r = stranger.send("GET", &reconciliation, None, Vec::new()).await;
    assert!(r.is_err(), "another CA's certificate got HTTP {}", r.map(|r| r.status).unwrap_or(0));

    // The gateway survived all of it.
    let ok = gw.client("H0002").get(&reconciliation).await;
    assert_eq!(ok.status, 200);
}

// ---- roles ---------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_hospital_admin_and_unusable_cn_get_403() {
    let stack = Stack::on(Redis::start_with_digest(), "");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed_worked_example(&admin).await;
    let before = stack.redis.state();
    let forbidden = |r: &Reply, what: &str| assert_problem(r, 403, "forbidden", what);

    let hospital = gw.client("H0001");
    forbidden(&hospital.get("/admin/v1/rulesets").await, "hospital GET /admin/v1/rulesets");
    forbidden(&hospital.post("/admin/v1/rulesets", &worked_ruleset()).await, "hospital POST /admin/v1/rulesets");
    forbidden(&hospital.put("/admin/v1/cardholders/C9", &cardholder("C9", "dibao")).await, "hospital PUT card");
    forbidden(&hospital.get("/admin/v1/cardholders/C1").await, "hospital GET card");
    let admin_reconciliation = format!("/admin/v1/reconciliation?date={}", today());
    forbidden(&hospital.get(&admin_reconciliation).await, "hospital GET /admin/v1/reconciliation");

    forbidden(&admin.post("/v1/settlements", &worked_bill("A-1", "C1")).await, "admin settle");
    let reversal = json!({"card_id": "C1", "hospital_settlement_id": "A-1"});
    forbidden(&admin.post("/v1/reversals", &reversal).await, "admin reverse");
    forbidden(&admin.get(&format!("/v1/reconciliation?date={}", today())).await, "admin GET /v1/reconciliation");

    let bad = gw.client("bad cn!");
    forbidden(&bad.post("/v1/settlements", &worked_bill("B-1", "C1")).await, "bad CN settle");
    forbidden(&bad.get("/admin/v1/rulesets").await, "bad CN admin");
    let reversal = json!({"card_id": "C1", "hospital_settlement_id": "B-1"});
    forbidden(&bad.post("/v1/reversals", &reversal).await, "bad CN reverse");

    assert_eq!(stack.redis.state(), before, "a forbidden request changed the store");
    let list = admin.get("/admin/v1/rulesets").await;
    assert_eq!(list.body["rulesets"].as_array().map(|a| a.len()), Some(1), "{}", list.body);
    // The roles still work where they belong.
    assert_eq!(hospital.post("/v1/settlements", &worked_bill("H-1", "C1")).await.status, 201);
    assert_eq!(admin.get("/admin/v1/rulesets").await.status, 200);
}

// ---- hospitals are isolated from each other ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_hospitals_settlement_is_not_found() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    seed_worked_example(&admin).await;
    let (owner, other) = (gw.client("H0001"), gw.client("H0002"));

    let created = owner.post("/v1/settlements", &worked_bill("SHARED-ID-1", "C1")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let sid = created.body["settlement_id"].as_str().unwrap().to_string();
    let usage_before = usage(&admin, "C1").await;
    let mine = owner.get(&format!("/v1/settlements/{sid}")).await;
    assert_eq!((mine.status, mine.body["status"].as_str()), (200, Some("settled")), "{}", mine.body);

    let r = other.get(&format!("/v1/settlements/{sid}")).await;
    assert_problem(&r, 404, "not_found", "other hospital GET by settlement_id");
    let r = other.get("/v1/settlements?card_id=C1&hospital_settlement_id=SHARED-ID-1").await;
    assert_problem(&r, 404, "not_found", "other hospital GET by hospital_settlement_id");
    let r = other.post("/v1/reversals", &json!({"card_id": "C1", "settlement_id": sid, "reason": "x"})).await;
    assert_problem(&r, 404, "not_found", "other hospital reverses by settlement_id");
    // By hospital_settlement_id the id lives in H0002's own id space: a cancellation of H0002's (unknown) id.
    let r = other.post("/v1/reversals", &json!({"card_id": "C1", "hospital_settlement_id": "SHARED-ID-1"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "reversed_before_settled", "{}", r.body);
    assert!(r.body.get("settlement_id").is_none() && r.body.get("payments").is_none(), "leaked: {}", r.body);

    // The owner's settlement is untouched: still settled, same body, same usage; a replay still replays.
    let after = owner.get(&format!("/v1/settlements/{sid}")).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body, mine.body, "owner's settlement changed");
    let found = owner.get("/v1/settlements?card_id=C1&hospital_settlement_id=SHARED-ID-1").await;
    assert_eq!((found.status, &found.body), (200, &mine.body));
    assert_eq!(usage(&admin, "C1").await, usage_before, "card usage changed");
    let replay = owner.post("/v1/settlements", &worked_bill("SHARED-ID-1", "C1")).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body["status"], "settled");
    // ... and H0002's tombstone applies to H0002 only.
    let theirs = other.post("/v1/settlements", &worked_bill("SHARED-ID-1", "C1")).await;
    assert_problem(&theirs, 409, "already_reversed", "H0002 settles its cancelled id");
}
