//! Reading the event stream and a day's reconciliation over HTTP, with the checks every reader makes: cursors and
//! unique event ids; totals equal to the sum of the detail lines.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::client::Client;

/// The JSON values of an NDJSON body, one a line.
pub fn ndjson_values(raw: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(raw)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Every event, read in pages of `limit`; checks cursors, `Next-Cursor` and unique ids on the way.
pub async fn all_events(admin: &Client, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(c) => format!("/admin/v1/events?limit={limit}&after={c}"),
            None => format!("/admin/v1/events?limit={limit}"),
        };
        let r = admin.get(&path).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        let next = r.header("next-cursor").expect("Next-Cursor header").to_string();
        let page: Vec<Value> = String::from_utf8(r.raw.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event line {l}: {e}")))
            .collect();
        assert!(page.len() <= limit);
        match page.last() {
            Some(last) => assert_eq!(last["cursor"].as_str(), Some(next.as_str()), "Next-Cursor = last cursor"),
            None => {
                if let Some(a) = &after {
                    assert_eq!(&next, a, "nothing new: Next-Cursor = after");
                }
            }
        }
        let done = page.is_empty();
        events.extend(page);
        if done {
            break;
        }
        after = Some(next);
    }
    let ids: HashSet<&str> = events.iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "event_id never repeats");
    events
}

/// The settlement events only (`settlement.*`): the office's writes (cards, rulesets) have events too.
pub fn settlement_events(events: Vec<Value>) -> Vec<Value> {
    events.into_iter().filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("settlement."))).collect()
}

/// Non-zero amounts by program, from a `by_program` object.
pub fn by_program(object: &Value) -> BTreeMap<String, i64> {
    let map = object.as_object().unwrap_or_else(|| panic!("by_program is not an object: {object}"));
    map.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap())).filter(|(_, v)| *v != 0).collect()
}

/// NDJSON detail lines summed into the shape of the totals.
#[derive(Debug, Default)]
pub struct LineSums {
    pub settled: u64,
    pub reversed: u64,
    /// total_fen, insurance_fen, relief_fen, patient_fen.
    pub net: BTreeMap<String, i64>,
    /// Non-zero only.
    pub by_program: BTreeMap<String, i64>,
}

pub fn sum_lines(lines: &[Value]) -> LineSums {
    let mut sums = LineSums::default();
    for l in lines {
        match l["event"].as_str() {
            Some("settled") => sums.settled += 1,
            Some("reversed") => sums.reversed += 1,
            other => panic!("detail line with event {other:?}: {l}"),
        }
        for k in ["total_fen", "insurance_fen", "relief_fen", "patient_fen"] {
            *sums.net.entry(k.into()).or_default() += l[k].as_i64().unwrap_or_else(|| panic!("{k} in {l}"));
        }
        for (p, v) in l["by_program"].as_object().unwrap_or_else(|| panic!("by_program in {l}")) {
            *sums.by_program.entry(p.clone()).or_default() += v.as_i64().unwrap();
        }
    }
    sums.by_program.retain(|_, v| *v != 0);
    sums
}

/// One hospital's reconciliation of a day: the totals body and the detail lines.
pub struct Reconciliation {
    pub totals: Value,
    pub lines: Vec<Value>,
}

/// Fetches one hospital's totals and detail lines, and checks the totals against the lines.
pub async fn check_reconciliation(h: &Client, date: &str) -> Reconciliation {
    let totals = h.get(&format!("/v1/reconciliation?date={date}")).await;
    assert_eq!(totals.status, 200, "{}", totals.body);
    let detail = h.get(&format!("/v1/reconciliation/settlements?date={date}")).await;
    assert_eq!(detail.status, 200, "{}", String::from_utf8_lossy(&detail.raw));
    assert_eq!(detail.header("content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(detail.raw.to_vec()).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "NDJSON must end with a newline: {text:?}");
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("NDJSON line {l:?}: {e}"))).collect();
    let sums = sum_lines(&lines);
    let t = &totals.body;
    assert_eq!(t["date"], date);
    assert_eq!(t["settled_count"].as_u64(), Some(sums.settled), "settled_count vs lines: {t}");
    assert_eq!(t["reversed_count"].as_u64(), Some(sums.reversed), "reversed_count vs lines: {t}");
    for (k, v) in &sums.net {
        assert_eq!(t["net"][k].as_i64(), Some(*v), "net.{k} vs lines: {t}");
    }
    assert_eq!(by_program(&t["net"]["by_program"]), sums.by_program, "net.by_program vs lines: {t}");
    Reconciliation { totals: totals.body, lines }
}
