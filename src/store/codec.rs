//! The text formats the store shares with its Lua scripts, each with its parser and its encoder side by side:
//!
//! * a cardholder hash (`card_fields` ⇄ `parse_card`);
//! * a settlement record hash, as `settle.lua` and `reverse.lua` write it (`settlement_record` ⇄
//!   `parse_settlement`), with its canonical request (`Bill::canonical` ⇄ `parse_canonical`) and payment lines
//!   (`encode_payments` ⇄ `parse_payments`);
//! * the counters the settle script read (`parse_reads`), for the engine cross-check;
//! * one reconciliation detail line (`encode_event` ⇄ `parse_event`);
//!
//! Parsers return `Err(text)` for anything malformed (the caller makes it a `Corrupt` store error); none panics on
//! any input (fuzzed: `fuzz/fuzz_targets/record_codec.rs`).

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use super::dayline::settled_line_fields;
use crate::domain::bill::{Amounts, Bill, Insurance, Operator, Visit};
use crate::domain::card::{CardStatus, Cardholder};
use crate::domain::rules::VisitType;
use crate::domain::settlement::{Settlement, SettlementStatus, Tombstone};
use crate::domain::split::{CappedBy, Payment, ProgramUsage};

/// A flat `[field, value, field, value, …]` reply as a map.
pub fn pairs(flat: &[String]) -> HashMap<String, String> {
    flat.chunks_exact(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect()
}

// ---- cardholders ------------------------------------------------------------------------------------------------

/// The fields of a cardholder's hash. Tags are stored as `",a,b,"` so the settle script finds a tag with one plain
/// search for `",tag,"`.
/// The card's hash fields. `street` and `community` are always written ("" when absent), so a PUT without them
/// clears what an earlier one set; the settle script copies them into the settlement record and its day line.
pub fn card_fields(c: &Cardholder) -> [(&'static str, String); 8] {
    [
        ("card_id", c.card_id.clone()),
        ("category", c.category.clone()),
        ("status", c.status.as_str().to_string()),
        ("valid_from", c.valid_from.to_string()),
        ("valid_until", c.valid_until.to_string()),
        ("tags", format!(",{},", c.tags.join(","))),
        ("street", c.street.clone().unwrap_or_default()),
        ("community", c.community.clone().unwrap_or_default()),
    ]
}

/// A cardholder's hash; `Ok(None)` when the hash is empty (no such card).
pub fn parse_card(fields: &HashMap<String, String>) -> Result<Option<Cardholder>, String> {
    if fields.is_empty() {
        return Ok(None);
    }
    let get = |k: &str| fields.get(k).ok_or_else(|| format!("card field {k} missing"));
    let date = |k: &str| get(k)?.parse::<NaiveDate>().map_err(|e| format!("card field {k}: {e}"));
    Ok(Some(Cardholder {
        card_id: get("card_id")?.clone(),
        category: get("category")?.clone(),
        valid_from: date("valid_from")?,
        valid_until: date("valid_until")?,
        status: match get("status")?.as_str() {
            "active" => CardStatus::Active,
            "suspended" => CardStatus::Suspended,
            other => return Err(format!("card status {other:?}")),
        },
        tags: parse_tags(get("tags")?),
        street: fields.get("street").filter(|s| !s.is_empty()).cloned(),
        community: fields.get("community").filter(|s| !s.is_empty()).cloned(),
    }))
}

/// `",a,b,"` (or `","`) as a list of tags.
pub fn parse_tags(s: &str) -> Vec<String> {
    s.split(',').filter(|t| !t.is_empty()).map(String::from).collect()
}

// ---- what the settle script read --------------------------------------------------------------------------------

/// One covering program's counters as the settle script read them before splitting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramReads {
    /// The program id.
    pub program: String,
    /// The card's counters and the program's year total, before this settlement.
    pub usage: ProgramUsage,
}

/// `"id,paid,ded,program_paid,contributions;…"`: per covering program, in ruleset order.
pub fn parse_reads(s: &str) -> Result<Vec<ProgramReads>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(';')
        .map(|line| {
            let (id, rest) = line.split_once(',').ok_or_else(|| format!("before {line:?}"))?;
            let n: Vec<i64> = rest
                .split(',')
                .map(|x| x.parse::<i64>().map_err(|e| format!("before {line:?}: {e}")))
                .collect::<Result<_, _>>()?;
            match n[..] {
                [paid, ded, program, raised] => Ok(ProgramReads {
                    program: id.to_string(),
                    usage: ProgramUsage {
                        paid_fen: paid,
                        deductible_met_fen: ded,
                        program_paid_fen: program,
                        pool_contributions_fen: raised,
                    },
                }),
                _ => Err(format!("before {line:?}")),
            }
        })
        .collect()
}

