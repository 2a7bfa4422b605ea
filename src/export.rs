//! `settlegate export`: the relief office's daily files of settlement events (API.md "Events"), read from the
//! reconciliation day lines, which never change once the day is over. One file per local day,
//! `settlements-YYYY-MM-DD.jsonl` (or `.csv` with a header row), hospitals in id order and each hospital's lines in
//! the order they were recorded, so a second run for a closed day writes the same bytes; then `manifest.json`
//! lists every file with its line count, net relief and SHA-256. Files are written beside their final name and
//! renamed into place, so a crashed run never leaves a half file under a final name.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::store::dayline::LineContext;
use crate::store::{DayEvent, Store, EVENTS_PAGE};

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated, with a header row.
    Csv,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub out: PathBuf,
    pub format: Format,
    /// Most days one run may cover (`limits.max_export_days`).
    pub max_days: u64,
    /// Today, local: a day from today on is not closed yet, and its file may still change.
    pub today: NaiveDate,
}

/// One entry of `manifest.json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ManifestEntry {
    pub file: String,
    pub lines: u64,
    /// The day's net relief (reversals negative): equal to the sum of its reconciliation `net.relief_fen`.
    pub relief_fen: i64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

/// The column order of both formats (API.md: the reconciliation detail fields, then the export's own).
pub const COLUMNS: [&str; 16] = [
    "event",
    "at",
    "settlement_id",
    "hospital_settlement_id",
    "card_id",
    "total_fen",
    "insurance_fen",
    "relief_fen",
    "patient_fen",
    "by_program",
    "hospital_id",
    "category",
    "street",
    "community",
    "insurance_settlement_ref",
    "operator_id",
];

/// One exported line; field order is [`COLUMNS`].
#[derive(Serialize)]
struct Line<'a> {
    event: &'static str,
    at: &'a str,
    settlement_id: &'a str,
    hospital_settlement_id: &'a str,
    card_id: &'a str,
    total_fen: i64,
    insurance_fen: i64,
    relief_fen: i64,
    patient_fen: i64,
    by_program: std::collections::BTreeMap<&'a str, i64>,
    hospital_id: &'a str,
    category: Option<&'a str>,
    street: Option<&'a str>,
    community: Option<&'a str>,
    insurance_settlement_ref: Option<&'a str>,
    operator_id: Option<&'a str>,
}

fn line<'a>(hospital_id: &'a str, e: &'a DayEvent) -> Line<'a> {
    let opt = |s: &'a String| (!s.is_empty()).then_some(s.as_str());
    let LineContext { category, street, community, insurance_settlement_ref, operator_id } = &e.context;
    Line {
        event: if e.reversal { "reversed" } else { "settled" },
        at: &e.at,
        settlement_id: &e.settlement_id,
        hospital_settlement_id: &e.hospital_settlement_id,
        card_id: &e.card_id,
        total_fen: e.total_fen,
        insurance_fen: e.insurance_fen,
        relief_fen: e.relief_fen,
        patient_fen: e.patient_fen,
        by_program: e.by_program.iter().map(|p| (p.program.as_str(), p.fen)).collect(),
        hospital_id,
        category: opt(category),
        street: opt(street),
        community: opt(community),
        insurance_settlement_ref: opt(insurance_settlement_ref),
        operator_id: opt(operator_id),
    }
}

