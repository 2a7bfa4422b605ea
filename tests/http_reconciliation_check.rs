//! Two-sided reconciliation over the real `settlegate serve` binary and a private Redis (docs/API.md "Two-sided
//! reconciliation"): the totals check and the line-by-line check, for a hospital (its own day) and for the relief
//! office (any hospital's), with each kind of difference planted and found exactly, and the check's scratch hash
//! (`{sg}:check:*`) gone after every call, answered or refused.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use hyper::body::Frame;
use serde_json::{json, Value};
use settlegate::store::dayline::parse_event;

/// The gateway of these tests lists at most this many entries per kind of difference.
const MAX_LISTED: usize = 5;

fn stack() -> Stack {
    Stack::start(&format!("[limits]\nmax_check_differences = {MAX_LISTED}\n"))
}

/// No scratch hash of a check is left in Redis.
#[track_caller]
fn assert_no_scratch(redis: &Redis, after: &str) {
    let keys = redis.cli(&["--scan", "--pattern", "{sg}:check:*"]);
    assert!(keys.trim().is_empty(), "{after}: scratch keys left: {keys}");
}

/// A hospital's detail lines of a day, as `GET /v1/reconciliation/settlements` streams them.
async fn detail_lines(c: &Client, query: &str) -> Vec<Value> {
    let r = c.get(&format!("/v1/reconciliation/settlements?{query}")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    String::from_utf8(r.raw.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The hospital's view of the gateway's lines: the five fields of a details-check line, signed as streamed.
fn hospital_view(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            json!({"event": l["event"], "hospital_settlement_id": l["hospital_settlement_id"],
                   "total_fen": l["total_fen"], "relief_fen": l["relief_fen"], "patient_fen": l["patient_fen"]})
        })
        .collect()
}

fn ndjson(lines: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&serde_json::to_vec(l).unwrap());
        out.push(b'\n');
    }
    out
}

async fn check_details(c: &Client, query: &str, body: Vec<u8>) -> Reply {
    c.send("POST", &format!("/v1/reconciliation/check/details?{query}"), Some("application/x-ndjson"), body)
        .await
        .unwrap()
}

