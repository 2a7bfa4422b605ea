//! Reading the event stream a page at a time, as the relief office: the pages, their cursors, and where the
//! stream ends before the load.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde::Deserialize;

use super::EventsStart;
use crate::client::Endpoint;

pub const PAGE_LIMIT: usize = 10_000;
/// Bound on one page's read (a full page is a few MB).
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts per page before the read counts as failed.
const PAGE_ATTEMPTS: usize = 3;
/// Pages at most in one walk (10^9 events): a stream that never ends (other traffic faster than the walk) stops it.
pub(in crate::audit) const MAX_PAGES: u64 = 100_000;

/// One page of the stream as the gateway answered it.
pub(in crate::audit) struct Page {
    pub(in crate::audit) status: u16,
    pub(in crate::audit) next_cursor: Option<String>,
    pub(in crate::audit) body: Bytes,
}

/// `after` as a query value (cursors this gateway hands out are URL-safe; anything else is percent-encoded).
pub(in crate::audit) fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One page after `after` (from the oldest kept without one), with a few attempts.
pub(in crate::audit) async fn read_page(admin: &Endpoint, after: Option<&str>) -> Result<Page, String> {
    let path = match after {
        Some(c) => format!("/admin/v1/events?limit={PAGE_LIMIT}&after={}", query_value(c)),
        None => format!("/admin/v1/events?limit={PAGE_LIMIT}"),
    };
    let mut last = String::new();
    for _ in 0..PAGE_ATTEMPTS {
        match admin.call_with_timeout(Method::GET, &path, None, PAGE_TIMEOUT).await {
            Ok(a) if a.status < 500 => return Ok(Page { status: a.status, next_cursor: a.next_cursor, body: a.body }),
            Ok(a) => last = format!("HTTP {} {}", a.status, String::from_utf8_lossy(&a.body[..a.body.len().min(200)])),
            Err(f) => last = format!("{} {f:?}", f.code()),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("GET {path} as {}: {last}", admin.name))
}

/// The lines of a page (blank ones skipped).
pub(in crate::audit) fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace))
}

/// The cursor of an event line, read alone (for the walk to the end, which looks at nothing else).
pub(in crate::audit) fn cursor_of(line: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Cursor {
        cursor: String,
    }
    serde_json::from_slice::<Cursor>(line).ok().map(|c| c.cursor)
}

/// Before the load: pages to the end of the stream and returns where it ended (only cursors are kept).
pub async fn stream_end(admin: &Endpoint) -> Result<EventsStart, String> {
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = read_page(admin, after.as_deref()).await?;
        match page.status {
            200 => {}
            404 => return Ok(EventsStart::NotServed),
            s => {
                return Err(format!(
                    "GET /admin/v1/events: HTTP {s} {}",
                    String::from_utf8_lossy(&page.body[..page.body.len().min(200)])
                ))
            }
        }
        let last = lines(&page.body).last().map(cursor_of);
        let next = match (page.next_cursor, last) {
            (Some(c), _) | (None, Some(Some(c))) => c,
            (None, None) => match after {
                Some(a) => a,
                None => return Err("GET /admin/v1/events: an empty stream without a Next-Cursor header".into()),
            },
            (None, Some(None)) => return Err("GET /admin/v1/events: a line without a cursor".into()),
        };
        if lines(&page.body).next().is_none() {
            return Ok(EventsStart::After(next));
        }
        after = Some(next);
    }
    Err(format!("GET /admin/v1/events: the stream did not end within {MAX_PAGES} pages"))
}
