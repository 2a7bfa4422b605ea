//! Micro-benchmark of the pure split for a 5-program ruleset: nanoseconds per settlement.
//! Run: `cargo bench --bench split` (a bench binary; no criterion, to keep the build light).

use std::hint::black_box;
use std::time::Instant;

use settlegate::domain::card::Cardholder;
use settlegate::domain::rules::{Ruleset, RulesetInput, VisitType};
use settlegate::domain::split::{split, ProgramUsage};

fn main() {
    let input: RulesetInput = serde_json::from_value(serde_json::json!({"effective_from": "2026-01-01", "programs": [
        {"id": "medical_assistance", "name": "MA", "covers": ["in_scope"],
         "categories": {"dibao": {"ratio_bp": 9000, "annual_cap_fen": 300000}, "tekun": {"ratio_bp": 10000}}},
        {"id": "serious_illness", "name": "SI", "covers": ["in_scope", "pre_self_pay"],
         "categories": {"dibao": {"ratio_bp": 6000, "deductible_fen": 100000, "annual_cap_fen": 8000000}}},
        {"id": "inpatient_elderly", "name": "IE", "visit_types": ["inpatient"], "covers": ["in_scope", "pre_self_pay"],
         "require_tags": ["elderly_80"], "categories": {"dibao": {"ratio_bp": 5000, "per_visit_cap_fen": 200000}}},
        {"id": "temporary", "name": "T", "covers": ["in_scope", "over_limit"],
         "categories": {"dibao": {"ratio_bp": 2000, "per_visit_cap_fen": 30000}}},
        {"id": "charity", "name": "C", "covers": ["in_scope", "pre_self_pay", "over_limit", "self_pay"],
         "annual_pool_fen": 500000000, "categories": {"dibao": {"ratio_bp": 3000, "per_visit_cap_fen": 50000}}}
    ]}))
    .unwrap();
    let ruleset = Ruleset {
        version: 1,
        effective_from: input.effective_from,
        published_at: String::new(),
        programs: input.programs,
    };
    let card: Cardholder = serde_json::from_value(serde_json::json!({"card_id": "C100001", "category": "dibao",
        "valid_from": "2026-01-01", "valid_until": "2026-12-31", "status": "active", "tags": ["elderly_80"]}))
    .unwrap();
    let usage = |_: &settlegate::domain::rules::Program| ProgramUsage {
        paid_fen: 120000,
        deductible_met_fen: 40000,
        program_paid_fen: 9_000_000,
    };

    let iterations: u32 = 2_000_000;
    for round in 0..3 {
        let started = Instant::now();
        let mut relief = 0i64;
        for i in 0..iterations {
            let s = split(
                black_box(&ruleset),
                &card,
                VisitType::Inpatient,
                2_000_000,
                [501_100 + (i as i64 & 0xff), 30_001, 20_000, 150_000],
                usage,
            );
            relief = relief.wrapping_add(s.relief_fen);
        }
        let ns = started.elapsed().as_nanos() as f64 / iterations as f64;
        black_box(relief);
        println!("split, 5-program ruleset (all 5 cover the card): {ns:.0} ns per settlement (round {round})");
    }
}