/// The contract's fields of a totals claim, taken from a `GET /v1/reconciliation` body.
fn claim_of(totals: &Value) -> Value {
    let n = &totals["net"];
    json!({"date": totals["date"], "settled_count": totals["settled_count"], "reversed_count": totals["reversed_count"],
           "net": {"total_fen": n["total_fen"], "insurance_fen": n["insurance_fen"], "relief_fen": n["relief_fen"],
                   "patient_fen": n["patient_fen"]}})
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_and_lines_are_checked_for_hospitals_and_the_relief_office() {
    let stack = stack();
    let gw = &stack.gw;
    let admin = gw.client(ADMIN);
    let cards: Vec<Value> = (1..=6).map(|i| cardholder(&format!("C{i}"), "dibao")).collect();
    seed(&admin, &[worked_ruleset()], &cards).await;
    let (h1, h2) = (gw.client("H0001"), gw.client("H0002"));

    let mut date = String::new();
    for i in 1..=6 {
        let r = h1
            .post("/v1/settlements", &outpatient_bill(&format!("K-{i}"), &format!("C{i}"), 10_000 * i, 500 * i))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        date = r.body["settled_at"].as_str().unwrap()[..10].to_string();
    }
    for (hsid, card) in [("K-2", "C2"), ("K-5", "C5")] {
        let r = h1.post("/v1/reversals", &json!({"card_id": card, "hospital_settlement_id": hsid})).await;
        assert_eq!(r.body["status"], "reversed", "{}", r.body);
        assert_eq!(&r.body["reversed_at"].as_str().unwrap()[..10], date, "test crossed local midnight; rerun");
    }
    for (hsid, card) in [("K-1", "C1"), ("Q-9", "C3")] {
        let r = h2.post("/v1/settlements", &worked_bill(hsid, card)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let t1 = h1.get(&format!("/v1/reconciliation?date={date}")).await.body;
    let t2 = h2.get(&format!("/v1/reconciliation?date={date}")).await.body;
    assert_eq!((t1["settled_count"].as_i64(), t1["reversed_count"].as_i64()), (Some(6), Some(2)), "{t1}");

    // ---- totals --------------------------------------------------------------------------------------------
    let r = h1.post("/v1/reconciliation/check", &claim_of(&t1)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["date"].as_str(), r.body["result"].as_str()),
        (Some(date.as_str()), Some("match")),
        "{}",
        r.body
    );
    assert_eq!((&r.body["gateway"], &r.body["differences"]), (&t1, &json!([])), "{}", r.body);
    // the whole GET body back (its own hospital_id and by_program) is a claim too
    let r = h1.post("/v1/reconciliation/check", &t1).await;
    assert_eq!((r.status, r.body["result"].as_str()), (200, Some("match")), "{}", r.body);

    let mut off = claim_of(&t1);
    off["settled_count"] = json!(7);
    off["net"]["relief_fen"] = json!(t1["net"]["relief_fen"].as_i64().unwrap() + 1);
    let r = h1.post("/v1/reconciliation/check", &off).await;
    assert_eq!((r.status, r.body["result"].as_str()), (200, Some("mismatch")), "{}", r.body);
    let want = json!([
        {"field": "settled_count", "hospital": 7, "gateway": 6},
        {"field": "net.relief_fen", "hospital": off["net"]["relief_fen"], "gateway": t1["net"]["relief_fen"]},
    ]);
    assert_eq!(r.body["differences"], want, "{}", r.body);
    assert_no_scratch(&stack.redis, "totals checks");

    // a hospital may name itself, not another; the relief office must name one
    let mut named = claim_of(&t1);
    named["hospital_id"] = json!("H0001");
    assert_eq!(h1.post("/v1/reconciliation/check", &named).await.body["result"], "match");
    named["hospital_id"] = json!("H0002");
    assert_problem(&h1.post("/v1/reconciliation/check", &named).await, 403, "forbidden", "H0001 naming H0002");
    assert_invalid(&admin.post("/v1/reconciliation/check", &claim_of(&t2)).await, "hospital_id", "admin, no hospital");
    let mut for_h2 = claim_of(&t2);
    for_h2["hospital_id"] = json!("H0002");
    let r = admin.post("/v1/reconciliation/check", &for_h2).await;
    assert_eq!((r.status, r.body["result"].as_str()), (200, Some("match")), "{}", r.body);
    assert_eq!((&r.body["gateway"], &r.body["hospital_id"]), (&t2, &json!("H0002")), "{}", r.body);
    // the relief office still cannot call the other /v1 routes, and a wrong method on a shared path is 405
    assert_problem(&admin.get(&format!("/v1/reconciliation?date={date}")).await, 403, "forbidden", "admin GET totals");
    assert_problem(&admin.get("/v1/reconciliation/check").await, 405, "method_not_allowed", "admin GET check");
    let mut bad = claim_of(&t1);
    bad["net"]["by_program"] = json!({"charity": 1.5});
    assert_invalid(&h1.post("/v1/reconciliation/check", &bad).await, "net.by_program.charity", "float");
    bad["net"]["by_program"] = json!({});
    bad["extra"] = json!(1);
    assert_invalid(&h1.post("/v1/reconciliation/check", &bad).await, "extra", "unknown field");

    // ---- lines ---------------------------------------------------------------------------------------------
    let gateway_lines = detail_lines(&h1, &format!("date={date}")).await;
    assert_eq!(gateway_lines.len(), 8);
    let mine = hospital_view(&gateway_lines);
    let q = format!("date={date}");
    let r = check_details(&h1, &q, ndjson(&mine)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["date"].as_str(), r.body["matched"].as_u64(), r.body["result"].as_str()),
        (Some(date.as_str()), Some(8), Some("match")),
        "{}",
        r.body
    );
    for list in ["missing_in_gateway", "missing_in_hospital", "amount_mismatch", "duplicate_in_hospital"] {
        assert_eq!(r.body[list], json!([]), "{list}: {}", r.body);
    }
    assert_no_scratch(&stack.redis, "a matching details check");

    // plant one difference of each kind: K-3's settled line dropped, a line the gateway never saw, K-5's reversal
    // with another relief_fen, and K-4's line sent twice
    let mut planted: Vec<Value> = Vec::new();
    let mut changed = Value::Null;
    for l in &mine {
        let hsid = l["hospital_settlement_id"].as_str().unwrap();
        if hsid == "K-3" {
            continue;
        }
        let mut l = l.clone();
        if hsid == "K-5" && l["event"] == "reversed" {
            changed = l.clone();
            l["relief_fen"] = json!(l["relief_fen"].as_i64().unwrap() - 1);
        }
        planted.push(l.clone());
        if hsid == "K-4" {
            planted.push(l);
        }
    }
    planted.push(json!({"event": "settled", "hospital_settlement_id": "FAKE-1", "total_fen": 100, "relief_fen": 0,
                        "patient_fen": 100}));
    let body = ndjson(&planted);
    let dup_line = planted.iter().rposition(|l| l["hospital_settlement_id"] == "K-4").unwrap() + 1;
    let r = check_details(&h1, &q, body).await;
    assert_eq!((r.status, r.body["result"].as_str()), (200, Some("mismatch")), "{}", r.body);
    let b = &r.body;
    assert_eq!(b["matched"], 6, "8 lines, K-3 missing, K-5's reversal differs: {b}");
    assert_eq!(b["missing_in_hospital"], json!(["K-3"]), "{b}");
    assert_eq!(b["missing_in_hospital_lines"], json!([{"event": "settled", "hospital_settlement_id": "K-3"}]), "{b}");
    assert_eq!(b["missing_in_gateway"], json!(["FAKE-1"]), "{b}");
    let want = json!([{"hospital_settlement_id": "K-5", "event": "reversed", "field": "relief_fen",
                       "hospital": changed["relief_fen"].as_i64().unwrap() - 1, "gateway": changed["relief_fen"]}]);
    assert_eq!(b["amount_mismatch"], want, "{b}");
    assert!(changed["relief_fen"].as_i64().unwrap() < 0, "reversed lines compare signed: {changed}");
    assert_eq!(
        b["duplicate_in_hospital"],
        json!([{"hospital_settlement_id": "K-4", "event": "settled", "line": dup_line}])
    );
    assert_eq!((b["hospital_lines"].as_u64(), b["gateway_lines"].as_u64()), (Some(9), Some(8)), "{b}");
    assert_no_scratch(&stack.redis, "a details check with differences");

    // a reversal sent with positive amounts is a mismatch of each amount, not a refusal
    let mut positive = mine.clone();
    let k2 = positive.iter_mut().find(|l| l["event"] == "reversed" && l["hospital_settlement_id"] == "K-2").unwrap();
    for f in ["total_fen", "relief_fen", "patient_fen"] {
        k2[f] = json!(-k2[f].as_i64().unwrap());
    }
    let r = check_details(&h1, &q, ndjson(&positive)).await;
    assert_eq!(
        (r.body["matched"].as_u64(), r.body["amount_mismatch_total"].as_u64()),
        (Some(7), Some(3)),
        "{}",
        r.body
    );

    // a malformed line refuses the whole call, naming the line; nothing is left behind
    let mut broken = ndjson(&mine);
    broken.extend_from_slice(b"{\"event\":\"settled\",\"hospital_settlement_id\":\"X\",\"total_fen\":1}\n");
    let r = check_details(&h1, &q, broken).await;
    assert_invalid(&r, "line 9", "missing fields on line 9");
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("relief_fen"), "{}", r.body);
    assert_no_scratch(&stack.redis, "a refused details check");
    let mut unknown = ndjson(&mine[..3]);
    unknown.extend_from_slice(
        b"{\"event\":\"settled\",\"hospital_settlement_id\":\"X\",\"total_fen\":1,\"relief_fen\":0,\"patient_fen\":1,\"card_id\":\"C1\"}\n",
    );
    unknown.extend_from_slice(&ndjson(&mine[3..]));
    assert_invalid(&check_details(&h1, &q, unknown).await, "line 4", "unknown field on line 4");
    assert_no_scratch(&stack.redis, "a refused details check (unknown field)");
    let r = h1.send("POST", &format!("/v1/reconciliation/check/details?{q}"), Some("application/json"), vec![]).await;
    assert_problem(&r.unwrap(), 415, "unsupported_media_type", "JSON body");

    // who: H0001 may not name H0002; the relief office names a hospital in the query, and must
    let h2_lines = hospital_view(&detail_lines(&h2, &q).await);
    assert_eq!(h2_lines.len(), 2);
    assert_problem(
        &check_details(&h1, &format!("{q}&hospital_id=H0002"), ndjson(&h2_lines)).await,
        403,
        "forbidden",
        "H0001 naming H0002",
    );
    assert_eq!(check_details(&h1, &format!("{q}&hospital_id=H0001"), ndjson(&mine)).await.body["matched"], 8);
    assert_invalid(&check_details(&admin, &q, ndjson(&h2_lines)).await, "hospital_id", "admin without hospital_id");
    let r = check_details(&admin, &format!("{q}&hospital_id=H0002"), ndjson(&h2_lines)).await;
    assert_eq!(
        (r.status, r.body["matched"].as_u64(), r.body["result"].as_str()),
        (200, Some(2), Some("match")),
        "{}",
        r.body
    );
    assert_eq!(r.body["hospital_id"], "H0002");
    // H0001's lines are not H0002's: the same ids, other amounts and other lines
    let r = check_details(&admin, &format!("{q}&hospital_id=H0002"), ndjson(&mine)).await;
    assert_eq!(r.body["result"], "mismatch", "{}", r.body);
    assert_no_scratch(&stack.redis, "the relief office's checks");

    // the check changed nothing: the day reads the same
    assert_eq!(h1.get(&format!("/v1/reconciliation?date={date}")).await.body, t1);
    let metrics = gw.ops_get("/metrics").await.body;
    for want in [
        r#"settlegate_reconciliation_checks_total{check="details",result="mismatch"}"#,
        r#"settlegate_reconciliation_checks_total{check="totals",result="match"}"#,
        r#"settlegate_reconciliation_check_lines_total{side="gateway"}"#,
    ] {
        assert!(metrics.contains(want), "{want} not in /metrics");
    }
}

