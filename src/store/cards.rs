//! Cardholder writes, each with its events and audit entry and a condition checked in the same atomic step
//! (`scripts/put_cards.lua`), and the reads of the cardholder sync (`settlegate cardholders import --suspend-missing`, `crate::sync`).
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

use super::audit;
use super::codec::{card_fields, parse_card};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::registry::CardholderEvent;
use super::Store;
use crate::domain::audit::Actor;
use crate::domain::card::{CardStatus, Cardholder};

/// Card keys a SCAN page asks Redis for (its `COUNT` hint; a page may hold more or fewer).
pub const SCAN_PAGE_KEYS: usize = 1000;

/// What must hold of a stored card for a write to go ahead.
#[derive(Debug, Clone, Copy)]
pub enum Guard<'a> {
    /// Nothing: the relief office's writes.
    None,
    /// The stored card is absent or of this street, and so is the new card (a street office's writes).
    Street(&'a str),
    /// The stored card is exactly this one (field for field), one per card written (the sync's suspensions).
    Unchanged(&'a [Cardholder]),
}

impl Store {
    /// Writes `cards` with their events and one audit entry in one atomic step (`scripts/audit.lua` +
    /// `scripts/put_cards.lua`), each card where `guard` holds; returns the indices of the cards not written. The
    /// script writes all or nothing, so a batch with refused cards is sent again without them (resealed: the entry
    /// describes exactly what was written).
    pub(super) async fn put_cards_guarded(
        &self,
        cards: &[Cardholder],
        event: &CardholderEvent<'_>,
        guard: Guard<'_>,
        by: &Actor,
    ) -> StoreResult<Vec<usize>> {
        const OP: &str = "put_cards";
        let (event_type, at) = match event {
            CardholderEvent::Put { at } => ("cardholder.put", *at),
            CardholderEvent::Import { at } => ("cardholder.import", *at),
        };
        let (guard_name, street) = match guard {
            Guard::None => ("none", ""),
            Guard::Street(s) => ("street", s),
            Guard::Unchanged(before) => {
                assert_eq!(before.len(), cards.len(), "one expected card per card written");
                ("unchanged", "")
            }
        };
        let mut pending: Vec<usize> = (0..cards.len()).collect();
        let mut refused: Vec<usize> = Vec::new();
        let mut attempts = 0;
        while !pending.is_empty() {
            attempts += 1;
            if attempts > audit::AUDIT_ATTEMPTS {
                return Err(audit::busy(OP));
            }
            let detail = match event {
                CardholderEvent::Put { .. } if pending.len() == 1 => {
                    serde_json::to_value(&cards[pending[0]]).expect("a cardholder serialises")
                }
                CardholderEvent::Put { .. } => {
                    let ids: Vec<&str> = pending.iter().map(|&i| cards[i].card_id.as_str()).collect();
                    serde_json::json!({"cards": ids})
                }
                CardholderEvent::Import { .. } => serde_json::json!({"cards": pending.len()}),
            };
            let target = match event {
                CardholderEvent::Put { .. } if pending.len() == 1 => cards[pending[0]].card_id.as_str(),
                CardholderEvent::Put { .. } => "cards",
                CardholderEvent::Import { .. } => "import",
            };
            let sealed = self.seal(&by.draft(at, event_type, target, detail)).await?;
            let mut inv = self.put_cards_script.prepare_invoke();
            sealed.push(&mut inv);
            let names = card_fields(&cards[0]).map(|(name, _)| name);
            inv.arg(guard_name).arg(street).arg(event_type).arg(names.len()).arg(&names[..]);
            for &i in &pending {
                let card = &cards[i];
                inv.key(keys::card(&card.card_id));
                inv.arg(card_fields(card).map(|(_, v)| v).as_slice());
                inv.arg(serde_json::to_string(card).expect("a cardholder serialises"));
                let expected = match guard {
                    Guard::Unchanged(before) => card_fields(&before[i]).map(|(_, v)| v),
                    Guard::Street(_) | Guard::None => Default::default(),
                };
                inv.arg(expected.as_slice());
            }
            let conn = self.conn(OP)?;
            let reply: Vec<String> = { self.run_write(OP, conn, inv) }.await?;
            match reply.first().map(String::as_str) {
                Some("audit_stale") => continue,
                Some("stored") => break,
                Some("refused") if reply.len() > 1 => {
                    let mut out: Vec<usize> = Vec::with_capacity(reply.len() - 1);
                    for r in &reply[1..] {
                        let k = r.parse::<usize>().ok().filter(|k| *k < pending.len()).ok_or_else(|| {
                            StoreError::corrupt(OP, "put_cards.lua answered an index outside the batch")
                        })?;
                        out.push(k);
                    }
                    out.sort_unstable();
                    for k in out.into_iter().rev() {
                        refused.push(pending.remove(k));
                    }
                }
                other => return Err(StoreError::corrupt(OP, format!("unknown reply {other:?}"))),
            }
        }
        refused.sort_unstable();
        Ok(refused)
    }

    /// Suspends each card of `as_read` (cards as the sync read them), each only if it is still exactly as read, with
    /// a `cardholder.put` event per card, like a PUT of the suspended card, and one audit entry for the batch.
    /// Returns the indices of the cards left as they are because they changed since they were read.
    pub async fn suspend_cardholders(&self, as_read: &[Cardholder], at: &str, by: &Actor) -> StoreResult<Vec<usize>> {
        let suspended: Vec<Cardholder> =
            as_read.iter().map(|c| Cardholder { status: CardStatus::Suspended, ..c.clone() }).collect();
        self.put_cards_guarded(&suspended, &CardholderEvent::Put { at }, Guard::Unchanged(as_read), by).await
    }

    /// One SCAN page of the card keys (`{sg}:{<card_id>}:card`): the next cursor (0 = done) and the card ids. A card
    /// present for the whole scan is listed at least once (maybe twice); one created or deleted meanwhile may or may
    /// not be.
    pub async fn scan_card_ids(&self, cursor: u64) -> StoreResult<(u64, Vec<String>)> {
        const OP: &str = "scan_cards";
        let mut conn = self.conn(OP)?;
        let (next, keys): (u64, Vec<String>) = self
            .call(OP, false, async move {
                // every card key is in the ledger slot: one node's SCAN sees them all, on a cluster too
                let scan = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg("{sg}:{*}:card")
                    .arg("COUNT")
                    .arg(SCAN_PAGE_KEYS)
                    .to_owned();
                conn.to_ledger_primary(scan).await
            })
            .await?;
        // `*` also matches e.g. `{sg}:{C1}:stl:H1/x:card` (a settlement id ending in `:card`): a card id has no brace
        let ids = keys
            .iter()
            .filter_map(|k| k.strip_prefix("{sg}:{")?.strip_suffix("}:card"))
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
