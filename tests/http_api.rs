//! The HTTPS API against the real `settlegate serve` binary and a private Redis per test: mTLS identity and roles,
//! hospital isolation, strict request validation, rate limits, graceful SIGTERM, ruleset propagation between
//! instances, request ids, reconciliation and readiness (docs/API.md).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;
use common::*;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- fixtures -------------------------------------------------------------------------------------------------

/// The gateway's local date (config `timezone = "Asia/Shanghai"`).
fn today() -> NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive()
}

/// The ruleset of docs/RULES.md's worked example (tests/golden/worked_example.json), in force since 2020.
fn worked_ruleset() -> Value {
    json!({
        "effective_from": "2020-01-01",
        "programs": [
            {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
             "categories": {
                 "tekun": {"ratio_bp": 10000, "annual_cap_fen": 15000000},
                 "dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000},
                 "low_income": {"ratio_bp": 7000, "deductible_fen": 100000, "annual_cap_fen": 6000000},
                 "illness_poverty": {"ratio_bp": 6000, "deductible_fen": 250000, "annual_cap_fen": 15000000}}},
            {"id": "charity", "name": "Charity fund", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
             "categories": {
                 "tekun": {"ratio_bp": 5000, "per_visit_cap_fen": 100000},
                 "dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000}}}
        ]
    })
}

fn card(id: &str) -> Value {
    json!({"card_id": id, "category": "dibao", "valid_from": "2020-01-01", "valid_until": "2099-12-31",
           "status": "active", "tags": []})
}

/// The worked example's bill, visited today.
fn bill(hsid: &str, card_id: &str) -> Value {
    json!({
        "hospital_settlement_id": hsid,
        "card_id": card_id,
        "visit": {"type": "inpatient", "date": today().to_string()},
        "amounts": {"total_fen": 2000000, "in_scope_fen": 1799999, "pre_self_pay_fen": 30001,
                    "over_limit_fen": 20000, "self_pay_fen": 150000},
        "insurance": {"basic_fen": 1203999, "critical_illness_fen": 94900, "other_fen": 0}
    })
}

/// A small bill (cheap on caps), for load.
fn small_bill(hsid: &str, card_id: &str) -> Value {
    json!({
        "hospital_settlement_id": hsid,
        "card_id": card_id,
        "visit": {"type": "outpatient", "date": today().to_string()},
        "amounts": {"total_fen": 1000, "in_scope_fen": 800, "pre_self_pay_fen": 100, "over_limit_fen": 0,
                    "self_pay_fen": 100},
        "insurance": {"basic_fen": 400}
    })
}

/// A Redis whose `DEBUG DIGEST` (a digest of the whole data set) may be read, for "the store is unchanged".
fn redis_with_digest() -> Redis {
    Redis::start_with(&["--enable-debug-command", "yes"])
}

/// DBSIZE and the digest of every key and value.
fn store_state(redis: &Redis) -> (String, String) {
    let digest = redis.cli(&["DEBUG", "DIGEST"]).trim().to_string();
    assert_eq!(digest.len(), 40, "DEBUG DIGEST: {digest:?}");
    (redis.cli(&["DBSIZE"]).trim().to_string(), digest)
}

async fn usage(admin: &Client, card_id: &str) -> Value {
    let r = admin.get(&format!("/admin/v1/cardholders/{card_id}")).await;
    assert_eq!(r.status, 200, "GET cardholder {card_id}: {}", r.body);
    r.body["usage"].clone()
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

/// A problem+json answer with this status and code.
#[track_caller]
fn assert_problem(r: &Reply, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: status; body {}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.body["code"], code, "{what}: code; body {}", r.body);
    assert_eq!(r.body["status"], status, "{what}: body.status; body {}", r.body);
    assert_eq!(header(r, "content-type"), Some("application/problem+json"), "{what}: content type");
    assert!(header(r, "x-request-id").is_some_and(|v| !v.is_empty()), "{what}: no X-Request-Id");
}

/// A 400 `invalid_request` whose first field error names `field`.
#[track_caller]
fn assert_invalid(r: &Reply, field: &str, what: &str) {
    assert_problem(r, 400, "invalid_request", what);
    let errors = r.body["errors"].as_array().unwrap_or_else(|| panic!("{what}: no errors[]; body {}", r.body));
    assert!(!errors.is_empty(), "{what}: errors[] empty");
    assert_eq!(errors[0]["field"], field, "{what}: errors[0].field; body {}", r.body);
    assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: errors[0].message; {}", r.body);
}

// ---- a request with chosen headers or a streamed body (the harness Client sends neither) -----------------------

type TestBody = BoxBody<Bytes, std::io::Error>;

fn fixed(bytes: Vec<u8>) -> TestBody {
    Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed()
}

/// A body of unknown length (sent chunked, no Content-Length): `chunks` pieces of `chunk` bytes each.
fn chunked(chunk: Vec<u8>, chunks: usize) -> TestBody {
    let frames = (0..chunks).map(move |_| Ok::<_, std::io::Error>(Frame::data(Bytes::from(chunk.clone()))));
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// One request on a fresh mTLS connection as `who`, with extra headers.
async fn request_as(
    gw: &Gateway,
    who: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: TestBody,
) -> Result<Reply, String> {
    let dir = gw.certs.path();
    let config = tls_client_config(
        Some((&dir.join(format!("{who}.pem")), &dir.join(format!("{who}.key")))),
        &dir.join("ca.pem"),
    );
    let stream = tls_connect(gw.port, config).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = http::Request::builder().method(method).uri(path).header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender.send_request(req.body(body).unwrap()).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Ok(Reply { status, headers, body, raw })
}

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

// ---- 1. transport: no certificate, a stranger's certificate ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_missing_and_foreign_client_certificates() {
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let dir = certs.path();
    let ca = dir.join("ca.pem");

    // Control: a proper certificate is served (the refusals below are about the certificate, not the setup).
    let ok = gw.client("H0001").get(&format!("/v1/reconciliation?date={}", today())).await;
    assert_eq!(ok.status, 200, "control request: {}", ok.body);

    // No client certificate (TLS 1.3 and 1.2 offered, 1.3 negotiated).
    assert_refused(gw.port, tls_client_config(None, &ca), "no certificate").await;
    // No client certificate, TLS 1.2 only: the handshake itself must fail.
    let tls12 = tls12_only_config(None, &ca);
    assert!(tls_connect(gw.port, tls12).await.is_err(), "TLS 1.2 without a client certificate: handshake completed");

    // A certificate with a valid-looking CN (H0001) signed by another CA.
    let (other_cert, other_key) = (dir.join("other/H0001.pem"), dir.join("other/H0001.key"));
    assert!(other_cert.exists() && other_key.exists(), "harness: no other/H0001.pem");
    assert_refused(gw.port, tls_client_config(Some((&other_cert, &other_key)), &ca), "certificate of another CA").await;
    let tls12 = tls12_only_config(Some((&other_cert, &other_key)), &ca);
    assert!(tls_connect(gw.port, tls12).await.is_err(), "TLS 1.2 with another CA's certificate: handshake completed");
    // And through a full HTTP client: an error, never a status.
    let stranger = Client::new(gw.port, &other_cert, &other_key, &ca);
    let r = stranger.send("GET", &format!("/v1/reconciliation?date={}", today()), None, Vec::new()).await;
    assert!(r.is_err(), "another CA's certificate got HTTP {}", r.map(|r| r.status).unwrap_or(0));

    // The gateway survived all of it.
    let ok = gw.client("H0002").get(&format!("/v1/reconciliation?date={}", today())).await;
    assert_eq!(ok.status, 200);
}

/// Like the harness's `tls_client_config`, but TLS 1.2 only.
fn tls12_only_config(cert: Option<(&std::path::Path, &std::path::Path)>, ca: &std::path::Path) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots);
    match cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert).unwrap().map(|c| c.unwrap()).collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

