//! `POST /admin/v1/cardholders/import`: an NDJSON body streamed one line at a time. At most one batch of cards
//! and one line are held in memory, so a million lines never are.
//!
//! [`LineFramer`] is the pure part (bytes in, lines out, however the body is chunked); [`parse_cardholder_line`]
//! turns one line into a validated cardholder or a rejection; [`import`] drives them over the body and stores the
//! cards in batches.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::{body, json_response, wire, Ctx, Handled};
use crate::app::{Actor, ApiError};
use crate::domain::card::Cardholder;

/// Most rejected lines listed in an import answer; the rest are only counted.
pub const MAX_LISTED_REJECTS: usize = 1000;
/// Cardholders stored per Redis transaction during an import.
pub const IMPORT_BATCH: usize = 500;

/// One complete line of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// Line `line_no` (1-based), without its `\n` (a trailing `\r` is kept: [`parse_cardholder_line`] drops it).
    Text { line_no: u64, bytes: &'a [u8] },
    /// Line `line_no` was longer than the limit; its bytes were dropped as they arrived.
    TooLong { line_no: u64 },
}

/// Splits a byte stream into lines of at most `max_line_bytes`, whatever the chunking.
#[derive(Debug)]
pub struct LineFramer {
    /// Longest line kept (`limits.max_import_line_bytes`).
    max_line_bytes: usize,
    /// Bytes of the current, unfinished line.
    pending: BytesMut,
    /// Inside a line that is too long: drop bytes up to its newline.
    skipping: bool,
    /// Lines ended so far.
    line_no: u64,
}

impl LineFramer {
    pub fn new(max_line_bytes: usize) -> LineFramer {
        LineFramer { max_line_bytes, pending: BytesMut::new(), skipping: false, line_no: 0 }
    }

    /// Feeds a chunk; calls `on_line` for every line it completes.
    pub fn feed(&mut self, mut data: &[u8], on_line: &mut impl FnMut(Line<'_>)) {
        while !data.is_empty() {
            match data.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    if !self.skipping {
                        self.pending.extend_from_slice(&data[..i]);
                    }
                    self.end_line(on_line);
                    data = &data[i + 1..];
                }
                None => {
                    if !self.skipping {
                        self.pending.extend_from_slice(data);
                        if self.pending.len() > self.max_line_bytes {
                            self.skipping = true;
                            self.pending.clear();
                        }
                    }
                    data = &[];
                }
            }
        }
    }

    /// The body ended: a last line without a newline still counts.
    pub fn finish(&mut self, on_line: &mut impl FnMut(Line<'_>)) {
        if self.skipping || !self.pending.is_empty() {
            self.end_line(on_line);
        }
    }

    fn end_line(&mut self, on_line: &mut impl FnMut(Line<'_>)) {
        self.line_no += 1;
        let line = self.pending.split();
        if std::mem::take(&mut self.skipping) || line.len() > self.max_line_bytes {
            on_line(Line::TooLong { line_no: self.line_no });
        } else {
            on_line(Line::Text { line_no: self.line_no, bytes: &line });
        }
    }
}

/// One NDJSON line as a validated cardholder; `Ok(None)` for a blank line (skipped, not counted as rejected).
pub fn parse_cardholder_line(line: &[u8]) -> Result<Option<Cardholder>, String> {
    let text = line.strip_suffix(b"\r").unwrap_or(line);
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let card = wire::parse::<Cardholder>(text).map_err(|e| e.to_string())?;
    let errors = card.validate();
    if errors.is_empty() {
        Ok(Some(card))
    } else {
        Err(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    }
}

/// The cards of an import not yet stored, and what was imported and rejected so far.
#[derive(Debug, Default)]
struct Batcher<'a> {
    /// The line limit, for the rejection message.
    max_line_bytes: usize,
    /// A street office's import: its street. A line of another street is rejected, and so is a card stored under
    /// another street (checked in the store's write).
    street: Option<&'a str>,
    /// Parsed cards waiting for the next store write (at most about [`IMPORT_BATCH`]).
    batch: Vec<Cardholder>,
    /// The line number of each card of `batch`, to name the lines the store refuses.
    batch_lines: Vec<u64>,
    /// Cards stored so far.
    imported: u64,
    /// Lines rejected so far.
    rejected_total: u64,
    /// The first [`MAX_LISTED_REJECTS`] rejections: `{"line", "error"}`.
    rejected: Vec<serde_json::Value>,
}

impl Batcher<'_> {
    fn take(&mut self, line: Line<'_>) {
        let (line_no, parsed) = match line {
            Line::TooLong { line_no } => (line_no, Err(format!("line longer than {} bytes", self.max_line_bytes))),
            Line::Text { line_no, bytes } => (line_no, parse_cardholder_line(bytes)),
        };
        match parsed {
            Ok(Some(card)) if self.street.is_some_and(|own| card.street.as_deref() != Some(own)) => {
                let own = self.street.unwrap_or_default();
                self.reject(line_no, &format!("street: a street office imports only cards of its street, {own:?}"));
            }
            Ok(Some(card)) => {
                self.batch.push(card);
                self.batch_lines.push(line_no);
            }
            Ok(None) => {}
            Err(error) => self.reject(line_no, &error),
        }
    }

    fn reject(&mut self, line_no: u64, error: &str) {
        self.rejected_total += 1;
        if self.rejected.len() < MAX_LISTED_REJECTS {
            self.rejected.push(serde_json::json!({"line": line_no, "error": error}));
        }
    }

    async fn flush(&mut self, ctx: &Ctx, by: &Actor) -> Result<(), ApiError> {
        let at = ctx.app.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let event = crate::store::CardholderEvent::Import { at: &at };
        let refused = ctx.app.store.put_cardholders(&self.batch, &event, by, self.street).await?;
        self.imported += (self.batch.len() - refused.len()) as u64;
        for i in refused {
            let line_no = self.batch_lines[i];
            self.reject(line_no, "street: the card is stored under another street");
        }
        self.batch.clear();
        self.batch_lines.clear();
        Ok(())
    }
}

