//! `GET /v1/reconciliation/settlements`: a day's detail lines as NDJSON, read from Redis a page at a time as the
//! client consumes them. The first page is read before answering, so a store failure is still a proper 503.

use bytes::Bytes;
use chrono::NaiveDate;
use http::{header, HeaderValue, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;

use super::{wire, Ctx, Handled};
use crate::store::{DayEvent, EVENTS_PAGE};

pub async fn day_events(ctx: &Ctx, hospital_id: String, date: NaiveDate) -> Handled {
    ctx.app.refuse_archived(date).await?;
    let store = ctx.app.store.clone();
    let day = date.to_string();
    let first = store.day_events(&day, &hospital_id, 0).await?;
    let next = (first.len() == EVENTS_PAGE).then_some(EVENTS_PAGE);
    let head = futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(render(&first)))]);
    let rest = futures_util::stream::unfold(next, move |state| {
        let store = store.clone();
        let (day, hospital_id) = (day.clone(), hospital_id.clone());
        async move {
            let start = state?;
            match store.day_events(&day, &hospital_id, start).await {
                Ok(events) => {
                    let next = (events.len() == EVENTS_PAGE).then_some(start + EVENTS_PAGE);
                    Some((Ok(Frame::data(render(&events))), next))
                }
                // the status line is sent already: end the stream with an error so the client sees it broken
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let stream = futures_util::StreamExt::chain(head, rest);
    let mut resp = Response::new(BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream)));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(resp)
}

/// One page of lines as one body chunk.
fn render(events: &[DayEvent]) -> Bytes {
    let mut chunk = Vec::new();
    for e in events {
        chunk.extend_from_slice(&wire::day_event(e));
    }
    Bytes::from(chunk)
}
