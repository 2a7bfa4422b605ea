//! Cardholders and their eligibility for a visit (RULES.md "Cardholders").

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{is_valid_id, is_valid_label, FieldError};

/// Tags a card may carry; a bound so one card cannot bloat every settle script call.
pub const MAX_TAGS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CardStatus {
    Active,
    Suspended,
}

deserialize_from_str!(CardStatus, "a card status", [
    CardStatus::Active => "active",
    CardStatus::Suspended => "suspended",
]);

impl CardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Active => "active",
            CardStatus::Suspended => "suspended",
        }
    }
}

/// A relief recipient's card, as the relief office stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cardholder {
    pub card_id: String,
    /// A category the relief office defines (`tekun`, `dibao`, …); rulesets map categories to terms.
    pub category: String,
    /// First day of validity, local date, inclusive.
    #[serde(with = "super::date")]
    pub valid_from: NaiveDate,
    /// Last day of validity, local date, inclusive.
    #[serde(with = "super::date")]
    pub valid_until: NaiveDate,
    pub status: CardStatus,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The district's street office (街道) the card belongs to: a free label; recorded with each settlement, for the
    /// street offices' access and for reports. Does not change the split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    /// The community (社区) within the street: a free label, like `street`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
}

/// Why a known card cannot be served on a visit date (API.md `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    Suspended,
    NotYetValid,
    Expired,
}

impl Ineligible {
    pub fn as_str(self) -> &'static str {
        match self {
            Ineligible::Suspended => "suspended",
            Ineligible::NotYetValid => "not_yet_valid",
            Ineligible::Expired => "expired",
        }
    }
}

impl Cardholder {
    /// RULES.md: eligible when `active` and `valid_from <= date <= valid_until`.
    pub fn eligibility(&self, visit_date: NaiveDate) -> Result<(), Ineligible> {
        if self.status == CardStatus::Suspended {
            Err(Ineligible::Suspended)
        } else if visit_date < self.valid_from {
            Err(Ineligible::NotYetValid)
        } else if visit_date > self.valid_until {
            Err(Ineligible::Expired)
        } else {
            Ok(())
        }
    }

    pub fn has_tags(&self, required: &[String]) -> bool {
        required.iter().all(|t| self.tags.contains(t))
    }

    /// Field checks beyond what the JSON types enforce.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_valid_id(&self.card_id) {
            errors.push(FieldError::new("card_id", "must be 1-64 chars of A-Za-z0-9._:-"));
        }
        if !is_valid_label(&self.category) {
            errors.push(FieldError::new("category", "must be 1-64 visible chars, none of , ; = | { }"));
        }
        if self.valid_from > self.valid_until {
            errors.push(FieldError::new("valid_until", "must not be before valid_from"));
        }
        if self.tags.len() > MAX_TAGS {
            errors.push(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
        }
        for (field, value) in [("street", &self.street), ("community", &self.community)] {
            if value.as_deref().is_some_and(|v| !is_valid_label(v)) {
                errors.push(FieldError::new(field, "must be 1-64 visible chars, none of , ; = | { }"));
            }
        }
        for (i, tag) in self.tags.iter().enumerate() {
            if !is_valid_label(tag) {
                errors.push(FieldError::new(format!("tags[{i}]"), "must be 1-64 visible chars, none of , ; = | { }"));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(status: CardStatus) -> Cardholder {
        Cardholder {
            card_id: "C1".into(),
            category: "dibao".into(),
            valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            valid_until: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            status,
            tags: vec![],
            street: None,
            community: None,
        }
    }

    #[test]
    fn status_reads_only_the_strings_it_writes() {
        for s in [CardStatus::Active, CardStatus::Suspended] {
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(text, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<CardStatus>(&text).unwrap(), s);
            assert!(serde_json::from_str::<CardStatus>(&format!("{{{text}:null}}")).is_err(), "{text} as a map");
        }
        let e = serde_json::from_str::<CardStatus>("\"closed\"").unwrap_err().to_string();
        assert!(e.contains("unknown variant `closed`, expected `active` or `suspended`"), "{e}");
    }

    #[test]
    fn eligibility_bounds_are_inclusive() {
        let c = card(CardStatus::Active);
        let d = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert_eq!(c.eligibility(d(1, 1)), Ok(()));
        assert_eq!(c.eligibility(d(6, 30)), Ok(()));
        assert_eq!(c.eligibility(d(7, 1)), Err(Ineligible::Expired));
        assert_eq!(NaiveDate::from_ymd_opt(2025, 12, 31).map(|x| c.eligibility(x)), Some(Err(Ineligible::NotYetValid)));
        assert_eq!(card(CardStatus::Suspended).eligibility(d(3, 1)), Err(Ineligible::Suspended));
    }
}
