//! Check family 5: each hospital's reconciliation totals moved by exactly the sum of its answers (settlements +,
//! reversals −), per day.

use std::collections::{BTreeMap, BTreeSet};

use http::Method;
use serde::{Deserialize, Serialize};

use super::check::Check;
use super::read::read_json;
use super::signed_fen;
use super::AuditInput;
use crate::client::{Endpoint, JsonAnswer};
use crate::workload::{RecordState, SettlementAnswer, SettlementRecord};

/// One hospital's reconciliation day: the key of the totals the audit compares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct HospitalDay {
    /// Index of the hospital in the scenario's `hospitals` (and in the run's endpoints).
    pub hospital: usize,
    /// The local day, `YYYY-MM-DD` in the gateway's timezone, as `GET /v1/reconciliation?date=` takes it.
    pub date: String,
}

/// A hospital's reconciliation totals for one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recon {
    /// Settlements of the day.
    pub settled_count: i64,
    /// Reversals of the day (a reversal counts on the day it was made, not the day of its settlement).
    pub reversed_count: i64,
    /// `net.total_fen`: bill totals, settlements minus reversals.
    pub total_fen: i64,
    /// `net.insurance_fen`: what insurance had paid.
    pub insurance_fen: i64,
    /// `net.relief_fen`: what the relief programs paid.
    pub relief_fen: i64,
    /// `net.patient_fen`: what patients were left to pay.
    pub patient_fen: i64,
    /// `net.by_program`: relief per program (a program with 0 may be absent).
    pub by_program: BTreeMap<String, i64>,
}

impl Recon {
    fn from_json(v: &serde_json::Value) -> Result<Recon, String> {
        #[derive(Deserialize)]
        struct Net {
            total_fen: i64,
            insurance_fen: i64,
            relief_fen: i64,
            patient_fen: i64,
            #[serde(default)]
            by_program: BTreeMap<String, i64>,
        }
        #[derive(Deserialize)]
        struct Body {
            settled_count: i64,
            reversed_count: i64,
            net: Net,
        }
        let b: Body = serde_json::from_value(v.clone()).map_err(|e| format!("reconciliation body {v}: {e}"))?;
        Ok(Recon {
            settled_count: b.settled_count,
            reversed_count: b.reversed_count,
            total_fen: b.net.total_fen,
            insurance_fen: b.net.insurance_fen,
            relief_fen: b.net.relief_fen,
            patient_fen: b.net.patient_fen,
            by_program: b.net.by_program,
        })
    }

    /// Adds (sign +1) or subtracts (sign −1) one settlement's amounts.
    pub fn apply(&mut self, a: &SettlementAnswer, sign: i64) {
        if sign > 0 {
            self.settled_count += 1;
        } else {
            self.reversed_count += 1;
        }
        let signed = |fen: u64| sign * signed_fen(fen);
        self.total_fen = self.total_fen.saturating_add(signed(a.total_fen));
        self.insurance_fen = self.insurance_fen.saturating_add(signed(a.insurance_fen));
        self.relief_fen = self.relief_fen.saturating_add(signed(a.relief_fen));
        self.patient_fen = self.patient_fen.saturating_add(signed(a.patient_fen));
        for p in &a.payments {
            let paid = self.by_program.entry(p.program.clone()).or_insert(0);
            *paid = paid.saturating_add(signed(p.paid_fen));
        }
    }

    /// These totals with `delta` added (the totals a hospital expects after its answers).
    pub fn plus(&self, delta: &Recon) -> Recon {
        let mut by_program = self.by_program.clone();
        for (k, v) in &delta.by_program {
            *by_program.entry(k.clone()).or_insert(0) += v;
        }
        Recon {
            settled_count: self.settled_count + delta.settled_count,
            reversed_count: self.reversed_count + delta.reversed_count,
            total_fen: self.total_fen + delta.total_fen,
            insurance_fen: self.insurance_fen + delta.insurance_fen,
            relief_fen: self.relief_fen + delta.relief_fen,
            patient_fen: self.patient_fen + delta.patient_fen,
            by_program,
        }
    }

    pub fn minus(&self, before: &Recon) -> Recon {
        let mut by_program = self.by_program.clone();
        for (k, v) in &before.by_program {
            *by_program.entry(k.clone()).or_insert(0) -= v;
        }
        Recon {
            settled_count: self.settled_count - before.settled_count,
            reversed_count: self.reversed_count - before.reversed_count,
            total_fen: self.total_fen - before.total_fen,
            insurance_fen: self.insurance_fen - before.insurance_fen,
            relief_fen: self.relief_fen - before.relief_fen,
            patient_fen: self.patient_fen - before.patient_fen,
            by_program,
        }
    }

