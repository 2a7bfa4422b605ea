//! Relief reports (`GET /admin/v1/reports/relief`), pure: what one row counts, and the tally that turns a range of
//! recorded lines into rows and a total.
//!
//! A line is one reconciliation detail line (a settlement on its local day, or a reversal on its day, amounts
//! negative), seen through [`ReportLine`]. Every figure is a sum over lines, so a report over some days equals the
//! reconciliation detail of those days fen for fen, whatever the grouping. `cards` is the exception that makes a
//! report more than sums: the number of distinct cards with a `settled` line among the lines of the row (whether
//! or not reversed since), exact over the whole range.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// A fast non-cryptographic hasher (FxHash's mix, 8 bytes at a time) for the card sets of one report: a month is a
/// million inserts per row kind, and SipHash's DoS resistance buys nothing on the relief office's own data.
#[derive(Default)]
struct CardHasher(u64);

impl Hasher for CardHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.0 = mix(self.0, u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.0 = mix(self.0, u64::from_le_bytes(tail));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Each distinct card of a report, numbered in the order first seen: one hash per settled line, after which the
/// rows keep plain numbers (deduplicated once, at the end) instead of hashing the card's bytes again per row.
type CardNumbers<'a> = HashMap<&'a [u8], u32, BuildHasherDefault<CardHasher>>;

/// What a report groups by (`by=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportBy {
    /// The card's street office when it settled ("" for cards without one).
    Street,
    /// The card's community when it settled ("" for cards without one).
    Community,
    /// The card's category when it settled.
    Category,
    /// A program: a row counts the lines whose payments list the program (a payment of 0 included), and only
    /// that program's money.
    Program,
    /// The hospital that settled.
    Hospital,
    /// The local day of the line.
    Day,
}

impl ReportBy {
    /// Every grouping, in the order the API lists them.
    pub const ALL: [ReportBy; 6] = [
        ReportBy::Street,
        ReportBy::Community,
        ReportBy::Category,
        ReportBy::Program,
        ReportBy::Hospital,
        ReportBy::Day,
    ];

    pub fn parse(s: &str) -> Option<ReportBy> {
        ReportBy::ALL.into_iter().find(|b| b.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ReportBy::Street => "street",
            ReportBy::Community => "community",
            ReportBy::Category => "category",
            ReportBy::Program => "program",
            ReportBy::Hospital => "hospital",
            ReportBy::Day => "day",
        }
    }
}

/// One recorded line as a report reads it; amounts carry the line's sign (a reversal's are negative).
#[derive(Debug, Clone, Copy)]
pub struct ReportLine<'a, 'p> {
    /// A reversal (counted negative on its day) rather than a settlement.
    pub reversal: bool,
    /// The card, as recorded (never shown: only counted).
    pub card_id: &'a [u8],
    /// The local day of the line, `YYYY-MM-DD`.
    pub day: &'a str,
    pub hospital_id: &'a str,
    /// The card's street, community and category when it settled ("" when absent).
    pub street: &'a str,
    pub community: &'a str,
    pub category: &'a str,
    /// The line's relief, signed.
    pub relief_fen: i64,
    /// What each program paid, signed, in ruleset order.
    pub payments: &'p [(&'a str, i64)],
}

/// One row of a report, or its total (whose `key` is unused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRow {
    /// The value of the grouping (a street, a program id, a day …).
    pub key: String,
    /// Settled lines of the row.
    pub settled_count: i64,
    /// Reversed lines of the row.
    pub reversed_count: i64,
    /// Distinct cards with a settled line in the row.
    pub cards: i64,
    /// Net relief of the row (reversals negative).
    pub relief_fen: i64,
    /// Net relief per program, every program with a payment in the row's lines (0 included), by program id.
    pub by_program: BTreeMap<String, i64>,
}

/// A whole report: the rows by key (byte order), and the total of every line counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReliefReport {
    pub by: ReportBy,
    pub rows: Vec<ReportRow>,
    pub total: ReportRow,
}

