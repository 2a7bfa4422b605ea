//! Rulesets: versions of the relief programs, their validation, and the choice of the ruleset in force.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::money::{is_valid_fen, FULL_BP};
use super::{is_valid_label, is_valid_name, FieldError};

/// Programs in one ruleset; a bound that keeps the settle script's work per call small.
pub const MAX_PROGRAMS: usize = 32;
/// Categories per program.
pub const MAX_CATEGORIES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VisitType {
    Outpatient,
    Chronic,
    Inpatient,
}

deserialize_from_str!(VisitType, "a visit type", [
    VisitType::Outpatient => "outpatient",
    VisitType::Chronic => "chronic",
    VisitType::Inpatient => "inpatient",
]);

impl VisitType {
    pub const ALL: [VisitType; 3] = [VisitType::Outpatient, VisitType::Chronic, VisitType::Inpatient];
    pub fn as_str(self) -> &'static str {
        match self {
            VisitType::Outpatient => "outpatient",
            VisitType::Chronic => "chronic",
            VisitType::Inpatient => "inpatient",
        }
    }

    /// The inverse of [`VisitType::as_str`].
    pub fn parse(s: &str) -> Option<VisitType> {
        VisitType::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The four residual buckets of a bill, in the order the API lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    InScope,
    PreSelfPay,
    OverLimit,
    SelfPay,
}

deserialize_from_str!(Bucket, "a bucket", [
    Bucket::InScope => "in_scope",
    Bucket::PreSelfPay => "pre_self_pay",
    Bucket::OverLimit => "over_limit",
    Bucket::SelfPay => "self_pay",
]);

impl Bucket {
    pub const ALL: [Bucket; 4] = [Bucket::InScope, Bucket::PreSelfPay, Bucket::OverLimit, Bucket::SelfPay];
}

impl Bucket {
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a program grants one category of cardholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryTerms {
    /// Share of the base (after the deductible) the program pays, 0..=10000.
    pub ratio_bp: i64,
    /// 起付线 per card, program and calendar year; absent = 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deductible_fen: Option<i64>,
    /// Most the program pays one card in a calendar year; absent = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_cap_fen: Option<i64>,
    /// Most the program pays on one visit; absent = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_visit_cap_fen: Option<i64>,
}

impl CategoryTerms {
    /// The ratio for `pct`; a validated ruleset has `0..=10000`, anything else is refused before use.
    pub fn ratio_bp(&self) -> u32 {
        u32::try_from(self.ratio_bp).expect("ratio_bp validated to 0..=10000")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    pub id: String,
    pub name: String,
    /// Visit types the program serves; absent = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_types: Option<Vec<VisitType>>,
    /// Residual buckets the program pays from, in the order it takes from them.
    pub covers: Vec<Bucket>,
    /// Tags the card must all carry; absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_tags: Option<Vec<String>>,
    /// Most the program pays everybody together in one calendar year; absent = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_pool_fen: Option<i64>,
    pub categories: BTreeMap<String, CategoryTerms>,
}

impl Program {
    pub fn serves(&self, visit_type: VisitType) -> bool {
        self.visit_types.as_ref().is_none_or(|v| v.contains(&visit_type))
    }

    pub fn required_tags(&self) -> &[String] {
        self.require_tags.as_deref().unwrap_or(&[])
    }
}

/// What the relief office sends to publish a ruleset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesetInput {
    #[serde(with = "super::date")]
    pub effective_from: NaiveDate,
    pub programs: Vec<Program>,
}

/// A published, immutable ruleset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ruleset {
    pub version: u64,
    #[serde(with = "super::date")]
    pub effective_from: NaiveDate,
    /// RFC 3339 time of publication, for the record.
    pub published_at: String,
    pub programs: Vec<Program>,
}

impl RulesetInput {
    /// Every check of API.md "publish a new ruleset"; each error names its field.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.programs.len() > MAX_PROGRAMS {
            errors.push(FieldError::new("programs", format!("at most {MAX_PROGRAMS} programs")));
        }
        let mut ids = HashSet::new();
        for (i, p) in self.programs.iter().enumerate() {
            let at = |field: &str| format!("programs[{i}].{field}");
            if !is_valid_name(&p.id) {
                errors.push(FieldError::new(at("id"), "must be 1-64 chars of a-z0-9_"));
            } else if !ids.insert(p.id.as_str()) {
                errors.push(FieldError::new(at("id"), format!("duplicate program id {:?}", p.id)));
            }
            if p.name.trim().is_empty() || p.name.chars().count() > 128 {
                errors.push(FieldError::new(at("name"), "must be 1-128 chars"));
            }
            if let Some(v) = &p.visit_types {
                if v.is_empty() {
                    errors.push(FieldError::new(at("visit_types"), "must not be empty (omit it for all visit types)"));
                }
                if v.iter().collect::<HashSet<_>>().len() != v.len() {
                    errors.push(FieldError::new(at("visit_types"), "must not repeat a visit type"));
                }
            }
            if p.covers.is_empty() {
                errors.push(FieldError::new(at("covers"), "must name at least one bucket"));
            }
            if p.covers.iter().collect::<HashSet<_>>().len() != p.covers.len() {
                errors.push(FieldError::new(at("covers"), "must not repeat a bucket"));
            }
            for (k, tag) in p.required_tags().iter().enumerate() {
                if !is_valid_label(tag) {
                    errors.push(FieldError::new(
                        at(&format!("require_tags[{k}]")),
                        "must be 1-64 visible chars, none of , ; = | { }",
                    ));
                }
            }
            if let Some(pool) = p.annual_pool_fen {
                if !is_valid_fen(pool) {
                    errors.push(FieldError::new(at("annual_pool_fen"), "must be 0..=9007199254740991"));
                }
            }
            if p.categories.len() > MAX_CATEGORIES {
                errors.push(FieldError::new(at("categories"), format!("at most {MAX_CATEGORIES} categories")));
            }
            for (name, terms) in &p.categories {
                let at = |field: &str| format!("programs[{i}].categories.{name}{field}");
                if !is_valid_label(name) {
                    errors.push(FieldError::new(at(""), "category must be 1-64 visible chars, none of , ; = | { }"));
                }
                if !(0..=FULL_BP as i64).contains(&terms.ratio_bp) {
                    errors.push(FieldError::new(at(".ratio_bp"), "must be 0..=10000"));
                }
                for (field, value) in [
                    (".deductible_fen", terms.deductible_fen),
                    (".annual_cap_fen", terms.annual_cap_fen),
                    (".per_visit_cap_fen", terms.per_visit_cap_fen),
                ] {
                    if value.is_some_and(|v| !is_valid_fen(v)) {
                        errors.push(FieldError::new(at(field), "must be 0..=9007199254740991"));
                    }
                }
            }
        }
        errors
    }
}