/// Streams the body into the store. A line over `limits.max_import_line_bytes` is skipped and listed as rejected.
/// When the body fails (too large, too slow, broken), the lines received before are still stored and the error
/// says how many. `street`: a street office's import (API.md "Three levels"): a line of another street, or of a
/// card stored under another street, is rejected with its line number.
pub async fn import(ctx: &Ctx, by: &Actor, req: Request<Incoming>, street: Option<&str>) -> Handled {
    let media = body::media_type(&req);
    if !matches!(media.as_str(), "application/x-ndjson" | "application/ndjson" | "application/jsonl") {
        return Err(ApiError::UnsupportedMediaType(format!("expected application/x-ndjson, got {media:?}")));
    }
    let deadline = Instant::now() + Duration::from_millis(ctx.limits.import_timeout_ms);
    let max_bytes = ctx.limits.max_import_bytes;
    let mut body = req.into_body();
    let mut received = 0usize;
    let mut framer = LineFramer::new(ctx.limits.max_import_line_bytes);
    let mut batcher = Batcher {
        max_line_bytes: ctx.limits.max_import_line_bytes,
        street,
        batch: Vec::with_capacity(IMPORT_BATCH),
        ..Batcher::default()
    };
    let failure = loop {
        let frame = match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Err(_) => break Some(ApiError::invalid("body", "import not finished within limits.import_timeout_ms")),
            Ok(None) => break None,
            Ok(Some(Err(e))) => break Some(ApiError::invalid("body", format!("could not be read: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            // Feed up to the limit, so every line that arrived whole before it is stored; then refuse the rest.
            let room = max_bytes - received;
            let taken = data.len().min(room);
            framer.feed(&data[..taken], &mut |line| batcher.take(line));
            received += taken;
            if batcher.batch.len() >= IMPORT_BATCH {
                batcher.flush(ctx, by).await?;
            }
            if data.len() > room {
                break Some(ApiError::PayloadTooLarge(max_bytes));
            }
        }
    };
    if failure.is_none() {
        framer.finish(&mut |line| batcher.take(line));
    }
    batcher.flush(ctx, by).await?;
    tracing::info!(imported = batcher.imported, rejected = batcher.rejected_total, "cardholders imported");
    if let Some(e) = failure {
        let detail = format!("{e}; the {} cardholders received before were stored", batcher.imported);
        return Err(match e {
            ApiError::Invalid(mut errors) => {
                errors[0].message = detail;
                ApiError::Invalid(errors)
            }
            ApiError::PayloadTooLarge(_) => {
                tracing::warn!("{detail}");
                e
            }
            other => other,
        });
    }
    Ok(json_response(
        StatusCode::OK,
        wire::to_vec(&serde_json::json!({"imported": batcher.imported, "rejected": batcher.rejected,
                                        "rejected_total": batcher.rejected_total})),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        let mut push = |l: Line<'_>| {
            out.push(match l {
                Line::Text { line_no, bytes } => format!("{line_no}:{}", String::from_utf8_lossy(bytes)),
                Line::TooLong { line_no } => format!("{line_no}:too long"),
            });
        };
        for c in chunks {
            framer.feed(c, &mut push);
        }
        framer.finish(&mut push);
        out
    }

    #[test]
    fn chunking_does_not_change_the_lines() {
        let whole = lines(5, &[b"ab\ncdefgh\n\nxyz"]);
        assert_eq!(whole, ["1:ab", "2:too long", "3:", "4:xyz"]);
        assert_eq!(lines(5, &[b"a", b"b\ncde", b"fgh\n", b"\nx", b"yz"]), whole);
        assert_eq!(lines(5, &[b"12345\n123456"]), ["1:12345", "2:too long"]);
    }

    #[test]
    fn blank_lines_are_skipped_and_bad_lines_name_the_problem() {
        assert_eq!(parse_cardholder_line(b"  \r"), Ok(None));
        assert!(parse_cardholder_line(b"{\"card_id\":1}").unwrap_err().contains("card_id"));
    }
}