// ---- 2. roles ------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_hospital_admin_and_unusable_cn_get_403() {
    let certs = Arc::new(Certs::new());
    let redis = redis_with_digest();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[card("C1")]).await;
    let before = store_state(&redis);

    let hospital = gw.client("H0001");
    assert_problem(&hospital.get("/admin/v1/rulesets").await, 403, "forbidden", "hospital GET /admin/v1/rulesets");
    assert_problem(
        &hospital.post("/admin/v1/rulesets", &worked_ruleset()).await,
        403,
        "forbidden",
        "hospital POST /admin/v1/rulesets",
    );
    assert_problem(&hospital.put("/admin/v1/cardholders/C9", &card("C9")).await, 403, "forbidden", "hospital PUT card");
    assert_problem(&hospital.get("/admin/v1/cardholders/C1").await, 403, "forbidden", "hospital GET card");
    assert_problem(
        &hospital.get(&format!("/admin/v1/reconciliation?date={}", today())).await,
        403,
        "forbidden",
        "hospital GET /admin/v1/reconciliation",
    );

    assert_problem(&admin.post("/v1/settlements", &bill("A-1", "C1")).await, 403, "forbidden", "admin settle");
    assert_problem(
        &admin.post("/v1/reversals", &json!({"card_id": "C1", "hospital_settlement_id": "A-1"})).await,
        403,
        "forbidden",
        "admin reverse",
    );
    assert_problem(
        &admin.get(&format!("/v1/reconciliation?date={}", today())).await,
        403,
        "forbidden",
        "admin GET /v1/reconciliation",
    );

    let bad = gw.client("bad cn!");
    assert_problem(&bad.post("/v1/settlements", &bill("B-1", "C1")).await, 403, "forbidden", "bad CN settle");
    assert_problem(&bad.get("/admin/v1/rulesets").await, 403, "forbidden", "bad CN admin");
    assert_problem(
        &bad.post("/v1/reversals", &json!({"card_id": "C1", "hospital_settlement_id": "B-1"})).await,
        403,
        "forbidden",
        "bad CN reverse",
    );

    assert_eq!(store_state(&redis), before, "a forbidden request changed the store");
    let list = admin.get("/admin/v1/rulesets").await;
    assert_eq!(list.body["rulesets"].as_array().map(|a| a.len()), Some(1), "{}", list.body);
    // The roles still work where they belong.
    assert_eq!(hospital.post("/v1/settlements", &bill("H-1", "C1")).await.status, 201);
    assert_eq!(admin.get("/admin/v1/rulesets").await.status, 200);
}

