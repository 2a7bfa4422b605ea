//! The NDJSON import: `LineFramer` (bytes in, lines out, however the body is chunked) and `parse_cardholder_line`.
//!
//! Input: `[limit] body… [chunk sizes…] [k]`: the first byte is the line limit (0..=255 bytes, so that long lines
//! are common), the last byte `k` says how many bytes before it are chunk sizes (each 0..=255, a zero-length chunk
//! included) for one chunking of the body; the body is what lies between.

use settlegate::http::import::{parse_cardholder_line, Line, LineFramer};

/// What the framer emits, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Framed {
    Text(u64, Vec<u8>),
    TooLong(u64),
}

fn frame(max: usize, chunks: &[&[u8]]) -> Vec<Framed> {
    let mut framer = LineFramer::new(max);
    let mut out = Vec::new();
    let mut push = |l: Line<'_>| {
        out.push(match l {
            Line::Text { line_no, bytes } => Framed::Text(line_no, bytes.to_vec()),
            Line::TooLong { line_no } => Framed::TooLong(line_no),
        });
    };
    for c in chunks {
        framer.feed(c, &mut push);
    }
    framer.finish(&mut push);
    out
}

/// The lines by definition: the body's `\n`-separated pieces, a last piece only when not empty, a piece longer
/// than `max` as too long.
fn model(max: usize, body: &[u8]) -> Vec<Framed> {
    let mut pieces: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    if pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    (1u64..)
        .zip(pieces)
        .map(|(n, p)| if p.len() > max { Framed::TooLong(n) } else { Framed::Text(n, p.to_vec()) })
        .collect()
}

pub fn check_import_framing(data: &[u8]) {
    let Some((&limit, rest)) = data.split_first() else { return };
    let max = usize::from(limit);
    let (sizes, body) = match rest.split_last() {
        Some((&k, rest)) if usize::from(k) <= rest.len() => {
            let (body, sizes) = rest.split_at(rest.len() - usize::from(k));
            (sizes, body)
        }
        _ => (&[][..], rest),
    };
    let mut chunks = Vec::new();
    let mut rest = body;
    for &size in sizes {
        let (head, tail) = rest.split_at(usize::from(size).min(rest.len()));
        chunks.push(head);
        rest = tail;
    }
    chunks.push(rest);

    let whole = frame(max, &[body]);
    assert_eq!(
        frame(max, &chunks),
        whole,
        "chunking {:?} changed the lines",
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
    );
    let bytewise: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(frame(max, &bytewise), whole, "feeding byte by byte changed the lines");
    assert_eq!(whole, model(max, body), "the lines are not the body's pieces (max {max})");
    for (i, line) in whole.iter().enumerate() {
        let expected = u64::try_from(i).expect("fits") + 1;
        match line {
            Framed::Text(n, bytes) => {
                assert_eq!(*n, expected, "line numbers not consecutive");
                assert!(bytes.len() <= max, "line {n} of {} bytes exceeds the limit {max}", bytes.len());
                assert!(!bytes.contains(&b'\n'), "line {n} contains a newline");
            }
            Framed::TooLong(n) => assert_eq!(*n, expected, "line numbers not consecutive"),
        }
    }

    // Every line of the body (unbounded here) parses or is refused, never panics; a card that parses is valid and
    // comes back the same through its JSON.
    for line in body.split(|b| *b == b'\n') {
        if let Ok(Some(card)) = parse_cardholder_line(line) {
            assert!(card.validate().is_empty(), "an accepted card does not validate: {card:?}");
            let json = serde_json::to_vec(&card).expect("a card serialises");
            assert_eq!(parse_cardholder_line(&json), Ok(Some(card)), "JSON round trip of a card");
        }
    }
}
