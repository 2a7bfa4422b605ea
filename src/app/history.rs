//! Version 2 reads of what happened: a card's history (office and hospital views) and the event stream.

use super::{check_ids, ApiError, ApiResult, App};
use crate::domain::settlement::Settlement;
use crate::store::events::{Event, StreamPos, MAX_EVENTS_PAGE};

/// `limit` of `GET /admin/v1/events` when absent (API.md).
pub const DEFAULT_EVENTS_PAGE: usize = 1000;

impl App {
    /// `GET /admin/v1/cardholders/{card_id}/settlements`: every hospital's settlements of the card in `year`
    /// (default: this local year), newest first, at most `max`. 404 for an unknown card. `street`: the calling
    /// street office's street: a card not of it (now) is 404 `card_not_found`, exactly like an unknown one.
    pub async fn card_history(
        &self,
        card_id: &str,
        year: Option<i32>,
        max: usize,
        street: Option<&str>,
    ) -> ApiResult<(i32, Vec<Settlement>)> {
        check_ids(card_id, None)?;
        if let Some(own) = street {
            if self.store.card_street(card_id).await?.flatten().as_deref() != Some(own) {
                return Err(ApiError::CardNotFound(card_id.to_string()));
            }
        }
        let year = year.unwrap_or_else(|| chrono::Datelike::year(&self.today()));
        let history = self.store.card_history(card_id, year, None, max).await?;
        if history.is_empty() && !self.store.card_exists(card_id).await? {
            return Err(ApiError::CardNotFound(card_id.to_string()));
        }
        Ok((year, history))
    }

    /// `GET /v1/settlements?card_id=`: the calling hospital's own settlements of the card in `year` (default: this
    /// local year), newest first, at most `max`; empty for a card it never settled (whether or not it exists).
    pub async fn hospital_card_history(
        &self,
        hospital_id: &str,
        card_id: &str,
        year: Option<i32>,
        max: usize,
    ) -> ApiResult<Vec<Settlement>> {
        check_ids(card_id, None)?;
        let year = year.unwrap_or_else(|| chrono::Datelike::year(&self.today()));
        Ok(self.store.card_history(card_id, year, Some(hospital_id), max).await?)
    }

    /// `GET /admin/v1/events`: up to `limit` events after the cursor `after` (from the oldest kept without one).
    pub async fn events(&self, after: Option<&str>, limit: Option<&str>) -> ApiResult<Vec<Event>> {
        let after = match after {
            None => StreamPos::START,
            Some(c) => StreamPos::from_cursor(c)
                .ok_or_else(|| ApiError::invalid("after", "not a cursor this gateway handed out"))?,
        };
        let limit = match limit {
            None => DEFAULT_EVENTS_PAGE,
            Some(raw) => Some(raw)
                .filter(|r| !r.is_empty() && r.len() <= 5 && r.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|r| r.parse::<usize>().ok())
                .filter(|n| (1..=MAX_EVENTS_PAGE).contains(n))
                .ok_or_else(|| ApiError::invalid("limit", format!("must be an integer in 1..={MAX_EVENTS_PAGE}")))?,
        };
        let events = self.store.events_after(after, limit).await?;
        metrics::counter!("settlegate_events_read_total").increment(events.len() as u64);
        Ok(events)
    }
}
