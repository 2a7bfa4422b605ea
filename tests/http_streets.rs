//! Three levels (API.md "Three levels: district, street, community"), over HTTPS and a real Redis:
//!
//! * the access matrix: every route of `Route::ALL` × every kind of caller (the relief office, two street offices,
//!   a hospital, a stranger whose CN is listed nowhere, a certificate whose CN is no valid id) → the status the
//!   contract gives, stated here row by row, independently of the route table; the test prints the table;
//! * a street office's rules: another street's card reads as a missing one, a PUT cannot move a card into or out of
//!   its street (checked in the store's write), an import rejects other streets' lines by number, the card history
//!   only for its street's cards;
//! * a CN in both `admin.identities` and `[streets]`, or a street label that is no valid label, stops the gateway
//!   at startup.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use serde_json::{json, Value};
use settlegate::http::routes::Route;

const A: &str = STREETS[0].0;
const B: &str = STREETS[1].0;
const STREET_A: &str = STREETS[0].1;
const STREET_B: &str = STREETS[1].1;
const HOSPITAL: &str = HOSPITALS[0];
const BAD_CN: &str = "bad cn!";

/// The callers of the matrix, in column order: (column title, certificate CN).
const CALLERS: [(&str, &str); 6] = [
    ("admin", ADMIN),
    ("street A", A),
    ("street B", B),
    ("hospital", HOSPITAL),
    ("stranger", STRANGER),
    ("bad CN", BAD_CN),
];

/// A card of street A, one of street B, one of no street.
fn card(card_id: &str, street: Option<&str>) -> Value {
    let mut c = cardholder(card_id, "dibao");
    if let Some(s) = street {
        c["street"] = json!(s);
    }
    c
}

