//! Scenario validation: every problem at once, so a scenario author fixes the file in one go.

use super::{parse_ramp, Scenario, MAX_CARDS, MAX_HOSPITALS};

const VISIT_TYPES: [&str; 3] = ["outpatient", "chronic", "inpatient"];
const BUCKETS: [&str; 4] = ["in_scope", "pre_self_pay", "over_limit", "self_pay"];

fn valid_id(s: &str, extra: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

fn pct_pair(name: &str, p: [u32; 2], errors: &mut Vec<String>) {
    if p[0] > p[1] || p[1] > 100 {
        errors.push(format!("{name} = {p:?}: need [low, high] with low <= high <= 100"));
    }
}

impl Scenario {
    /// Every problem at once, so a scenario author fixes the file in one go.
    pub fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        if self.hospitals.is_empty() || self.hospitals.len() > MAX_HOSPITALS {
            errors.push(format!("hospitals: need 1..={MAX_HOSPITALS} names"));
        }
        for h in &self.hospitals {
            if !valid_id(h, "._-") {
                errors.push(format!("hospital {h:?}: 1-64 chars of A-Za-z0-9._-"));
            }
            if h == &self.admin {
                errors.push(format!("hospital {h:?} is also the admin identity"));
            }
        }
        let c = &self.cardholders;
        if c.count == 0 || c.count > MAX_CARDS {
            errors.push(format!("cardholders.count: need 1..={MAX_CARDS}"));
        }
        if c.categories.values().all(|&w| w == 0) {
            errors.push("cardholders.categories: need at least one positive weight".into());
        }
        for (tag, pct) in &c.tags_percent {
            if *pct > 100 {
                errors.push(format!("cardholders.tags_percent.{tag}: at most 100"));
            }
        }
        if self.ruleset.programs.is_empty() {
            errors.push("ruleset.programs: need at least one program".into());
        }
        if chrono::NaiveDate::parse_from_str(&self.ruleset.effective_from, "%Y-%m-%d").is_err() {
            errors.push(format!("ruleset.effective_from {:?}: not a YYYY-MM-DD date", self.ruleset.effective_from));
        }
        let mut ids = std::collections::BTreeSet::new();
        for p in &self.ruleset.programs {
            if !ids.insert(p.id.as_str()) {
                errors.push(format!("program {:?}: duplicate id", p.id));
            }
            if !valid_id(&p.id, "_") || p.id.chars().any(|ch| ch.is_ascii_uppercase()) {
                errors.push(format!("program {:?}: id is 1-64 chars of a-z0-9_", p.id));
            }
            if p.covers.is_empty() || p.covers.iter().any(|b| !BUCKETS.contains(&b.as_str())) {
                errors.push(format!("program {:?}: covers must be a non-empty list of {BUCKETS:?}", p.id));
            }
            if let Some(vt) = &p.visit_types {
                if vt.is_empty() || vt.iter().any(|v| !VISIT_TYPES.contains(&v.as_str())) {
                    errors
                        .push(format!("program {:?}: visit_types must be a non-empty subset of {VISIT_TYPES:?}", p.id));
                }
            }
            for (cat, rule) in &p.categories {
                if rule.ratio_bp > 10_000 {
                    errors.push(format!("program {:?} category {cat:?}: ratio_bp above 10000", p.id));
                }
            }
        }
        if self.operations.total() == 0 {
            errors.push("operations: need at least one positive weight".into());
        }
        if self.bills.is_empty() || self.bills.iter().all(|b| b.weight == 0) {
            errors.push("bills: need at least one profile with a positive weight".into());
        }
        for b in &self.bills {
            let name = format!("bills[{}]", b.visit_type);
            if !VISIT_TYPES.contains(&b.visit_type.as_str()) {
                errors.push(format!("{name}: visit_type must be one of {VISIT_TYPES:?}"));
            }
            if b.total_fen.min == 0 || b.total_fen.min > b.total_fen.max || b.total_fen.max > (1u64 << 53) - 1 {
                errors.push(format!("{name}.total_fen: need 1 <= min <= max <= 2^53-1"));
            }
            pct_pair(&format!("{name}.in_scope_pct"), b.in_scope_pct, &mut errors);
            pct_pair(&format!("{name}.pre_self_pay_pct"), b.pre_self_pay_pct, &mut errors);
            pct_pair(&format!("{name}.over_limit_pct"), b.over_limit_pct, &mut errors);
            pct_pair(&format!("{name}.insurance_pct"), b.insurance_pct, &mut errors);
            pct_pair(&format!("{name}.critical_illness_share_pct"), b.critical_illness_share_pct, &mut errors);
            if b.in_scope_pct[1] + b.pre_self_pay_pct[1] + b.over_limit_pct[1] > 100 {
                errors.push(format!("{name}: the upper shares of in_scope + pre_self_pay + over_limit exceed 100"));
            }
        }
        if self.slo.p99_ms.is_nan() || self.slo.p99_ms <= 0.0 || !(0.0..=1.0).contains(&self.slo.max_error_rate) {
            errors.push("slo: need p99_ms > 0 and 0 <= max_error_rate <= 1".into());
        }
        if let Some(r) = &self.load.ramp {
            if let Err(e) = parse_ramp(r) {
                errors.push(format!("load.ramp: {e}"));
            }
        }
        let f = &self.fields;
        for (name, pct) in [
            ("insurance_ref_pct", f.insurance_ref_pct),
            ("operator_pct", f.operator_pct),
            ("retry_other_operator_pct", f.retry_other_operator_pct),
        ] {
            if pct > 100 {
                errors.push(format!("fields.{name} = {pct}: at most 100"));
            }
        }
        if !(1..=10_000).contains(&f.operators_per_hospital) {
            errors.push("fields.operators_per_hospital: need 1..=10000".into());
        }
        if self.operations.ref_reuse > 0 && f.insurance_ref_pct == 0 {
            errors.push(
                "operations.ref_reuse needs fields.insurance_ref_pct > 0 (no settlement would hold a ref)".into(),
            );
        }
        if self.operations.contribution > 0 {
            self.validate_contributions(&mut errors);
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            errors.push(format!("timezone {:?}: unknown IANA zone", self.timezone));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

impl Scenario {
    /// The `[contributions]` table, when the `contribution` operation runs.
    fn validate_contributions(&self, errors: &mut Vec<String>) {
        let c = &self.contributions;
        match self.pool_program() {
            None => errors.push("operations.contribution needs a program with an annual_pool_fen".into()),
            Some(id) => {
                if !self.ruleset.programs.iter().any(|p| p.id == id && p.annual_pool_fen.is_some()) {
                    errors.push(format!("contributions.program {id:?}: not a program with an annual_pool_fen"));
                }
            }
        }
        for (name, r) in [("donation_fen", c.donation_fen), ("withdrawal_fen", c.withdrawal_fen)] {
            if r.min == 0 || r.min > r.max || r.max > (1u64 << 53) - 1 {
                errors.push(format!("contributions.{name}: need 1 <= min <= max <= 2^53-1"));
            }
        }
        for (name, pct) in [("withdrawal_pct", c.withdrawal_pct), ("note_pct", c.note_pct)] {
            if pct > 100 {
                errors.push(format!("contributions.{name} = {pct}: at most 100"));
            }
        }
        if !(1..=10_000_000).contains(&c.max_contributions) {
            errors.push("contributions.max_contributions: need 1..=10000000".into());
        }
        if c.replay_pct + c.conflict_pct > 100 {
            errors.push("contributions: replay_pct + conflict_pct above 100".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SMOKE;

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let bad = SMOKE.replace("[slo]", "[slo]\nfoo = 1");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("foo"));
        let bad = SMOKE.replace("ratio_bp = 9000", "ratio_bp = 19000");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("ratio_bp"));
        let bad = SMOKE.replace("visit_type = \"outpatient\"", "visit_type = \"dental\"");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("visit_type"));
        let bad = SMOKE.replace("insurance_ref_pct = 60", "insurance_ref_pct = 0");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("ref_reuse"));
        let bad = SMOKE.replace("operator_pct = 70", "operator_pct = 170");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("operator_pct"));
        let bad = SMOKE.replace("[contributions]", "[contributions]\nprogram = \"medical_assistance\"");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("contributions.program"));
        let bad = SMOKE.replace("[contributions]", "[contributions]\nreplay_pct = 99");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("replay_pct"));
        let bad = SMOKE.replace("[contributions]", "[contributions]\nmax_contributions = 0");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("max_contributions"));
        let bad = SMOKE.replace("annual_pool_fen = 1000000", "");
        assert!(Scenario::from_toml(&bad).unwrap_err().contains("operations.contribution needs a program"));
    }
}