// ---- 3. hospitals are isolated from each other -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_hospitals_settlement_is_not_found() {
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[card("C1")]).await;
    let (owner, other) = (gw.client("H0001"), gw.client("H0002"));

    let created = owner.post("/v1/settlements", &bill("SHARED-ID-1", "C1")).await;
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
    let replay = owner.post("/v1/settlements", &bill("SHARED-ID-1", "C1")).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(header(&replay, "idempotent-replayed"), Some("true"));
    assert_eq!(replay.body["status"], "settled");
    // ... and H0002's tombstone applies to H0002 only.
    let theirs = other.post("/v1/settlements", &bill("SHARED-ID-1", "C1")).await;
    assert_problem(&theirs, 409, "already_reversed", "H0002 settles its cancelled id");
}

// ---- 4. bad bodies -----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settlement_bodies_are_refused_and_change_nothing() {
    let certs = Arc::new(Certs::new());
    let redis = redis_with_digest();
    let gw = Gateway::start(&redis.url(), &certs, "[limits]\nmax_body_bytes = 4096\n");
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[card("C1")]).await;
    let h = gw.client("H0001");
    let usage_before = usage(&admin, "C1").await;
    let before = store_state(&redis);

    let good = bill("BAD-1", "C1");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let post_raw = |body: Vec<u8>, ct: &'static str| {
        let h = &h;
        async move { h.send("POST", "/v1/settlements", Some(ct), body).await.unwrap() }
    };
    const TWO_53: i64 = 9_007_199_254_740_992;

    // Malformed JSON.
    let r = post_raw(br#"{"hospital_settlement_id": "BAD-1", "card_id": "#.to_vec(), "application/json").await;
    assert_invalid(&r, "card_id", "truncated JSON (the value being read when the body ended)");
    let r = post_raw(b"not json".to_vec(), "application/json").await;
    assert_invalid(&r, "body", "not JSON");

    let cases: Vec<(&str, Value, &str)> = vec![
        ("unknown top-level field", with(&|b| b["discount_fen"] = json!(5)), "discount_fen"),
        ("unknown field in amounts", with(&|b| b["amounts"]["tip_fen"] = json!(5)), "amounts.tip_fen"),
        ("string amount", with(&|b| b["amounts"]["total_fen"] = json!("2000000")), "amounts.total_fen"),
        (
            "negative amount",
            with(&|b| {
                b["amounts"]["over_limit_fen"] = json!(-20000);
                b["amounts"]["self_pay_fen"] = json!(190000);
            }),
            "amounts.over_limit_fen",
        ),
        ("float amount", with(&|b| b["amounts"]["self_pay_fen"] = json!(1.5)), "amounts.self_pay_fen"),
        (
            "2^53 as total",
            with(&|b| {
                b["amounts"] = json!({"total_fen": TWO_53, "in_scope_fen": TWO_53 - 1, "pre_self_pay_fen": 1,
                                  "over_limit_fen": 0, "self_pay_fen": 0});
            }),
            "amounts.total_fen",
        ),
        ("2^53 as insurance", with(&|b| b["insurance"]["other_fen"] = json!(TWO_53)), "insurance.other_fen"),
        ("buckets do not add up", with(&|b| b["amounts"]["total_fen"] = json!(2000001)), "amounts.total_fen"),
        ("insurance above in_scope", with(&|b| b["insurance"]["basic_fen"] = json!(1799999)), "insurance"),
        ("bad date", with(&|b| b["visit"]["date"] = json!("2026-02-30")), "visit.date"),
        ("date not a date", with(&|b| b["visit"]["date"] = json!("yesterday")), "visit.date"),
        (
            "visit 3 days in the future",
            with(&|b| b["visit"]["date"] = json!((today() + chrono::Days::new(3)).to_string())),
            "visit.date",
        ),
        ("unknown visit type", with(&|b| b["visit"]["type"] = json!("spa")), "visit.type"),
        (
            "bad hospital_settlement_id",
            with(&|b| b["hospital_settlement_id"] = json!("has space")),
            "hospital_settlement_id",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, body, field) in &cases {
        let r = h.post("/v1/settlements", body).await;
        eprintln!("{what}: {} {}", r.status, r.body["errors"]);
        let ok = r.status == 400
            && r.body["code"] == "invalid_request"
            && header(&r, "content-type") == Some("application/problem+json")
            && r.body["errors"][0]["field"] == *field;
        if !ok {
            wrong.push(format!("{what}: want 400 invalid_request naming {field:?}, got {} {}", r.status, r.body));
        }
    }
    assert!(wrong.is_empty(), "{} of {} bad bodies answered wrongly:\n{}", wrong.len(), cases.len(), wrong.join("\n"));

    // Over limits.max_body_bytes (4096 here): with a Content-Length, and streamed without one.
    let mut big = good.clone();
    big["card_id"] = json!("C".repeat(5000));
    let r = post_raw(serde_json::to_vec(&big).unwrap(), "application/json").await;
    assert_problem(&r, 413, "payload_too_large", "5 kB body with Content-Length");
    let r = request_as(
        &gw,
        "H0001",
        "POST",
        "/v1/settlements",
        &[("content-type", "application/json")],
        chunked(vec![b' '; 1024], 6),
    )
    .await
    .expect("chunked request");
    assert_problem(&r, 413, "payload_too_large", "6 kB chunked body");

    // Wrong content type, with a body that would otherwise settle.
    let r = post_raw(serde_json::to_vec(&good).unwrap(), "text/plain").await;
    assert_problem(&r, 415, "unsupported_media_type", "text/plain");
    let r = h.send("POST", "/v1/settlements", None, serde_json::to_vec(&good).unwrap()).await.unwrap();
    assert_problem(&r, 415, "unsupported_media_type", "no content type");

    // Nothing was stored by any of them.
    assert_eq!(store_state(&redis), before, "a refused request changed the store");
    assert_eq!(usage(&admin, "C1").await, usage_before);
    let r = h.get("/v1/settlements?card_id=C1&hospital_settlement_id=BAD-1").await;
    assert_problem(&r, 404, "not_found", "lookup of the refused id");

    // Controls: 2^53 − 1 is accepted (quote, stores nothing); a padded body under the limit and the
    // `application/json; charset=utf-8` form are accepted; the same good body then settles.
    let max = TWO_53 - 1;
    let mut q = good.clone();
    q.as_object_mut().unwrap().remove("hospital_settlement_id");
    q["amounts"] =
        json!({"total_fen": max, "in_scope_fen": max, "pre_self_pay_fen": 0, "over_limit_fen": 0, "self_pay_fen": 0});
    q["insurance"] = json!({});
    let r = h.post("/v1/settlements/quote", &q).await;
    assert_eq!(r.status, 200, "quote at 2^53-1: {}", r.body);
    let total = ["insurance_fen", "relief_fen", "patient_fen"]
        .iter()
        .map(|k| r.body[*k].as_i64().unwrap() as i128)
        .sum::<i128>();
    assert_eq!(total, max as i128, "payers must add up at 2^53-1: {}", r.body);
    assert_eq!(store_state(&redis), before, "a quote changed the store");
    let mut padded = serde_json::to_vec(&good).unwrap();
    padded.extend(vec![b' '; 3000]);
    let r = post_raw(padded, "application/json; charset=utf-8").await;
    assert_eq!(r.status, 201, "a valid 3.6 kB body: {}", r.body);
    assert_ne!(usage(&admin, "C1").await, usage_before);
}

/// A missing field is named in `errors[0].field` like every other bad field (`card_id`, `amounts.self_pay_fen`),
/// not as its enclosing object (`body`, `amounts`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_fields_are_named() {
    let certs = Arc::new(Certs::new());
    let redis = redis_with_digest();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[card("C1")]).await;
    let h = gw.client("H0001");
    let before = store_state(&redis);
    let without = |path: &[&str]| {
        let mut b = bill("MISSING-1", "C1");
        let (last, parents) = path.split_last().unwrap();
        let mut node = &mut b;
        for p in parents {
            node = &mut node[*p];
        }
        node.as_object_mut().unwrap().remove(*last).expect("field present");
        b
    };
    let mut wrong = Vec::new();
    for (path, field) in [
        (&["card_id"][..], "card_id"),
        (&["hospital_settlement_id"][..], "hospital_settlement_id"),
        (&["visit"][..], "visit"),
        (&["amounts"][..], "amounts"),
        (&["visit", "date"][..], "visit.date"),
        (&["amounts", "self_pay_fen"][..], "amounts.self_pay_fen"),
    ] {
        let r = h.post("/v1/settlements", &without(path)).await;
        assert_problem(&r, 400, "invalid_request", field);
        if r.body["errors"][0]["field"] != field {
            wrong.push(format!("without {field}: errors = {}", r.body["errors"]));
        }
    }
    assert_eq!(store_state(&redis), before, "a refused request changed the store");
    assert!(wrong.is_empty(), "missing fields not named in errors[0].field:\n{}", wrong.join("\n"));
}