/// A row while lines are added; borrows the cards from the lines.
#[derive(Default)]
struct Acc<'a> {
    settled_count: i64,
    reversed_count: i64,
    relief_fen: i64,
    by_program: BTreeMap<&'a str, i64>,
    /// The numbers ([`CardNumbers`]) of the cards of its settled lines, with repeats until [`Acc::finish`].
    cards: Vec<u32>,
}

impl<'a> Acc<'a> {
    /// Counts a line into the row; `only`: the program of a `by=program` row (its money alone). `None` on overflow.
    /// `card`: the line's card number, kept for the row's distinct count (`None` for the total, which counts the
    /// numbers handed out, and for a reversal).
    fn add(&mut self, line: &ReportLine<'a, '_>, card: Option<u32>, only: Option<(&'a str, i64)>) -> Option<()> {
        if line.reversal {
            self.reversed_count += 1;
        } else {
            self.settled_count += 1;
        }
        if let Some(card) = card {
            self.cards.push(card);
        }
        match only {
            Some((program, fen)) => {
                self.relief_fen = self.relief_fen.checked_add(fen)?;
                let e = self.by_program.entry(program).or_default();
                *e = e.checked_add(fen)?;
            }
            None => {
                self.relief_fen = self.relief_fen.checked_add(line.relief_fen)?;
                for (program, fen) in line.payments {
                    let e = self.by_program.entry(program).or_default();
                    *e = e.checked_add(*fen)?;
                }
            }
        }
        Some(())
    }

    fn finish(mut self, key: &str) -> ReportRow {
        self.cards.sort_unstable();
        self.cards.dedup();
        ReportRow {
            key: key.to_string(),
            settled_count: self.settled_count,
            reversed_count: self.reversed_count,
            cards: i64::try_from(self.cards.len()).unwrap_or(i64::MAX),
            relief_fen: self.relief_fen,
            by_program: self.by_program.into_iter().map(|(p, fen)| (p.to_string(), fen)).collect(),
        }
    }
}

/// Adds up lines into a report. Lines are borrowed: the caller keeps what they point into alive until
/// [`Tally::finish`].
pub struct Tally<'a> {
    by: ReportBy,
    /// Only lines of this street count (a street office's view), or every line.
    street: Option<&'a str>,
    rows: HashMap<&'a str, Acc<'a>>,
    total: Acc<'a>,
    /// Every card of a settled line counted so far.
    card_numbers: CardNumbers<'a>,
}

/// A sum passed 2^63 fen: the store holds something no real settlement can make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a report sum overflowed")]
pub struct Overflow;

impl<'a> Tally<'a> {
    pub fn new(by: ReportBy, street: Option<&'a str>) -> Tally<'a> {
        Tally { by, street, rows: HashMap::new(), total: Acc::default(), card_numbers: CardNumbers::default() }
    }

    /// Counts one line (nothing when it is of another street than the tally's).
    pub fn add(&mut self, line: &ReportLine<'a, '_>) -> Result<(), Overflow> {
        if self.street.is_some_and(|s| s != line.street) {
            return Ok(());
        }
        // a reversal's card is not counted (`cards` counts settled lines): it gets no number
        let card = if line.reversal {
            None
        } else {
            let next = u32::try_from(self.card_numbers.len()).map_err(|_| Overflow)?;
            Some(*self.card_numbers.entry(line.card_id).or_insert(next))
        };
        self.total.add(line, None, None).ok_or(Overflow)?;
        let key = match self.by {
            ReportBy::Street => line.street,
            ReportBy::Community => line.community,
            ReportBy::Category => line.category,
            ReportBy::Hospital => line.hospital_id,
            ReportBy::Day => line.day,
            ReportBy::Program => {
                for &(program, fen) in line.payments {
                    self.rows.entry(program).or_default().add(line, card, Some((program, fen))).ok_or(Overflow)?;
                }
                return Ok(());
            }
        };
        self.rows.entry(key).or_default().add(line, card, None).ok_or(Overflow)?;
        Ok(())
    }

    /// The rows in key order (bytes) and the total.
    pub fn finish(self) -> ReliefReport {
        let mut rows: Vec<ReportRow> = self.rows.into_iter().map(|(key, acc)| acc.finish(key)).collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        let mut report = ReliefReport { by: self.by, rows, total: self.total.finish("") };
        report.total.cards = i64::try_from(self.card_numbers.len()).unwrap_or(i64::MAX);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(
        reversal: bool,
        card: &'a str,
        street: &'a str,
        payments: &'a [(&'a str, i64)],
        day: &'a str,
    ) -> ReportLine<'a, 'a> {
        ReportLine {
            reversal,
            card_id: card.as_bytes(),
            day,
            hospital_id: "H1",
            street,
            community: "c",
            category: "dibao",
            relief_fen: payments.iter().map(|p| p.1).sum(),
            payments,
        }
    }

