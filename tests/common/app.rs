//! The gateway in process: an `App` on its own connection to a private Redis (as one gateway instance has), and the
//! relief office's writes straight to its store.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use settlegate::app::App;
use settlegate::domain::card::Cardholder;
use settlegate::domain::rules::{Ruleset, RulesetInput};
use settlegate::rulebook::RulebookCache;
use settlegate::store::link::Link;
use settlegate::store::Store;

use super::fixtures::{PUBLISHED_AT, TIMEZONE};
use super::redis_server::Redis;

/// An `App` with its own connection to `redis` (generous timeouts: the tests load a 2-core machine) and an empty
/// rule cache, in the gateway's time zone.
pub async fn connect_app(redis: &Redis) -> App {
    let link = Link::new(&redis.url(), Duration::from_secs(5), Duration::from_secs(10), 10_000).unwrap();
    link.connect().await.expect("connect to the private redis");
    let store = Arc::new(Store::new(link, Duration::from_secs(10)));
    App::new(store, Arc::new(RulebookCache::default()), TIMEZONE)
}

/// Publishes a ruleset (JSON as the relief office sends it) straight to the store and refreshes `app`'s rule cache;
/// returns it as stored.
pub async fn publish(app: &App, ruleset: &Value) -> Ruleset {
    let input: RulesetInput = serde_json::from_value(ruleset.clone()).expect("a ruleset");
    publish_input(app, &input).await
}

/// [`publish`] for the domain type.
pub async fn publish_input(app: &App, input: &RulesetInput) -> Ruleset {
    let version = app.store.publish_ruleset(input, PUBLISHED_AT, &settlegate::app::cli_actor()).await.expect("publish");
    app.rules.refresh(&app.store).await.expect("refresh rules");
    Ruleset {
        version,
        effective_from: input.effective_from,
        published_at: PUBLISHED_AT.to_string(),
        programs: input.programs.clone(),
    }
}

/// Stores cardholders, 100 a call.
pub async fn put_cards(app: &App, cards: &[Cardholder]) {
    for chunk in cards.chunks(100) {
        app.store
            .put_cardholders(
                chunk,
                &settlegate::store::CardholderEvent::Import { at: "2026-01-01T08:00:00.000+08:00" },
                &settlegate::app::cli_actor(),
                None,
            )
            .await
            .expect("put cardholders");
    }
}
