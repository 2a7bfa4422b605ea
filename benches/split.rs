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
        pool_contributions_fen: 0,
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
    cross_check(ruleset, &card, iterations / 4);
}

/// The production cross-check as `App` runs it after every settle: parse the counters the script reported, build
/// the card, re-run the split, compare (docs/DESIGN.md weighs this against the gateway's ~30 µs per settle).
fn cross_check(ruleset: Ruleset, card: &Cardholder, iterations: u32) {
    use settlegate::domain::bill::{Amounts, Bill, Insurance, Visit};
    use settlegate::domain::settlement::{Settlement, SettlementStatus};
    use settlegate::store::codec::parse_reads;
    use settlegate::store::ScriptReads;

    let insurance =
        Insurance { basic_fen: 1_203_999, critical_illness_fen: 94_900, other_fen: 0, settlement_ref: None };
    let bill = Bill {
        card_id: "C100001",
        visit: Visit { visit_type: VisitType::Inpatient, date: ruleset.effective_from },
        amounts: Amounts {
            total_fen: 2_000_000,
            in_scope_fen: 1_799_999,
            pre_self_pay_fen: 30_001,
            over_limit_fen: 20_000,
            self_pay_fen: 150_000,
        },
        insurance: &insurance,
    };
    let usage = ProgramUsage {
        paid_fen: 120000,
        deductible_met_fen: 40000,
        program_paid_fen: 9_000_000,
        pool_contributions_fen: 0,
    };
    let reported: String = ruleset
        .programs
        .iter()
        .map(|p| format!("{},{},{},{}", p.id, usage.paid_fen, usage.deductible_met_fen, usage.program_paid_fen))
        .collect::<Vec<_>>()
        .join(";");
    let s = split(&ruleset, card, VisitType::Inpatient, 2_000_000, bill.residual(), |_| usage);
    let settlement = Settlement {
        settlement_id: None,
        hospital_settlement_id: None,
        hospital_id: None,
        status: SettlementStatus::Settled,
        card_id: bill.card_id.into(),
        category: card.category.clone(),
        visit: bill.visit,
        amounts: bill.amounts,
        insurance: insurance.clone(),
        ruleset_version: 1,
        insurance_fen: s.insurance_fen,
        payments: s.payments,
        relief_fen: s.relief_fen,
        patient_fen: s.patient_fen,
        settled_at: None,
        reversed_at: None,
        operator: None,
        reversed_by: None,
        reason: None,
    };
    let compiled = settlegate::rulebook::CompiledRuleset::new(ruleset);
    for round in 0..3 {
        let started = Instant::now();
        let mut same = 0u32;
        for _ in 0..iterations {
            let reads =
                ScriptReads { card_tags: card.tags.clone(), programs: parse_reads(black_box(&reported)).unwrap() };
            same += u32::from(settlegate::app::cross_check(&compiled, &bill, black_box(&settlement), &reads));
        }
        assert_eq!(same, iterations, "the engine must agree with itself");
        let ns = started.elapsed().as_nanos() as f64 / f64::from(iterations);
        println!("cross-check (parse reads + split + compare), 5 programs: {ns:.0} ns per settlement (round {round})");
    }
}
