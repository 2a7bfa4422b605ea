//! The run's card population: ids, categories and tags derived from the scenario and a run id, so the seed
//! step, the request generator and the audit agree without sharing state.

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// A 64-bit mixer (splitmix64): a deterministic "random" attribute per card index.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// The run's cardholders: `<prefix>-<index:07>`; category and tags are a pure function of the index.
#[derive(Debug, Clone)]
pub struct CardBook {
    /// The run id: card ids of different runs never collide, and a run's cards are its own.
    pub prefix: String,
    /// Cards `0..count`, as the scenario's `cardholders.count`.
    pub count: u32,
    /// Category and weight, positive weights only, in the scenario's (sorted) order.
    categories: Vec<(String, u64)>,
    /// Sum of the weights: a card's category is picked in `0..total_weight`.
    total_weight: u64,
    /// Tag and the percentage of cards carrying it.
    tags: Vec<(String, u32)>,
}

/// One line of the cardholder import (RULES.md fields).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct CardholderLine {
    /// `<run id>-<index:07>`.
    pub card_id: String,
    /// The card's category (`dibao`, `tekun`, …): which rule of each program applies.
    pub category: String,
    /// First valid day, `YYYY-01-01` of the run's year.
    pub valid_from: String,
    /// Last valid day, December 31st of the next year: a run near New Year still finds its cards valid.
    pub valid_until: String,
    /// Always `active`: the run's cards are all eligible.
    pub status: String,
    /// Tags (`elderly_80`, …) that programs may require.
    pub tags: Vec<String>,
}

impl CardBook {
    pub fn new(scenario: &Scenario, prefix: &str) -> CardBook {
        let categories: Vec<(String, u64)> = scenario
            .cardholders
            .categories
            .iter()
            .filter(|(_, &w)| w > 0)
            .map(|(c, &w)| (c.clone(), w as u64))
            .collect();
        let total_weight = categories.iter().map(|(_, w)| w).sum();
        let tags = scenario.cardholders.tags_percent.iter().map(|(t, &p)| (t.clone(), p)).collect();
        CardBook { prefix: prefix.to_string(), count: scenario.cardholders.count, categories, total_weight, tags }
    }

    pub fn card_id(&self, index: u32) -> String {
        format!("{}-{:07}", self.prefix, index)
    }

    pub fn index_of(&self, card_id: &str) -> Option<u32> {
        card_id.strip_prefix(&self.prefix)?.strip_prefix('-')?.parse().ok()
    }

    pub fn category(&self, index: u32) -> &str {
        let mut x = mix64(index as u64 ^ 0xCA7E_6021) % self.total_weight;
        for (category, weight) in &self.categories {
            if x < *weight {
                return category;
            }
            x -= weight;
        }
        &self.categories[0].0
    }

    pub fn tags(&self, index: u32) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(tag, pct)| mix64(index as u64 ^ hash_str(tag)) % 100 < *pct as u64)
            .map(|(tag, _)| tag.clone())
            .collect()
    }

    /// The import line of one card: active from January 1st of `year` to December 31st of the next year.
    pub fn line(&self, index: u32, year: i32) -> CardholderLine {
        CardholderLine {
            card_id: self.card_id(index),
            category: self.category(index).to_string(),
            valid_from: format!("{year}-01-01"),
            valid_until: format!("{}-12-31", year + 1),
            status: "active".into(),
            tags: self.tags(index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::smoke;

    #[test]
    fn card_book_is_deterministic_and_follows_the_mix() {
        let s = smoke();
        let book = CardBook::new(&s, "LTabc");
        assert_eq!(book.card_id(42), "LTabc-0000042");
        assert_eq!(book.index_of("LTabc-0000042"), Some(42));
        assert_eq!(book.index_of("LTabd-0000042"), None);
        let mut counts = std::collections::BTreeMap::new();
        let mut tagged = 0;
        for i in 0..20_000 {
            *counts.entry(book.category(i).to_string()).or_insert(0u32) += 1;
            tagged += book.tags(i).len();
        }
        // weights 10/40/30/20 of 100
        assert!((1600..2400).contains(&counts["tekun"]), "{counts:?}");
        assert!((7400..8600).contains(&counts["dibao"]), "{counts:?}");
        assert!((3600..4400).contains(&tagged), "20 % elderly_80: {tagged}");
        assert_eq!(book.category(7), CardBook::new(&s, "LTother").category(7));
        let line = book.line(3, 2026);
        assert_eq!(line.valid_from, "2026-01-01");
        assert_eq!(line.valid_until, "2027-12-31");
        assert_eq!(line.status, "active");
    }
}