/// A body of unknown length sent in pieces of `piece` bytes (lines cut anywhere).
fn in_pieces(bytes: &[u8], piece: usize) -> TestBody {
    let frames: Vec<Result<Frame<Bytes>, std::io::Error>> =
        bytes.chunks(piece).map(|c| Ok(Frame::data(Bytes::copy_from_slice(c)))).collect();
    http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// A past day of 5 000 detail lines, written straight into the day's Redis list in the settle and reverse
/// scripts' own line format (`dayline::encode_event`'s `S|at|settlement_id|hsid|card|total|insurance|relief|patient|
/// payments`, checked with `dayline::parse_event`) rather than settled over HTTP, for speed: the check reads the day
/// through the same `Store::day_events` either way. (The lines are formatted here rather than built as `DayEvent`s,
/// so the test does not depend on fields the line may gain later: it is read back through `parse_event`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_thousand_line_day_with_differences_of_every_kind() {
    const LINES: usize = 5_000;
    let stack = stack();
    let gw = &stack.gw;
    let day = "2020-03-02";
    let lines: Vec<String> = (0..LINES)
        .map(|i| {
            // every tenth line reverses the settlement nine lines before it
            let reversal = i % 10 == 9;
            let n = if reversal { i - 9 } else { i };
            let (total, relief) = (10_000 + n, 1_000 + n % 97);
            let kind = if reversal { "R" } else { "S" };
            let line = format!(
                "{kind}|{day}T10:00:00.000+08:00|s2_test{n}|BIG-{n:05}|C{}|{total}|0|{relief}|{}|",
                n % 50,
                total - relief
            );
            let e = parse_event(&line).unwrap_or_else(|| panic!("not a day line: {line}"));
            let sign = if reversal { -1 } else { 1 };
            assert_eq!((e.reversal, e.relief_fen), (reversal, sign * i64::try_from(relief).unwrap()));
            line
        })
        .collect();
    let key = format!("{{sg}}:recon:{day}:H0003:events");
    for chunk in lines.chunks(500) {
        let mut args = vec!["RPUSH", key.as_str()];
        args.extend(chunk.iter().map(String::as_str));
        assert!(stack.redis.cli(&args).trim().parse::<usize>().is_ok(), "RPUSH");
    }
    stack.redis.cli(&["SADD", &format!("{{sg}}:recon:{day}:hospitals"), "H0003"]);
    let h3 = gw.client("H0003");
    let q = format!("date={day}");
    let streamed = detail_lines(&h3, &q).await;
    assert_eq!(streamed.len(), LINES, "the planted day reads back whole");
    let mine = hospital_view(&streamed);

    // all of it, in odd-sized pieces: everything matches
    let r = gw
        .request_as(
            "H0003",
            "POST",
            &format!("/v1/reconciliation/check/details?{q}"),
            &[("content-type", "application/x-ndjson")],
            in_pieces(&ndjson(&mine), 777),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.body["matched"].as_u64(), r.body["result"].as_str()),
        (200, Some(5000), Some("match")),
        "{}",
        r.body
    );
    assert_no_scratch(&stack.redis, "the whole day");

    // 7 lines dropped, 8 relief amounts changed, 6 fakes added, 2 lines repeated
    let dropped: BTreeSet<usize> = [3, 404, 1_203, 2_002, 3_009, 4_444, 4_998].into();
    let changed: BTreeSet<usize> = [0, 19, 777, 1_500, 2_229, 3_333, 4_001, 4_999].into();
    let mut lines = Vec::new();
    for (i, l) in mine.iter().enumerate() {
        if dropped.contains(&i) {
            continue;
        }
        let mut l = l.clone();
        if changed.contains(&i) {
            l["relief_fen"] = json!(l["relief_fen"].as_i64().unwrap() + 3);
        }
        if i == 10 || i == 2_500 {
            lines.push(l.clone());
        }
        lines.push(l);
    }
    for f in 0..6 {
        lines.insert(
            f * 700,
            json!({"event": "reversed", "hospital_settlement_id": format!("FAKE-{f}"),
                                     "total_fen": -1, "relief_fen": 0, "patient_fen": -1}),
        );
    }
    let r = check_details(&h3, &q, ndjson(&lines)).await;
    let b = &r.body;
    assert_eq!((r.status, b["result"].as_str()), (200, Some("mismatch")), "{b}");
    assert_eq!(b["matched"].as_u64(), Some((LINES - dropped.len() - changed.len()) as u64), "{b}");
    assert_eq!(
        (b["hospital_lines"].as_u64(), b["gateway_lines"].as_u64()),
        (Some(5_000 - 7 + 2 + 6), Some(5_000)),
        "{b}"
    );
    let hsid = |i: &usize| mine[*i]["hospital_settlement_id"].as_str().unwrap().to_string();
    // each list holds at most MAX_LISTED entries; its total counts all
    assert_eq!(b["missing_in_hospital_total"], 7, "{b}");
    let want: Vec<String> = dropped.iter().map(hsid).take(MAX_LISTED).collect();
    assert_eq!(b["missing_in_hospital"], json!(want), "in the gateway's order: {b}");
    assert_eq!(b["missing_in_gateway_total"], 6, "{b}");
    let fakes = ids(&b["missing_in_gateway"]);
    assert_eq!(fakes.len(), MAX_LISTED);
    assert!(fakes.iter().all(|f| f.starts_with("FAKE-")), "{b}");
    assert_eq!(b["amount_mismatch_total"], 8, "{b}");
    let mismatches = b["amount_mismatch"].as_array().unwrap();
    assert_eq!(mismatches.len(), MAX_LISTED);
    for (m, i) in mismatches.iter().zip(&changed) {
        let gateway = mine[*i]["relief_fen"].as_i64().unwrap();
        let want = json!({"hospital_settlement_id": hsid(i), "event": mine[*i]["event"], "field": "relief_fen",
                          "hospital": gateway + 3, "gateway": gateway});
        assert_eq!(m, &want);
    }
    assert_eq!(b["duplicate_in_hospital_total"], 2, "{b}");
    let dups: BTreeSet<String> = b["duplicate_in_hospital"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["hospital_settlement_id"].as_str().unwrap().into())
        .collect();
    assert_eq!(dups, [hsid(&10), hsid(&2_500)].into());
    assert_no_scratch(&stack.redis, "the day with differences");

    // a bad line deep in the body: 400 naming it, after some batches were written; nothing left behind
    let mut body = ndjson(&mine);
    body.extend_from_slice(b"{\"event\":\"cancelled\",\"hospital_settlement_id\":\"X\",\"total_fen\":0,\"relief_fen\":0,\"patient_fen\":0}\n");
    body.extend_from_slice(&ndjson(&mine[..10]));
    assert_invalid(&check_details(&h3, &q, body).await, "line 5001", "a bad line after 5000 good ones");
    assert_no_scratch(&stack.redis, "a refused 5000-line check");

    // a body over limits.max_import_bytes is 413, and leaves nothing behind either
    let small = Stack::start("[limits]\nmax_import_bytes = 200000\n");
    let r = small
        .gw
        .request_as(
            "H0003",
            "POST",
            "/v1/reconciliation/check/details?date=2020-03-02",
            &[("content-type", "application/x-ndjson")],
            in_pieces(&ndjson(&mine), 4096),
        )
        .await;
    match r {
        Ok(r) => assert_problem(&r, 413, "payload_too_large", "over max_import_bytes"),
        // the server answers and closes while the client is still sending: it may see the close first
        Err(e) => eprintln!("413 not read, the connection closed first: {e}"),
    }
    assert_no_scratch(&small.redis, "a 413 details check");
}