// ---- payments ---------------------------------------------------------------------------------------------------

/// `"program,paid,ded,capped_by;…"` (capped_by empty when none), as `settle.lua` writes it.
pub fn encode_payments(payments: &[Payment]) -> String {
    let lines: Vec<String> = payments
        .iter()
        .map(|p| {
            let capped = p.capped_by.map(CappedBy::as_str).unwrap_or("");
            format!("{},{},{},{capped}", p.program, p.paid_fen, p.deductible_applied_fen)
        })
        .collect();
    lines.join(";")
}

pub fn parse_payments(s: &str) -> Result<Vec<Payment>, String> {
    payment_items(s)
        .map(|item| {
            let (program, paid_fen, deductible_applied_fen, capped_by) = item?;
            Ok(Payment { program: program.to_string(), paid_fen, deductible_applied_fen, capped_by })
        })
        .collect()
}

/// The payments of `s` as `(program, paid_fen)`, borrowed from it, checked as [`parse_payments`] checks them
/// (a report reads only these two of a payment, once per day line).
pub fn payment_amounts(s: &str) -> Option<Vec<(&str, i64)>> {
    payment_items(s).map(|item| item.ok().map(|(program, paid, _, _)| (program, paid))).collect()
}

/// One `program,paid,ded,capped_by` after another; `""` holds none.
fn payment_items(s: &str) -> impl Iterator<Item = Result<(&str, i64, i64, Option<CappedBy>), String>> {
    s.split(';').filter(move |_| !s.is_empty()).map(|line| {
        let mut parts = line.split(',');
        let (Some(program), Some(paid), Some(ded), Some(capped), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("payment {line:?}"));
        };
        if program.is_empty() {
            return Err(format!("payment {line:?}: no program"));
        }
        let paid = paid.parse().map_err(|e| format!("payment {line:?}: {e}"))?;
        let ded = ded.parse().map_err(|e| format!("payment {line:?}: {e}"))?;
        let capped = if capped.is_empty() {
            None
        } else {
            Some(CappedBy::parse(capped).ok_or_else(|| format!("capped_by {capped:?}"))?)
        };
        Ok((program, paid, ded, capped))
    })
}

// ---- the canonical request --------------------------------------------------------------------------------------

/// A canonical request (see `Bill::canonical`) read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    /// The card the bill was for.
    pub card_id: String,
    /// The visit: type and local date.
    pub visit: Visit,
    /// The four buckets and their total.
    pub amounts: Amounts,
    /// What insurance paid before the gateway.
    pub insurance: Insurance,
}

/// Parses the canonical request (`Bill::canonical`) back into the card, visit and amounts.
pub fn parse_canonical(s: &str) -> Result<CanonicalRequest, String> {
    let p: Vec<&str> = s.split('|').collect();
    if !(p.len() == 12 || p.len() == 13) || p[0] != "v1" {
        // not the text itself: it starts with the card id, and this message is logged
        return Err(format!("canonical request of {} fields", p.len()));
    }
    let n = |i: usize| p[i].parse::<i64>().map_err(|e| format!("canonical request field {i}: {e}"));
    let visit_type = VisitType::parse(p[2]).ok_or_else(|| format!("visit type {:?}", p[2]))?;
    let date = p[3].parse::<NaiveDate>().map_err(|e| e.to_string())?;
    Ok(CanonicalRequest {
        card_id: p[1].to_string(),
        visit: Visit { visit_type, date },
        amounts: Amounts {
            total_fen: n(4)?,
            in_scope_fen: n(5)?,
            pre_self_pay_fen: n(6)?,
            over_limit_fen: n(7)?,
            self_pay_fen: n(8)?,
        },
        insurance: Insurance {
            basic_fen: n(9)?,
            critical_illness_fen: n(10)?,
            other_fen: n(11)?,
            settlement_ref: p.get(12).map(|r| r.to_string()),
        },
    })
}