// ---- 5. rate limit -----------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_per_hospital_with_retry_after() {
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "[rate_limit]\nper_second = 1\nburst = 3\n");
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[card("C1")]).await;
    let eligibility = json!({"card_id": "C1", "visit": {"type": "inpatient", "date": today().to_string()}});

    // Ten connections of H0001 (connected first, so the burst is only requests), ten requests at once.
    let clients: Vec<Client> = (0..10).map(|_| gw.client("H0001")).collect();
    for c in &clients {
        c.send("GET", "/no-such-route", None, Vec::new()).await.unwrap(); // connects; unknown routes are not limited
    }
    let started = Instant::now();
    let replies = futures_util::future::join_all(clients.iter().map(|c| c.post("/v1/eligibility", &eligibility))).await;
    let elapsed = started.elapsed();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok + limited.len(), 10, "statuses {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(ok >= 1, "nothing was served");
    // burst 3, plus at most one more per elapsed second
    assert!(ok as u64 <= 3 + elapsed.as_secs() + 1, "{ok} served in {elapsed:?} with burst 3, 1/s");
    assert!(!limited.is_empty(), "no 429 in a burst of 10 (served {ok} in {elapsed:?})");
    let mut max_retry = 0;
    for r in &limited {
        assert_problem(r, 429, "rate_limited", "over the burst");
        let retry: u64 = header(r, "retry-after").expect("Retry-After").parse().expect("Retry-After in whole seconds");
        assert!(retry >= 1, "Retry-After {retry}");
        max_retry = max_retry.max(retry);
    }

    // Another hospital has its own quota.
    let other = gw.client("H0002");
    for i in 0..3 {
        let r = other.post("/v1/eligibility", &eligibility).await;
        assert_eq!(r.status, 200, "H0002 request {i}: {}", r.body);
    }
    // The relief office is not a hospital: not limited.
    for _ in 0..5 {
        assert_eq!(admin.get("/admin/v1/rulesets").await.status, 200);
    }

    // Retry-After is truthful: after waiting that long, H0001 is served again.
    tokio::time::sleep(Duration::from_secs(max_retry)).await;
    let r = clients[0].post("/v1/eligibility", &eligibility).await;
    assert_eq!(r.status, 200, "after Retry-After = {max_retry} s: {}", r.body);
}

