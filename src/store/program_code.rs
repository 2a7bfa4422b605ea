//! The settle script of one ruleset and visit type: a prelude holding the programs that serve the visit type as Lua
//! constants, then `scripts/settle.lua`. One script per (ruleset version, visit type), compiled once when the
//! gateway loads the ruleset ([`crate::rulebook`]) and once by Redis (`SCRIPT LOAD` on first use, then called by
//! SHA), instead of a spec string per program passed with every call and parsed by `string.match` and `tonumber`
//! in it: that parsing and those arguments cost Redis about 48 k of the 332 k instructions of one settle
//! (docs/BENCHMARKS.md, issue 13, fifth session).
//!
//! The prelude defines `covering(category)`: the programs whose terms list that category, in ruleset order, each a
//! fresh table (the script fills in the counters it reads), with every field the script later sets already in the
//! constructor, so that Lua sizes the table once. Strings are emitted as `\ddd` escapes of every byte, so no label
//! can end a literal or inject code; amounts are decimal integers, exact in a double because a published ruleset
//! holds only amounts of 0..=2^53 − 1 (`domain::rules::RulesetInput::validate`; a category with any other amount
//! gets a Lua `error`, so the script refuses before it writes).

use std::fmt::Write as _;

use redis::Script;

use crate::domain::rules::{Bucket, CategoryTerms, Program, Ruleset, VisitType};

/// The script's body: everything after the prelude.
const SETTLE_BODY: &str = include_str!("scripts/settle.lua");

/// The largest amount a double holds exactly; a validated ruleset's amounts are at most this.
const MAX_EXACT_FEN: i64 = (1 << 53) - 1;

/// The settle script for the programs of `ruleset` that serve `visit_type`; `None` (no ruleset in force) gives a
/// script that covers no category (it still checks the id and the card, then answers `no_rules_in_force`).
pub fn settle_script(rules: Option<(&Ruleset, VisitType)>) -> Script {
    let mut source = match rules {
        Some((ruleset, visit_type)) => prelude(ruleset, visit_type),
        None => "local function covering(category) return {} end\n".to_string(),
    };
    source.push_str(SETTLE_BODY);
    Script::new(&source)
}

/// `covering(category)` for the programs of `ruleset` serving `visit_type`.
fn prelude(ruleset: &Ruleset, visit_type: VisitType) -> String {
    let programs: Vec<_> = ruleset.programs.iter().filter(|p| p.serves(visit_type)).collect();
    let mut categories: Vec<&str> = programs.iter().flat_map(|p| p.categories.keys().map(String::as_str)).collect();
    categories.sort_unstable();
    categories.dedup();
    let mut s = format!(
        "-- ruleset {} for {:?} visits, compiled by src/store/program_code.rs: the programs covering a category\n\
         local function covering(category)\n",
        ruleset.version, visit_type
    );
    for category in categories {
        let mut entries = String::new();
        for p in &programs {
            let Some(t) = p.categories.get(category) else { continue };
            match program_entry(p, t) {
                Ok(entry) => entries.push_str(&entry),
                Err(fen) => {
                    // unreachable for a ruleset that passed validation: refuse in the script (before any write)
                    // rather than split with an inexact amount
                    entries.clear();
                    let _ = writeln!(
                        s,
                        "  if category == {} then error('ruleset {}: an amount outside 0..2^53 - 1: {fen}') end",
                        lua_str(category),
                        ruleset.version
                    );
                    break;
                }
            }
        }
        if !entries.is_empty() {
            let _ = write!(s, "  if category == {} then return {{\n{entries}  }} end\n", lua_str(category));
        }
    }
    s.push_str("  return {}\nend\n");
    s
}

/// One program's table for `covering`, or the first amount a double cannot hold exactly.
fn program_entry(p: &Program, t: &CategoryTerms) -> Result<String, i64> {
    let covers: String = p.covers.iter().map(|b| bucket_digit(*b)).collect();
    let needles = p.required_tags().iter().map(|t| lua_str(&format!(",{t},"))).collect::<Vec<_>>();
    Ok(format!(
        "    {{id = {id}, covers = {covers}, pool = {pool}, needles = {needles}, ratio = {ratio}, ded_limit = {ded}, \
         annual_cap = {annual}, visit_cap = {visit}, paid_field = {paid_field}, ded_field = {ded_field}, \
         total_field = {total_field}, contrib_field = {contrib_field}, \
         paid_before = 0, ded_met = 0, program_paid = 0, budget = false, pay = 0, ded = 0}},\n",
        id = lua_str(&p.id),
        covers = lua_str(&covers),
        pool = lua_fen(p.annual_pool_fen)?,
        needles = if needles.is_empty() { "nil".to_string() } else { format!("{{{}}}", needles.join(", ")) },
        ratio = t.ratio_bp(),
        ded = lua_fen(Some(t.deductible_fen.unwrap_or(0)))?,
        annual = lua_fen(t.annual_cap_fen)?,
        visit = lua_fen(t.per_visit_cap_fen)?,
        paid_field = lua_str(&format!(":{}:paid", p.id)),
        ded_field = lua_str(&format!(":{}:ded", p.id)),
        total_field = lua_str(&format!(":{}", p.id)),
        contrib_field = lua_str(&format!(":{}:contrib", p.id)),
    ))
}

