//! The data of the console's Today page (`App::today_page`) over the real binary, mTLS and a private Redis: the
//! gateway's settle latencies and heartbeat reach Redis within a flush, and an `App` in process (as the console's
//! endpoint will have) reads today's report figures, the last hour, the pools, the reversal and the instance back;
//! with Redis stopped the page still answers, empty.

mod common;

use std::time::{Duration, Instant};

use common::app::connect_app;
use common::*;
use serde_json::{json, Value};
use settlegate::app::today::{Today, MINUTES_SHOWN};
use settlegate::app::App;

const SLOW_REDIS_OK: &str = "[redis]\nresponse_timeout_ms = 5000\n";

/// Medical assistance on the in-scope bucket and a charity pool of 1 000 000 fen for dibao cards.
fn ruleset() -> Value {
    json!({"effective_from": "2020-01-01", "programs": [
        {"id": "medical_assistance", "name": "Medical assistance", "covers": ["in_scope"],
         "categories": {"dibao": {"ratio_bp": 5000}}},
        {"id": "charity", "name": "Charity fund", "covers": ["in_scope", "self_pay"], "annual_pool_fen": 1_000_000,
         "categories": {"dibao": {"ratio_bp": 2000}}}]})
}

/// Polls the page until `done` holds of it, at most `within`.
async fn page_when(app: &App, within: Duration, what: &str, done: impl Fn(&Today) -> bool) -> Today {
    let deadline = Instant::now() + within;
    loop {
        let page = app.today_page().await.expect("the today page");
        if done(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "{what} not seen within {within:?}: {page:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_today_page_shows_settlements_latency_pools_reversals_and_instances() {
    let mut stack = Stack::start(SLOW_REDIS_OK);
    let started = Instant::now();
    let gw = &stack.gw;
    let listen = format!("127.0.0.1:{}", gw.port);
    let app = connect_app(&stack.redis).await;

    // the gateway's heartbeat is there within its first flushes, whatever else happens
    let page = page_when(&app, Duration::from_secs(6).saturating_sub(started.elapsed()), "the instance up", |p| {
        p.instances.iter().any(|i| i.up && i.heartbeat.listen == listen)
    })
    .await;
    let row = page.instances.iter().find(|i| i.heartbeat.listen == listen).unwrap();
    assert_eq!(row.heartbeat.version, env!("CARGO_PKG_VERSION"));
    assert!(chrono::DateTime::parse_from_rfc3339(&row.heartbeat.started_at).is_ok(), "{row:?}");

    let admin = gw.client(ADMIN);
    seed(&admin, &[ruleset()], &[cardholder("C1", "dibao"), cardholder("C2", "dibao")]).await;
    app.rules.refresh(&app.store).await.expect("rules");
    let hospital = gw.client("H0001");
    let mut settled = Vec::new();
    for i in 0..5 {
        let card = if i % 2 == 0 { "C1" } else { "C2" };
        let r = hospital.post("/v1/settlements", &outpatient_bill(&format!("T-{i}"), card, 10_000, 2_000)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        settled.push(r.body);
    }
    // a replay is a settle request answered 2xx too: counted in the latency figures, not as a settlement
    let replay = hospital.post("/v1/settlements", &outpatient_bill("T-0", "C1", 10_000, 2_000)).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    let reversed = &settled[1];
    let rev = json!({"card_id": "C2", "hospital_settlement_id": "T-1", "reason": "entered twice"});
    let r = hospital.post("/v1/reversals", &rev).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // the latencies arrive with the next flush (every 5 s)
    let page =
        page_when(&app, Duration::from_secs(12), "six settle requests in the last hour", |p| p.last_hour.settled >= 6)
            .await;

    // today's figures are the report's, reversal included
    let today = today().to_string();
    let report = admin.get(&format!("/admin/v1/reports/relief?from={today}&to={today}&by=day")).await;
    assert_eq!(report.status, 200, "{}", report.body);
    let rows = report.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", report.body);
    let relief = |s: &Value| s["relief_fen"].as_i64().unwrap();
    let net: i64 = settled.iter().map(relief).sum::<i64>() - relief(reversed);
    assert_eq!(page.date, today);
    assert_eq!(page.month, today[..7]);
    assert_eq!(page.today.settled_count, 5);
    assert_eq!(page.today.reversed_count, 1);
    assert_eq!(page.today.relief_fen, net);
    assert_eq!(
        json!(page.today),
        json!({"settled_count": rows[0]["settled_count"],
        "reversed_count": rows[0]["reversed_count"], "relief_fen": rows[0]["relief_fen"]})
    );
    assert_eq!(page.month_to_date, page.today, "a fresh Redis: the month so far is today");

    // sixty minutes, oldest first, in the gateway's zone; the settles are in the last ones
    assert_eq!(page.minutes.len(), MINUTES_SHOWN);
    let times: Vec<_> =
        page.minutes.iter().map(|m| chrono::DateTime::parse_from_rfc3339(&m.minute).expect("RFC 3339")).collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] == chrono::Duration::minutes(1)), "{:?}", page.minutes);
    assert!(page.minutes.iter().all(|m| m.minute.ends_with("+08:00")));
    let per_minute: u64 = page.minutes.iter().map(|m| m.settled).sum();
    assert_eq!(per_minute, page.last_hour.settled);
    assert!(page.minutes.iter().all(|m| (m.settled == 0) == m.p99_ms.is_none()), "{:?}", page.minutes);
    let p99 = page.last_hour.p99_ms.expect("a p99");
    assert!(p99 > 0.0 && p99 < 60_000.0, "{p99}");
    assert_eq!(page.last_hour.per_second, "0.00", "{} settles in an hour", page.last_hour.settled);

    // the pools are the route's rows
    let pools = admin.get("/admin/v1/pools").await;
    assert_eq!(pools.status, 200, "{}", pools.body);
    assert_eq!(json!(page.pools), pools.body["pools"]);
    assert_eq!(page.pools.len(), 1);

    // the reversal, newest first, its card masked
    assert_eq!(page.reversals.len(), 1, "{:?}", page.reversals);
    let rev = &page.reversals[0];
    assert_eq!(rev.hospital_id.as_deref(), Some("H0001"));
    assert_eq!(rev.relief_fen, Some(relief(reversed)));
    assert_eq!(rev.settlement_id.as_deref(), reversed["settlement_id"].as_str());
    assert_eq!(rev.card_id_masked.as_deref(), Some(settlegate::redact::mask_card("C2").as_str()));
    assert!(rev.at.is_some());

    assert!(page.redis.up && page.redis.ping_ms.is_some(), "{:?}", page.redis);

    // the JSON the console reads: exactly these keys
    let v = serde_json::to_value(&page).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["date", "instances", "last_hour", "minutes", "month", "month_to_date", "pools", "redis", "reversals", "today"]
    );
    let instance = v["instances"].as_array().unwrap().iter().find(|i| i["listen"] == listen.as_str()).unwrap();
    let mut fields: Vec<&str> = instance.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["instance", "listen", "seen_at", "started_at", "up", "version"]);
    assert_eq!(v["last_hour"].as_object().unwrap().len(), 3);
    assert!(v["reversals"][0]["card_id_masked"].is_string());

    // the stored figures are what the docs say: one field per instance, an expiry
    let minute = chrono::Utc::now().timestamp().div_euclid(60);
    let key = format!("{{sg}}:stats:settle:{minute}");
    let previous = format!("{{sg}}:stats:settle:{}", minute - 1);
    let ttl: i64 = stack.redis.cli(&["TTL", &key]).trim().parse().unwrap_or(-2);
    let ttl_previous: i64 = stack.redis.cli(&["TTL", &previous]).trim().parse().unwrap_or(-2);
    assert!((1..=7200).contains(&ttl.max(ttl_previous)), "TTL {ttl} / {ttl_previous}");
    assert!(stack.redis.cli(&["HKEYS", "{sg}:instances"]).contains(&row.heartbeat.instance));

    // Redis gone: the page still answers, empty and zero, and says so
    stack.redis.stop();
    let down = app.today_page().await.expect("the page answers without Redis");
    assert!(!down.redis.up && down.redis.ping_ms.is_none(), "{:?}", down.redis);
    assert_eq!(down.minutes.len(), MINUTES_SHOWN);
    assert_eq!((down.last_hour.settled, down.today.settled_count, down.month_to_date.relief_fen), (0, 0, 0));
    assert!(down.reversals.is_empty() && down.instances.is_empty() && down.pools.is_empty(), "{down:?}");
    assert_eq!(down.date, page.date);
}
