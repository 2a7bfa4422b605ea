//! The domain, pure: money, cardholders, rulesets, bills and the split algorithm of RULES.md.
//!
//! Nothing here does I/O or awaits. The HTTP layer turns JSON into these types (and back); the store records what
//! the split decided. Validation errors name the offending field with a JSON-ish path (`programs[2].categories.
//! dibao.ratio_bp`), the same path a client sees in `problem+json` `errors[].field`.

/// `Deserialize` for a unit-only enum, from a JSON string alone. serde's derive also reads a unit variant from a
/// one-entry map (`"type": {"inpatient": null}`); the API takes only the string (docs/DESIGN.md "Strict JSON").
/// The names must be those `Serialize` writes (`rename_all`); each enum's tests round-trip every variant.
macro_rules! deserialize_from_str {
    ($ty:ty, $expecting:literal, [$($variant:path => $name:literal),+ $(,)?]) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Name;
                impl serde::de::Visitor<'_> for Name {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$ty, E> {
                        match s {
                            $($name => Ok($variant),)+
                            _ => Err(E::unknown_variant(s, &[$($name),+])),
                        }
                    }
                }
                d.deserialize_str(Name)
            }
        }
    };
}

pub mod audit;
pub mod bill;
pub mod card;
pub mod clearing;
pub mod date;
pub mod money;
pub mod preview;
pub mod report;
pub mod rules;
pub mod settlement;
pub mod split;

/// One validation failure: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Identifiers chosen by the relief office (program ids, categories, tags): 1–64 chars of `a-z0-9_`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Categories and tags (names the relief office defines, RULES.md): 1–64 visible characters, none of the separators
/// the store and the settle script use (`, ; = | { }`) and no whitespace.
pub fn is_valid_label(label: &str) -> bool {
    (1..=64).contains(&label.chars().count())
        && label.chars().all(|c| !c.is_whitespace() && !c.is_control() && !",;=|{}".contains(c))
}

/// Identifiers chosen by hospitals and the card system (`hospital_settlement_id`, `card_id`, hospital ids):
/// 1–64 chars of `A-Za-z0-9._:-`. No braces, so an id can never break a Redis Cluster hash tag.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}
