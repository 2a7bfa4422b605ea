//! The compact form of a day line that reports read (`keys::report_entries`): what a report needs of one line and
//! nothing else, with its labels (hospital, street, community, category, programs) replaced by small integer ids
//! (`keys::REPORT_LABELS`), so that a month of a million lines is about 30 MB to read, not the 300 MB of the lines.
//!
//! One entry, bytes (`v` = LEB128 unsigned varint):
//! `kind` (`S` | `R`) · `v(card length)` · card bytes · `v(hospital)` `v(street)` `v(community)` `v(category)` ·
//! `v(|relief_fen|)` · `v(payment count)` · per payment `v(program)` `v(|fen|)`.
//! Label id 0 is "" (a label absent from the line); amounts are unsigned, the kind gives the sign, as in the line.

use crate::store::dayline::DayLine;

/// One decoded entry; labels are still ids, amounts are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub reversal: bool,
    pub card_id: &'a [u8],
    pub hospital: u32,
    pub street: u32,
    pub community: u32,
    pub category: u32,
    pub relief_fen: i64,
    /// (program id, fen), in the line's order.
    pub payments: Vec<(u32, i64)>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).expect("7 bits") | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).expect("below 0x80"));
}

/// Appends the entry of one line; `id` gives the id of a non-empty label (interned before).
pub fn encode(out: &mut Vec<u8>, hospital_id: &str, e: &DayLine<'_>, id: impl Fn(&str) -> u32) {
    let label = |s: &str| if s.is_empty() { 0 } else { id(s) };
    out.push(if e.reversal { b'R' } else { b'S' });
    put_varint(out, e.card_id.len() as u64);
    out.extend_from_slice(e.card_id.as_bytes());
    for l in [hospital_id, e.street(), e.community(), e.category()] {
        put_varint(out, u64::from(label(l)));
    }
    put_varint(out, e.relief_fen.unsigned_abs());
    put_varint(out, e.by_program.len() as u64);
    for &(program, fen) in &e.by_program {
        put_varint(out, u64::from(label(program)));
        put_varint(out, fen.unsigned_abs());
    }
}

/// Reads entries one after the other; `None` at the end, `Some(Err(offset))` where the bytes stop making sense.
pub struct Entries<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Entries<'a> {
    pub fn new(buf: &'a [u8]) -> Entries<'a> {
        Entries { buf, at: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.at)?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn id(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
    }

    fn entry(&mut self) -> Option<Entry<'a>> {
        let reversal = match self.buf.get(self.at)? {
            b'S' => false,
            b'R' => true,
            _ => return None,
        };
        self.at += 1;
        let len = usize::try_from(self.varint()?).ok()?;
        let card_id = self.buf.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        let (hospital, street, community, category) = (self.id()?, self.id()?, self.id()?, self.id()?);
        let sign = if reversal { -1 } else { 1 };
        let amount = |v: u64| i64::try_from(v).ok().map(|v| v * sign);
        let relief_fen = amount(self.varint()?)?;
        let n = self.varint()?;
        let mut payments = Vec::with_capacity(usize::try_from(n.min(64)).ok()?);
        for _ in 0..n {
            let program = self.id()?;
            payments.push((program, amount(self.varint()?)?));
        }
        Some(Entry { reversal, card_id, hospital, street, community, category, relief_fen, payments })
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, usize>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() {
            return None;
        }
        let start = self.at;
        match self.entry() {
            Some(e) => Some(Ok(e)),
            None => {
                self.at = self.buf.len();
                Some(Err(start))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dayline::parse_line;

    #[test]
    fn round_trip_and_truncation() {
        // a settled line, then a reversal with the largest amount
        let settled = "S|2026-11-30T10:00:00.000+08:00|s2_x|h1|C100001|2000000|0|350000|1650000|\
                       ma,300000,0,;charity,50000,0,annual_cap|dibao|s|||";
        let reversed = "R|2026-11-30T11:00:00.000+08:00|s2_x|h1|C100001|9007199254740991|0|9007199254740991|0|\
                        ma,300000,0,;charity,50000,0,annual_cap|dibao|s|||";
        let ids = |s: &str| match s {
            "H1" => 1,
            "s" => 2,
            "dibao" => 3,
            "ma" => 300,
            "charity" => 5,
            _ => panic!("{s}"),
        };
        let mut buf = Vec::new();
        encode(&mut buf, "H1", &parse_line(settled).unwrap(), ids);
        encode(&mut buf, "H1", &parse_line(reversed).unwrap(), ids);
        let got: Vec<Entry<'_>> = Entries::new(&buf).map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            Entry {
                reversal: false,
                card_id: b"C100001",
                hospital: 1,
                street: 2,
                community: 0,
                category: 3,
                relief_fen: 350_000,
                payments: vec![(300, 300_000), (5, 50_000)],
            }
        );
        assert_eq!((got[1].reversal, got[1].relief_fen, got[1].payments[0].1), (true, -(1 << 53) + 1, -300_000));
        let cut = &buf[..buf.len() - 1];
        assert!(Entries::new(cut).any(|e| e.is_err()));
        assert_eq!(Entries::new(b"X").next(), Some(Err(0)));
    }
}
