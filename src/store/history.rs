//! A card's history: the settle script appends each settlement to `keys::history` (the card's slot, per visit
//! year, in the order applied), and these reads list them newest first with their records, in one pipeline.

use std::collections::HashMap;

use super::codec::parse_settlement;
use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;
use crate::domain::settlement::Settlement;

impl Store {
    /// The card's settlements of `year`, newest first: every hospital's, or only `hospital`'s; at most `max`.
    /// Every key read is in the card's slot.
    pub async fn card_history(
        &self,
        card_id: &str,
        year: i32,
        hospital: Option<&str>,
        max: usize,
    ) -> StoreResult<Vec<Settlement>> {
        const OP: &str = "card_history";
        assert!(max > 0, "a history page of 0");
        let mut conn = self.conn(OP)?;
        let key = keys::history(card_id, year);
        // the whole year's index (a card has a few settlements a week at most): a hospital's own are filtered
        // from it, so the other hospitals' entries only cost their member names
        let mut members: Vec<String> =
            self.call(OP, false, async move { redis::AsyncCommands::lrange(&mut conn, key, 0, -1).await }).await?;
        members.reverse();
        let prefix = hospital.map(|h| format!("{h}/"));
        let picked: Vec<&String> =
            members.iter().filter(|m| prefix.as_ref().is_none_or(|p| m.starts_with(p.as_str()))).take(max).collect();
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for m in &picked {
            let (h, hsid) = m.split_once('/').ok_or_else(|| StoreError::corrupt(OP, "history member without /"))?;
            pipe.hgetall(keys::settlement(card_id, h, hsid));
        }
        let mut conn = self.conn(OP)?;
        let records: Vec<HashMap<String, String>> =
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        records.iter().map(|r| parse_settlement(r).map_err(|e| StoreError::corrupt(OP, e))).collect()
    }

    /// Whether the card exists (its hash is present).
    pub async fn card_exists(&self, card_id: &str) -> StoreResult<bool> {
        const OP: &str = "card_exists";
        let mut conn = self.conn(OP)?;
        let key = keys::card(card_id);
        self.call(OP, false, async move { redis::AsyncCommands::exists(&mut conn, key).await }).await
    }
}
