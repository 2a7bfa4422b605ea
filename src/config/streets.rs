//! `[streets]`: the certificate CNs of the district's street offices (街道社保所) and the street each one serves
//! (docs/API.md "Three levels"). A street office reads and writes only the cards of its own street; which routes it
//! may call is the route table's role column (`http::routes::Role::AdminOrStreet`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// Most street identities one gateway takes: the map is searched on every new connection, and a district has tens
/// of street offices, not thousands.
pub const MAX_STREET_IDENTITIES: usize = 1000;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreetsConfig {
    /// Certificate CN → the street label it serves (the `street` of the cards it may see). Several CNs may serve
    /// one street (two offices, or a certificate rollover).
    #[serde(default)]
    pub identities: BTreeMap<String, String>,
}

impl StreetsConfig {
    /// A street label must be a valid card `street` (1–64 visible chars, none of `, ; = | { }`), and no CN may be
    /// both the relief office and a street office: either would silently widen or narrow what a caller sees.
    pub fn validate(&self, admins: &[String]) -> Result<(), String> {
        if self.identities.len() > MAX_STREET_IDENTITIES {
            return Err(format!("streets.identities lists more than {MAX_STREET_IDENTITIES} identities"));
        }
        for (cn, street) in &self.identities {
            if cn.is_empty() {
                return Err("streets.identities: an empty certificate CN".into());
            }
            if !crate::domain::is_valid_label(street) {
                return Err(format!(
                    "streets.identities: {:?} = {:?}: a street label must be 1-64 visible chars, none of , ; = | {{ }}",
                    crate::redact::log_safe(cn),
                    crate::redact::log_safe(street)
                ));
            }
            if admins.iter().any(|a| a == cn) {
                return Err(format!(
                    "{:?} is listed both in admin.identities and in streets.identities: a CN has one role",
                    crate::redact::log_safe(cn)
                ));
            }
        }
        Ok(())
    }

    /// The street a CN serves, if it is a street office's.
    pub fn street_of(&self, cn: &str) -> Option<&str> {
        self.identities.get(cn).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streets(pairs: &[(&str, &str)]) -> StreetsConfig {
        StreetsConfig { identities: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn labels_and_roles_are_checked() {
        let admins = vec!["relief-office".to_string()];
        assert!(streets(&[("xc-a", "jinrongjie"), ("xc-a2", "jinrongjie")]).validate(&admins).is_ok());
        assert_eq!(streets(&[("xc-a", "jinrongjie")]).street_of("xc-a"), Some("jinrongjie"));
        assert_eq!(streets(&[("xc-a", "jinrongjie")]).street_of("H0001"), None);
        let both = streets(&[("relief-office", "jinrongjie")]).validate(&admins).unwrap_err();
        assert!(both.contains("both"), "{both}");
        for bad in ["", "a b", "a,b", "{x}", &"x".repeat(65)] {
            let e = streets(&[("xc-a", bad)]).validate(&admins).unwrap_err();
            assert!(e.contains("street label"), "{bad:?}: {e}");
        }
        assert!(streets(&[("", "x")]).validate(&admins).is_err());
    }
}