    /// Field-by-field differences (programs with 0 on one side and absent on the other are equal).
    pub fn differences(&self, expected: &Recon) -> Vec<String> {
        let mut out = Vec::new();
        let pairs = [
            ("settled_count", self.settled_count, expected.settled_count),
            ("reversed_count", self.reversed_count, expected.reversed_count),
            ("net.total_fen", self.total_fen, expected.total_fen),
            ("net.insurance_fen", self.insurance_fen, expected.insurance_fen),
            ("net.relief_fen", self.relief_fen, expected.relief_fen),
            ("net.patient_fen", self.patient_fen, expected.patient_fen),
        ];
        for (name, got, want) in pairs {
            if got != want {
                out.push(format!("{name} moved by {got}, answers sum to {want}"));
            }
        }
        let programs: BTreeSet<&String> = self.by_program.keys().chain(expected.by_program.keys()).collect();
        for p in programs {
            let got = self.by_program.get(p).copied().unwrap_or(0);
            let want = expected.by_program.get(p).copied().unwrap_or(0);
            if got != want {
                out.push(format!("net.by_program.{p} moved by {got}, answers sum to {want}"));
            }
        }
        out
    }
}

pub(super) async fn read_recon(hospital: &Endpoint, date: &str) -> Result<Recon, String> {
    let JsonAnswer { status, body: v } = read_json(hospital, &format!("/v1/reconciliation?date={date}")).await?;
    if status != 200 {
        return Err(format!("GET /v1/reconciliation?date={date} as {}: HTTP {status} {v}", hospital.name));
    }
    Recon::from_json(&v)
}

fn date_of(timestamp: &Option<String>) -> Option<String> {
    timestamp.as_ref().filter(|t| t.len() >= 10).map(|t| t[..10].to_string())
}

/// What each (hospital, day) must have moved by: the answers of that day (settlements +, reversals −); and the
/// answers that cannot be placed on a day.
fn expected(settled: &[&SettlementRecord]) -> (BTreeMap<HospitalDay, Recon>, Vec<String>) {
    let mut expected_recon: BTreeMap<HospitalDay, Recon> = BTreeMap::new();
    let mut outside = Vec::new();
    for r in settled {
        let a = r.answer.as_ref().expect("answered");
        match date_of(&a.settled_at) {
            Some(date) => expected_recon.entry(HospitalDay { hospital: r.hospital, date }).or_default().apply(a, 1),
            None => outside.push(format!("{}: answer without settled_at", a.settlement_id)),
        }
        if r.state == RecordState::Reversed {
            match date_of(&r.reversed_at) {
                Some(date) => {
                    expected_recon.entry(HospitalDay { hospital: r.hospital, date }).or_default().apply(a, -1);
                }
                None => outside.push(format!("{}: reversal without reversed_at", a.settlement_id)),
            }
        }
    }
    (expected_recon, outside)
}

/// `reconciliation_moved_by_the_answers`: every snapshotted (hospital, day) moved by the answers of that day.
pub(super) async fn check(input: &AuditInput, settled: &[&SettlementRecord]) -> Check {
    let w = &input.workload;
    let mut recon_check = Check::new("reconciliation_moved_by_the_answers");
    let (expected_recon, mut outside) = expected(settled);
    for key in expected_recon.keys() {
        if !input.before.reconciliation.contains_key(key) {
            outside.push(format!(
                "hospital {} has events on {}, a day not snapshotted before the run",
                key.hospital, key.date
            ));
        }
    }
    for problem in outside {
        recon_check.fail(problem);
    }
    for (day, before) in &input.before.reconciliation {
        let hospital = &w.hospitals[day.hospital];
        let date = &day.date;
        match read_recon(hospital, date).await {
            Ok(after) => {
                let delta = after.minus(before);
                let want = expected_recon.get(day).cloned().unwrap_or_default();
                let diffs = delta.differences(&want);
                recon_check.expect(diffs.is_empty(), || format!("{} on {date}: {}", hospital.name, diffs.join("; ")));
            }
            Err(e) => recon_check.fail(e),
        }
    }
    recon_check
}