// ---- settlement records -----------------------------------------------------------------------------------------

/// The fields of a settlement record that [`parse_settlement`] reads, each value in a field of its own: the layout
/// of records of earlier builds and of `reverse.lua`'s events (this build's settle script puts the settled line's
/// values in one field `line` instead; `parse_settlement` reads both). For tests and fuzzing of the format.
pub fn settlement_record(s: &Settlement) -> Vec<(&'static str, String)> {
    let bill = Bill { card_id: &s.card_id, visit: s.visit, amounts: s.amounts, insurance: &s.insurance };
    let mut fields = vec![
        ("kind", "settlement".to_string()),
        ("status", s.status.as_str().to_string()),
        ("card_id", s.card_id.clone()),
        ("category", s.category.clone()),
        ("req", bill.canonical()),
        ("year", s.visit.date.year().to_string()),
        ("ruleset_version", s.ruleset_version.to_string()),
        ("total_fen", s.amounts.total_fen.to_string()),
        ("insurance_fen", s.insurance_fen.to_string()),
        ("relief_fen", s.relief_fen.to_string()),
        ("patient_fen", s.patient_fen.to_string()),
        ("payments", encode_payments(&s.payments)),
    ];
    let optional = [
        ("settlement_id", &s.settlement_id),
        ("hsid", &s.hospital_settlement_id),
        ("hospital", &s.hospital_id),
        ("settled_at", &s.settled_at),
        ("reversed_at", &s.reversed_at),
        ("reason", &s.reason),
        ("ins_ref", &s.insurance.settlement_ref),
    ];
    fields.extend(optional.into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))));
    fields.extend(operator_fields("operator", s.operator.as_ref()));
    fields.extend(operator_fields("reversed_by", s.reversed_by.as_ref()));
    fields
}

/// An operator as record fields `<prefix>_id` and `<prefix>_name` (each only when present).
fn operator_fields(prefix: &'static str, o: Option<&Operator>) -> Vec<(&'static str, String)> {
    let (id, name) = match prefix {
        "operator" => ("operator_id", "operator_name"),
        _ => ("reversed_by_id", "reversed_by_name"),
    };
    let Some(o) = o else { return Vec::new() };
    let mut fields = vec![(id, o.id.clone())];
    fields.extend(o.name.clone().map(|n| (name, n)));
    fields
}

/// The operator recorded under `<prefix>_id` / `<prefix>_name`, if any.
fn parse_operator(r: &HashMap<String, String>, id: &str, name: &str) -> Option<Operator> {
    r.get(id).map(|id| Operator { id: id.clone(), name: r.get(name).cloned() })
}

