//! The relief office's calls over mTLS that many tests make.

use serde_json::Value;

use super::client::Client;
use super::fixtures::{cardholder, worked_ruleset};

/// Publishes rulesets and stores cardholders as the relief office; panics on failure.
pub async fn seed(admin: &Client, rulesets: &[Value], cardholders: &[Value]) {
    for r in rulesets {
        let reply = admin.post("/admin/v1/rulesets", r).await;
        assert_eq!(reply.status, 201, "publish: {}", reply.body);
    }
    for c in cardholders {
        let id = c["card_id"].as_str().unwrap();
        let reply = admin.put(&format!("/admin/v1/cardholders/{id}"), c).await;
        assert_eq!(reply.status, 200, "cardholder: {}", reply.body);
    }
}

/// The worked example's ruleset ([`worked_ruleset`]) and one dibao cardholder `C1`: what most HTTP tests settle
/// against.
pub async fn seed_worked_example(admin: &Client) {
    seed(admin, &[worked_ruleset()], &[cardholder("C1", "dibao")]).await;
}

/// A cardholder's `usage` of this year.
pub async fn usage(admin: &Client, card_id: &str) -> Value {
    let r = admin.get(&format!("/admin/v1/cardholders/{card_id}")).await;
    assert_eq!(r.status, 200, "GET cardholder {card_id}: {}", r.body);
    r.body["usage"].clone()
}