/// The body of `POST /v1/reconciliation/check`: a hospital's totals of one day as it believes them.
pub fn claim_body(date: &str, claim: &Recon) -> serde_json::Value {
    serde_json::json!({
        "date": date,
        "settled_count": claim.settled_count,
        "reversed_count": claim.reversed_count,
        "net": {
            "total_fen": claim.total_fen,
            "insurance_fen": claim.insurance_fen,
            "relief_fen": claim.relief_fen,
            "patient_fen": claim.patient_fen,
        },
    })
}

/// The answer of `POST /v1/reconciliation/check`, judged against the claim sent: `Ok` when it says `match` with no
/// differences and its `gateway` totals are the claim's (when `expect_match`), or when it says `mismatch` naming
/// exactly `expect_difference` (field, hospital's value, gateway's value).
fn judge_check_answer(
    v: &serde_json::Value,
    claim: &Recon,
    expect_difference: Option<(&str, i64, i64)>,
) -> Result<(), String> {
    let result = v["result"].as_str().unwrap_or_default();
    let differences = v["differences"].as_array().cloned().unwrap_or_default();
    match expect_difference {
        None => {
            if result != "match" || !differences.is_empty() {
                return Err(format!("result {result:?}, differences {}", serde_json::Value::Array(differences)));
            }
            let mut counted = Recon::from_json(&v["gateway"])?;
            counted.by_program.clear();
            let mut claimed = claim.clone();
            claimed.by_program.clear();
            let diffs = counted.differences(&claimed);
            if !diffs.is_empty() {
                return Err(format!("\"match\", but its gateway totals differ from the claim: {}", diffs.join("; ")));
            }
            Ok(())
        }
        Some((field, hospital, gateway)) => {
            let want = serde_json::json!([{"field": field, "hospital": hospital, "gateway": gateway}]);
            if result == "mismatch" && serde_json::Value::Array(differences.clone()) == want {
                Ok(())
            } else {
                Err(format!(
                    "a claim 1 fen off in {field}: result {result:?}, differences {} (expected {want})",
                    serde_json::Value::Array(differences)
                ))
            }
        }
    }
}

