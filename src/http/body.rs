//! Reading requests: the media type, a JSON body bounded in size and time and parsed strictly, and query values.

use std::time::Duration;

use chrono::NaiveDate;
use http::{header, Request};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::wire;
use crate::app::ApiError;
use crate::config::LimitsConfig;

/// The request's media type, lower case, without parameters ("" when absent).
pub fn media_type(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads a JSON body: content type checked (415), size bounded (413), time bounded, parsed strictly (400).
pub async fn read_json<T: serde::de::DeserializeOwned>(
    limits: &LimitsConfig,
    req: Request<Incoming>,
) -> Result<T, ApiError> {
    let media = media_type(&req);
    if media != "application/json" {
        return Err(ApiError::UnsupportedMediaType(format!("expected application/json, got {media:?}")));
    }
    let max = limits.max_body_bytes;
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max))
    {
        return Err(ApiError::PayloadTooLarge(max));
    }
    let read = Limited::new(req.into_body(), max).collect();
    let body = match tokio::time::timeout(Duration::from_millis(limits.request_timeout_ms), read).await {
        Err(_) => return Err(ApiError::invalid("body", "not received in time")),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(ApiError::PayloadTooLarge(max))
        }
        Ok(Err(e)) => return Err(ApiError::invalid("body", format!("could not be read: {e}"))),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    wire::parse(&body)
}

/// The query string's pairs, decoded.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query(form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A required value: 400 naming it when absent.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::invalid(name, "query parameter required"))
    }

    /// An optional `?year=` (1900..=9999).
    pub fn year(&self) -> Result<Option<i32>, ApiError> {
        self.get("year")
            .map(|y| {
                y.parse::<i32>()
                    .ok()
                    .filter(|y| (1900..=9999).contains(y))
                    .ok_or_else(|| ApiError::invalid("year", "must be a year like 2026"))
            })
            .transpose()
    }

    /// `?date=YYYY-MM-DD`, `today` (local) when absent.
    pub fn date_or(&self, today: NaiveDate) -> Result<NaiveDate, ApiError> {
        let Some(raw) = self.get("date") else { return Ok(today) };
        crate::domain::date::parse(raw)
            .ok_or_else(|| ApiError::invalid("date", format!("{raw:?} is not a date (YYYY-MM-DD)")))
    }
}
