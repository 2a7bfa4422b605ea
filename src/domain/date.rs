//! Local dates on the wire: exactly `YYYY-MM-DD` with a four-digit year. chrono alone also accepts `2026-1-5`,
//! `+2026-11-29` and five-digit years, which would then compare wrongly as strings in the settle script.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serializer};

pub fn parse(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().filter(|d| d.to_string() == s)
}

pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(date)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let raw = String::deserialize(d)?;
    parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("{raw:?} is not a date YYYY-MM-DD")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_canonical_shape() {
        assert!(super::parse("2026-11-29").is_some());
        for bad in
            ["2026-1-5", " 2026-11-29", "+2026-11-29", "-0001-01-01", "+10000-01-01", "2026-02-30", "2026/11/29", ""]
        {
            assert!(super::parse(bad).is_none(), "{bad}");
        }
    }
}
