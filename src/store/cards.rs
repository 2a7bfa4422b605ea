//! Cardholder writes with a condition checked in the same atomic step (`scripts/put_cards.lua`), and the reads of
//! the cardholder sync (`settlegate cardholders import --suspend-missing`, `crate::sync`).
//!
//! * A street office's PUT and import: each card is written only if the stored card is absent or of the office's
//!   street, and the new card is of it too ([`Guard::Street`], the `expected_street` of
//!   [`Store::put_cardholders`]). A read-then-write from the gateway could move a card that changed street in
//!   between; the script cannot.
//! * The sync's suspensions: each card is written (with `status = suspended`) only if the stored card is still
//!   exactly as the sync read it ([`Guard::Unchanged`]); a card changed meanwhile is left as it is and counted.
//! * Both are evented like any office write: `cardholder.put` per card, or `cardholder.import` per batch, in the
//!   same step as the cards.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::codec::{card_fields, parse_card};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::registry::CardholderEvent;
use super::Store;
use crate::domain::card::{CardStatus, Cardholder};

/// `scripts/put_cards.lua`, loaded on first use.
static PUT_CARDS: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("scripts/put_cards.lua")));

/// Card keys a SCAN page asks Redis for (its `COUNT` hint; a page may hold more or fewer).
pub const SCAN_PAGE_KEYS: usize = 1000;

/// What must hold of a stored card for a conditional write to go ahead.
#[derive(Debug, Clone, Copy)]
pub enum Guard<'a> {
    /// The stored card is absent or of this street, and so is the new card (a street office's writes).
    Street(&'a str),
    /// The stored card is exactly this one (field for field), one per card written (the sync's suspensions).
    Unchanged(&'a [Cardholder]),
}

impl Store {
    /// Writes `cards` and their event where `guard` holds, in one atomic step; returns the indices of the cards not
    /// written.
    pub(super) async fn put_cards_guarded(
        &self,
        cards: &[Cardholder],
        event: &CardholderEvent<'_>,
        guard: Guard<'_>,
    ) -> StoreResult<Vec<usize>> {
        const OP: &str = "put_cards_guarded";
        if cards.is_empty() {
            return Ok(Vec::new());
        }
        let (event_type, at) = match event {
            CardholderEvent::Put { at } => ("cardholder.put", *at),
            CardholderEvent::Import { at } => ("cardholder.import", *at),
        };
        let (guard_name, street) = match guard {
            Guard::Street(s) => ("street", s),
            Guard::Unchanged(before) => {
                assert_eq!(before.len(), cards.len(), "one expected card per card written");
                ("unchanged", "")
            }
        };
        let names = card_fields(&cards[0]).map(|(name, _)| name);
        let mut invocation = PUT_CARDS.key(keys::EVENTS);
        invocation.arg(guard_name).arg(street).arg(event_type).arg(at).arg(names.len()).arg(&names[..]);
        for (i, card) in cards.iter().enumerate() {
            invocation.key(keys::card(&card.card_id));
            invocation.arg(card_fields(card).map(|(_, v)| v).as_slice());
            invocation.arg(serde_json::to_string(card).expect("a cardholder serialises"));
            let expected = match guard {
                Guard::Unchanged(before) => card_fields(&before[i]).map(|(_, v)| v),
                Guard::Street(_) => Default::default(),
            };
            invocation.arg(expected.as_slice());
        }
        let mut conn = self.conn(OP)?;
        let refused: Vec<i64> = self.call(OP, true, async move { invocation.invoke_async(&mut conn).await }).await?;
        refused
            .into_iter()
            .map(|i| usize::try_from(i).ok().filter(|i| *i < cards.len()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| StoreError::corrupt(OP, "put_cards.lua answered an index outside the batch"))
    }

    /// Suspends each card of `as_read` (cards as the sync read them), each only if it is still exactly as read, with
    /// a `cardholder.put` event per card, like a PUT of the suspended card. Returns the indices of the cards left
    /// as they are because they changed since they were read.
    pub async fn suspend_cardholders(&self, as_read: &[Cardholder], at: &str) -> StoreResult<Vec<usize>> {
        let suspended: Vec<Cardholder> =
            as_read.iter().map(|c| Cardholder { status: CardStatus::Suspended, ..c.clone() }).collect();
        self.put_cards_guarded(&suspended, &CardholderEvent::Put { at }, Guard::Unchanged(as_read)).await
    }

    /// One SCAN page of the card keys (`sg:{<card_id>}:card`): the next cursor (0 = done) and the card ids. A card
    /// present for the whole scan is listed at least once (maybe twice); one created or deleted meanwhile may or may
    /// not be.
    pub async fn scan_card_ids(&self, cursor: u64) -> StoreResult<(u64, Vec<String>)> {
        const OP: &str = "scan_cards";
        let mut conn = self.conn(OP)?;
        let (next, keys): (u64, Vec<String>) = self
            .call(OP, false, async move {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg("sg:{*}:card")
                    .arg("COUNT")
                    .arg(SCAN_PAGE_KEYS)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        // `*` also matches e.g. `sg:{C1}:stl:H1/x:card` (a settlement id ending in `:card`): a card id has no brace
        let ids = keys
            .iter()
            .filter_map(|k| k.strip_prefix("sg:{")?.strip_suffix("}:card"))
            .filter(|id| !id.contains(['{', '}']))
            .map(String::from)
            .collect();
        Ok((next, ids))
    }

    /// The stored cards of `card_ids` (one pipeline), `None` for one that no longer exists.
    pub async fn read_cardholders(&self, card_ids: &[String]) -> StoreResult<Vec<Option<Cardholder>>> {
        const OP: &str = "read_cards";
        if card_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in card_ids {
            pipe.hgetall(keys::card(id));
        }
        let mut conn = self.conn(OP)?;
        let hashes: Vec<HashMap<String, String>> =
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        hashes.iter().map(|h| parse_card(h).map_err(|e| StoreError::corrupt(OP, e))).collect()
    }

    /// The street of a stored card: `None` when there is no such card, `Some(None)` for a card without a street.
    pub async fn card_street(&self, card_id: &str) -> StoreResult<Option<Option<String>>> {
        const OP: &str = "card_street";
        let mut conn = self.conn(OP)?;
        let key = keys::card(card_id);
        let (id, street): (Option<String>, Option<String>) = self
            .call(OP, false, async move {
                redis::cmd("HMGET").arg(key).arg("card_id").arg("street").query_async(&mut conn).await
            })
            .await?;
        Ok(id.map(|_| street.filter(|s| !s.is_empty())))
    }
}
