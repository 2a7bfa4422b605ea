//! `settlegate cardholders import FILE [--dry-run] [--suspend-missing [--force]]`: the relief system's nightly
//! cardholder sync at the district's scale (a million lines), straight into the configured Redis.
//!
//! 1. **Import.** The file is read a chunk at a time ([`lines`]), each line validated, the valid cards stored in
//!    batches of [`SyncOptions::batch_cards`] (one atomic write and one `cardholder.import` event per batch, as the
//!    HTTP import), one batch being written on its own task while the next is parsed (batches are submitted in
//!    file order, so a card listed twice ends as its last line says). Progress goes to stderr every
//!    [`SyncOptions::progress_every_lines`] lines: lines read, stored (it lags by the batch in flight), rejected,
//!    rate. Memory: a chunk, two batches, and with `--suspend-missing` (or `--dry-run`) the file's card-id
//!    fingerprints, 8 bytes per card (8 MB per million), at most [`SyncOptions::max_cards`].
//! 2. **Suspend the missing** (`--suspend-missing`): the fingerprints (64-bit hashes of the card ids) are sorted,
//!    then the store's card keys are SCANned in pages; a stored card whose fingerprint is not among the file's and
//!    that is `active` is suspended, in batches, each card through the same write and event as a PUT
//!    (`cardholder.put`) and only if it is still exactly as read (`store::cards`, checked in the write). The failure
//!    direction is toward *not* suspending: a missing id whose fingerprint equals one of the file's (odds about
//!    missing × file / 2^64: 5·10^-8 for a million against a million) stays active; a card changed between the
//!    read and the write is left as it is and counted; a card created during the scan may or may not be seen.
//! 3. A file with rejected lines is partial: `--suspend-missing` is then refused (the valid lines are stored, no
//!    card is suspended) unless `--force`.
//!
//! `--dry-run` reads and validates every line, counts what would be stored and how many stored cards are missing
//! from the file (would be suspended), and writes nothing.

pub mod lines;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::card::{CardStatus, Cardholder};
use crate::store::{CardholderEvent, Store};
use lines::{CardLines, FileFormat, Parsed};

/// Rejected lines printed to stderr one by one; past it they are only counted.
pub const MAX_PRINTED_REJECTS: u64 = 100;

/// What one run does.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The cardholder file: CSV when it ends in `.csv`, else NDJSON.
    pub file: PathBuf,
    /// Validate and count only; change nothing.
    pub dry_run: bool,
    /// Suspend every stored active card that is not in the file.
    pub suspend_missing: bool,
    /// Suspend the missing even though the file had rejected lines.
    pub force: bool,
    /// Cards per store write (import and suspensions).
    pub batch_cards: usize,
    /// A progress line on stderr every this many lines (and card keys scanned).
    pub progress_every_lines: u64,
    /// Longest line taken (`limits.max_import_line_bytes`); a longer one is rejected.
    pub max_line_bytes: usize,
    /// Most cards a file may hold when their fingerprints are kept (8 bytes each); past it the run stops.
    pub max_cards: usize,
    /// The time of the changes (RFC 3339, local): the events' `at`.
    pub at: String,
    /// Who, for the audit entries (`cli:<user>`).
    pub by: crate::domain::audit::Actor,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Lines read (blank lines and the CSV header included).
    pub lines: u64,
    /// Valid cards stored (dry: that would be stored).
    pub stored: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Whether the missing cards were looked for (`--suspend-missing`, or a dry run).
    pub looked_for_missing: bool,
    /// Card keys the scan listed.
    pub scanned: u64,
    /// Stored active cards not in the file (dry: that would be suspended).
    pub missing: u64,
    /// Cards suspended.
    pub suspended: u64,
    /// Missing cards left as they are because they changed between the read and the write.
    pub changed_meanwhile: u64,
    /// `--suspend-missing` refused because the file had rejected lines (and no `--force`).
    pub suspend_refused: bool,
}

/// A card id's fingerprint: 64 bits of SipHash (fixed keys, one process).
fn fingerprint(card_id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    card_id.hash(&mut h);
    h.finish()
}

/// Lines per second since `started`.
fn rate(n: u64, started: Instant) -> u64 {
    let ms = started.elapsed().as_millis().max(1);
    u64::try_from(u128::from(n) * 1000 / ms).unwrap_or(u64::MAX)
}