// ---- 6. SIGTERM with requests in flight --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_exits_0() {
    const CONNECTIONS: usize = 25;
    const PER_CONNECTION_MAX: usize = 400;
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let admin = gw.client(ADMIN);
    let cards: Vec<Value> = (0..CONNECTIONS).map(|i| card(&format!("SIG{i}"))).collect();
    seed(&admin, &[worked_ruleset()], &cards).await;

    // Connections open before the load starts.
    let clients: Vec<Arc<Client>> = (0..CONNECTIONS).map(|_| Arc::new(gw.client("H0001"))).collect();
    for c in &clients {
        assert_eq!(c.get(&format!("/v1/reconciliation?date={}", today())).await.status, 200);
    }
    let created = Arc::new(AtomicUsize::new(0));
    // (hsid, card, Ok(status) | Err(transport error), when)
    type Outcome = (String, String, Result<u16, String>, Instant);
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let mut tasks = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let (client, created, outcomes) = (client.clone(), created.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            let card_id = format!("SIG{i}");
            for n in 0..PER_CONNECTION_MAX {
                let hsid = format!("SIG-{i}-{n}");
                let body = serde_json::to_vec(&small_bill(&hsid, &card_id)).unwrap();
                let result = client.send("POST", "/v1/settlements", Some("application/json"), body).await;
                let status = result.as_ref().map(|r| r.status).map_err(|e| e.clone());
                if status == Ok(201) {
                    created.fetch_add(1, Ordering::SeqCst);
                }
                let stop = status.is_err();
                outcomes.lock().unwrap().push((hsid, card_id.clone(), status, Instant::now()));
                if stop {
                    break; // the gateway closed the connection, or refuses new ones: it is shutting down
                }
            }
        }));
    }

    // SIGTERM once the load is well under way.
    let mut gw = gw;
    let counter = created.clone();
    let (signalled_at, status) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while counter.load(Ordering::SeqCst) < 50 {
            assert!(Instant::now() < deadline, "the load never got going");
            std::thread::sleep(Duration::from_millis(5));
        }
        let at = Instant::now();
        (at, gw.terminate())
    })
    .await
    .unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(status.success(), "exit status after SIGTERM: {status:?}");

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let answered: Vec<&Outcome> = outcomes.iter().filter(|o| o.2.is_ok()).collect();
    let not_2xx: Vec<_> = answered.iter().filter(|o| o.2 != Ok(201)).map(|o| (&o.0, &o.2)).collect();
    assert!(not_2xx.is_empty(), "requests answered with something other than 201: {not_2xx:?}");
    let after_signal = answered.iter().filter(|o| o.3 > signalled_at).count();
    let cut: Vec<_> = outcomes.iter().filter_map(|o| o.2.as_ref().err()).collect();
    assert!(after_signal >= 1, "no request was answered after SIGTERM: nothing was in flight?");
    assert!(cut.len() <= CONNECTIONS, "more transport errors than connections: {cut:?}");
    eprintln!(
        "SIGTERM: {} answered 201 ({} after the signal), {} ended by the shutdown: {:?}",
        answered.len(),
        after_signal,
        cut.len(),
        cut.iter().take(3).collect::<Vec<_>>()
    );

    // What the store recorded, through a second gateway on the same Redis: exactly the 201s.
    let gw2 = Gateway::start(&redis.url(), &certs, "");
    let h = gw2.client("H0001");
    let mut recorded = 0;
    for (hsid, card_id, status, _) in &outcomes {
        let r = h.get(&format!("/v1/settlements?card_id={card_id}&hospital_settlement_id={hsid}")).await;
        match (status, r.status) {
            (Ok(201), 200) => recorded += 1,
            (Ok(201), other) => panic!("{hsid} was answered 201 but is not recorded ({other}: {})", r.body),
            (Err(e), 200) => panic!("{hsid} was applied but its response was cut off ({e})"),
            (Err(_), 404) => {}
            (s, other) => panic!("{hsid}: answered {s:?}, lookup {other}: {}", r.body),
        }
    }
    assert_eq!(recorded, answered.len());
    // The same from the reconciliation of the day(s) involved.
    let counted: u64 = {
        let mut days: Vec<String> = vec![today().to_string()];
        let yesterday = (today() - chrono::Days::new(1)).to_string();
        days.push(yesterday);
        let mut n = 0;
        for d in days {
            let r = h.get(&format!("/v1/reconciliation?date={d}")).await;
            n += r.body["settled_count"].as_u64().unwrap_or(0);
        }
        n
    };
    assert_eq!(counted as usize, answered.len(), "reconciliation settled_count");
}

