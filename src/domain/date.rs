//! Local dates on the wire: exactly `YYYY-MM-DD` with a four-digit year. chrono alone also accepts `2026-1-5`,
//! `+2026-11-29` and five-digit years, which would then compare wrongly as strings in the settle script.
//!
//! Read and written here digit by digit: chrono's `parse_from_str` and `Display` go through its format-item and
//! `core::fmt` machinery, and a settle reads its visit date once and writes it twice (the canonical request, the
//! answer): about 5 000 of the gateway's instructions per settle (docs/BENCHMARKS.md, issue 13).

use chrono::{Datelike, NaiveDate};
use serde::{de, Deserializer, Serializer};

pub fn parse(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let number = |digits: &[u8]| digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let year = i32::try_from(number(&b[0..4])).expect("four digits");
    // from_ymd_opt refuses month 00 or 13, day 00 or 2026-02-30
    NaiveDate::from_ymd_opt(year, number(&b[5..7]), number(&b[8..10]))
}

/// `YYYY-MM-DD`, or `None` for a year outside 0..=9999 (never one of this API's dates: [`parse`] reads 4 digits).
fn iso_bytes(date: &NaiveDate) -> Option<[u8; 10]> {
    let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    let (month, day) = (date.month(), date.day());
    let digit = |n: u32| b'0' + u8::try_from(n % 10).expect("a digit");
    Some([
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
        b'-',
        digit(day / 10),
        digit(day),
    ])
}

/// Appends the date as `YYYY-MM-DD` (what chrono's `Display` writes, without its machinery).
pub fn write_iso(date: &NaiveDate, out: &mut String) {
    match iso_bytes(date) {
        Some(b) => out.push_str(std::str::from_utf8(&b).expect("ASCII digits")),
        None => out.push_str(&date.to_string()),
    }
}

pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    match iso_bytes(date) {
        Some(b) => s.serialize_str(std::str::from_utf8(&b).expect("ASCII digits")),
        None => s.collect_str(date),
    }
}

/// Reads the string where it lies in the body (no copy), then [`parse`]s it.
struct DateVisitor;

impl de::Visitor<'_> for DateVisitor {
    type Value = NaiveDate;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, raw: &str) -> Result<NaiveDate, E> {
        parse(raw).ok_or_else(|| E::custom(format!("{raw:?} is not a date YYYY-MM-DD")))
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    d.deserialize_str(DateVisitor)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    #[test]
    fn only_the_canonical_shape() {
        assert!(super::parse("2026-11-29").is_some());
        for bad in
            ["2026-1-5", " 2026-11-29", "+2026-11-29", "-0001-01-01", "+10000-01-01", "2026-02-30", "2026/11/29", ""]
        {
            assert!(super::parse(bad).is_none(), "{bad}");
        }
    }

    /// Digit by digit is what chrono reads and writes, for every day of years 0000-0100 and 1900-2200.
    #[test]
    fn the_same_as_chrono() {
        let spans = [("0000-01-01", "0100-12-31"), ("1900-01-01", "2200-12-31")];
        for (from, to) in spans.map(|(a, b)| (a.parse::<NaiveDate>().unwrap(), b.parse::<NaiveDate>().unwrap())) {
            for date in from.iter_days().take_while(|d| *d <= to) {
                let text = date.to_string();
                let mut written = String::from("x");
                super::write_iso(&date, &mut written);
                assert_eq!(written, format!("x{text}"));
                assert_eq!(super::parse(&text), Some(date), "{text}");
                assert_eq!(serde_json::to_string(&Wrapped(date)).unwrap(), format!("\"{text}\""));
                let back: Wrapped = serde_json::from_str(&format!("\"{text}\"")).unwrap();
                assert_eq!(back.0, date);
            }
        }
        assert_eq!(
            serde_json::from_str::<Wrapped>("\"2026-02-30\"").unwrap_err().to_string(),
            "\"2026-02-30\" is not a date YYYY-MM-DD at line 1 column 12"
        );
        // an escaped string is read as well (serde_json hands the visitor an unescaped copy)
        assert_eq!(serde_json::from_str::<Wrapped>("\"2026-11-\\u00329\"").unwrap().0.to_string(), "2026-11-29");
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Wrapped(#[serde(with = "super")] NaiveDate);
}