/// Runs the sync; progress and rejected lines go to `progress` (stderr).
pub async fn run(store: &Arc<Store>, opts: &SyncOptions, progress: &mut dyn Write) -> Result<SyncReport, String> {
    let file = std::fs::File::open(&opts.file).map_err(|e| format!("{}: {e}", opts.file.display()))?;
    let format = FileFormat::of(&opts.file);
    let mut report = SyncReport { looked_for_missing: opts.suspend_missing || opts.dry_run, ..SyncReport::default() };
    let fingerprints = import(store, opts, CardLines::new(file, format, opts.max_line_bytes), &mut report, progress)
        .await
        .map_err(|e| format!("{e} ({} cards stored before)", report.stored))?;
    if !report.looked_for_missing {
        return Ok(report);
    }
    if opts.suspend_missing && report.rejected > 0 && !opts.force {
        report.suspend_refused = true;
        if !opts.dry_run {
            return Ok(report);
        }
    }
    suspend_missing(store, opts, fingerprints, &mut report, progress).await?;
    Ok(report)
}

/// Step 1: reads every line, stores the valid cards in batches (not when dry); returns the fingerprints of the
/// file's card ids (empty when they are not needed).
async fn import<R: std::io::Read>(
    store: &Arc<Store>,
    opts: &SyncOptions,
    mut lines: CardLines<R>,
    report: &mut SyncReport,
    progress: &mut dyn Write,
) -> Result<Vec<u64>, String> {
    let started = Instant::now();
    let keep_fingerprints = report.looked_for_missing;
    let mut fingerprints = Vec::new();
    let mut batch: Vec<Cardholder> = Vec::with_capacity(opts.batch_cards);
    // one batch being written while the next is parsed (submitted in file order, so a card listed twice ends as
    // its last line says)
    let mut writing: Option<PendingWrite> = None;
    let mut next_progress = opts.progress_every_lines;
    let verb = if opts.dry_run { "would store" } else { "stored" };
    while let Some(chunk) = lines.next_chunk()? {
        for parsed in chunk {
            match parsed {
                Parsed::Card { line_no, card } => {
                    report.lines = line_no;
                    if keep_fingerprints {
                        if fingerprints.len() == opts.max_cards {
                            return Err(format!("more than --max-cards {} cards in the file", opts.max_cards));
                        }
                        fingerprints.push(fingerprint(&card.card_id));
                    }
                    if opts.dry_run {
                        report.stored += 1;
                    } else {
                        batch.push(*card);
                    }
                }
                Parsed::Rejected { line_no, error } => {
                    report.lines = line_no;
                    report.rejected += 1;
                    if report.rejected <= MAX_PRINTED_REJECTS {
                        let _ = writeln!(progress, "line {line_no}: rejected: {error}");
                    } else if report.rejected == MAX_PRINTED_REJECTS + 1 {
                        let _ = writeln!(progress, "(further rejected lines are only counted)");
                    }
                }
            }
            if batch.len() >= opts.batch_cards {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(opts.batch_cards));
                report.stored += finish(writing.take()).await?;
                writing = Some(start_write(store, opts, full));
            }
            if report.lines >= next_progress {
                next_progress = report.lines + opts.progress_every_lines;
                let _ = writeln!(
                    progress,
                    "import: {} lines read, {} {verb}, {} rejected, {} lines/s",
                    report.lines,
                    report.stored,
                    report.rejected,
                    rate(report.lines, started)
                );
            }
        }
    }
    report.stored += finish(writing.take()).await?;
    report.stored += finish(Some(start_write(store, opts, batch))).await?;
    let _ = writeln!(
        progress,
        "import: done: {} lines read, {} {verb}, {} rejected, {} lines/s",
        report.lines,
        report.stored,
        report.rejected,
        rate(report.lines, started)
    );
    Ok(fingerprints)
}

/// A batch being stored by its own task: the number of cards, once stored.
type PendingWrite = tokio::task::JoinHandle<Result<u64, String>>;