/// The CSV cells of a line: `by_program` as `program=fen;…` by program id; absent values empty.
fn csv_record(l: &Line<'_>) -> [String; 16] {
    let by_program: Vec<String> = l.by_program.iter().map(|(p, fen)| format!("{p}={fen}")).collect();
    let o = |v: Option<&str>| v.unwrap_or("").to_string();
    [
        l.event.to_string(),
        l.at.to_string(),
        l.settlement_id.to_string(),
        l.hospital_settlement_id.to_string(),
        l.card_id.to_string(),
        l.total_fen.to_string(),
        l.insurance_fen.to_string(),
        l.relief_fen.to_string(),
        l.patient_fen.to_string(),
        by_program.join(";"),
        l.hospital_id.to_string(),
        o(l.category),
        o(l.street),
        o(l.community),
        o(l.insurance_settlement_ref),
        o(l.operator_id),
    ]
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    digest: ring::digest::Context,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Runs the export; returns the manifest it wrote. Days from `today` on are written too, with a warning on stderr.
pub async fn run(store: &Store, opts: &ExportOptions) -> Result<Vec<ManifestEntry>, String> {
    if opts.from > opts.to {
        return Err(format!("--from {} is after --to {}", opts.from, opts.to));
    }
    let days = u64::try_from((opts.to - opts.from).num_days()).unwrap_or(u64::MAX).saturating_add(1);
    if days > opts.max_days {
        return Err(format!("{days} days asked; at most {} per run (limits.max_export_days)", opts.max_days));
    }
    let archived = store.archive_horizon().await.map_err(|e| format!("reading the archive's state: {e}"))?;
    if let Some(through) = archived.filter(|t| opts.from <= *t) {
        return Err(format!(
            "the days up to {through} are archived ([retention]): their lines are in the exports written before"
        ));
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let mut manifest = Vec::new();
    let mut day = opts.from;
    loop {
        if day >= opts.today {
            eprintln!("settlegate export: {day} is not over yet (local time); its file may still change");
        }
        let (entry, per_hospital) = export_day(store, opts, day).await?;
        manifest.push(entry);
        if day < opts.today {
            // the day is over and its file written: archiving may take a hospital's lines once its clearing is
            // paid, and only while its list still holds exactly the lines counted here
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            store
                .mark_exported(&day.to_string(), &at, &per_hospital)
                .await
                .map_err(|e| format!("marking {day} exported: {e}"))?;
        }
        if day == opts.to {
            break;
        }
        day = day.checked_add_days(Days::new(1)).ok_or("date out of range")?;
    }
    let mut text = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    text.push(b'\n');
    write_atomically(&opts.out.join("manifest.json"), |w| w.write_all(&text))?;
    Ok(manifest)
}

/// Where a day's lines go: JSON lines, or CSV rows (after the header), both through the hashing writer.
#[allow(clippy::large_enum_variant)] // one per export run
enum Sink<W: Write> {
    Jsonl(W),
    Csv(csv::Writer<W>),
}

impl<W: Write> Sink<W> {
    fn new(format: Format, w: W) -> Result<Sink<W>, String> {
        Ok(match format {
            Format::Jsonl => Sink::Jsonl(w),
            Format::Csv => {
                let mut csv = csv::WriterBuilder::new().from_writer(w);
                csv.write_record(COLUMNS).map_err(|e| e.to_string())?;
                Sink::Csv(csv)
            }
        })
    }

    fn write(&mut self, l: &Line<'_>) -> Result<(), String> {
        match self {
            Sink::Jsonl(w) => {
                serde_json::to_writer(&mut *w, l).map_err(|e| e.to_string())?;
                w.write_all(b"\n").map_err(|e| e.to_string())
            }
            Sink::Csv(w) => w.write_record(csv_record(l)).map_err(|e| e.to_string()),
        }
    }

    fn finish(self) -> Result<W, String> {
        match self {
            Sink::Jsonl(w) => Ok(w),
            Sink::Csv(w) => w.into_inner().map_err(|e| e.to_string()),
        }
    }
}

/// Writes one day's file; returns its manifest entry and the lines written per hospital.
async fn export_day(
    store: &Store,
    opts: &ExportOptions,
    day: NaiveDate,
) -> Result<(ManifestEntry, Vec<(String, u64)>), String> {
    let name = format!("settlements-{day}.{}", opts.format.extension());
    let final_path = opts.out.join(&name);
    let tmp = opts.out.join(format!(".{name}.partial"));
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let hashing =
        Hashing { inner: std::io::BufWriter::new(file), digest: ring::digest::Context::new(&ring::digest::SHA256) };
    let mut sink = Sink::new(opts.format, hashing)?;
    let (mut lines, mut relief_fen) = (0u64, 0i64);
    let day_text = day.to_string();
    let store_err = |e: crate::store::StoreError| format!("reading {day_text}: {e}");
    let mut per_hospital = Vec::new();
    for hospital in store.day_hospitals(&day_text).await.map_err(store_err)? {
        // one page of lines in memory at a time
        let mut start = 0;
        let lines_before = lines;
        loop {
            let page = store.day_events(&day_text, &hospital, start).await.map_err(store_err)?;
            for e in &page {
                sink.write(&line(&hospital, e))?;
                lines += 1;
                relief_fen = relief_fen.checked_add(e.relief_fen).ok_or("relief sum overflows")?;
            }
            if page.len() < EVENTS_PAGE {
                break;
            }
            start += EVENTS_PAGE;
        }
        per_hospital.push((hospital, lines - lines_before));
    }
    let mut out = sink.finish()?;
    out.flush().map_err(|e| e.to_string())?;
    let sha256 = hex(out.digest.finish().as_ref());
    out.inner.into_inner().map_err(|e| e.to_string())?.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &final_path).map_err(|e| format!("{}: {e}", final_path.display()))?;
    Ok((ManifestEntry { file: name, lines, relief_fen, sha256 }, per_hospital))
}

fn write_atomically(path: &Path, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> Result<(), String> {
    let tmp = path.with_extension("partial");
    let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    write(&mut f).and_then(|()| f.sync_all()).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ProgramFen;

    #[test]
    fn csv_cells_follow_the_columns() {
        let e = DayEvent {
            reversal: true,
            at: "2026-11-29T10:15:02.123+08:00".into(),
            settlement_id: "s2_x".into(),
            hospital_settlement_id: "H1-1".into(),
            card_id: "C1".into(),
            total_fen: -100,
            insurance_fen: 0,
            relief_fen: -90,
            patient_fen: -10,
            by_program: vec![
                ProgramFen { program: "ma".into(), fen: -90 },
                ProgramFen { program: "ch".into(), fen: 0 },
            ],
            context: LineContext { category: "dibao".into(), operator_id: "desk-1".into(), ..Default::default() },
        };
        let cells = csv_record(&line("H1", &e));
        assert_eq!(cells[0], "reversed");
        assert_eq!(cells[9], "ch=0;ma=-90");
        assert_eq!((cells[10].as_str(), cells[11].as_str(), cells[12].as_str()), ("H1", "dibao", ""));
        assert_eq!(cells[15], "desk-1");
        let json = serde_json::to_value(line("H1", &e)).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), COLUMNS.len());
        assert_eq!(json["street"], serde_json::Value::Null);
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