/// A settlement record; refuses one that breaks the settlement invariants. A record of this build carries its
/// settled day line in field `line` (`dayline::SETTLED_LINE_FIELDS` names its positions) beside `kind`, `status`,
/// `req`, `ruleset_version`, `hospital`, [`operator_name`] and what a reversal adds; a record of an earlier build
/// (and a settled event's fields, `events.rs`) holds each of those values as a field of its own. Both are read.
pub fn parse_settlement(r: &HashMap<String, String>) -> Result<Settlement, String> {
    let line = r.get("line").map(|l| settled_line_fields(l)).transpose()?.unwrap_or_default();
    let value =
        |k: &str| r.get(k).map(String::as_str).or_else(|| line.iter().find(|(name, _)| *name == k).map(|f| f.1));
    let get = |k: &str| value(k).ok_or_else(|| format!("record field {k} missing"));
    // an optional field: absent or "" (a line holds "" for what the settlement did not have)
    let opt = |k: &str| value(k).filter(|v| !v.is_empty()).map(str::to_string);
    let int = |k: &str| get(k)?.parse::<i64>().map_err(|e| format!("record field {k}: {e}"));
    let req = parse_canonical(get("req")?)?;
    if value("card_id").is_some_and(|c| c != req.card_id) {
        return Err("record's card differs from its request's".into());
    }
    let status = match get("status")? {
        "settled" => SettlementStatus::Settled,
        "reversed" => SettlementStatus::Reversed,
        "quote" => SettlementStatus::Quote,
        other => return Err(format!("status {other:?}")),
    };
    let operator = |id: &str, name: &str| opt(id).map(|id| Operator { id, name: opt(name) });
    let settlement = Settlement {
        settlement_id: opt("settlement_id"),
        hospital_settlement_id: opt("hsid"),
        hospital_id: opt("hospital"),
        status,
        card_id: req.card_id,
        category: get("category")?.to_string(),
        visit: req.visit,
        amounts: req.amounts,
        insurance: req.insurance,
        ruleset_version: get("ruleset_version")?.parse::<u64>().map_err(|e| format!("ruleset_version: {e}"))?,
        insurance_fen: int("insurance_fen")?,
        payments: parse_payments(get("payments")?)?,
        relief_fen: int("relief_fen")?,
        patient_fen: int("patient_fen")?,
        settled_at: opt("settled_at"),
        reversed_at: opt("reversed_at"),
        operator: operator("operator_id", "operator_name"),
        reversed_by: operator("reversed_by_id", "reversed_by_name"),
        reason: value("reason").map(str::to_string),
    };
    if !settlement.check_invariants() {
        return Err(format!("record breaks the settlement invariants: {}", settlement.amounts_text()));
    }
    Ok(settlement)
}