/// `reconciliation_check_agrees`: each hospital's day (today, and any other day with answers) sent to
/// `POST /v1/reconciliation/check` with the totals the run expects (the snapshot before the run plus the
/// answers) must be a `match`; one claim 1 fen off must be a `mismatch` naming that field. Also returns the
/// outcome for the report: `match`, `mismatch`, `not served` (the endpoint answered 404) or `error`.
pub(super) async fn check_endpoint(input: &AuditInput, settled: &[&SettlementRecord]) -> (Check, String) {
    let w = &input.workload;
    let mut check = Check::new("reconciliation_check_agrees");
    let (expected_recon, _) = expected(settled);
    let mut days: Vec<HospitalDay> = (0..w.hospitals.len())
        .map(|hospital| HospitalDay { hospital, date: w.visit_date.clone() })
        .chain(expected_recon.keys().cloned())
        .filter(|d| input.before.reconciliation.contains_key(d))
        .collect();
    days.sort();
    days.dedup();
    let mut probed = false;
    for day in &days {
        let hospital = &w.hospitals[day.hospital];
        let claim = input.before.reconciliation[day].plus(&expected_recon.get(day).cloned().unwrap_or_default());
        let mut attempts = vec![(claim_body(&day.date, &claim), None)];
        if !probed {
            // The check must see a difference too: the same claim with 1 fen more relief.
            let mut off = claim.clone();
            off.relief_fen += 1;
            attempts.push((claim_body(&day.date, &off), Some(("net.relief_fen", off.relief_fen, claim.relief_fen))));
            probed = true;
        }
        for (body, expect_difference) in attempts {
            let answer = hospital.json(Method::POST, "/v1/reconciliation/check", Some(&body)).await;
            match answer {
                Ok(JsonAnswer { status: 404, .. }) if check.checked == 0 => {
                    check.note = Some(
                        "not served: POST /v1/reconciliation/check answered 404 (this gateway build lacks it)".into(),
                    );
                    return (check, "not served".into());
                }
                Ok(JsonAnswer { status: 200, body: v }) => match judge_check_answer(&v, &claim, expect_difference) {
                    Ok(()) => check.ok(),
                    Err(e) => check.fail(format!("{} on {}: {e}", hospital.name, day.date)),
                },
                Ok(JsonAnswer { status, body: v }) => {
                    check.fail(format!("{} on {}: HTTP {status} {v}", hospital.name, day.date));
                }
                Err(e) => check.fail(e.to_string()),
            }
        }
    }
    let outcome = if check.passed { "match" } else { "mismatch" };
    (check, outcome.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Payment;

    fn answer(total: u64, ins: u64, pays: &[(&str, u64)]) -> SettlementAnswer {
        let relief: u64 = pays.iter().map(|p| p.1).sum();
        SettlementAnswer {
            settlement_id: "s".into(),
            hospital_settlement_id: "h".into(),
            status: "settled".into(),
            card_id: "C".into(),
            ruleset_version: 1,
            total_fen: total,
            insurance_fen: ins,
            relief_fen: relief,
            patient_fen: total - ins - relief,
            payments: pays
                .iter()
                .map(|(p, f)| Payment {
                    program: p.to_string(),
                    paid_fen: *f,
                    deductible_applied_fen: 0,
                    capped_by: None,
                })
                .collect(),
            settled_at: Some("2026-11-30T10:00:00.000+08:00".into()),
            reversed_at: None,
        }
    }

    #[test]
    fn reconciliation_arithmetic() {
        let before = Recon::from_json(&serde_json::json!({
            "date": "2026-11-30", "hospital_id": "H0001", "settled_count": 5, "reversed_count": 1,
            "net": {"total_fen": 1000, "insurance_fen": 100, "relief_fen": 300, "patient_fen": 600, "by_program": {"charity": 50}}
        }))
        .unwrap();
        let a = answer(10_000, 4_000, &[("medical_assistance", 3_000), ("charity", 500)]);
        let b = answer(2_000, 0, &[("medical_assistance", 1_000)]);
        let mut want = Recon::default();
        want.apply(&a, 1);
        want.apply(&b, 1);
        want.apply(&b, -1);
        let mut after = before.clone();
        after.apply(&a, 1);
        after.apply(&b, 1);
        after.apply(&b, -1);
        assert_eq!(after.minus(&before).differences(&want), Vec::<String>::new());
        assert_eq!(want.settled_count, 2);
        assert_eq!(want.reversed_count, 1);
        assert_eq!(want.relief_fen, 3_500);
        assert_eq!(want.by_program["medical_assistance"], 3_000);
        // one fen off is caught, per field
        after.relief_fen += 1;
        let diffs = after.minus(&before).differences(&want);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(diffs[0].contains("net.relief_fen moved by 3501"));
    }

    #[test]
    fn check_answers_are_judged_against_the_claim() {
        let claim =
            Recon { settled_count: 3, reversed_count: 1, total_fen: 900, relief_fen: 300, ..Default::default() };
        let body = claim_body("2026-11-30", &claim);
        assert_eq!(body["net"]["relief_fen"], 300);
        assert!(body["net"].get("by_program").is_none(), "the fixed contract has four net fields");
        let gateway = serde_json::json!({"date": "2026-11-30", "hospital_id": "H0001", "settled_count": 3,
            "reversed_count": 1, "net": {"total_fen": 900, "insurance_fen": 0, "relief_fen": 300, "patient_fen": 0,
            "by_program": {"charity": 300}}});
        let ok = serde_json::json!({"date": "2026-11-30", "result": "match", "gateway": gateway, "differences": []});
        assert_eq!(judge_check_answer(&ok, &claim, None), Ok(()));
        let mut lying = ok.clone();
        lying["gateway"]["net"]["relief_fen"] = serde_json::json!(301);
        assert!(judge_check_answer(&lying, &claim, None).unwrap_err().contains("net.relief_fen"));
        let off = serde_json::json!({"result": "mismatch", "gateway": gateway,
            "differences": [{"field": "net.relief_fen", "hospital": 301, "gateway": 300}]});
        assert_eq!(judge_check_answer(&off, &claim, Some(("net.relief_fen", 301, 300))), Ok(()));
        assert!(judge_check_answer(&ok, &claim, Some(("net.relief_fen", 301, 300))).is_err(), "blind to 1 fen");
        assert!(judge_check_answer(&off, &claim, None).is_err());
        assert_eq!(Recon::default().plus(&claim), claim);
    }

    #[test]
    fn zero_programs_equal_absent_ones() {
        let mut a = Recon::default();
        a.by_program.insert("charity".into(), 0);
        assert!(a.differences(&Recon::default()).is_empty());
    }
}