/// Stores `cards` (one atomic write and its `cardholder.import` event) on a task of its own.
fn start_write(store: &Arc<Store>, opts: &SyncOptions, cards: Vec<Cardholder>) -> PendingWrite {
    let (store, at, by) = (store.clone(), opts.at.clone(), opts.by.clone());
    tokio::spawn(async move {
        let event = CardholderEvent::Import { at: &at };
        store.put_cardholders(&cards, &event, &by, None).await.map_err(|e| e.to_string())?;
        Ok(cards.len() as u64)
    })
}

/// Waits for a batch's write: the cards it stored.
async fn finish(writing: Option<PendingWrite>) -> Result<u64, String> {
    match writing {
        None => Ok(0),
        Some(task) => task.await.map_err(|e| format!("the store task failed: {e}"))?,
    }
}

/// Step 2: SCANs the card keys; suspends (dry: counts) the stored active cards whose fingerprint is not the file's.
async fn suspend_missing(
    store: &Store,
    opts: &SyncOptions,
    mut fingerprints: Vec<u64>,
    report: &mut SyncReport,
    progress: &mut dyn Write,
) -> Result<(), String> {
    fingerprints.sort_unstable();
    fingerprints.dedup();
    let started = Instant::now();
    let mut next_progress = opts.progress_every_lines;
    let mut candidates: Vec<String> = Vec::new();
    let mut cursor = 0;
    loop {
        let (next, ids) = store.scan_card_ids(cursor).await.map_err(|e| e.to_string())?;
        report.scanned += ids.len() as u64;
        candidates.extend(ids.into_iter().filter(|id| fingerprints.binary_search(&fingerprint(id)).is_err()));
        if candidates.len() >= opts.batch_cards || (next == 0 && !candidates.is_empty()) {
            suspend_batch(store, opts, &mut candidates, report).await?;
        }
        if report.scanned >= next_progress || next == 0 {
            next_progress = report.scanned + opts.progress_every_lines;
            let _ = writeln!(
                progress,
                "suspend{}: {} card keys scanned, {} missing from the file, {} suspended, {} changed meanwhile, {} keys/s",
                if opts.dry_run { " (dry run)" } else { "" },
                report.scanned,
                report.missing,
                report.suspended,
                report.changed_meanwhile,
                rate(report.scanned, started)
            );
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Reads the candidates, keeps the active ones, and suspends them (dry: counts them).
async fn suspend_batch(
    store: &Store,
    opts: &SyncOptions,
    candidates: &mut Vec<String>,
    report: &mut SyncReport,
) -> Result<(), String> {
    candidates.sort_unstable();
    candidates.dedup(); // SCAN may list a key twice
    let read = store.read_cardholders(candidates).await.map_err(|e| e.to_string())?;
    candidates.clear();
    let active: Vec<Cardholder> = read.into_iter().flatten().filter(|c| c.status == CardStatus::Active).collect();
    report.missing += active.len() as u64;
    if opts.dry_run || active.is_empty() {
        return Ok(());
    }
    let changed = store.suspend_cardholders(&active, &opts.at, &opts.by).await.map_err(|e| e.to_string())?;
    report.suspended += (active.len() - changed.len()) as u64;
    report.changed_meanwhile += changed.len() as u64;
    Ok(())
}

impl SyncReport {
    /// The closing line of a run (stdout).
    pub fn summary(&self, dry_run: bool) -> String {
        let mut s = if dry_run {
            format!(
                "dry run: {} lines read, {} cards would be stored, {} rejected",
                self.lines, self.stored, self.rejected
            )
        } else {
            format!("{} lines read, {} cards stored, {} rejected", self.lines, self.stored, self.rejected)
        };
        if self.looked_for_missing {
            if dry_run {
                s.push_str(&format!(
                    "; {} stored active cards are missing from the file (--suspend-missing would suspend them)",
                    self.missing
                ));
            } else if !self.suspend_refused {
                s.push_str(&format!(
                    "; {} cards missing from the file suspended ({} changed meanwhile, left as they are)",
                    self.suspended, self.changed_meanwhile
                ));
            }
        }
        if self.suspend_refused {
            s.push_str(&format!(
                "; --suspend-missing {}: the file had {} rejected lines, and a partial file must not suspend the \
                 district (fix the file, or pass --force)",
                if dry_run { "would be refused" } else { "refused, no card suspended" },
                self.rejected
            ));
        }
        if dry_run {
            s.push_str("; nothing was changed");
        }
        s
    }
}