// ---- 7. a ruleset published on one instance is used by another within 1 s ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruleset_published_on_one_instance_is_used_by_another_within_1s() {
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let a = Gateway::start(&redis.url(), &certs, "");
    let admin_a = a.client(ADMIN);
    let ruleset = |from: &str, ratio: u32| {
        json!({"effective_from": from, "programs": [
            {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
             "categories": {"dibao": {"ratio_bp": ratio}}}]})
    };
    seed(&admin_a, &[ruleset("2020-01-01", 9000)], &[card("C1")]).await;
    let b = Gateway::start(&redis.url(), &certs, "");
    let hb = b.client("H0002");
    let quote = json!({"card_id": "C1", "visit": {"type": "inpatient", "date": today().to_string()},
                       "amounts": {"total_fen": 10000, "in_scope_fen": 10000, "pre_self_pay_fen": 0,
                                   "over_limit_fen": 0, "self_pay_fen": 0}});
    let r = hb.post("/v1/settlements/quote", &quote).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["ruleset_version"].as_u64(), r.body["relief_fen"].as_i64()),
        (Some(1), Some(9000)),
        "{}",
        r.body
    );

    // v2: half the ratio, effective before the visit date.
    let sent = Instant::now();
    let published = admin_a.post("/admin/v1/rulesets", &ruleset("2021-01-01", 5000)).await;
    let answered = Instant::now();
    assert_eq!(published.status, 201, "{}", published.body);
    assert_eq!(published.body["version"], 2);
    let seen = loop {
        let r = hb.post("/v1/settlements/quote", &quote).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["ruleset_version"] == 2 {
            assert_eq!(r.body["relief_fen"], 5000, "v2's ratio: {}", r.body);
            break Instant::now();
        }
        assert_eq!(r.body["ruleset_version"], 1, "{}", r.body);
        assert!(answered.elapsed() < Duration::from_secs(5), "instance B never used v2");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let lag = seen - answered;
    eprintln!("ruleset v2: used by instance B {lag:?} after the publish answer ({:?} after it was sent)", seen - sent);
    assert!(lag <= Duration::from_millis(1000), "instance B used v2 only after {lag:?}");
    // B's eligibility agrees.
    let r = hb
        .post("/v1/eligibility", &json!({"card_id": "C1", "visit": {"type": "inpatient", "date": today().to_string()}}))
        .await;
    assert_eq!(r.body["ruleset_version"], 2, "{}", r.body);
}