pub fn parse_tombstone(r: &HashMap<String, String>) -> Result<Tombstone, String> {
    let get = |k: &str| r.get(k).cloned().ok_or_else(|| format!("tombstone field {k} missing"));
    Ok(Tombstone {
        card_id: get("card_id")?,
        hospital_settlement_id: get("hsid")?,
        reversed_at: get("reversed_at")?,
        hospital_id: get("hospital")?,
        reason: r.get("reason").cloned().unwrap_or_default(),
        reversed_by: parse_operator(r, "reversed_by_id", "reversed_by_name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dayline::{encode_event, parse_event, DayEvent, LineContext, ProgramFen};

    fn settlement() -> Settlement {
        Settlement {
            settlement_id: Some("s1_x".into()),
            hospital_settlement_id: Some("H1-42".into()),
            hospital_id: Some("H1".into()),
            status: SettlementStatus::Settled,
            card_id: "C1".into(),
            category: "dibao".into(),
            visit: Visit { visit_type: VisitType::Inpatient, date: NaiveDate::from_ymd_opt(2026, 11, 29).unwrap() },
            amounts: Amounts {
                total_fen: 2_000_000,
                in_scope_fen: 1_799_999,
                pre_self_pay_fen: 30_001,
                over_limit_fen: 20_000,
                self_pay_fen: 150_000,
            },
            insurance: Insurance {
                basic_fen: 1_203_999,
                critical_illness_fen: 94_900,
                other_fen: 0,
                settlement_ref: Some("SETL-2026-0001".into()),
            },
            ruleset_version: 3,
            insurance_fen: 1_298_899,
            payments: vec![
                Payment {
                    program: "medical_assistance".into(),
                    paid_fen: 300_000,
                    deductible_applied_fen: 0,
                    capped_by: Some(CappedBy::AnnualCap),
                },
                Payment {
                    program: "charity".into(),
                    paid_fen: 50_000,
                    deductible_applied_fen: 0,
                    capped_by: Some(CappedBy::PerVisitCap),
                },
            ],
            relief_fen: 350_000,
            patient_fen: 351_101,
            settled_at: Some("2026-11-29T10:15:02.123+08:00".into()),
            reversed_at: None,
            operator: Some(Operator { id: "cashier-07".into(), name: Some("王丽|;=".into()) }),
            reversed_by: None,
            reason: None,
        }
    }

    fn as_map(fields: Vec<(&'static str, String)>) -> HashMap<String, String> {
        fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn settlement_records_round_trip() {
        let s = settlement();
        assert_eq!(parse_settlement(&as_map(settlement_record(&s))), Ok(s.clone()));
        let quote = Settlement { settlement_id: None, hospital_settlement_id: None, hospital_id: None, ..s.clone() };
        assert_eq!(parse_settlement(&as_map(settlement_record(&quote))), Ok(quote));
        let reversed = Settlement {
            status: SettlementStatus::Reversed,
            reversed_at: Some("2026-11-30T08:00:00.000+08:00".into()),
            reversed_by: Some(Operator { id: "desk-1".into(), name: None }),
            reason: Some("visit cancelled".into()),
            operator: None,
            insurance: Insurance { settlement_ref: None, ..s.insurance.clone() },
            ..s
        };
        assert_eq!(parse_settlement(&as_map(settlement_record(&reversed))), Ok(reversed));
    }

    #[test]
    fn records_with_the_settled_line_parse_as_the_per_field_layout() {
        let s = settlement();
        let per_field = as_map(settlement_record(&s));
        let line = "S|2026-11-29T10:15:02.123+08:00|s1_x|H1-42|C1|2000000|1298899|350000|351101|\
                    medical_assistance,300000,0,annual_cap;charity,50000,0,per_visit_cap|dibao|||SETL-2026-0001|cashier-07";
        let mut record = as_map(vec![
            ("kind", "settlement".into()),
            ("status", "settled".into()),
            ("line", line.into()),
            ("req", per_field["req"].clone()),
            ("ruleset_version", "3".into()),
            ("hospital", "H1".into()),
            ("operator_name", "王丽|;=".into()),
        ]);
        assert_eq!(parse_settlement(&record), Ok(s));
        // a reversal adds its own fields beside the line
        record.insert("status".into(), "reversed".into());
        record.insert("reversed_at".into(), "2026-11-30T08:00:00.000+08:00".into());
        record.insert("reason".into(), "visit cancelled".into());
        let reversed = parse_settlement(&record).unwrap();
        assert_eq!(
            (reversed.status, reversed.reason.as_deref()),
            (SettlementStatus::Reversed, Some("visit cancelled"))
        );
        // a line of another card, or of another shape, is refused
        record.insert("line".into(), line.replace("|C1|", "|C2|"));
        assert!(parse_settlement(&record).unwrap_err().contains("card"));
        record.insert("line".into(), "S|a|b".into());
        assert!(parse_settlement(&record).unwrap_err().contains("line"));
    }

    #[test]
    fn a_record_that_breaks_the_invariants_is_refused() {
        let mut fields = as_map(settlement_record(&settlement()));
        fields.insert("patient_fen".into(), "351100".into());
        assert!(parse_settlement(&fields).unwrap_err().contains("invariants"));
        // i64::MAX + 350000 + i64::MAX wraps to 349998: a total a corrupt record must not get away with
        let mut fields = as_map(settlement_record(&settlement()));
        fields.insert("req".into(), "v1|C1|inpatient|2026-11-29|349998|349998|0|0|0|0|0|0".into());
        fields.insert("insurance_fen".into(), i64::MAX.to_string());
        fields.insert("patient_fen".into(), i64::MAX.to_string());
        assert!(parse_settlement(&fields).unwrap_err().contains("invariants"));
    }

    #[test]
    fn cardholders_round_trip() {
        let c = Cardholder {
            card_id: "C1".into(),
            category: "dibao".into(),
            valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            valid_until: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            status: CardStatus::Suspended,
            tags: vec!["elderly_80".into(), "disabled".into()],
            street: Some("街道-1".into()),
            community: None,
        };
        let fields: HashMap<String, String> = card_fields(&c).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(parse_card(&fields), Ok(Some(c)));
        assert_eq!(parse_card(&HashMap::new()), Ok(None));
    }

    #[test]
    fn payments_and_events_round_trip() {
        let s = settlement();
        assert_eq!(parse_payments(&encode_payments(&s.payments)), Ok(s.payments.clone()));
        assert_eq!(parse_payments(""), Ok(vec![]));
        for reversal in [false, true] {
            let sign = if reversal { -1 } else { 1 };
            let e = DayEvent {
                reversal,
                at: "2026-11-29T10:15:02.123+08:00".into(),
                settlement_id: "s1_x".into(),
                hospital_settlement_id: "H1-42".into(),
                card_id: "C1".into(),
                total_fen: sign * 2_000_000,
                insurance_fen: sign * 1_298_899,
                relief_fen: sign * 350_000,
                patient_fen: sign * 351_101,
                by_program: s
                    .payments
                    .iter()
                    .map(|p| ProgramFen { program: p.program.clone(), fen: sign * p.paid_fen })
                    .collect(),
                context: LineContext {
                    category: "dibao".into(),
                    street: String::new(),
                    community: "c-7".into(),
                    insurance_settlement_ref: "SETL-1".into(),
                    operator_id: "cashier-07".into(),
                },
            };
            assert_eq!(parse_event(&encode_event(&e, &s.payments)), Some(e.clone()));
            // a line of an earlier build: no context
            let old = encode_event(&e, &s.payments).splitn(11, '|').take(10).collect::<Vec<_>>().join("|");
            assert_eq!(parse_event(&old), Some(DayEvent { context: LineContext::default(), ..e }));
        }
        assert_eq!(parse_event("S|a|b|c|d|-1|0|0|0|"), None);
        assert_eq!(parse_event("X|a|b|c|d|1|0|0|0|"), None);
        // every other shape is refused too, by the borrowed reader the aggregator uses and the owned one alike
        let good = "S|a|b|c|d|3|0|2|1|ma,2,0,pool|dibao|s|c|r|o";
        assert!(parse_event(good).is_some());
        for bad in [
            "S|a|b|c|d|3|0|2|1|ma,2,0,pool|dibao|s|c|r|o|x", // 16 fields
            "S|a|b|c|d|3|0|2|1|ma,2,0,pool|dibao",           // 11 fields
            "S|a|b|c|d|3|0|2|1|ma,-2,0,|||||",               // a negative payment
            "S|a|b|c|d|3|0|2|1|ma,2,0|||||",                 // a payment of 3 parts
            "S|a|b|c|d|3|0|2|1|ma,2,0,,x|||||",              // of 5 parts
            "S|a|b|c|d|3|0|2|1|,2,0,|||||",                  // no program
            "S|a|b|c|d|3|0|2|1|ma,2,0,nope|||||",            // an unknown capped_by
            "S|a|b|c|d|3|0|2|1|ma,2,x,|||||",                // an unreadable deductible
            "S|a|b|c|d|3|0|2|1|ma,2,0,;|||||",               // an empty payment
            "S|a|b|c|d|3|0|2|x|ma,2,0,|||||",                // an unreadable amount
        ] {
            assert_eq!(parse_event(bad), None, "{bad}");
            assert_eq!(crate::store::dayline::parse_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_and_canonical_requests_parse() {
        let reads = parse_reads("ma,1,2,3,0;charity,0,0,9,5").unwrap();
        assert_eq!(reads[1].program, "charity");
        assert_eq!(reads[1].usage.program_paid_fen, 9);
        assert!(parse_reads("ma,1,2,3").is_err());
        let s = settlement();
        for insurance in [s.insurance.clone(), Insurance { settlement_ref: None, ..s.insurance.clone() }] {
            let bill = Bill { card_id: &s.card_id, visit: s.visit, amounts: s.amounts, insurance: &insurance };
            let back = parse_canonical(&bill.canonical()).unwrap();
            assert_eq!(
                (back.card_id.as_str(), back.visit, back.amounts, &back.insurance),
                ("C1", s.visit, s.amounts, &insurance)
            );
        }
        assert!(parse_canonical("v2|C1").is_err());
    }
}