async fn seeded() -> Stack {
    let stack = Stack::start(STREETS_TOML);
    let admin = stack.gw.client(ADMIN);
    seed(&admin, &[worked_ruleset()], &[card("CA1", Some(STREET_A)), card("CB1", Some(STREET_B)), card("CN1", None)])
        .await;
    let r = stack.gw.client(HOSPITAL).post("/v1/settlements", &outpatient_bill("H0001-A1", "CA1", 10_000, 0)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    stack
}

/// One request of the matrix: method, path, content type and body.
struct Probe {
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn probe(path: &str) -> Probe {
    Probe { path: path.to_string(), content_type: None, body: Vec::new() }
}

fn probe_json(path: &str, body: &Value) -> Probe {
    Probe { path: path.to_string(), content_type: Some("application/json"), body: body.to_string().into_bytes() }
}

/// What each route is probed with, and the status each caller of [`CALLERS`] gets: the contract, row by row. A
/// caller a route is for gets the answer of a request that changes nothing a later row reads (an invalid body is
/// 400, an unknown id 404); anyone else gets 403. The ops routes are not served on the API port (404; 403 for a
/// certificate that is no caller at all). A new route does not compile until it has a row here.
fn row(route: Route) -> (Probe, [u16; 6]) {
    const HOSPITALS_ONLY: [u16; 6] = [403, 403, 403, 200, 200, 403];
    const HOSPITALS_400: [u16; 6] = [403, 403, 403, 400, 400, 403];
    const ADMIN_ONLY: [u16; 6] = [200, 403, 403, 403, 403, 403];
    const ADMIN_400: [u16; 6] = [400, 403, 403, 403, 403, 403];
    const NOT_ON_THIS_PORT: [u16; 6] = [404, 404, 404, 404, 404, 403];
    let today = today().to_string();
    match route {
        Route::Eligibility => (
            probe_json("/v1/eligibility", &json!({"card_id": "CA1", "visit": visit_today("outpatient")})),
            HOSPITALS_ONLY,
        ),
        Route::Settle => (probe_json("/v1/settlements", &json!({})), HOSPITALS_400),
        Route::FindSettlement => (probe("/v1/settlements?card_id=CA1"), HOSPITALS_ONLY),
        Route::Quote => (probe_json("/v1/settlements/quote", &json!({})), HOSPITALS_400),
        Route::GetSettlement => (probe("/v1/settlements/s2_none"), [403, 403, 403, 404, 404, 403]),
        Route::Reverse => (probe_json("/v1/reversals", &json!({})), HOSPITALS_400),
        Route::Reconciliation => (probe("/v1/reconciliation"), HOSPITALS_ONLY),
        Route::ReconciliationDetail => (probe("/v1/reconciliation/settlements"), HOSPITALS_ONLY),
        // both the hospitals and the relief office check reconciliation
        Route::ReconciliationCheck => {
            (probe_json("/v1/reconciliation/check", &json!({})), [400, 403, 403, 400, 400, 403])
        }
        Route::ReconciliationCheckDetails => (
            Probe {
                path: format!("/v1/reconciliation/check/details?date={today}"),
                content_type: Some("text/plain"),
                body: Vec::new(),
            },
            [415, 403, 403, 415, 415, 403],
        ),
        Route::Clearings => (probe("/v1/clearings"), HOSPITALS_ONLY),
        // the street rows: street A's card; street B sees it as missing and may not write it
        Route::PutCardholder => {
            (probe_json("/admin/v1/cardholders/CA1", &card("CA1", Some(STREET_A))), [200, 200, 403, 403, 403, 403])
        }
        Route::GetCardholder => (probe("/admin/v1/cardholders/CA1"), [200, 200, 404, 403, 403, 403]),
        // street B's import answers 200 with the line rejected (checked below)
        Route::ImportCardholders => (
            Probe {
                path: "/admin/v1/cardholders/import".into(),
                content_type: Some("application/x-ndjson"),
                body: format!("{}\n", card("CA1", Some(STREET_A))).into_bytes(),
            },
            [200, 200, 200, 403, 403, 403],
        ),
        Route::CardHistory => (probe("/admin/v1/cardholders/CA1/settlements"), [200, 200, 404, 403, 403, 403]),
        Route::PublishRuleset => (probe_json("/admin/v1/rulesets", &json!({})), ADMIN_400),
        Route::ListRulesets => (probe("/admin/v1/rulesets"), ADMIN_ONLY),
        Route::GetRuleset => (probe("/admin/v1/rulesets/1"), ADMIN_ONLY),
        Route::Pools => (probe("/admin/v1/pools"), ADMIN_ONLY),
        Route::AdminReconciliation => (probe("/admin/v1/reconciliation"), ADMIN_ONLY),
        Route::Events => (probe("/admin/v1/events?limit=1"), ADMIN_ONLY),
        Route::CreateClearing => (probe_json("/admin/v1/clearings", &json!({})), ADMIN_400),
        Route::ListClearings => (probe("/admin/v1/clearings"), ADMIN_ONLY),
        Route::ConfirmClearing => {
            (probe_json("/admin/v1/clearings/cl_2020-01_H0001/confirm", &json!({})), [404, 403, 403, 403, 403, 403])
        }
        Route::PayClearing => (probe_json("/admin/v1/clearings/cl_2020-01_H0001/paid", &json!({})), ADMIN_400),
        Route::Contribute => (probe_json("/admin/v1/pools/charity/contributions", &json!({})), ADMIN_400),
        Route::Audit => (probe("/admin/v1/audit?limit=1"), ADMIN_ONLY),
        Route::PreviewRuleset => (probe_json("/admin/v1/rulesets/preview", &json!({})), ADMIN_400),
        Route::Reports => (
            probe(&format!("/admin/v1/reports/relief?from={today}&to={today}&by=street")),
            [200, 200, 200, 403, 403, 403],
        ),
        Route::Healthz => (probe("/healthz"), NOT_ON_THIS_PORT),
        Route::Readyz => (probe("/readyz"), NOT_ON_THIS_PORT),
        Route::Metrics => (probe("/metrics"), NOT_ON_THIS_PORT),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_caller() {
    let stack = seeded().await;
    let gw = &stack.gw;
    let clients: Vec<Client> = CALLERS.iter().map(|(_, cn)| gw.client(cn)).collect();
    let width = Route::ALL.iter().map(|r| r.method().len() + r.path().len() + 1).max().unwrap();
    let mut table = format!("{:width$} |", "route");
    for (title, _) in CALLERS {
        table.push_str(&format!(" {title:>8}"));
    }
    table.push('\n');
    let mut wrong = Vec::new();
    for &route in Route::ALL {
        let (p, want) = row(route);
        table.push_str(&format!("{:width$} |", format!("{} {}", route.method(), route.path())));
        for (i, client) in clients.iter().enumerate() {
            let got = client.send(route.method(), &p.path, p.content_type, p.body.clone()).await.unwrap();
            let mark = if got.status == want[i] { ' ' } else { '!' };
            table.push_str(&format!(" {:>7}{mark}", got.status));
            if got.status != want[i] {
                wrong.push(format!("{route:?} as {}: {} (want {}) {}", CALLERS[i].0, got.status, want[i], got.body));
            } else if got.status == 403 {
                assert_problem(&got, 403, "forbidden", &format!("{route:?} as {}", CALLERS[i].0));
            }
        }
        table.push('\n');
    }
    println!("{table}");
    assert!(wrong.is_empty(), "the matrix differs from the contract (! marks):\n{table}\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_streets_card_reads_as_missing() {
    let stack = seeded().await;
    let (a, b) = (stack.gw.client(A), stack.gw.client(B));
    let missing = a.get("/admin/v1/cardholders/C-NONE").await;
    assert_problem(&missing, 404, "card_not_found", "a missing card");
    for (who, client, card_id) in [("A", &a, "CB1"), ("A", &a, "CN1"), ("B", &b, "CA1")] {
        let r = client.get(&format!("/admin/v1/cardholders/{card_id}")).await;
        assert_problem(&r, 404, "card_not_found", &format!("{who} reads {card_id}"));
        assert_eq!(
            (r.body["title"].clone(), r.body["type"].clone()),
            (missing.body["title"].clone(), missing.body["type"].clone())
        );
        let h = client.get(&format!("/admin/v1/cardholders/{card_id}/settlements")).await;
        assert_problem(&h, 404, "card_not_found", &format!("{who} reads {card_id}'s history"));
    }
    let own = a.get("/admin/v1/cardholders/CA1").await;
    assert_eq!((own.status, own.body["street"].as_str()), (200, Some(STREET_A)), "{}", own.body);
    let history = a.get("/admin/v1/cardholders/CA1/settlements").await;
    assert_eq!(history.status, 200, "{}", history.body);
    let list = history.body["settlements"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", history.body);
    assert_eq!(list[0]["hospital_id"], HOSPITAL);
    assert_problem(&a.get("/admin/v1/cardholders/C-NONE/settlements").await, 404, "card_not_found", "unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_street_office_cannot_move_cards_into_or_out_of_its_street() {
    let stack = seeded().await;
    let (admin, a) = (stack.gw.client(ADMIN), stack.gw.client(A));
    let street_of = |card_id: &'static str| {
        let admin = &admin;
        async move { admin.get(&format!("/admin/v1/cardholders/{card_id}")).await }
    };
    // out of its street: its own card, put with another street or none
    for body in [card("CA1", Some(STREET_B)), card("CA1", None)] {
        assert_problem(&a.put("/admin/v1/cardholders/CA1", &body).await, 403, "forbidden", "move CA1 out");
    }
    assert_eq!(street_of("CA1").await.body["street"], STREET_A);
    // into its street: another street's card, or a card of no street
    for card_id in ["CB1", "CN1"] {
        let r = a.put(&format!("/admin/v1/cardholders/{card_id}"), &card(card_id, Some(STREET_A))).await;
        assert_problem(&r, 403, "forbidden", &format!("move {card_id} in"));
    }
    assert_eq!(street_of("CB1").await.body["street"], STREET_B);
    assert!(street_of("CN1").await.body.get("street").is_none());
    // a new card of another street (or none) is not created
    assert_problem(&a.put("/admin/v1/cardholders/CX1", &card("CX1", Some(STREET_B))).await, 403, "forbidden", "CX1");
    assert_problem(&a.put("/admin/v1/cardholders/CX1", &card("CX1", None)).await, 403, "forbidden", "CX1 none");
    assert_eq!(street_of("CX1").await.status, 404);
    // its own: created, changed (suspended), evented
    let mut own = card("CA2", Some(STREET_A));
    assert_eq!(a.put("/admin/v1/cardholders/CA2", &own).await.status, 200);
    own["status"] = json!("suspended");
    own["community"] = json!("huayuan");
    assert_eq!(a.put("/admin/v1/cardholders/CA2", &own).await.status, 200);
    let stored = street_of("CA2").await;
    assert_eq!(
        (stored.body["status"].as_str(), stored.body["community"].as_str()),
        (Some("suspended"), Some("huayuan"))
    );
    let events = admin.get("/admin/v1/events?limit=1000").await;
    let puts = events.raw.split(|b| *b == b'\n').filter(|l| {
        let l = String::from_utf8_lossy(l);
        l.contains(r#""type":"cardholder.put""#) && l.contains("CA2")
    });
    assert_eq!(puts.count(), 2, "two cardholder.put events of CA2");
    // and two audit entries naming the street office, with role street; the refused PUTs have none
    let audit = admin.get("/admin/v1/audit?action=cardholder.put").await;
    let entries: Vec<Value> = String::from_utf8_lossy(&audit.raw)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["actor"] == A)
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(|e| e["role"] == "street" && e["target"] == "CA2"), "{entries:?}");
    // the check is in the write: a card moved to street B behind the gateway's back is refused
    stack.redis.cli(&["HSET", "{sg}:{CA2}:card", "street", STREET_B]);
    assert_problem(&a.put("/admin/v1/cardholders/CA2", &own).await, 403, "forbidden", "CA2 moved");
    assert_eq!(street_of("CA2").await.body["street"], STREET_B);
    // the relief office moves cards freely
    assert_eq!(admin.put("/admin/v1/cardholders/CA2", &card("CA2", Some(STREET_A))).await.status, 200);
    assert_eq!(street_of("CA2").await.body["street"], STREET_A);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_street_import_rejects_other_streets_lines_by_number() {
    let stack = seeded().await;
    let (admin, a) = (stack.gw.client(ADMIN), stack.gw.client(A));
    let lines = [
        card("CA3", Some(STREET_A)).to_string(),
        card("CB3", Some(STREET_B)).to_string(),
        card("CB1", Some(STREET_A)).to_string(), // stored under street B
        card("CN3", None).to_string(),
        "{\"card_id\": 7}".to_string(),
        card("CA4", Some(STREET_A)).to_string(),
    ];
    let r = a.send("POST", "/admin/v1/cardholders/import", Some("application/x-ndjson"), lines.join("\n").into()).await;
    let r = r.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["imported"], 2, "{}", r.body);
    let rejected: Vec<u64> =
        r.body["rejected"].as_array().unwrap().iter().map(|x| x["line"].as_u64().unwrap()).collect();
    assert_eq!(rejected, [2, 4, 5, 3], "{}", r.body);
    assert_eq!(r.body["rejected_total"], 4);
    for (card_id, status) in [("CA3", 200), ("CA4", 200), ("CB3", 404), ("CN3", 404)] {
        assert_eq!(admin.get(&format!("/admin/v1/cardholders/{card_id}")).await.status, status, "{card_id}");
    }
    assert_eq!(admin.get("/admin/v1/cardholders/CB1").await.body["street"], STREET_B);
}

/// Runs `settlegate serve` on a config with `streets` and expects it to refuse to start, naming `why`.
fn refuses_to_start(certs: &Certs, streets: &str, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let [port, ops_port] = free_ports::<2>();
    let c = certs.path().display();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nops_listen = \"127.0.0.1:{ops_port}\"\n[tls]\ncert = \"{c}/server.pem\"\n\
         key = \"{c}/server.key\"\nclient_ca = \"{c}/ca.pem\"\n[admin]\nidentities = [\"{ADMIN}\"]\n\
         [redis]\nurl = \"redis://127.0.0.1:1\"\n{streets}"
    );
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_settlegate")).args(["serve", "--config"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with {streets}");
    assert!(stderr.contains(why), "{streets}: {stderr}");
}

#[test]
fn conflicting_or_invalid_street_identities_stop_the_gateway() {
    let certs = Arc::new(Certs::new());
    refuses_to_start(&certs, &format!("[streets]\nidentities = {{ \"{ADMIN}\" = \"jinrongjie\" }}\n"), "both");
    refuses_to_start(&certs, "[streets]\nidentities = { \"xc-a\" = \"jin rong\" }\n", "street label");
    refuses_to_start(&certs, "[streets]\nidentities = { \"xc-a\" = \"\" }\n", "street label");
    refuses_to_start(&certs, "[streets]\nidentitees = {}\n", "identitees");
}
