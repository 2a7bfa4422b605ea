//! The lines of a cardholder file, read with bounded memory: a chunk of the file and the current line at a time.
//! NDJSON (one RULES.md cardholder per line, the HTTP import's format) or CSV (a header row, then one card per line:
//! `card_id,category,valid_from,valid_until,status,tags[,street[,community]]`, tags separated by `;`).
//!
//! A CSV line is split at its commas: no valid field can hold a comma (ids, dates and labels exclude it), so a card
//! never needs quoting; a field may still be quoted (`"dibao"`), and the quotes are dropped.

use std::io::Read;

use crate::domain::card::Cardholder;
use crate::http::import::{parse_cardholder_line, Line, LineFramer};

/// Bytes read from the file at a time.
pub const READ_CHUNK_BYTES: usize = 256 * 1024;

/// The CSV columns, in order; the last two may be left out.
pub const CSV_COLUMNS: [&str; 8] =
    ["card_id", "category", "valid_from", "valid_until", "status", "tags", "street", "community"];

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Ndjson,
    Csv,
}

impl FileFormat {
    /// CSV when the name ends in `.csv`, else NDJSON.
    pub fn of(path: &std::path::Path) -> FileFormat {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            FileFormat::Csv
        } else {
            FileFormat::Ndjson
        }
    }
}

/// One line of the file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A valid cardholder on line `line_no` (1-based).
    Card { line_no: u64, card: Box<Cardholder> },
    /// Line `line_no` is not a valid cardholder: why.
    Rejected { line_no: u64, error: String },
}

/// Reads a cardholder file one chunk at a time: each [`CardLines::next_chunk`] answers the lines that chunk
/// completed (blank lines and the CSV header left out).
pub struct CardLines<R> {
    reader: R,
    format: FileFormat,
    framer: LineFramer,
    /// The line limit, for the rejection message.
    max_line_bytes: usize,
    /// The CSV header has been read (always true for NDJSON).
    header_seen: bool,
    /// A CSV file whose first line is not the header: the read stops with this error.
    bad_header: Option<String>,
    buf: Vec<u8>,
    done: bool,
}

impl<R: Read> CardLines<R> {
    pub fn new(reader: R, format: FileFormat, max_line_bytes: usize) -> CardLines<R> {
        CardLines {
            reader,
            format,
            framer: LineFramer::new(max_line_bytes),
            max_line_bytes,
            header_seen: format == FileFormat::Ndjson,
            bad_header: None,
            buf: vec![0; READ_CHUNK_BYTES],
            done: false,
        }
    }

    /// The lines of the next chunk, in order; `Ok(None)` at the end of the file. An unreadable file or a CSV
    /// file without its header is an error (the caller stops: nothing after it is read).
    pub fn next_chunk(&mut self) -> Result<Option<Vec<Parsed>>, String> {
        if self.done {
            return Ok(None);
        }
        let n = loop {
            match self.reader.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading the file: {e}")),
            }
        };
        let mut out = Vec::new();
        let (format, max, header_seen, bad_header) =
            (self.format, self.max_line_bytes, &mut self.header_seen, &mut self.bad_header);
        let mut take = |line: Line<'_>| {
            if bad_header.is_some() {
                return;
            }
            let (line_no, parsed) = match line {
                Line::TooLong { line_no } => (line_no, Err(format!("line longer than {max} bytes"))),
                Line::Text { line_no, bytes } if !*header_seen => {
                    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                        return;
                    }
                    *header_seen = true;
                    if let Err(e) = check_csv_header(bytes) {
                        *bad_header = Some(format!("line {line_no}: {e}"));
                    }
                    return;
                }
                Line::Text { line_no, bytes } => match format {
                    FileFormat::Ndjson => (line_no, parse_cardholder_line(bytes)),
                    FileFormat::Csv => (line_no, parse_csv_line(bytes)),
                },
            };
            match parsed {
                Ok(Some(card)) => out.push(Parsed::Card { line_no, card: Box::new(card) }),
                Ok(None) => {}
                Err(error) => out.push(Parsed::Rejected { line_no, error }),
            }
        };
        if n == 0 {
            self.framer.finish(&mut take);
            self.done = true;
        } else {
            self.framer.feed(&self.buf[..n], &mut take);
        }
        match self.bad_header.take() {
            Some(e) => Err(e),
            None => Ok(Some(out)),
        }
    }
}

fn csv_fields(line: &[u8]) -> Result<Vec<&str>, String> {
    let text = std::str::from_utf8(line.strip_suffix(b"\r").unwrap_or(line)).map_err(|_| "not UTF-8".to_string())?;
    Ok(text
        .split(',')
        .map(|f| f.trim())
        .map(|f| f.strip_prefix('"').and_then(|f| f.strip_suffix('"')).unwrap_or(f))
        .collect())
}