/// A Lua string literal of `text`: every byte as a `\ddd` escape.
fn lua_str(text: &str) -> String {
    let mut s = String::with_capacity(2 + 4 * text.len());
    s.push('"');
    for b in text.bytes() {
        let _ = write!(s, "\\{b:03}");
    }
    s.push('"');
    s
}

/// An amount as a Lua number literal (`nil` when absent), or the amount itself when a double cannot hold it.
fn lua_fen(fen: Option<i64>) -> Result<String, i64> {
    match fen {
        Some(x) if (0..=MAX_EXACT_FEN).contains(&x) => Ok(x.to_string()),
        Some(x) => Err(x),
        None => Ok("nil".to_string()),
    }
}

/// The script's digit for a bucket: `'1'` for in_scope … `'4'` for self_pay (the index into its residual).
fn bucket_digit(b: Bucket) -> char {
    match b {
        Bucket::InScope => '1',
        Bucket::PreSelfPay => '2',
        Bucket::OverLimit => '3',
        Bucket::SelfPay => '4',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset() -> Ruleset {
        serde_json::from_value(serde_json::json!({
            "version": 3, "effective_from": "2026-01-01", "published_at": "2026-01-01T00:00:00+08:00",
            "programs": [
                {"id": "medical_assistance", "name": "MA", "covers": ["in_scope"],
                 "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}}},
                {"id": "charity", "name": "C", "covers": ["in_scope", "self_pay"], "annual_pool_fen": 100,
                 "visit_types": ["inpatient"], "require_tags": ["x\"]]--"],
                 "categories": {"dibao": {"ratio_bp": 5000, "deductible_fen": 7, "per_visit_cap_fen": 9},
                                "te\"kun": {"ratio_bp": 1}}}
            ]
        }))
        .expect("ruleset")
    }

    #[test]
    fn the_prelude_holds_each_categorys_programs_in_ruleset_order() {
        let rs = ruleset();
        let inpatient = prelude(&rs, VisitType::Inpatient);
        let dibao = inpatient.find(&lua_str("dibao")).expect("dibao");
        let ma = inpatient.find(&lua_str("medical_assistance")).expect("ma");
        let charity = inpatient.find(&lua_str("charity")).expect("charity");
        assert!(dibao < ma && ma < charity, "{inpatient}");
        assert!(inpatient.contains("covers = \"\\049\\052\", pool = 100"), "{inpatient}");
        assert!(inpatient.contains("ratio = 5000, ded_limit = 7, annual_cap = nil, visit_cap = 9"), "{inpatient}");
        assert!(inpatient.contains(&format!("needles = {{{}}}", lua_str(",x\"]]--,"))), "{inpatient}");
        // outpatient visits: the charity does not serve them, so "te\"kun" covers nothing and is left out
        let outpatient = prelude(&rs, VisitType::Outpatient);
        assert!(!outpatient.contains(&lua_str("charity")) && !outpatient.contains(&lua_str("te\"kun")), "{outpatient}");
        assert!(outpatient.contains("pool = nil, needles = nil, ratio = 9000, ded_limit = 0, annual_cap = 300000"));
    }

    #[test]
    fn an_inexact_amount_makes_the_category_refuse() {
        let mut rs = ruleset();
        rs.programs[1].annual_pool_fen = Some(MAX_EXACT_FEN + 1);
        let code = prelude(&rs, VisitType::Inpatient);
        assert!(code.contains(&format!("if category == {} then error('ruleset 3: ", lua_str("dibao"))), "{code}");
        assert!(!code.contains(&lua_str("charity")), "no table of the refused category's programs: {code}");
    }

    #[test]
    fn literals_cannot_end_early() {
        assert_eq!(lua_str("a\"\\\n"), "\"\\097\\034\\092\\010\"");
        assert_eq!(lua_str(""), "\"\"");
        assert_eq!(lua_fen(Some(MAX_EXACT_FEN)), Ok("9007199254740991".to_string()));
        assert_eq!(lua_fen(Some(MAX_EXACT_FEN + 1)), Err(MAX_EXACT_FEN + 1));
        assert_eq!(lua_fen(None), Ok("nil".to_string()));
    }
}