    #[test]
    fn rows_sum_to_the_total_and_cards_are_distinct() {
        let a = [("ma", 100), ("charity", 50)];
        let ra = [("ma", -100), ("charity", -50)];
        let b = [("ma", 7)];
        let lines = [
            line(false, "C1", "s1", &a, "2026-11-01"),
            line(false, "C1", "s1", &b, "2026-11-02"),
            line(true, "C1", "s1", &ra, "2026-11-02"),
            line(false, "C2", "s2", &b, "2026-11-02"),
        ];
        for by in ReportBy::ALL {
            let mut t = Tally::new(by, None);
            for l in &lines {
                t.add(l).unwrap();
            }
            let r = t.finish();
            assert_eq!((r.total.settled_count, r.total.reversed_count, r.total.cards), (3, 1, 2), "{by:?}");
            assert_eq!(r.total.relief_fen, 14);
            assert_eq!(r.total.by_program, BTreeMap::from([("charity".into(), 0), ("ma".into(), 14)]));
            let relief: i64 = r.rows.iter().map(|row| row.relief_fen).sum();
            assert_eq!(relief, 14, "{by:?}");
            if by != ReportBy::Program {
                assert_eq!(r.rows.iter().map(|row| row.settled_count).sum::<i64>(), 3);
            }
        }
        let mut t = Tally::new(ReportBy::Program, None);
        lines.iter().for_each(|l| t.add(l).unwrap());
        let r = t.finish();
        let keys: Vec<&str> = r.rows.iter().map(|row| row.key.as_str()).collect();
        assert_eq!(keys, ["charity", "ma"]);
        assert_eq!(
            (r.rows[0].settled_count, r.rows[0].reversed_count, r.rows[0].cards, r.rows[0].relief_fen),
            (1, 1, 1, 0)
        );
        assert_eq!((r.rows[1].settled_count, r.rows[1].cards, r.rows[1].relief_fen), (3, 2, 14));
        assert_eq!(r.rows[0].by_program, BTreeMap::from([("charity".into(), 0)]));
    }

    #[test]
    fn the_street_filter_counts_only_its_street() {
        let a = [("ma", 100)];
        let lines = [line(false, "C1", "s1", &a, "2026-11-01"), line(false, "C2", "s2", &a, "2026-11-01")];
        let mut t = Tally::new(ReportBy::Day, Some("s2"));
        lines.iter().for_each(|l| t.add(l).unwrap());
        let r = t.finish();
        assert_eq!((r.total.settled_count, r.total.cards, r.total.relief_fen), (1, 1, 100));
        assert_eq!(r.rows.len(), 1);
    }

    #[test]
    fn names_round_trip() {
        for by in ReportBy::ALL {
            assert_eq!(ReportBy::parse(by.as_str()), Some(by));
        }
        assert_eq!(ReportBy::parse("Street"), None);
    }
}