/// The header row names the columns of [`CSV_COLUMNS`], in order (the last two optional).
pub fn check_csv_header(line: &[u8]) -> Result<(), String> {
    let names = csv_fields(line)?;
    if names.len() < 6 || names.len() > CSV_COLUMNS.len() || names.iter().zip(CSV_COLUMNS).any(|(a, b)| *a != b) {
        return Err(format!("the CSV header must be {} (street and community may be left out)", CSV_COLUMNS.join(",")));
    }
    Ok(())
}

/// One CSV line as a validated cardholder; `Ok(None)` for a blank line.
pub fn parse_csv_line(line: &[u8]) -> Result<Option<Cardholder>, String> {
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let f = csv_fields(line)?;
    if f.len() < 6 || f.len() > CSV_COLUMNS.len() {
        return Err(format!("{} fields; want 6 to 8 ({})", f.len(), CSV_COLUMNS.join(",")));
    }
    let optional = |i: usize| f.get(i).filter(|v| !v.is_empty()).copied();
    let json = serde_json::json!({
        "card_id": f[0], "category": f[1], "valid_from": f[2], "valid_until": f[3], "status": f[4],
        "tags": f[5].split(';').filter(|t| !t.is_empty()).collect::<Vec<_>>(),
        "street": optional(6), "community": optional(7),
    });
    let card: Cardholder = serde_json::from_value(json).map_err(|e| e.to_string())?;
    let errors = card.validate();
    if errors.is_empty() {
        Ok(Some(card))
    } else {
        Err(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str, format: FileFormat, max: usize) -> Result<Vec<Parsed>, String> {
        let mut lines = CardLines::new(text.as_bytes(), format, max);
        let mut out = Vec::new();
        while let Some(chunk) = lines.next_chunk()? {
            out.extend(chunk);
        }
        Ok(out)
    }

    fn summary(parsed: &[Parsed]) -> Vec<String> {
        parsed
            .iter()
            .map(|p| match p {
                Parsed::Card { line_no, card } => format!("{line_no}:{}:{:?}", card.card_id, card.street),
                Parsed::Rejected { line_no, .. } => format!("{line_no}:rejected"),
            })
            .collect()
    }

    #[test]
    fn csv_with_and_without_streets() {
        let text = "card_id,category,valid_from,valid_until,status,tags,street,community\n\
                    C1,dibao,2026-01-01,2026-12-31,active,a;b,jinrongjie,huayuan\n\
                    \n\
                    \"C2\",tekun,2026-01-01,2026-12-31,suspended,,,\r\n\
                    C3,tekun,2026-01-01,2026-12-31,closed,\n\
                    C4,tekun,2026-01-01\n";
        let parsed = all(text, FileFormat::Csv, 4096).unwrap();
        assert_eq!(summary(&parsed), ["2:C1:Some(\"jinrongjie\")", "4:C2:None", "5:rejected", "6:rejected"]);
        let Parsed::Card { card, .. } = &parsed[0] else { panic!() };
        assert_eq!(
            (card.tags.clone(), card.community.as_deref()),
            (vec!["a".to_string(), "b".to_string()], Some("huayuan"))
        );
        let short = "card_id,category,valid_from,valid_until,status,tags\nC1,dibao,2026-01-01,2026-12-31,active,\n";
        assert_eq!(summary(&all(short, FileFormat::Csv, 4096).unwrap()), ["2:C1:None"]);
        assert!(all("C1,dibao,2026-01-01,2026-12-31,active,\n", FileFormat::Csv, 4096).unwrap_err().contains("header"));
    }

    #[test]
    fn ndjson_lines_long_lines_and_no_final_newline() {
        let c = r#"{"card_id":"C1","category":"dibao","valid_from":"2026-01-01","valid_until":"2026-12-31","status":"active"}"#;
        let text = format!("{c}\n{{\"card_id\":{}}}\n\n{c}", "1".repeat(300));
        assert_eq!(summary(&all(&text, FileFormat::Ndjson, 256).unwrap()), ["1:C1:None", "2:rejected", "4:C1:None"]);
    }

    #[test]
    fn the_example_files_hold_the_same_cards() {
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let ndjson = crate::demo::read_cardholders(&config.join("cardholders.example.ndjson")).unwrap();
        let csv = crate::demo::read_cardholders(&config.join("cardholders.example.csv")).unwrap();
        assert_eq!(ndjson.len(), 7);
        assert_eq!(ndjson, csv);
        assert!(ndjson.iter().all(|c| c.street.is_some() && c.community.is_some()));
    }
}
