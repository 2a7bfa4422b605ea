//! Privacy of identifiers and logs, over real TLS against the real binary (API.md "Operations, version 2"):
//! identifiers handed out reveal no card id; logs never carry a full card id, in any field or path; a hostile
//! certificate CN cannot forge or break log lines. Also the id contract: a lookup is one Redis read, a forged or
//! another hospital's id is 404, every instance reads every instance's ids, and `s1_` ids of earlier records still
//! resolve.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};

fn today() -> String {
    chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive().to_string()
}

fn ruleset() -> Value {
    json!({"effective_from": "2020-01-01", "programs": [
        {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
         "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}}},
        {"id": "charity", "name": "Charity fund", "covers": ["in_scope", "self_pay"],
         "categories": {"dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000}}}]})
}

fn card(id: &str, status: &str) -> Value {
    json!({"card_id": id, "category": "dibao", "valid_from": "2020-01-01", "valid_until": "2099-12-31",
           "status": status, "tags": []})
}

fn bill(hsid: &str, card: &str, fen: i64) -> Value {
    json!({"hospital_settlement_id": hsid, "card_id": card, "visit": {"type": "outpatient", "date": today()},
           "amounts": {"total_fen": fen, "in_scope_fen": fen, "pre_self_pay_fen": 0, "over_limit_fen": 0,
                       "self_pay_fen": 0}})
}

fn quote(card: &str) -> Value {
    let mut b = bill("ignored", card, 1000);
    b.as_object_mut().unwrap().remove("hospital_settlement_id");
    b
}

#[track_caller]
fn status(r: &Reply, want: u16, what: &str) {
    assert_eq!(r.status, want, "{what}: {}", String::from_utf8_lossy(&r.raw));
}

/// The `s1_` id an earlier build handed out for this settlement.
fn s1_id(card: &str, hsid: &str, hospital: &str) -> String {
    format!("s1_{}", URL_SAFE_NO_PAD.encode(format!("{card}|{hsid}|{hospital}")))
}

/// Every way an id could carry `needle`: in its text, or in the bytes of any base64 decoding of what follows the
/// prefix (both alphabets, any of the four alignments).
fn id_reveals(id: &str, needle: &str) -> bool {
    // a sealed id is random-looking text: a needle of 2-4 characters appears in it (or in its decoding) by chance
    // about once in 50 runs, which says nothing about the card. Short card ids are covered by the log checks and
    // by the longer ids, whose cards share the same sealing.
    if needle.len() < MIN_SEARCHABLE {
        return false;
    }
    if id.contains(needle) {
        return true;
    }
    let body = id.split_once('_').map_or(id, |(_, b)| b);
    let std = body.replace('-', "+").replace('_', "/");
    (0..4).any(|skip| {
        [body, std.as_str()].iter().any(|text| {
            let text: String = text.chars().skip(skip).collect();
            let cut = text.len() - text.len() % 4;
            let decoded = [
                URL_SAFE_NO_PAD.decode(&text[..cut]).ok(),
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(&text[..cut]).ok(),
            ];
            decoded.into_iter().flatten().any(|raw| raw.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
    })
}

async fn wait_ready(gw: &Gateway, want: u16, within: Duration) {
    let started = Instant::now();
    while gw.ops_get("/readyz").await.status != want {
        assert!(started.elapsed() < within, "/readyz did not become {want} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Shortest needle [`id_reveals`] looks for (shorter ones match random bytes by chance).
const MIN_SEARCHABLE: usize = 5;

/// Card ids of every shape: usual, 2 to 4 characters (a mask of the last 4 used to show them whole), long.
const CARDS: [&str; 6] = ["C7100001", "C7100002", "ZQ", "ZQX", "ZQXW", "Kd.long-card_id:0123456789"];

/// Settlements, replays, quotes, lookups by both ids, reversals by both ids, tombstones, refusals of every kind,
/// admin reads and writes by path, unknown and foreign paths holding card ids, an import: then no card id appears
/// anywhere in the gateway's log (at debug level), and no settlement id reveals one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_id_reaches_ids_or_logs() {
    let redis = Redis::start();
    let certs = Arc::new(Certs::new());
    let gw = Gateway::start_env(&redis.url(), &certs, "", &[("SETTLEGATE_LOG_LEVEL", "debug")]);
    let admin = gw.client(ADMIN);
    let (h1, h2) = (gw.client("H0001"), gw.client("H0002"));
    let unknown_card = "C7999999";
    let suspended = "C7100009";
    seed(&admin, &[ruleset()], &CARDS.iter().map(|c| card(c, "active")).collect::<Vec<_>>()).await;
    status(&admin.put(&format!("/admin/v1/cardholders/{suspended}"), &card(suspended, "suspended")).await, 200, "put");
    let import = format!("{}\n{{\"card_id\": \"C7100010\", \"category\": 5}}\n", card("C7100011", "active"));
    let r = admin.send("POST", "/admin/v1/cardholders/import", Some("application/x-ndjson"), import.into()).await;
    status(&r.unwrap(), 200, "import");

    let mut ids: Vec<(String, &str, String)> = Vec::new(); // (settlement_id, card, hsid)
    for (i, c) in CARDS.iter().enumerate() {
        // one hospital id embeds the card id, as some billing systems do
        let hsid = if i == 1 { format!("H0001-{c}-1") } else { format!("H0001-2026-{i:04}") };
        let fen = 10_000 + i64::try_from(i).unwrap();
        let r = h1.post("/v1/settlements", &bill(&hsid, c, fen)).await;
        status(&r, 201, "settle");
        let id = r.body["settlement_id"].as_str().unwrap().to_string();
        assert!(id.starts_with("s2_"), "{id}");
        status(&h1.post("/v1/settlements", &bill(&hsid, c, fen)).await, 200, "replay");
        status(&h1.post("/v1/settlements/quote", &quote(c)).await, 200, "quote");
        status(
            &h1.post("/v1/eligibility", &json!({"card_id": c, "visit": {"type": "outpatient", "date": today()}})).await,
            200,
            "eligibility",
        );
        let got = h1.get(&format!("/v1/settlements/{id}")).await;
        status(&got, 200, "get by id");
        assert_eq!(got.body["card_id"], *c);
        status(&h2.get(&format!("/v1/settlements/{id}")).await, 404, "another hospital's id");
        status(&h1.get(&format!("/v1/settlements?card_id={c}&hospital_settlement_id={hsid}")).await, 200, "find");
        status(&admin.get(&format!("/admin/v1/cardholders/{c}")).await, 200, "admin get");
        status(&h1.get(&format!("/admin/v1/cardholders/{c}")).await, 403, "hospital on an admin path");
        status(&admin.send("DELETE", &format!("/admin/v1/cardholders/{c}"), None, vec![]).await.unwrap(), 405, "405");
        status(&h1.get(&format!("/v1/cardholders/{c}")).await, 404, "unknown path with a card id");
        status(&h1.get(&format!("/{c}/settlements")).await, 404, "unknown path starting with a card id");
        status(&h1.post("/v1/settlements", &bill(&hsid, c, 99)).await, 409, "same id, other bill");
        ids.push((id, c, hsid));
    }
    // reversals: by settlement_id, by hospital_settlement_id, and a tombstone
    let (id0, c0, _) = &ids[0];
    let rev = json!({"card_id": c0, "settlement_id": id0, "reason": "visit cancelled"});
    status(&h1.post("/v1/reversals", &rev).await, 200, "reverse by settlement_id");
    status(&h1.post("/v1/reversals", &rev).await, 200, "reverse again");
    status(&h2.post("/v1/reversals", &rev).await, 404, "another hospital reverses by settlement_id");
    let (_, c1, hsid1) = &ids[1];
    let rev = json!({"card_id": c1, "hospital_settlement_id": hsid1});
    status(&h1.post("/v1/reversals", &rev).await, 200, "reverse by hospital_settlement_id");
    let tomb = json!({"card_id": CARDS[2], "hospital_settlement_id": format!("H0001-{}-never", CARDS[2])});
    status(&h1.post("/v1/reversals", &tomb).await, 200, "tombstone");
    // refusals whose detail names the card
    status(&h1.post("/v1/settlements", &bill("H0001-x-1", unknown_card, 100)).await, 404, "unknown card");
    status(&h1.post("/v1/settlements", &bill("H0001-x-2", suspended, 100)).await, 422, "suspended card");
    status(&h1.post("/v1/settlements/quote", &quote(unknown_card)).await, 404, "quote of an unknown card");
    let ask = json!({"card_id": unknown_card, "visit": {"type": "outpatient", "date": today()}});
    status(&h1.post("/v1/eligibility", &ask).await, 404, "eligibility of an unknown card");
    status(&admin.get(&format!("/admin/v1/cardholders/{unknown_card}")).await, 404, "admin get unknown");
    let mismatch = admin.put(&format!("/admin/v1/cardholders/{unknown_card}"), &card(CARDS[0], "active")).await;
    status(&mismatch, 400, "card id of body and path differ");
    let wrong_card = json!({"card_id": CARDS[3], "settlement_id": ids[4].0});
    status(&h1.post("/v1/reversals", &wrong_card).await, 404, "settlement_id of another card");
    status(&h1.get(&format!("/v1/settlements/{}", s1_id(unknown_card, "x", "H0001"))).await, 404, "unknown s1 id");
    let detail = h1.get(&format!("/v1/reconciliation/settlements?date={}", today())).await;
    status(&detail, 200, "reconciliation detail");
    assert!(String::from_utf8_lossy(&detail.raw).contains(CARDS[0]), "the detail lists card ids; logs must not");

    let log = gw.log_text();
    assert!(log.contains("served") && log.contains("refused"), "debug lines expected:\n{log}");
    assert!(log.contains("/admin/v1/cardholders/{card_id}"), "the route pattern is logged:\n{log}");
    let mut all_cards: Vec<&str> = CARDS.to_vec();
    all_cards.extend([unknown_card, suspended, "C7100010", "C7100011"]);
    for c in &all_cards {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(c)).collect();
        assert!(lines.is_empty(), "card id {c} in the log:\n{}", lines.join("\n"));
    }
    for (id, c, hsid) in &ids {
        assert!(!id_reveals(id, c), "{id} reveals card {c}");
        assert!(!id_reveals(id, hsid), "{id} reveals hospital_settlement_id {hsid}");
        assert!(!log.contains(id.as_str()), "settlement id {id} in the log");
    }
    // the check itself finds a card id in an s1 id
    assert!(id_reveals(&s1_id("C7100001", "x", "H0001"), "C7100001"));
}

/// Two instances on one fresh Redis, racing to create the id secret: each resolves the other's ids, another
/// hospital's id and a tampered one are 404, and reversal by an id minted elsewhere works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_shared_by_instances_and_bound_to_their_hospital() {
    let redis = Redis::start();
    let certs = Arc::new(Certs::new());
    let (gw1, gw2) = (Gateway::start(&redis.url(), &certs, ""), Gateway::start(&redis.url(), &certs, ""));
    seed(&gw1.client(ADMIN), &[ruleset()], &[card("C1", "active"), card("C2", "active")]).await;
    wait_ready(&gw2, 200, Duration::from_secs(5)).await; // instance 2 has the ruleset
    let (a, b) = (gw1.client("H0001"), gw2.client("H0001"));
    let (bill_a, bill_b) = (bill("A-1", "C1", 1000), bill("B-1", "C2", 2000));
    let (ra, rb) = tokio::join!(a.post("/v1/settlements", &bill_a), b.post("/v1/settlements", &bill_b));
    status(&ra, 201, "settle on instance 1");
    status(&rb, 201, "settle on instance 2");
    assert_eq!(redis.cli(&["STRLEN", "{sg}:secret:ids"]).trim(), "32", "one 32-byte secret");
    let (id_a, id_b) = (ra.body["settlement_id"].as_str().unwrap(), rb.body["settlement_id"].as_str().unwrap());
    for (client, id, hsid) in [(&b, id_a, "A-1"), (&a, id_b, "B-1"), (&a, id_a, "A-1")] {
        let r = client.get(&format!("/v1/settlements/{id}")).await;
        status(&r, 200, "lookup across instances");
        assert_eq!(r.body["hospital_settlement_id"], hsid);
        assert_eq!(r.body["settlement_id"], id);
    }
    // a retry through the other instance gets the same id
    let replay = b.post("/v1/settlements", &bill("A-1", "C1", 1000)).await;
    status(&replay, 200, "replay on instance 2");
    assert_eq!(replay.body["settlement_id"], id_a);
    // another hospital's, tampered, truncated, re-prefixed: all 404, like an unknown id
    let other = gw2.client("H0002");
    status(&other.get(&format!("/v1/settlements/{id_a}")).await, 404, "another hospital's id");
    let mut tampered = id_a.to_string().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), &id_a[..id_a.len() - 2], &id_a.replacen("s2_", "s1_", 1), "s2_", "s3_abc"] {
        let r = a.get(&format!("/v1/settlements/{bad}")).await;
        status(&r, 404, bad);
        assert_eq!(r.body["code"], "not_found");
    }
    let rev = json!({"card_id": "C2", "settlement_id": id_b});
    status(&other.post("/v1/reversals", &rev).await, 404, "another hospital reverses");
    let r = b.post("/v1/reversals", &json!({"card_id": "C2", "settlement_id": id_b})).await;
    status(&r, 200, "reverse by an id minted on instance 2, through instance 2");
    assert_eq!(r.body["status"], "reversed");
    let r = a.get(&format!("/v1/settlements/{id_b}")).await;
    assert_eq!(r.body["status"], "reversed", "{}", r.body);
}

/// A record of an earlier build holds an `s1_` id: it is still found by that id (and replays it), can be reversed
/// by it, and an `s1_` id naming another hospital is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_ids_of_earlier_records_stay_reachable() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &Arc::new(Certs::new()), "");
    seed(&gw.client(ADMIN), &[ruleset()], &[card("C1", "active")]).await;
    let h = gw.client("H0001");
    status(&h.post("/v1/settlements", &bill("OLD-1", "C1", 1000)).await, 201, "settle");
    // what an earlier build recorded: the same key, with its s1_ id
    let old = s1_id("C1", "OLD-1", "H0001");
    redis.cli(&["HSET", "{sg}:{C1}:stl:H0001/OLD-1", "settlement_id", &old]);
    let r = h.get(&format!("/v1/settlements/{old}")).await;
    status(&r, 200, "lookup by s1 id");
    assert_eq!(r.body["settlement_id"], old.as_str());
    let replay = h.post("/v1/settlements", &bill("OLD-1", "C1", 1000)).await;
    assert_eq!(replay.body["settlement_id"], old.as_str(), "a replay keeps the id handed out");
    status(&gw.client("H0002").get(&format!("/v1/settlements/{old}")).await, 404, "s1 id of another hospital");
    let forged = s1_id("C1", "OLD-1", "H0002");
    status(&gw.client("H0001").get(&format!("/v1/settlements/{forged}")).await, 404, "s1 id naming H0002");
    let r = h.post("/v1/reversals", &json!({"card_id": "C1", "settlement_id": old})).await;
    status(&r, 200, "reverse by s1 id");
    assert_eq!(r.body["status"], "reversed");
}

/// Commands the gateway sends to Redis while `during` runs, from `MONITOR` (commands run inside scripts and the
/// background polls — health `PING`, the ruleset counter `HGET {sg}:rulesets latest` — left out).
async fn commands_sent<F: std::future::Future<Output = ()>>(redis: &Redis, during: F) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("monitor.txt");
    let mut monitor = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "MONITOR"])
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(&out).unwrap().contains("OK") {
        assert!(started.elapsed() < Duration::from_secs(5), "MONITOR did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    during.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    monitor.kill().unwrap();
    monitor.wait().unwrap();
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter(|l| l.contains('"') && !l.contains(" lua]"))
        .map(|l| l.split_once("] ").map_or(l, |x| x.1).to_string())
        .filter(|c| c != "\"PING\"" && !c.starts_with("\"HGET\" \"{sg}:rulesets\" \"latest\""))
        .collect()
}

/// After the secret is loaded (first settlement), a settlement is one script call, a lookup by id is one HGETALL,
/// a forged id costs nothing, and the secret is never read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_is_one_redis_read() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &Arc::new(Certs::new()), "");
    seed(&gw.client(ADMIN), &[ruleset()], &[card("C1", "active")]).await;
    let h = gw.client("H0001");
    let first = commands_sent(&redis, async {
        status(&h.post("/v1/settlements", &bill("R-0", "C1", 100)).await, 201, "first settlement");
    })
    .await;
    assert!(first.iter().any(|c| c.contains("{sg}:secret:ids")), "the first settlement loads the secret: {first:?}");
    let id = h.get("/v1/settlements?card_id=C1&hospital_settlement_id=R-0").await.body["settlement_id"].clone();
    let id = id.as_str().unwrap().to_string();
    let sent = commands_sent(&redis, async {
        for i in 1..=3 {
            status(&h.post("/v1/settlements", &bill(&format!("R-{i}"), "C1", 100)).await, 201, "settle");
        }
        for _ in 0..4 {
            status(&h.get(&format!("/v1/settlements/{id}")).await, 200, "lookup");
        }
        let forged = format!("s2_{}", "A".repeat(60));
        status(&h.get(&format!("/v1/settlements/{forged}")).await, 404, "forged");
    })
    .await;
    let verbs: Vec<&str> = sent.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(verbs, [["\"EVALSHA\""; 3].as_slice(), &["\"HGETALL\""; 4]].concat(), "{sent:#?}");
    assert!(sent[3..].iter().all(|c| c.contains("{sg}:{C1}:stl:H0001/R-0")), "{sent:#?}");
}

/// The secret's first load meets an unresponsive Redis: 503 `unavailable` (nothing changed); once Redis is back
/// the next request loads it and ids work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_loads_once_redis_answers() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis.url(), &Arc::new(Certs::new()), "[redis]\nresponse_timeout_ms = 200\n");
    seed(&gw.client(ADMIN), &[ruleset()], &[card("C1", "active")]).await;
    wait_ready(&gw, 200, Duration::from_secs(5)).await;
    let h = gw.client("H0001");
    redis.freeze();
    let r = h.get("/v1/settlements/s2_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    redis.thaw();
    assert_eq!((r.status, r.body["code"].as_str()), (503, Some("unavailable")), "{}", r.body);
    wait_ready(&gw, 200, Duration::from_secs(10)).await;
    let r = h.post("/v1/settlements", &bill("L-1", "C1", 100)).await;
    status(&r, 201, "settle after Redis is back");
    let id = r.body["settlement_id"].as_str().unwrap();
    status(&h.get(&format!("/v1/settlements/{id}")).await, 200, "lookup");
}

// ---- log injection ----------------------------------------------------------------------------------------------

/// A client certificate with subject CN `cn`, signed by the dev CA of `certs` (rcgen; the CA's own name is read
/// from ca.pem). Returns the certificate and key paths in `dir`.
fn client_cert(certs: &Certs, dir: &std::path::Path, cn: &str) -> (PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa};
    let ca_der = CertificateDer::from_pem_file(certs.path().join("ca.pem")).unwrap();
    let (_, ca_x509) = x509_parser::parse_x509_certificate(ca_der.as_ref()).unwrap();
    let ca_cn = ca_x509.subject().iter_common_name().next().unwrap().as_str().unwrap().to_string();
    let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(certs.path().join("ca.key")).unwrap()).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, ca_cn);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let (cert_path, key_path) = (dir.join("hostile.pem"), dir.join("hostile.key"));
    std::fs::write(&cert_path, params.signed_by(&key, &issuer).unwrap().pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// A CN with a newline, an ANSI escape, a NUL and 300 more characters is refused (403) and reaches the log only
/// escaped and bounded: every line is one event, with no ESC, no NUL and no forged line; in JSON format too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_certificate_cn_cannot_forge_log_lines() {
    let redis = Redis::start();
    let certs = Arc::new(Certs::new());
    let dir = tempfile::tempdir().unwrap();
    let tail = "y".repeat(300);
    let cn = format!("H0001\n2030-01-01T00:00:00.000000Z  INFO settlegate: forged\x1b[31mred\0nul{tail}");
    let (cert, key) = client_cert(&certs, dir.path(), &cn);
    for format in ["text", "json"] {
        let gw = Gateway::start_env(&redis.url(), &certs, "", &[("SETTLEGATE_LOG_FORMAT", format)]);
        let hostile = Client::new(gw.port, &cert, &key, &certs.path().join("ca.pem"));
        let ask = json!({"card_id": "C1", "visit": {"type": "outpatient", "date": today()}});
        let r = hostile.post("/v1/eligibility", &ask).await;
        assert_eq!((r.status, r.body["code"].as_str()), (403, Some("forbidden")), "{format}: {}", r.body);
        status(&hostile.get("/admin/v1/rulesets").await, 403, "admin path");
        status(&hostile.get("/nowhere").await, 403, "unknown path");
        let started = Instant::now();
        while gw.log_text().matches("served").count() < 3 {
            assert!(started.elapsed() < Duration::from_secs(5), "{format}: no served lines:\n{}", gw.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = gw.log_text();
        assert!(!log.contains('\x1b'), "{format}: ESC in the log");
        assert!(!log.contains('\0'), "{format}: NUL in the log");
        assert!(!log.contains(&tail), "{format}: the CN is not bounded");
        for line in log.lines() {
            match format {
                "json" => {
                    serde_json::from_str::<Value>(line)
                        .unwrap_or_else(|e| panic!("not one JSON event ({e}): {line:?}"));
                }
                _ => {
                    let stamp = line.as_bytes();
                    assert!(
                        stamp.len() > 20 && stamp[..4].iter().all(u8::is_ascii_digit) && stamp[4] == b'-',
                        "a line that is not one event: {line:?}"
                    );
                }
            }
            assert!(!line.contains("forged") || line.contains("served"), "{format}: {line:?}");
        }
        let served = log.lines().filter(|l| l.contains("served") && l.contains("403")).count();
        assert_eq!(served, 3, "{format}:\n{log}");
        if format == "text" {
            assert!(log.contains("caller=H0001\\x0a2030-01-01T00:00:00.000000Z\\x20\\x20INFO"), "{log}");
        }
    }
}