/// How a ruleset file is written: JSON (the API's body) or TOML (config/rules.example.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesetFormat {
    Json,
    Toml,
}

impl RulesetFormat {
    /// JSON when the file name ends in `.json`, else TOML.
    pub fn of_path(path: &std::path::Path) -> RulesetFormat {
        if path.extension().is_some_and(|e| e == "json") {
            RulesetFormat::Json
        } else {
            RulesetFormat::Toml
        }
    }
}

/// Parses a ruleset's text (no I/O, no validation: call [`RulesetInput::validate`]).
pub fn parse_ruleset(text: &str, format: RulesetFormat) -> Result<RulesetInput, String> {
    match format {
        RulesetFormat::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
        RulesetFormat::Toml => toml::from_str(text).map_err(|e| e.to_string()),
    }
}

/// RULES.md: the ruleset in force for a visit is the one with the highest version whose `effective_from <= date`.
pub fn in_force(rulesets: &[Ruleset], visit_date: NaiveDate) -> Option<&Ruleset> {
    rulesets.iter().filter(|r| r.effective_from <= visit_date).max_by_key(|r| r.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> RulesetInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn validation_names_the_field() {
        let r = input(
            r#"{"effective_from":"2026-01-01","programs":[
            {"id":"a","name":"A","covers":["in_scope"],"categories":{"dibao":{"ratio_bp":9000}}},
            {"id":"a","name":"B","covers":["in_scope","in_scope"],"categories":{"dibao":{"ratio_bp":9000}}},
            {"id":"c","name":"C","covers":["self_pay"],"categories":{"dibao":{"ratio_bp":10001,"annual_cap_fen":-1}}}]}"#,
        );
        let errors: Vec<String> = r.validate().iter().map(|e| e.to_string()).collect();
        assert!(errors.contains(&"programs[1].id: duplicate program id \"a\"".to_string()), "{errors:?}");
        assert!(errors.contains(&"programs[1].covers: must not repeat a bucket".to_string()), "{errors:?}");
        assert!(errors.contains(&"programs[2].categories.dibao.ratio_bp: must be 0..=10000".to_string()), "{errors:?}");
        assert!(
            errors.contains(&"programs[2].categories.dibao.annual_cap_fen: must be 0..=9007199254740991".to_string())
        );
    }

    #[test]
    fn enums_read_only_the_strings_they_write() {
        for v in VisitType::ALL {
            let text = serde_json::to_string(&v).unwrap();
            assert_eq!(text, format!("\"{}\"", v.as_str()));
            assert_eq!(serde_json::from_str::<VisitType>(&text).unwrap(), v);
            assert!(serde_json::from_str::<VisitType>(&format!("{{{text}:null}}")).is_err(), "{text} as a map");
        }
        for b in Bucket::ALL {
            let text = serde_json::to_string(&b).unwrap();
            assert_eq!(serde_json::from_str::<Bucket>(&text).unwrap(), b);
            assert!(serde_json::from_str::<Bucket>(&format!("{{{text}:null}}")).is_err(), "{text} as a map");
        }
        let e = serde_json::from_str::<Bucket>("\"nope\"").unwrap_err().to_string();
        assert!(e.contains("unknown variant `nope`, expected one of `in_scope`"), "{e}");
    }

    #[test]
    fn in_force_takes_highest_version_already_effective() {
        let mk = |version, from: &str| Ruleset {
            version,
            effective_from: from.parse().unwrap(),
            published_at: String::new(),
            programs: vec![],
        };
        let all = vec![mk(1, "2026-01-01"), mk(2, "2026-07-01"), mk(3, "2026-03-01")];
        let at = |d: &str| in_force(&all, d.parse().unwrap()).map(|r| r.version);
        assert_eq!(at("2025-12-31"), None);
        assert_eq!(at("2026-02-01"), Some(1));
        assert_eq!(at("2026-03-01"), Some(3));
        assert_eq!(at("2026-08-01"), Some(3)); // version 3 outranks 2 once both are effective
    }
}