// ---- 8. request ids, reconciliation, readiness -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_is_echoed_or_generated() {
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    seed(&gw.client(ADMIN), &[worked_ruleset()], &[card("C1")]).await;
    let date = today().to_string();
    let path = format!("/v1/reconciliation?date={date}");

    let none = || fixed(Vec::new());
    let r = request_as(&gw, "H0001", "GET", &path, &[("x-request-id", "hosp-req-0042")], none()).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-request-id"), Some("hosp-req-0042"));
    // Also on errors: 404, 403, 400.
    let r = request_as(&gw, "H0001", "GET", "/v1/settlements/s1_nope", &[("x-request-id", "rid-404")], none())
        .await
        .unwrap();
    assert_eq!((r.status, header(&r, "x-request-id")), (404, Some("rid-404")));
    let r =
        request_as(&gw, "H0001", "GET", "/admin/v1/rulesets", &[("x-request-id", "rid-403")], none()).await.unwrap();
    assert_eq!((r.status, header(&r, "x-request-id")), (403, Some("rid-403")));
    let r = request_as(
        &gw,
        "H0001",
        "POST",
        "/v1/settlements",
        &[("x-request-id", "rid-400"), ("content-type", "application/json")],
        fixed(b"{".to_vec()),
    )
    .await
    .unwrap();
    assert_eq!((r.status, header(&r, "x-request-id")), (400, Some("rid-400")));

    // Generated when absent: present, non-empty, different per request.
    let h = gw.client("H0001");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        let r = h.get(&path).await;
        let id = header(&r, "x-request-id").expect("X-Request-Id generated").to_string();
        assert!(!id.is_empty());
        assert!(seen.insert(id.clone()), "request id {id} reused");
    }
    let r = h.post("/v1/settlements", &json!({})).await;
    assert!(header(&r, "x-request-id").is_some_and(|v| !v.is_empty() && !seen.contains(v)));
}

/// Sums NDJSON detail lines into the shape of the totals.
fn sum_lines(lines: &[Value]) -> (u64, u64, BTreeMap<String, i64>, BTreeMap<String, i64>) {
    let (mut settled, mut reversed) = (0, 0);
    let mut net: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_program: BTreeMap<String, i64> = BTreeMap::new();
    for l in lines {
        match l["event"].as_str() {
            Some("settled") => settled += 1,
            Some("reversed") => reversed += 1,
            other => panic!("detail line with event {other:?}: {l}"),
        }
        for k in ["total_fen", "insurance_fen", "relief_fen", "patient_fen"] {
            *net.entry(k.into()).or_default() += l[k].as_i64().unwrap_or_else(|| panic!("{k} in {l}"));
        }
        for (p, v) in l["by_program"].as_object().unwrap_or_else(|| panic!("by_program in {l}")) {
            *by_program.entry(p.clone()).or_default() += v.as_i64().unwrap();
        }
    }
    by_program.retain(|_, v| *v != 0);
    (settled, reversed, net, by_program)
}

/// Checks one hospital's totals against its detail lines; returns the totals body.
async fn check_reconciliation(h: &Client, date: &str) -> (Value, Vec<Value>) {
    let totals = h.get(&format!("/v1/reconciliation?date={date}")).await;
    assert_eq!(totals.status, 200, "{}", totals.body);
    let detail = h.get(&format!("/v1/reconciliation/settlements?date={date}")).await;
    assert_eq!(detail.status, 200, "{}", String::from_utf8_lossy(&detail.raw));
    assert_eq!(header(&detail, "content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(detail.raw.to_vec()).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "NDJSON must end with a newline: {text:?}");
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("NDJSON line {l:?}: {e}"))).collect();
    let (settled, reversed, net, by_program) = sum_lines(&lines);
    let t = &totals.body;
    assert_eq!(t["date"], date);
    assert_eq!(t["settled_count"].as_u64(), Some(settled), "settled_count vs lines: {t}");
    assert_eq!(t["reversed_count"].as_u64(), Some(reversed), "reversed_count vs lines: {t}");
    for (k, v) in &net {
        assert_eq!(t["net"][k].as_i64(), Some(*v), "net.{k} vs lines: {t}");
    }
    let mut totals_by_program: BTreeMap<String, i64> =
        t["net"]["by_program"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap())).collect();
    totals_by_program.retain(|_, v| *v != 0);
    assert_eq!(totals_by_program, by_program, "net.by_program vs lines: {t}");
    (totals.body, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_totals_equal_detail_lines_and_admin_view() {
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    let admin = gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[card("C1"), card("C2"), card("C3")]).await;
    let (h1, h2) = (gw.client("H0001"), gw.client("H0002"));

    let mut settled = Vec::new();
    for (hsid, card_id) in [("R-1", "C1"), ("R-2", "C2"), ("R-3", "C3"), ("R-4", "C1")] {
        let r = h1.post("/v1/settlements", &bill(hsid, card_id)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        settled.push(r.body);
    }
    let reversed = h1
        .post("/v1/reversals", &json!({"card_id": "C2", "hospital_settlement_id": "R-2", "reason": "cancelled"}))
        .await;
    assert_eq!((reversed.status, reversed.body["status"].as_str()), (200, Some("reversed")), "{}", reversed.body);
    let again = h1.post("/v1/reversals", &json!({"card_id": "C2", "settlement_id": settled[1]["settlement_id"]})).await;
    assert_eq!(again.status, 200, "second reversal: {}", again.body);
    let h2_settled = h2.post("/v1/settlements", &bill("R-1", "C3")).await;
    assert_eq!(h2_settled.status, 201, "{}", h2_settled.body);
    let tomb = h2.post("/v1/reversals", &json!({"card_id": "C1", "hospital_settlement_id": "NEVER-SENT"})).await;
    assert_eq!(tomb.body["status"], "reversed_before_settled", "{}", tomb.body);

    let date = settled[0]["settled_at"].as_str().unwrap()[..10].to_string();
    for s in settled.iter().chain([&h2_settled.body, &reversed.body]) {
        let at = s["reversed_at"].as_str().or(s["settled_at"].as_str()).unwrap();
        assert_eq!(&at[..10], date, "test crossed local midnight; rerun");
    }
    assert!(settled[0]["settled_at"].as_str().unwrap().ends_with("+08:00"), "local time: {}", settled[0]);

    let (t1, lines1) = check_reconciliation(&h1, &date).await;
    assert_eq!((t1["settled_count"].as_u64(), t1["reversed_count"].as_u64()), (Some(4), Some(1)), "{t1}");
    assert_eq!(t1["hospital_id"], "H0001");
    assert_eq!(lines1.len(), 5);
    // Net = the three settlements that stand.
    let standing: Vec<&Value> = settled.iter().filter(|s| s["hospital_settlement_id"] != "R-2").collect();
    for k in ["total_fen", "insurance_fen", "relief_fen", "patient_fen"] {
        let want: i64 = standing.iter().map(|s| s[k].as_i64().unwrap()).sum();
        assert_eq!(t1["net"][k].as_i64(), Some(want), "net.{k}: {t1}");
    }
    let mut want_programs: BTreeMap<String, i64> = BTreeMap::new();
    for s in &standing {
        for p in s["payments"].as_array().unwrap() {
            *want_programs.entry(p["program"].as_str().unwrap().into()).or_default() += p["paid_fen"].as_i64().unwrap();
        }
    }
    want_programs.retain(|_, v| *v != 0);
    let got: BTreeMap<String, i64> = t1["net"]["by_program"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .filter(|(_, v)| *v != 0)
        .collect();
    assert_eq!(got, want_programs, "{t1}");

    let (t2, _) = check_reconciliation(&h2, &date).await;
    assert_eq!(t2["settled_count"].as_u64(), Some(1), "{t2}");
    assert_eq!(t2["net"]["total_fen"], h2_settled.body["total_fen"], "{t2}");
    assert_eq!(t2["net"]["relief_fen"], h2_settled.body["relief_fen"], "{t2}");

    // The relief office's view lists both hospitals with the same totals.
    let all = admin.get(&format!("/admin/v1/reconciliation?date={date}")).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["date"], date);
    let hospitals = all.body["hospitals"].as_array().unwrap();
    for (id, mine) in [("H0001", &t1), ("H0002", &t2)] {
        let theirs =
            hospitals.iter().find(|x| x["hospital_id"] == id).unwrap_or_else(|| panic!("{id} missing: {}", all.body));
        assert_eq!(theirs, mine, "admin view of {id}");
    }
    assert!(hospitals.iter().all(|x| x["hospital_id"] == "H0001" || x["hospital_id"] == "H0002"), "{}", all.body);

    // Another day is empty, and still consistent.
    let (empty, lines) = check_reconciliation(&h1, "2020-01-01").await;
    assert!(lines.is_empty() && empty["settled_count"] == 0, "{empty}");
    assert_problem(&h1.get("/v1/reconciliation?date=2026-13-01").await, 400, "invalid_request", "bad date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_200_once_a_ruleset_is_loaded() {
    let certs = Arc::new(Certs::new());
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &certs, "");
    assert_eq!(gw.ops_get("/healthz").await.status, 200);
    let reply = gw.ops_get("/readyz").await;
    let (status, body) = (reply.status, reply.body);
    assert_eq!(status, 503, "ready without any ruleset: {body}");
    seed(&gw.client(ADMIN), &[worked_ruleset()], &[]).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let reply = gw.ops_get("/readyz").await;
        let (status, body) = (reply.status, reply.body);
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz {status} {body} 2 s after publishing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = gw.ops_get("/metrics").await;
    let (status, metrics) = (reply.status, reply.body);
    assert_eq!(status, 200);
    assert!(metrics.contains("settlegate_http_requests_total"), "metrics: {}", &metrics[..metrics.len().min(500)]);
}
